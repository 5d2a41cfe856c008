package registry

import (
	"fmt"
	"regexp"
	"strings"
)

// The grammar follows the distribution reference grammar: lowercase path
// components separated by "/", optionally preceded by a registry host.
var (
	pathComponentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	domainRE        = regexp.MustCompile(`^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$`)
	tagRE           = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	imageIDRE       = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// maxNameLength is the longest repository name (host included) we accept,
// the same bound distribution uses.
const maxNameLength = 255

// Normalize turns an image reference as a user or a pod spec writes it into
// the full repository name and tag, defaulting the way Docker and containerd
// do: "busybox" is docker.io/library/busybox:latest, a first component with
// a dot, a colon or "localhost" is a registry host, and index.docker.io is
// docker.io. tag is the digest ("sha256:...") when the reference has one,
// since that is what a runtime pulls; otherwise the tag or "latest".
func Normalize(ref string) (repo, tag string, err error) {
	name := ref
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name, tag = name[:i], name[i+1:]
		if _, err := parseDigest(tag); err != nil {
			return "", "", fmt.Errorf("registry: invalid reference %q: %w", ref, err)
		}
	}
	// A tag follows the last colon that comes after the last slash, so a
	// host port ("localhost:5000/x") is not mistaken for one.
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		t := name[i+1:]
		name = name[:i]
		if !tagRE.MatchString(t) {
			return "", "", fmt.Errorf("registry: invalid reference %q: invalid tag %q", ref, t)
		}
		if tag == "" {
			tag = t
		}
	}
	if tag == "" {
		tag = "latest"
	}
	if name == "" {
		return "", "", fmt.Errorf("registry: invalid reference %q: empty name", ref)
	}
	if imageIDRE.MatchString(name) {
		return "", "", fmt.Errorf("registry: invalid reference %q: a 64-character hex string is an image ID, not a name", ref)
	}

	domain, path := "docker.io", name
	if first, rest, ok := strings.Cut(name, "/"); ok && isDomain(first) {
		domain, path = first, rest
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	if !domainRE.MatchString(domain) {
		return "", "", fmt.Errorf("registry: invalid reference %q: invalid registry host %q", ref, domain)
	}
	if err := validPath(path); err != nil {
		return "", "", fmt.Errorf("registry: invalid reference %q: %w", ref, err)
	}
	repo = domain + "/" + path
	if len(repo) > maxNameLength {
		return "", "", fmt.Errorf("registry: invalid reference %q: name longer than %d characters", ref, maxNameLength)
	}
	return repo, tag, nil
}

// isDomain reports whether the first component of a name is a registry host
// rather than part of a Docker Hub path, by Docker's rule: it has a dot or a
// port, is "localhost", or has uppercase letters (never valid in a path).
func isDomain(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost" || strings.ToLower(s) != s
}

// validPath checks the components of a repository path (no host).
func validPath(path string) error {
	for _, c := range strings.Split(path, "/") {
		if !pathComponentRE.MatchString(c) {
			return fmt.Errorf("invalid repository path component %q (lowercase letters, digits and separators only)", c)
		}
	}
	return nil
}

// validRepo checks a repository name as it arrives over HTTP. The first
// component may be a host (docker.io, localhost:5000); every other one must
// be a path component, which also keeps names safe as directory paths.
func validRepo(repo string) bool {
	if repo == "" || len(repo) > maxNameLength {
		return false
	}
	first, rest, hasRest := strings.Cut(repo, "/")
	if !pathComponentRE.MatchString(first) && !(hasRest && domainRE.MatchString(first)) {
		return false
	}
	return !hasRest || validPath(rest) == nil
}
