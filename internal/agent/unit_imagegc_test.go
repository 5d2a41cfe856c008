package agent

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// gcRuntime has some images and containers; removing an image frees its
// size on a disk of 1000 bytes.
type gcRuntime struct {
	runtimeapi.RuntimeServiceClient
	runtimeapi.ImageServiceClient
	images     []*runtimeapi.Image
	containers []*runtimeapi.Container
	removed    []string
	used       uint64
}

func (r *gcRuntime) ListContainers(context.Context, *runtimeapi.ListContainersRequest, ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{Containers: r.containers}, nil
}

func (r *gcRuntime) ListImages(context.Context, *runtimeapi.ListImagesRequest, ...grpc.CallOption) (*runtimeapi.ListImagesResponse, error) {
	return &runtimeapi.ListImagesResponse{Images: r.images}, nil
}

func (r *gcRuntime) RemoveImage(_ context.Context, req *runtimeapi.RemoveImageRequest, _ ...grpc.CallOption) (*runtimeapi.RemoveImageResponse, error) {
	r.images = slices.DeleteFunc(r.images, func(img *runtimeapi.Image) bool {
		if img.Id == req.Image.Image {
			r.removed = append(r.removed, img.Id)
			r.used -= img.Size
			return true
		}
		return false
	})
	return &runtimeapi.RemoveImageResponse{}, nil
}

func TestImageGarbageCollection(t *testing.T) {
	img := func(id string, size uint64, tags ...string) *runtimeapi.Image {
		return &runtimeapi.Image{Id: id, Size: size, RepoTags: tags}
	}
	rt := &gcRuntime{
		images: []*runtimeapi.Image{
			img("sha256:pause", 10, "lotse.local/pause:1"),
			img("sha256:running", 100, "docker.io/library/web:1"),
			img("sha256:old", 100, "docker.io/library/web:0"),
			img("sha256:older", 100, "docker.io/library/db:0"),
			img("sha256:new", 100, "docker.io/library/cache:1"),
		},
		// The running container names its image by tag only.
		containers: []*runtimeapi.Container{{Id: "c1", Image: &runtimeapi.ImageSpec{Image: "docker.io/library/web:1"}}},
	}
	a := &Agent{cfg: Config{SandboxImage: "lotse.local/pause:1"}, runtime: rt, images: rt, log: slog.New(slog.DiscardHandler)}
	a.imageGC.diskUsage = func() (uint64, uint64) { return rt.used, 1000 }
	ctx := context.Background()
	t0 := time.Now()

	// "older" was used by a container that is gone, "old" after it.
	rt.used = 500
	rt.containers = append(rt.containers, &runtimeapi.Container{Id: "c0", ImageRef: "sha256:older"})
	must(t, a.collectImages(ctx, t0))
	rt.containers[1] = &runtimeapi.Container{Id: "c0", ImageRef: "sha256:old"}
	must(t, a.collectImages(ctx, t0.Add(time.Minute)))
	rt.containers = rt.containers[:1]
	rt.images = append(rt.images, img("sha256:fresh", 100, "docker.io/library/fresh:1"))

	// Under 85% full: nothing goes.
	must(t, a.collectImages(ctx, t0.Add(3*time.Minute)))
	if len(rt.removed) != 0 {
		t.Fatalf("removed %v with the disk half full", rt.removed)
	}
	// 88% full: unused images go, least recently used first, until under
	// 80%: "new" (never used, first seen at t0) and "older" (last used at
	// t0) before "old" (used at t0+1m); 880 - 800 = 80 bytes needs one
	// image, and the two at t0 tie in the order listed.
	rt.used = 880
	must(t, a.collectImages(ctx, t0.Add(4*time.Minute)))
	if !slices.Equal(rt.removed, []string{"sha256:older"}) {
		t.Fatalf("removed %v, want only sha256:older", rt.removed)
	}
	// 99% full: everything removable goes, but never the image in use,
	// the sandbox image or one seen less than two minutes ago.
	rt.used = 990
	must(t, a.collectImages(ctx, t0.Add(4*time.Minute)))
	slices.Sort(rt.removed)
	if want := []string{"sha256:new", "sha256:old", "sha256:older"}; !slices.Equal(rt.removed, want) {
		t.Errorf("removed %v, want %v", rt.removed, want)
	}
}
