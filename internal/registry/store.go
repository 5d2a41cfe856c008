package registry

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Registry is an image store in one directory, laid out as
//
//	blobs/sha256/<hex>                                 every blob and manifest, shared by all repositories
//	repositories/<repo>/_manifests/revisions/<hex>     the manifest's media type; its presence links it to the repo
//	repositories/<repo>/_manifests/tags/<tag>          the digest the tag points at
//	uploads/<id>                                       unfinished uploads and temporary files
//
// Every file is written to uploads/ first and renamed into place, so a crash
// leaves either the old file or the complete new one. A blob is renamed only
// after its digest has been checked. Path components starting with "_"
// cannot occur in repository names, so the metadata directories never clash
// with a nested repository.
type Registry struct {
	dir string
}

// Image is one tagged image in the store.
type Image struct {
	// Ref is the full reference, e.g. docker.io/shop/web:1.
	Ref string
	// Digest is the manifest digest, e.g. sha256:3f1c...
	Digest string
	// MediaType is the manifest's media type; an index for multi-arch images.
	MediaType string
	// Size is the bytes stored for the image: manifests, configs and layers,
	// each blob counted once, including the stored children of an index.
	Size int64
}

// maxManifestSize bounds a manifest body; distribution uses the same limit.
const maxManifestSize = 4 << 20

// Open opens (creating if needed) the registry stored in dir. Unfinished
// uploads from a previous run are discarded; clients restart them.
func Open(dir string) (*Registry, error) {
	r := &Registry{dir: dir}
	if err := os.RemoveAll(r.uploadDir()); err != nil {
		return nil, fmt.Errorf("registry: clearing uploads: %w", err)
	}
	for _, d := range []string{filepath.Join(dir, "blobs", "sha256"), filepath.Join(dir, "repositories"), r.uploadDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	return r, nil
}

// Error is a distribution API error: an HTTP status and a spec error code.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return "registry: " + e.Message }

func newError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func (r *Registry) uploadDir() string { return filepath.Join(r.dir, "uploads") }

func (r *Registry) blobPath(h v1.Hash) string {
	return filepath.Join(r.dir, "blobs", "sha256", h.Hex)
}

func (r *Registry) manifestDir(repo string) string {
	return filepath.Join(r.dir, "repositories", filepath.FromSlash(repo), "_manifests")
}

func (r *Registry) tagPath(repo, tag string) string {
	return filepath.Join(r.manifestDir(repo), "tags", tag)
}

func (r *Registry) revisionPath(repo string, h v1.Hash) string {
	return filepath.Join(r.manifestDir(repo), "revisions", h.Hex)
}

// parseDigest accepts only sha256 digests: the only algorithm blobs are
// stored under, and the only one containerd and Docker produce.
func parseDigest(s string) (v1.Hash, error) {
	h, err := v1.NewHash(s)
	if err != nil {
		return v1.Hash{}, err
	}
	if h.Algorithm != "sha256" {
		return v1.Hash{}, fmt.Errorf("unsupported digest algorithm %q", h.Algorithm)
	}
	return h, nil
}

// statBlob returns the size of a stored blob.
func (r *Registry) statBlob(h v1.Hash) (int64, error) {
	if h.Algorithm != "sha256" {
		return 0, newError(http.StatusNotFound, "BLOB_UNKNOWN", "blob %s unknown", h)
	}
	fi, err := os.Stat(r.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, newError(http.StatusNotFound, "BLOB_UNKNOWN", "blob %s unknown", h)
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (r *Registry) openBlob(h v1.Hash) (*os.File, error) {
	f, err := os.Open(r.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, newError(http.StatusNotFound, "BLOB_UNKNOWN", "blob %s unknown", h)
	}
	return f, err
}

// newID returns a random upload session id, also used for temporary files.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validID keeps upload ids from the URL from naming any other file.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// install syncs a complete temporary file and renames it to target.
func install(f *os.File, target string) error {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.MkdirAll(filepath.Dir(target), 0o755)
	}
	if err == nil {
		err = os.Rename(f.Name(), target)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// writeFile atomically replaces target with data.
func (r *Registry) writeFile(target string, data []byte) error {
	f, err := os.Create(filepath.Join(r.uploadDir(), "tmp-"+newID()))
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	return install(f, target)
}

// writeBlob stores the content of src as blob want, refusing it (and leaving
// nothing behind) if its digest differs.
func (r *Registry) writeBlob(src io.Reader, want v1.Hash) error {
	f, err := os.Create(filepath.Join(r.uploadDir(), "tmp-"+newID()))
	if err != nil {
		return err
	}
	return r.commit(f, src, want)
}

// commit appends src to the open file f, checks the digest of the whole file
// against want and installs it as that blob. f is closed and, on failure,
// removed.
func (r *Registry) commit(f *os.File, src io.Reader, want v1.Hash) error {
	fail := func(err error) error {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if _, err := io.Copy(f, src); err != nil {
		return fail(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	hasher := sha256.New()
	if _, err := io.Copy(hasher, f); err != nil {
		return fail(err)
	}
	if got := "sha256:" + hex.EncodeToString(hasher.Sum(nil)); got != want.String() {
		return fail(newError(http.StatusBadRequest, "DIGEST_INVALID", "content digest %s does not match %s", got, want))
	}
	return install(f, r.blobPath(want))
}

// manifestType decides the media type of a pushed manifest: the request's
// Content-Type if it names a manifest type, else the body's mediaType field.
// When both are given they must agree.
func manifestType(contentType string, body []byte) (types.MediaType, error) {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return "", newError(http.StatusBadRequest, "MANIFEST_INVALID", "manifest is not JSON: %v", err)
	}
	mt := types.MediaType(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	if !mt.IsImage() && !mt.IsIndex() {
		mt = probe.MediaType
	}
	if probe.MediaType != "" && probe.MediaType != mt {
		return "", newError(http.StatusBadRequest, "MANIFEST_INVALID", "Content-Type %q does not match the manifest's mediaType %q", mt, probe.MediaType)
	}
	if !mt.IsImage() && !mt.IsIndex() {
		return "", newError(http.StatusBadRequest, "MANIFEST_INVALID", "unsupported manifest media type %q", mt)
	}
	return mt, nil
}

// putManifest validates and stores a manifest in repo under ref, a tag or the
// manifest's own digest, and returns its digest.
func (r *Registry) putManifest(repo, ref string, body []byte, contentType string) (v1.Hash, error) {
	sum := sha256.Sum256(body)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if strings.Contains(ref, ":") {
		want, err := parseDigest(ref)
		if err != nil {
			return v1.Hash{}, newError(http.StatusBadRequest, "DIGEST_INVALID", "invalid digest %q: %v", ref, err)
		}
		if want != h {
			return v1.Hash{}, newError(http.StatusBadRequest, "DIGEST_INVALID", "manifest digest %s does not match %s", h, want)
		}
	} else if !tagRE.MatchString(ref) {
		return v1.Hash{}, newError(http.StatusBadRequest, "MANIFEST_INVALID", "invalid tag %q", ref)
	}

	mt, err := manifestType(contentType, body)
	if err != nil {
		return v1.Hash{}, err
	}
	if mt.IsImage() {
		m, err := v1.ParseManifest(bytes.NewReader(body))
		if err != nil {
			return v1.Hash{}, newError(http.StatusBadRequest, "MANIFEST_INVALID", "%v", err)
		}
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if len(d.URLs) > 0 {
				continue // a foreign layer lives at its URLs, not here
			}
			if _, err := r.statBlob(d.Digest); err != nil {
				return v1.Hash{}, newError(http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "manifest references unknown blob %s", d.Digest)
			}
		}
	} else if _, err := v1.ParseIndexManifest(bytes.NewReader(body)); err != nil {
		// Children of an index are not required to be present: a mirror
		// may hold only the platforms its nodes run.
		return v1.Hash{}, newError(http.StatusBadRequest, "MANIFEST_INVALID", "%v", err)
	}

	// Blob first, then the link, then the tag: a crash in between leaves
	// unreferenced data, never a tag pointing at nothing.
	if _, err := r.statBlob(h); err != nil {
		if err := r.writeBlob(bytes.NewReader(body), h); err != nil {
			return v1.Hash{}, err
		}
	}
	if err := r.writeFile(r.revisionPath(repo, h), []byte(mt)); err != nil {
		return v1.Hash{}, err
	}
	if !strings.Contains(ref, ":") {
		if err := r.writeFile(r.tagPath(repo, ref), []byte(h.String())); err != nil {
			return v1.Hash{}, err
		}
	}
	return h, nil
}

// resolve finds the manifest that ref (a tag or digest) names in repo.
func (r *Registry) resolve(repo, ref string) (v1.Hash, types.MediaType, error) {
	unknown := newError(http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest %s:%s unknown", repo, ref)
	var h v1.Hash
	if strings.Contains(ref, ":") {
		var err error
		if h, err = parseDigest(ref); err != nil {
			return v1.Hash{}, "", newError(http.StatusBadRequest, "DIGEST_INVALID", "invalid digest %q: %v", ref, err)
		}
	} else {
		if !tagRE.MatchString(ref) {
			return v1.Hash{}, "", unknown
		}
		b, err := os.ReadFile(r.tagPath(repo, ref))
		if errors.Is(err, fs.ErrNotExist) {
			return v1.Hash{}, "", unknown
		}
		if err != nil {
			return v1.Hash{}, "", err
		}
		if h, err = parseDigest(string(b)); err != nil {
			return v1.Hash{}, "", fmt.Errorf("registry: corrupt tag %s:%s: %w", repo, ref, err)
		}
	}
	mt, err := os.ReadFile(r.revisionPath(repo, h))
	if errors.Is(err, fs.ErrNotExist) {
		return v1.Hash{}, "", unknown
	}
	if err != nil {
		return v1.Hash{}, "", err
	}
	return h, types.MediaType(mt), nil
}

// deleteManifest removes a tag, or a manifest from repo together with the
// tags pointing at it. Blobs stay; nothing collects them yet.
func (r *Registry) deleteManifest(repo, ref string) error {
	h, _, err := r.resolve(repo, ref)
	if err != nil {
		return err
	}
	if !strings.Contains(ref, ":") {
		return os.Remove(r.tagPath(repo, ref))
	}
	tags, err := r.tags(repo)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if th, _, err := r.resolve(repo, t); err == nil && th == h {
			if err := os.Remove(r.tagPath(repo, t)); err != nil {
				return err
			}
		}
	}
	return os.Remove(r.revisionPath(repo, h))
}

// tags lists the tags of repo, sorted.
func (r *Registry) tags(repo string) ([]string, error) {
	if _, err := os.Stat(r.manifestDir(repo)); errors.Is(err, fs.ErrNotExist) {
		return nil, newError(http.StatusNotFound, "NAME_UNKNOWN", "repository %s unknown", repo)
	}
	entries, err := os.ReadDir(filepath.Join(r.manifestDir(repo), "tags"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	tags := []string{}
	for _, e := range entries {
		tags = append(tags, e.Name())
	}
	sort.Strings(tags)
	return tags, nil
}

// repositories lists every repository holding at least one manifest, sorted.
func (r *Registry) repositories() ([]string, error) {
	root := filepath.Join(r.dir, "repositories")
	repos := []string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "_manifests" {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			repos = append(repos, filepath.ToSlash(rel))
			return filepath.SkipDir
		}
		return nil
	})
	sort.Strings(repos)
	return repos, err
}

// Put stores an image built in Go under ref, normalized as by Normalize
// (so "busybox" lands in docker.io/library/busybox:latest). A reference by
// digest must match the image's manifest digest.
func (r *Registry) Put(ref string, img v1.Image) error {
	repo, tag, err := Normalize(ref)
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("registry: put %s: %w", ref, err)
	}
	for _, l := range layers {
		if err := r.putLayer(l); err != nil {
			return fmt.Errorf("registry: put %s: %w", ref, err)
		}
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("registry: put %s: %w", ref, err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("registry: put %s: %w", ref, err)
	}
	if err := r.writeBlob(bytes.NewReader(cfg), cfgName); err != nil {
		return fmt.Errorf("registry: put %s config: %w", ref, err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return fmt.Errorf("registry: put %s: %w", ref, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("registry: put %s: %w", ref, err)
	}
	if _, err := r.putManifest(repo, tag, raw, string(mt)); err != nil {
		return fmt.Errorf("registry: put %s: %w", ref, err)
	}
	return nil
}

func (r *Registry) putLayer(l v1.Layer) error {
	mt, err := l.MediaType()
	if err != nil {
		return err
	}
	if !mt.IsDistributable() {
		return nil // foreign layers are fetched from their URLs, not stored
	}
	d, err := l.Digest()
	if err != nil {
		return err
	}
	if _, err := r.statBlob(d); err == nil {
		return nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	return r.writeBlob(rc, d)
}

// List returns every tagged image, sorted by reference.
func (r *Registry) List() ([]Image, error) {
	repos, err := r.repositories()
	if err != nil {
		return nil, fmt.Errorf("registry: list: %w", err)
	}
	var images []Image
	for _, repo := range repos {
		tags, err := r.tags(repo)
		if err != nil {
			return nil, fmt.Errorf("registry: list %s: %w", repo, err)
		}
		for _, tag := range tags {
			h, mt, err := r.resolve(repo, tag)
			if err != nil {
				continue // a tag whose manifest was deleted concurrently
			}
			images = append(images, Image{
				Ref:       repo + ":" + tag,
				Digest:    h.String(),
				MediaType: string(mt),
				Size:      r.size(h, mt, map[v1.Hash]bool{}),
			})
		}
	}
	sort.Slice(images, func(i, j int) bool { return images[i].Ref < images[j].Ref })
	return images, nil
}

// size adds up the stored blobs a manifest reaches, skipping those in seen
// (shared layers count once) and those not stored (absent platforms).
func (r *Registry) size(h v1.Hash, mt types.MediaType, seen map[v1.Hash]bool) int64 {
	if seen[h] {
		return 0
	}
	seen[h] = true
	raw, err := os.ReadFile(r.blobPath(h))
	if err != nil {
		return 0
	}
	total := int64(len(raw))
	switch {
	case mt.IsImage():
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return total
		}
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if n, err := r.statBlob(d.Digest); err == nil && !seen[d.Digest] {
				seen[d.Digest] = true
				total += n
			}
		}
	case mt.IsIndex():
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return total
		}
		for _, d := range idx.Manifests {
			total += r.size(d.Digest, d.MediaType, seen)
		}
	}
	return total
}
