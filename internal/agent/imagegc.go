package agent

import (
	"context"
	"slices"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Image garbage collection, as the kubelet's with its defaults: every
// imageGCPeriod, when the disk holding the node's images is more than
// imageGCHighPercent full, images no container uses are removed, least
// recently used first, until it is under imageGCLowPercent. An image is
// kept until it has been known for imageMinAge, and the sandbox image is
// never removed.
const (
	imageGCPeriod      = 5 * time.Minute
	imageGCHighPercent = 85
	imageGCLowPercent  = 80
	imageMinAge        = 2 * time.Minute
)

// imageUse is what the agent knows of one image's use.
type imageUse struct {
	firstSeen, lastUsed time.Time
}

// imageGC remembers when each image was first seen and last used.
type imageGC struct {
	mu   sync.Mutex
	seen map[string]*imageUse // image ID -> use
	// diskUsage reports the used and total bytes of the images' disk;
	// tests replace it.
	diskUsage func() (used, total uint64)
}

func (a *Agent) imageGCLoop(ctx context.Context) {
	ticker := time.NewTicker(imageGCPeriod)
	defer ticker.Stop()
	for {
		if err := a.collectImages(ctx, time.Now()); err != nil && ctx.Err() == nil {
			a.log.Warn("image garbage collection failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// collectImages notes which images are in use and, when the disk is too
// full, removes unused ones.
func (a *Agent) collectImages(ctx context.Context, now time.Time) error {
	imgs, err := a.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return err
	}
	cs, err := a.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return err
	}
	inUse := map[string]bool{}
	for _, c := range cs.Containers {
		inUse[c.ImageRef] = true
		if c.Image != nil {
			inUse[c.Image.Image] = true
		}
	}
	gc := &a.imageGC
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if gc.seen == nil {
		gc.seen = map[string]*imageUse{}
	}
	present := map[string]bool{}
	var unused []*runtimeapi.Image
	for _, img := range imgs.Images {
		present[img.Id] = true
		use := gc.seen[img.Id]
		if use == nil {
			use = &imageUse{firstSeen: now}
			gc.seen[img.Id] = use
		}
		used := inUse[img.Id]
		for _, tag := range img.RepoTags {
			used = used || inUse[tag]
		}
		switch {
		case used:
			use.lastUsed = now
		case a.isSandboxImage(img) || img.Pinned || now.Sub(use.firstSeen) < imageMinAge:
		default:
			unused = append(unused, img)
		}
	}
	for id := range gc.seen {
		if !present[id] {
			delete(gc.seen, id)
		}
	}

	used, total := gc.diskUsage()
	if total == 0 || used*100 < imageGCHighPercent*total {
		return nil
	}
	toFree := used - imageGCLowPercent*total/100
	// Least recently used first; never used counts as used when first seen.
	lastUse := func(img *runtimeapi.Image) time.Time {
		u := gc.seen[img.Id]
		if u.lastUsed.IsZero() {
			return u.firstSeen
		}
		return u.lastUsed
	}
	slices.SortStableFunc(unused, func(x, y *runtimeapi.Image) int { return lastUse(x).Compare(lastUse(y)) })
	var freed uint64
	for _, img := range unused {
		if freed >= toFree {
			break
		}
		if _, err := a.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: img.Id}}); err != nil {
			a.log.Warn("cannot remove an unused image", "image", img.Id, "tags", img.RepoTags, "err", err)
			continue
		}
		delete(gc.seen, img.Id)
		freed += img.Size
		a.log.Info("removed an unused image to free disk space", "image", img.Id, "tags", img.RepoTags, "bytes", img.Size)
	}
	if freed < toFree {
		a.nodeEvent(corev1.EventTypeWarning, "ImageGCFailed",
			"Failed to garbage collect required amount of images. Attempted to free %d bytes, but only found %d bytes eligible to free.", toFree, freed)
	}
	return nil
}

// isSandboxImage reports whether img is the pods' sandbox image.
func (a *Agent) isSandboxImage(img *runtimeapi.Image) bool {
	return a.cfg.SandboxImage != "" && (img.Id == a.cfg.SandboxImage || slices.Contains(img.RepoTags, a.cfg.SandboxImage))
}

// imageDiskUsage is the used and total bytes of the filesystem holding
// the agent's directory, where the node keeps containerd's images.
func (a *Agent) imageDiskUsage() (used, total uint64) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(a.cfg.Dir, &fs); err != nil {
		return 0, 0
	}
	total = fs.Blocks * uint64(fs.Bsize)
	return total - fs.Bavail*uint64(fs.Bsize), total
}

// nodeEvent records an event about this node.
func (a *Agent) nodeEvent(eventType, reason, format string, args ...any) {
	a.mu.Lock()
	r := a.recorder
	a.mu.Unlock()
	if r != nil {
		// The kubelet's node reference: its UID is the node's name.
		ref := &corev1.ObjectReference{Kind: "Node", Name: a.cfg.NodeName, UID: types.UID(a.cfg.NodeName)}
		r.Eventf(ref, eventType, reason, format, args...)
	}
}
