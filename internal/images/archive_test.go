package images

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestWriteArchiveRoundTrip(t *testing.T) {
	img, err := FromFiles(map[string]File{
		"/bin/hello": {Mode: 0o755, Data: []byte("#!/bin/sh\necho hello\n")},
	}, v1.Config{Entrypoint: []string{"/bin/hello"}})
	if err != nil {
		t.Fatal(err)
	}
	const ref = "lotse.local/hello:test"
	var buf bytes.Buffer
	if err := WriteArchive(&buf, ref, img); err != nil {
		t.Fatal(err)
	}
	archive := buf.Bytes()

	// The docker-archive manifest names the tag.
	manifest := readManifest(t, archive)
	if len(manifest) != 1 || !slices.Equal(manifest[0].RepoTags, []string{ref}) {
		t.Errorf("manifest.json = %+v, want one image tagged %s", manifest, ref)
	}

	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	back, err := tarball.Image(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(archive)), nil
	}, &tag)
	if err != nil {
		t.Fatalf("tarball.Image: %v", err)
	}
	// The config is stored verbatim, so its digest survives the trip.
	wantCfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	gotCfg, err := back.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if gotCfg != wantCfg {
		t.Errorf("config digest %v after round trip, want %v", gotCfg, wantCfg)
	}
	files, _ := layerFiles(t, back)
	if got := string(files["bin/hello"].data); got != "#!/bin/sh\necho hello\n" {
		t.Errorf("bin/hello after round trip = %q", got)
	}
	if ep := configFile(t, back).Config.Entrypoint; !slices.Equal(ep, []string{"/bin/hello"}) {
		t.Errorf("entrypoint after round trip %q", ep)
	}
}

func TestWriteArchivePause(t *testing.T) {
	requireAMD64(t)
	img, err := Pause()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, PauseRef, img); err != nil {
		t.Fatal(err)
	}
	back, err := tarball.Image(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, nil)
	if err != nil {
		t.Fatalf("tarball.Image: %v", err)
	}
	files, _ := layerFiles(t, back)
	if !bytes.Equal(files["pause"].data, PauseBinary()) {
		t.Error("pause binary did not survive the archive")
	}
	if got := readManifest(t, buf.Bytes()); len(got) != 1 || !slices.Equal(got[0].RepoTags, []string{PauseRef}) {
		t.Errorf("manifest.json = %+v, want tag %s", got, PauseRef)
	}
}

func TestWriteArchiveBadRef(t *testing.T) {
	img, err := FromFiles(map[string]File{"a": {}}, v1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"", "UPPER/case:1", "a:b:c"} {
		err := WriteArchive(io.Discard, ref, img)
		if err == nil || !strings.Contains(err.Error(), "tag") {
			t.Errorf("WriteArchive(%q) error = %v, want a tag error", ref, err)
		}
	}
}

func readManifest(t *testing.T, archive []byte) tarball.Manifest {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatal("archive has no manifest.json")
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != "manifest.json" {
			continue
		}
		var m tarball.Manifest
		if err := json.NewDecoder(tr).Decode(&m); err != nil {
			t.Fatalf("manifest.json: %v", err)
		}
		return m
	}
}
