package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is the timestamp of every file, layer and config we write, so that
// digests depend on content only.
var epoch = time.Unix(0, 0).UTC()

// File is one entry of an image's file system.
//
// The kind follows from the fields: a directory if Mode has fs.ModeDir set, a
// symbolic link if Symlink is set, a regular file holding Data otherwise.
// Mode carries the permission bits plus fs.ModeSetuid, fs.ModeSetgid and
// fs.ModeSticky; zero permissions mean 0644 for files and 0755 for
// directories. Owner is UID:GID, root by default.
type File struct {
	Mode    fs.FileMode
	Data    []byte
	Symlink string
	UID     int
	GID     int
}

// FromFiles returns a single-layer image for the host architecture holding
// files, keyed by absolute or root-relative path, with cfg as the container
// configuration. Parent directories that are not listed are created 0755.
func FromFiles(files map[string]File, cfg v1.Config) (v1.Image, error) {
	return build(files, cfg, runtime.GOARCH)
}

func build(files map[string]File, cfg v1.Config, arch string) (v1.Image, error) {
	layer, err := layerTar(files)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		// Uncompressed, so the layer digest is a function of our bytes
		// alone and not of a compressor's version; containerd accepts it.
		Layer:   static.NewLayer(layer, types.DockerUncompressedLayer),
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "lotse images"},
	})
	if err != nil {
		return nil, fmt.Errorf("images: append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("images: read config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: epoch}
	cf.OS = "linux"
	cf.Architecture = arch
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("images: set config: %w", err)
	}
	return img, nil
}

// layerTar writes files as a tar stream in path order, which puts every
// directory before its contents and makes the bytes independent of map order.
func layerTar(files map[string]File) ([]byte, error) {
	entries := map[string]File{}
	for name, f := range files {
		clean, err := cleanPath(name)
		if err != nil {
			return nil, err
		}
		if _, dup := entries[clean]; dup {
			return nil, fmt.Errorf("images: %q given twice", name)
		}
		if err := checkFile(clean, f); err != nil {
			return nil, err
		}
		entries[clean] = f
	}
	// Add missing parents, and refuse a parent that is not a directory.
	for name := range entries {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			parent, ok := entries[dir]
			if !ok {
				entries[dir] = File{Mode: fs.ModeDir | 0o755}
				continue
			}
			if !parent.Mode.IsDir() {
				return nil, fmt.Errorf("images: %q needs %q to be a directory", name, dir)
			}
		}
	}

	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	// Sort by path components so "a/b" comes right after "a" and before
	// "a-b", keeping each directory's contents together.
	sort.Slice(names, func(i, j int) bool {
		return strings.ReplaceAll(names[i], "/", "\x00") < strings.ReplaceAll(names[j], "/", "\x00")
	})

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		f := entries[name]
		hdr := &tar.Header{
			Name:    name,
			Mode:    tarMode(f),
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: epoch,
			Format:  tar.FormatPAX, // fixed, so long names cannot switch formats
		}
		switch {
		case f.Mode.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case f.Symlink != "":
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = f.Symlink
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(f.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("images: tar %q: %w", name, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, fmt.Errorf("images: tar %q: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("images: tar: %w", err)
	}
	return buf.Bytes(), nil
}

// cleanPath turns "/a/b" or "a/b" into the tar name "a/b".
func cleanPath(name string) (string, error) {
	clean := strings.TrimPrefix(path.Clean("/"+name), "/")
	if name == "" || clean == "" || clean != strings.Trim(name, "/") {
		return "", fmt.Errorf("images: bad path %q: want a clean path below /", name)
	}
	return clean, nil
}

func checkFile(name string, f File) error {
	const allowed = fs.ModeDir | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | fs.ModePerm
	if f.Mode&^allowed != 0 {
		return fmt.Errorf("images: %q: unsupported mode %v", name, f.Mode)
	}
	if f.Mode.IsDir() && (f.Data != nil || f.Symlink != "") {
		return fmt.Errorf("images: %q: a directory has neither data nor a link target", name)
	}
	if f.Symlink != "" && f.Data != nil {
		return fmt.Errorf("images: %q: a symlink has no data", name)
	}
	if f.UID < 0 || f.GID < 0 {
		return fmt.Errorf("images: %q: negative owner %d:%d", name, f.UID, f.GID)
	}
	return nil
}

// tarMode converts Go's mode bits to the Unix bits tar stores, with defaults.
func tarMode(f File) int64 {
	perm := int64(f.Mode.Perm())
	switch {
	case f.Symlink != "":
		perm = 0o777 // symlink permissions are meaningless on Linux
	case perm == 0 && f.Mode.IsDir():
		perm = 0o755
	case perm == 0:
		perm = 0o644
	}
	if f.Mode&fs.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if f.Mode&fs.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if f.Mode&fs.ModeSticky != 0 {
		perm |= 0o1000
	}
	return perm
}
