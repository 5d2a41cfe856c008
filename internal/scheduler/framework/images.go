package framework

import (
	"strings"

	v1 "k8s.io/api/core/v1"
)

// NormalizeImageName spells an image reference in full, so that "nginx"
// in a pod spec and "docker.io/library/nginx:latest" as a node reports it
// compare equal: Docker Hub is the default registry (index.docker.io an
// alias), its single-name repositories live under library/, and a
// reference without tag or digest means :latest. Upstream adds only the
// :latest; the docker.io defaults are lotse's, because runtimes report
// full names.
func NormalizeImageName(ref string) string {
	if ref == "" {
		return ""
	}
	name, digest := ref, ""
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		name, digest = ref[:i], ref[i:]
	}
	domain, rest := "docker.io", name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		first := name[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			domain, rest = first, name[i+1:]
		}
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	// A colon after the last slash starts a tag (one before it belongs
	// to a registry port, already split off).
	if digest == "" && !strings.Contains(rest[strings.LastIndexByte(rest, '/')+1:], ":") {
		rest += ":latest"
	}
	return domain + "/" + rest + digest
}

// nodeImages maps the normalised names of the images node holds to their
// sizes; nil when it reports none.
func nodeImages(node *v1.Node) map[string]int64 {
	if len(node.Status.Images) == 0 {
		return nil
	}
	out := make(map[string]int64, len(node.Status.Images))
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			if n := NormalizeImageName(name); n != "" {
				if _, dup := out[n]; !dup {
					out[n] = img.SizeBytes
				}
			}
		}
	}
	return out
}
