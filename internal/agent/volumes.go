package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// volumeDir is where a pod volume lives on the node.
func (a *Agent) volumeDir(uid types.UID, name string) string {
	return filepath.Join(a.podDir(uid), "volumes", name)
}

// setupVolumes makes every volume of the pod ready to mount and returns
// their host paths. It runs on every sync, so that configMap, secret and
// downward API volumes follow their sources.
func (a *Agent) setupVolumes(ctx context.Context, pod *corev1.Pod) (map[string]string, error) {
	paths := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		dir := a.volumeDir(pod.UID, v.Name)
		var err error
		switch {
		case v.EmptyDir != nil:
			err = a.emptyDir(dir, v.EmptyDir)
		case v.HostPath != nil:
			dir, err = hostPath(v.HostPath)
		case v.ConfigMap != nil, v.Secret != nil, v.DownwardAPI != nil, v.Projected != nil:
			var files map[string]file
			files, err = a.projectedFiles(ctx, pod, v)
			if err == nil {
				// Secrets never touch the disk: their volumes are tmpfs, as
				// are all the kubelet's projected kinds.
				err = a.writeAtomic(dir, files)
			}
		case v.PersistentVolumeClaim != nil:
			dir, err = a.claimPath(ctx, pod, v.PersistentVolumeClaim.ClaimName)
		default:
			err = fmt.Errorf("volume %q: this kind of volume is not supported yet", v.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		paths[v.Name] = dir
	}
	return paths, nil
}

func (a *Agent) emptyDir(dir string, src *corev1.EmptyDirVolumeSource) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	if src.Medium == corev1.StorageMediumMemory {
		opts := "mode=0777"
		if src.SizeLimit != nil && !src.SizeLimit.IsZero() {
			opts += fmt.Sprintf(",size=%d", src.SizeLimit.Value())
		}
		return mountTmpfs(dir, opts)
	}
	return os.Chmod(dir, 0o777)
}

// mountTmpfs mounts a tmpfs at dir unless one is there already.
func mountTmpfs(dir, opts string) error {
	if isMountPoint(dir) {
		return nil
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// isMountPoint compares the device of dir with its parent's.
func isMountPoint(dir string) bool {
	var st, parent syscall.Stat_t
	if syscall.Lstat(dir, &st) != nil || syscall.Lstat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

func hostPath(src *corev1.HostPathVolumeSource) (string, error) {
	path := filepath.Clean(src.Path)
	typ := ptr.Deref(src.Type, corev1.HostPathUnset)
	st, err := os.Stat(path)
	switch typ {
	case corev1.HostPathDirectoryOrCreate:
		if errors.Is(err, os.ErrNotExist) {
			return path, os.MkdirAll(path, 0o755)
		}
		typ = corev1.HostPathDirectory // it exists: it must be one
	case corev1.HostPathFileOrCreate:
		if errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return "", err
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return "", err
			}
			return path, f.Close()
		}
		typ = corev1.HostPathFile
	}
	switch typ {
	case corev1.HostPathDirectory:
		if err != nil || !st.IsDir() {
			return "", fmt.Errorf("hostPath type check failed: %s is not a directory", path)
		}
	case corev1.HostPathFile:
		if err != nil || !st.Mode().IsRegular() {
			return "", fmt.Errorf("hostPath type check failed: %s is not a file", path)
		}
	case corev1.HostPathSocket:
		if err != nil || st.Mode()&os.ModeSocket == 0 {
			return "", fmt.Errorf("hostPath type check failed: %s is not a socket file", path)
		}
	case corev1.HostPathCharDev:
		if err != nil || st.Mode()&os.ModeCharDevice == 0 {
			return "", fmt.Errorf("hostPath type check failed: %s is not a character device", path)
		}
	case corev1.HostPathBlockDev:
		if err != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
			return "", fmt.Errorf("hostPath type check failed: %s is not a block device", path)
		}
	}
	return path, nil
}

// claimPath resolves a PersistentVolumeClaim to the host path of its
// bound local or hostPath volume.
func (a *Agent) claimPath(ctx context.Context, pod *corev1.Pod, claim string) (string, error) {
	pvc, err := a.client.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("persistentvolumeclaim %q: %w", claim, err)
	}
	if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound {
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound", claim)
	}
	pv, err := a.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	switch {
	case pv.Spec.HostPath != nil:
		return hostPath(pv.Spec.HostPath)
	case pv.Spec.Local != nil:
		return pv.Spec.Local.Path, nil
	}
	return "", fmt.Errorf("persistentvolume %q: only hostPath and local volumes are supported", pv.Name)
}

// file is one file of a projected volume.
type file struct {
	data []byte
	mode os.FileMode
}

// projectedFiles computes the content of a configMap, secret, downward
// API or projected volume.
func (a *Agent) projectedFiles(ctx context.Context, pod *corev1.Pod, v corev1.Volume) (map[string]file, error) {
	var sources []corev1.VolumeProjection
	mode := int32(0o644)
	switch {
	case v.ConfigMap != nil:
		sources = []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: v.ConfigMap.LocalObjectReference, Items: v.ConfigMap.Items, Optional: v.ConfigMap.Optional}}}
		mode = ptr.Deref(v.ConfigMap.DefaultMode, mode)
	case v.Secret != nil:
		sources = []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret.SecretName}, Items: v.Secret.Items, Optional: v.Secret.Optional}}}
		mode = ptr.Deref(v.Secret.DefaultMode, mode)
	case v.DownwardAPI != nil:
		sources = []corev1.VolumeProjection{{DownwardAPI: &corev1.DownwardAPIProjection{Items: v.DownwardAPI.Items}}}
		mode = ptr.Deref(v.DownwardAPI.DefaultMode, mode)
	case v.Projected != nil:
		sources = v.Projected.Sources
		mode = ptr.Deref(v.Projected.DefaultMode, mode)
	}
	files := map[string]file{}
	put := func(data map[string][]byte, items []corev1.KeyToPath, what string) error {
		if len(items) == 0 {
			for k, d := range data {
				files[k] = file{d, os.FileMode(mode)}
			}
			return nil
		}
		for _, it := range items {
			d, ok := data[it.Key]
			if !ok {
				return fmt.Errorf("%s has no key %q", what, it.Key)
			}
			files[it.Path] = file{d, os.FileMode(ptr.Deref(it.Mode, mode))}
		}
		return nil
	}
	for _, src := range sources {
		switch {
		case src.ConfigMap != nil:
			cm, err := a.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, src.ConfigMap.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) && ptr.Deref(src.ConfigMap.Optional, false) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("configmap %q: %w", src.ConfigMap.Name, err)
			}
			data := map[string][]byte{}
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			for k, v := range cm.BinaryData {
				data[k] = v
			}
			if err := put(data, src.ConfigMap.Items, "configmap "+src.ConfigMap.Name); err != nil {
				return nil, err
			}
		case src.Secret != nil:
			s, err := a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, src.Secret.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) && ptr.Deref(src.Secret.Optional, false) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("secret %q: %w", src.Secret.Name, err)
			}
			if err := put(s.Data, src.Secret.Items, "secret "+src.Secret.Name); err != nil {
				return nil, err
			}
		case src.DownwardAPI != nil:
			for _, it := range src.DownwardAPI.Items {
				var val string
				var err error
				switch {
				case it.FieldRef != nil:
					val, err = podField(pod, it.FieldRef.FieldPath, &podEnv{hostIP: a.cfg.NodeIP.String(), podIP: pod.Status.PodIP})
				case it.ResourceFieldRef != nil:
					val, err = a.resourceField(pod, &corev1.Container{}, it.ResourceFieldRef)
				}
				if err != nil {
					return nil, err
				}
				files[it.Path] = file{[]byte(val), os.FileMode(ptr.Deref(it.Mode, mode))}
			}
		case src.ServiceAccountToken != nil:
			token, err := a.serviceAccountToken(ctx, pod, src.ServiceAccountToken)
			if err != nil {
				return nil, fmt.Errorf("service account token: %w", err)
			}
			files[src.ServiceAccountToken.Path] = file{token, os.FileMode(mode)}
		case src.ClusterTrustBundle != nil:
			return nil, errors.New("clusterTrustBundle projection is not supported")
		}
	}
	return files, nil
}

// writeAtomic lays out files the way the kubelet does so that a running
// container sees an update all at once: the data lives in a timestamped
// directory, "..data" links to it, and each top-level name links through
// "..data". The volume directory is a tmpfs.
func (a *Agent) writeAtomic(dir string, files map[string]file) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := mountTmpfs(dir, "mode=0755"); err != nil {
		return err
	}
	if same(dir, files) {
		return nil
	}
	stamp := "..." + time.Now().UTC().Format("2006_01_02_15_04_05.000000000")
	staging := filepath.Join(dir, stamp)
	// Even an empty volume gets its data directory: "..data" must not dangle.
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return err
	}
	for name, f := range files {
		if !safeRelative(name) || strings.HasPrefix(name, "..") {
			return fmt.Errorf("invalid file name %q", name)
		}
		p := filepath.Join(staging, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode.Perm()); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode.Perm()); err != nil {
			return err
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmpLink := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(stamp, tmpLink); err != nil {
		return err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	top := map[string]bool{}
	for name := range files {
		first, _, _ := strings.Cut(name, "/")
		top[first] = true
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join("..data", name) {
			continue
		}
		_ = os.RemoveAll(link)
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return err
		}
	}
	// Names that left the source go, and so does the old data.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") && !top[e.Name()] {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	if old != "" && old != stamp {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// safeRelative reports whether p stays below the directory it is joined
// to: relative, and no ".." element (names like "a..b" are fine).
func safeRelative(p string) bool {
	if p == "" || filepath.IsAbs(p) {
		return false
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return false
		}
	}
	return true
}

// same reports whether the volume already holds exactly files.
func same(dir string, files map[string]file) bool {
	data := filepath.Join(dir, "..data")
	if _, err := os.Stat(data); err != nil {
		return false
	}
	count := 0
	err := filepath.WalkDir(data+"/", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		count++
		rel, _ := filepath.Rel(data, p)
		f, ok := files[rel]
		if !ok {
			return errors.New("extra")
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != string(f.data) {
			return errors.New("differs")
		}
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != f.mode.Perm() {
			return errors.New("mode differs")
		}
		return nil
	})
	return err == nil && count == len(files)
}

// containerMounts are the container's volumeMounts plus the files the
// agent provides: /etc/hosts and the termination message file.
func (a *Agent) containerMounts(pod *corev1.Pod, c *corev1.Container, env *podEnv, attempt uint32, vars map[string]string) ([]*runtimeapi.Mount, error) {
	var mounts []*runtimeapi.Mount
	hasMount := map[string]bool{}
	for _, m := range c.VolumeMounts {
		host, ok := env.volumes[m.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %q names no volume of the pod", m.Name)
		}
		subPath := m.SubPath
		if m.SubPathExpr != "" {
			subPath = expand(m.SubPathExpr, vars)
		}
		if subPath != "" {
			if !safeRelative(subPath) {
				return nil, fmt.Errorf("invalid subPath %q", subPath)
			}
			host = filepath.Join(host, subPath)
			if _, err := os.Stat(host); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(host, 0o755); err != nil {
					return nil, err
				}
			}
		}
		prop := runtimeapi.MountPropagation_PROPAGATION_PRIVATE
		switch ptr.Deref(m.MountPropagation, corev1.MountPropagationNone) {
		case corev1.MountPropagationHostToContainer:
			prop = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
		case corev1.MountPropagationBidirectional:
			prop = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: host, Readonly: m.ReadOnly, Propagation: prop})
		hasMount[m.MountPath] = true
	}
	if env.hostsFile != "" && !hasMount["/etc/hosts"] {
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: "/etc/hosts", HostPath: env.hostsFile})
	}
	if p := c.TerminationMessagePath; p != "" && !hasMount[p] {
		host := a.terminationLogPath(pod.UID, c.Name, attempt)
		if err := os.MkdirAll(filepath.Dir(host), 0o750); err != nil {
			return nil, err
		}
		if err := os.WriteFile(host, nil, 0o666); err != nil {
			return nil, err
		}
		// Any user the container runs as may write its message.
		if err := os.Chmod(host, 0o666); err != nil {
			return nil, err
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: p, HostPath: host})
	}
	return mounts, nil
}

func (a *Agent) terminationLogPath(uid types.UID, container string, attempt uint32) string {
	return filepath.Join(a.podDir(uid), "containers", container, fmt.Sprintf("%d.termination-log", attempt))
}

// teardownVolumes unmounts the pod's tmpfs volumes before its directory
// is removed.
func (a *Agent) teardownVolumes(uid types.UID) error {
	dir := filepath.Join(a.podDir(uid), "volumes")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if isMountPoint(p) {
			if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s: %w", p, err)
			}
		}
	}
	return nil
}
