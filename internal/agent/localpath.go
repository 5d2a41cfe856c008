package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// The built-in local-path provisioner (internal/controller/persistentvolume)
// puts volumes in a directory the node names with localPathDirAnnotation
// and labels their PVs with localPathNodeLabel; the hostPath type
// DirectoryOrCreate makes the agent create the directory when a pod
// first mounts it, and the agent removes it when the PV is deleted.
const (
	localPathDirAnnotation = "lotse.io/local-path-dir"
	localPathNodeLabel     = "lotse.io/local-path-node"
)

// localPathDir is where this node keeps local-path volumes.
func (a *Agent) localPathDir() string {
	dir, err := filepath.Abs(filepath.Join(a.cfg.Dir, "storage"))
	if err != nil {
		return filepath.Join(a.cfg.Dir, "storage")
	}
	return dir
}

// watchLocalPaths removes the directory of a local-path volume of this
// node when its PV is deleted, and, once the PVs are listed, the
// directories of volumes deleted while the agent was down.
func (a *Agent) watchLocalPaths(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.SelectorFromSet(labels.Set{localPathNodeLabel: a.cfg.NodeName}).String()
		}))
	inf := factory.Core().V1().PersistentVolumes().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pv, ok := obj.(*corev1.PersistentVolume); ok {
				a.removeLocalPath(pv)
			}
		},
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return
	}
	live := map[string]bool{}
	for _, obj := range inf.GetStore().List() {
		if pv := obj.(*corev1.PersistentVolume); pv.Spec.HostPath != nil {
			live[filepath.Clean(pv.Spec.HostPath.Path)] = true
		}
	}
	entries, _ := os.ReadDir(a.localPathDir())
	for _, e := range entries {
		path := filepath.Join(a.localPathDir(), e.Name())
		if e.IsDir() && strings.HasPrefix(e.Name(), "pvc-") && !live[path] {
			a.log.Info("removing the directory of a deleted local-path volume", "path", path)
			_ = os.RemoveAll(path)
		}
	}
	<-ctx.Done()
}

// removeLocalPath deletes a deleted PV's directory, if it is one of ours.
func (a *Agent) removeLocalPath(pv *corev1.PersistentVolume) {
	if pv.Spec.HostPath == nil || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		return
	}
	path := filepath.Clean(pv.Spec.HostPath.Path)
	if filepath.Dir(path) != a.localPathDir() || !strings.HasPrefix(filepath.Base(path), "pvc-") {
		return // not in this node's local-path directory: not ours to delete
	}
	a.log.Info("removing the directory of a deleted local-path volume", "pv", pv.Name, "path", path)
	if err := os.RemoveAll(path); err != nil {
		a.log.Warn("removing a local-path volume", "path", path, "err", err)
	}
}
