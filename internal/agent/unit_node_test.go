package agent

import (
	"context"
	"encoding/base64"
	"slices"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestSameNodeStatus(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	base := func() corev1.NodeStatus {
		return corev1.NodeStatus{
			Capacity: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: t0, LastTransitionTime: t0,
			}},
			Images: []corev1.ContainerImage{{Names: []string{"busybox:1.36"}, SizeBytes: 100}},
		}
	}
	tests := []struct {
		name   string
		change func(*corev1.NodeStatus)
		want   bool
	}{
		{"identical", func(*corev1.NodeStatus) {}, true},
		{"heartbeat only", func(s *corev1.NodeStatus) { s.Conditions[0].LastHeartbeatTime = t1 }, true},
		{"same quantity spelt differently", func(s *corev1.NodeStatus) {
			s.Capacity[corev1.ResourceMemory] = resource.MustParse("1073741824")
		}, true},
		{"transition time", func(s *corev1.NodeStatus) { s.Conditions[0].LastTransitionTime = t1 }, false},
		{"condition status", func(s *corev1.NodeStatus) { s.Conditions[0].Status = corev1.ConditionFalse }, false},
		{"condition message", func(s *corev1.NodeStatus) { s.Conditions[0].Message = "runtime down" }, false},
		{"capacity", func(s *corev1.NodeStatus) { s.Capacity[corev1.ResourceMemory] = resource.MustParse("2Gi") }, false},
		{"images", func(s *corev1.NodeStatus) { s.Images = nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base(), base()
			tt.change(&b)
			if got := sameNodeStatus(a, b); got != tt.want {
				t.Errorf("sameNodeStatus = %v, want %v", got, tt.want)
			}
			if got := sameNodeStatus(b, a); got != tt.want {
				t.Errorf("sameNodeStatus (swapped) = %v, want %v", got, tt.want)
			}
			if !a.Conditions[0].LastHeartbeatTime.Equal(&t0) {
				t.Error("sameNodeStatus changed its argument")
			}
		})
	}
}

func TestReadMeminfo(t *testing.T) {
	m := readMeminfo()
	var info syscall.Sysinfo_t
	if err := syscall.Sysinfo(&info); err != nil {
		t.Fatal(err)
	}
	// Both come from the kernel's total RAM; meminfo in kB, sysinfo in units.
	if want := int64(info.Totalram) * int64(info.Unit); m["MemTotal"] != want {
		t.Errorf("MemTotal = %d, want %d bytes", m["MemTotal"], want)
	}
	if m["MemAvailable"] <= 0 || m["MemAvailable"] > m["MemTotal"] {
		t.Errorf("MemAvailable = %d of %d", m["MemAvailable"], m["MemTotal"])
	}
	// Counts without a unit stay counts.
	if n, ok := m["HugePages_Total"]; ok && n%1024 == 0 && n != 0 {
		t.Errorf("HugePages_Total = %d looks scaled to bytes", n)
	}
}

func TestSortImages(t *testing.T) {
	images := []corev1.ContainerImage{
		{Names: []string{"b"}, SizeBytes: 10},
		{Names: []string{"c"}, SizeBytes: 30},
		{Names: []string{"a"}, SizeBytes: 10},
	}
	sortImages(images)
	var got []string
	for _, img := range images {
		got = append(got, img.Names[0])
	}
	if want := []string{"c", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("order = %q, want %q", got, want)
	}
}

func TestRegistryHost(t *testing.T) {
	tests := []struct{ image, want string }{
		{"busybox", "docker.io"},
		{"busybox:1.36", "docker.io"},
		{"busybox@sha256:0123", "docker.io"},
		{"library/busybox", "docker.io"},
		{"someone/app:v1", "docker.io"},
		{"docker.io/library/busybox", "docker.io"},
		{"index.docker.io/library/busybox", "docker.io"},
		{"registry-1.docker.io/library/busybox", "docker.io"},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io"},
		{"ghcr.io/org/team/app:v1", "ghcr.io"},
		{"localhost/app", "localhost"},
		{"localhost:5000/app", "localhost:5000"},
		{"myregistry:5000/app", "myregistry:5000"},
		{"10.0.0.1:5000/app", "10.0.0.1:5000"},
	}
	for _, tt := range tests {
		if got := registryHost(tt.image); got != tt.want {
			t.Errorf("registryHost(%q) = %q, want %q", tt.image, got, tt.want)
		}
	}
}

func TestPullAuths(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("bob:pa:ss"))
	client := fake.NewClientset(
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "hub", Namespace: "default"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"` + basic + `"},"ghcr.io":{"username":"gh","password":"tok"}}}`)},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "default"}, Type: corev1.SecretTypeDockercfg,
			Data: map[string][]byte{corev1.DockerConfigKey: []byte(`{"localhost:5000":{"username":"me","password":"pw"}}`)},
		},
	)
	tests := []struct {
		image string
		want  []string // user:password@server
	}{
		{"busybox:1.36", []string{"bob:pa:ss@https://index.docker.io/v1/"}},
		{"ghcr.io/org/app", []string{"gh:tok@ghcr.io"}},
		{"localhost:5000/app", []string{"me:pw@localhost:5000"}},
		{"quay.io/org/app", nil},
	}
	for _, tt := range tests {
		a := newTestAgent(t)
		a.client = client
		pod := testPod(corev1.RestartPolicyAlways, nil, "app")
		pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "missing"}, {Name: "hub"}, {Name: "legacy"}}
		var got []string
		for _, auth := range a.pullAuths(context.Background(), pod, tt.image) {
			got = append(got, auth.Username+":"+auth.Password+"@"+auth.ServerAddress)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("pullAuths(%q) = %q, want %q", tt.image, got, tt.want)
		}
	}
}
