package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"

	"github.com/lotse/lotse/internal/images"
	imageregistry "github.com/lotse/lotse/internal/registry"
)

// runImage is `lotse image import|ls`: images in lotse's own registry,
// reached through the API server like any client.
func runImage(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("lotse image", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage:\n  lotse image import [--kubeconfig PATH] FILE.tar...   load OCI or docker-archive tarballs\n  lotse image ls [--kubeconfig PATH]                   list the images lotse serves\n  lotse image busybox [--kubeconfig PATH] [REF...]     build busybox images from this machine's static /bin/busybox\n                                                       (default busybox:latest) and load them\n\nFlags:")
		fs.PrintDefaults()
	}
	kubeconfig := fs.String("kubeconfig", defaultKubeconfig(), "kubeconfig of the server whose registry to use")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("a subcommand is required: import or ls")
	}
	cfg, err := requiredRESTConfig(*kubeconfig)
	if err != nil {
		return err
	}
	reg, err := newRegistryClient(cfg)
	if err != nil {
		return err
	}
	switch sub := fs.Arg(0); sub {
	case "import":
		if fs.NArg() < 2 {
			return errors.New("import needs at least one tarball")
		}
		for _, file := range fs.Args()[1:] {
			if err := reg.importFile(file, stdout); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
		}
		return nil
	case "ls", "list":
		return reg.list(stdout)
	case "busybox":
		img, err := images.Busybox("/bin/busybox")
		if err != nil {
			return err
		}
		refs := fs.Args()[1:]
		if len(refs) == 0 {
			refs = []string{"busybox:latest"}
		}
		for _, ref := range refs {
			if err := reg.push(ref, img, stdout); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("unknown subcommand %q: use import or ls", sub)
	}
}

// defaultKubeconfig is $KUBECONFIG, else the server's admin kubeconfig.
func defaultKubeconfig() string {
	if v := os.Getenv("KUBECONFIG"); v != "" {
		return v
	}
	if os.Geteuid() == 0 {
		return "/var/lib/lotse/admin.kubeconfig"
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".lotse", "admin.kubeconfig")
}

type registryClient struct {
	host    string // the API server's host:port; repositories live under it
	options []remote.Option
}

func newRegistryClient(cfg *rest.Config) (*registryClient, error) {
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, err
	}
	return &registryClient{host: u.Host, options: []remote.Option{remote.WithTransport(transport)}}, nil
}

// target is where an image reference is stored: the repository path
// carries the full normalized name (docker.io/library/busybox), so the
// node's mirror finds it by what a pod spec says.
func (c *registryClient) target(ref string) (name.Reference, string, error) {
	repo, tag, err := imageregistry.Normalize(ref)
	if err != nil {
		return nil, "", err
	}
	full := repo + ":" + tag
	if strings.HasPrefix(tag, "sha256:") {
		full = repo + "@" + tag
	}
	r, err := name.ParseReference(c.host + "/" + full)
	return r, full, err
}

// importFile pushes every tagged image of a docker-archive or OCI
// tarball.
func (c *registryClient) importFile(file string, stdout io.Writer) error {
	isOCI, err := tarHas(file, "index.json")
	if err != nil {
		return err
	}
	if isOCI {
		return c.importOCI(file, stdout)
	}
	opener := func() (io.ReadCloser, error) { return os.Open(file) }
	manifest, err := tarball.LoadManifest(opener)
	if err != nil {
		return fmt.Errorf("neither an OCI archive nor a docker archive: %w", err)
	}
	pushed := 0
	for _, desc := range manifest {
		for _, t := range desc.RepoTags {
			tag, err := name.NewTag(t)
			if err != nil {
				return err
			}
			img, err := tarball.Image(opener, &tag)
			if err != nil {
				return err
			}
			if err := c.push(t, img, stdout); err != nil {
				return err
			}
			pushed++
		}
	}
	if pushed == 0 {
		return errors.New("the archive has no tagged image (RepoTags is empty)")
	}
	return nil
}

// importOCI unpacks an OCI image layout and pushes each manifest that
// names its image (io.containerd.image.name or a full ref.name).
func (c *registryClient) importOCI(file string, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "lotse-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := untar(file, dir); err != nil {
		return err
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	pushed := 0
	for _, d := range im.Manifests {
		ref := d.Annotations["io.containerd.image.name"]
		if ref == "" {
			ref = d.Annotations["org.opencontainers.image.ref.name"]
		}
		if ref == "" || !strings.ContainsAny(ref, "/:") {
			continue // a bare tag names no repository
		}
		if d.MediaType.IsIndex() {
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			r, full, err := c.target(ref)
			if err != nil {
				return err
			}
			if err := remote.WriteIndex(r, child, c.options...); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "imported %s\n", full)
		} else {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return err
			}
			if err := c.push(ref, img, stdout); err != nil {
				return err
			}
		}
		pushed++
	}
	if pushed == 0 {
		return errors.New("the OCI archive names no image (no io.containerd.image.name or org.opencontainers.image.ref.name annotation)")
	}
	return nil
}

func (c *registryClient) push(ref string, img v1.Image, stdout io.Writer) error {
	r, full, err := c.target(ref)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img, c.options...); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %s\n", full)
	return nil
}

func (c *registryClient) list(stdout io.Writer) error {
	reg, err := name.NewRegistry(c.host)
	if err != nil {
		return err
	}
	repos, err := remote.Catalog(context.Background(), reg, c.options...)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tTAG\tDIGEST")
	for _, repo := range repos {
		r, err := name.NewRepository(c.host + "/" + repo)
		if err != nil {
			return err
		}
		tags, err := remote.List(r, c.options...)
		if err != nil {
			return err
		}
		for _, t := range tags {
			desc, err := remote.Head(r.Tag(t), c.options...)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", repo, t, desc.Digest)
		}
	}
	return tw.Flush()
}

func tarHas(file, want string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("not a tar archive: %w", err)
		}
		if filepath.Clean(h.Name) == want {
			return true, nil
		}
	}
}

func untar(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.Create(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				return err
			}
		}
	}
}
