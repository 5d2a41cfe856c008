package framework

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func container(cpu, mem string) v1.Container {
	c := v1.Container{Resources: v1.ResourceRequirements{Requests: v1.ResourceList{}}}
	if cpu != "" {
		c.Resources.Requests[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		c.Resources.Requests[v1.ResourceMemory] = resource.MustParse(mem)
	}
	return c
}

func TestPodRequests(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	sidecar := func(cpu string) v1.Container {
		c := container(cpu, "")
		c.RestartPolicy = &always
		return c
	}
	tests := []struct {
		name            string
		spec            v1.PodSpec
		wantCPU, wantNZ int64 // millicores: Requests and NonZeroRequests
		wantMem         int64
	}{
		{"empty pod", v1.PodSpec{Containers: []v1.Container{{}}}, 0, DefaultMilliCPURequest, 0},
		{"sum of app containers", v1.PodSpec{Containers: []v1.Container{container("100m", "1Mi"), container("200m", "1Mi")}}, 300, 300, 2 << 20},
		{"init container larger", v1.PodSpec{InitContainers: []v1.Container{container("1", "")}, Containers: []v1.Container{container("100m", "")}}, 1000, 1000, 0},
		{"init container smaller", v1.PodSpec{InitContainers: []v1.Container{container("50m", "")}, Containers: []v1.Container{container("100m", "")}}, 100, 100, 0},
		{"overhead added", v1.PodSpec{Containers: []v1.Container{container("100m", "")}, Overhead: v1.ResourceList{v1.ResourceCPU: resource.MustParse("50m")}}, 150, 150, 0},
		// sidecar 100m runs beside the app (200m): 300m; the later
		// init container 250m runs beside the sidecar: 350m.
		{"sidecar counted with app and later init", v1.PodSpec{
			InitContainers: []v1.Container{sidecar("100m"), container("250m", "")},
			Containers:     []v1.Container{container("200m", "")},
		}, 350, 350, 0},
		{"one unset container gets the default for scoring", v1.PodSpec{Containers: []v1.Container{container("", ""), container("1", "")}}, 1000, 1100, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: tt.spec}
			r := PodRequests(pod, false)
			if r.MilliCPU != tt.wantCPU || r.Memory != tt.wantMem || r.AllowedPodNumber != 1 {
				t.Errorf("requests = %+v, want cpu %d mem %d pods 1", r, tt.wantCPU, tt.wantMem)
			}
			if nz := PodRequests(pod, true); nz.MilliCPU != tt.wantNZ {
				t.Errorf("non-zero cpu = %d, want %d", nz.MilliCPU, tt.wantNZ)
			}
		})
	}
}

func TestHostPortConflicts(t *testing.T) {
	tests := []struct {
		a, b HostPort
		want bool
	}{
		{HostPort{"", "TCP", 80}, HostPort{"10.0.0.1", "TCP", 80}, true},
		{HostPort{"10.0.0.2", "TCP", 80}, HostPort{"10.0.0.1", "TCP", 80}, false},
		{HostPort{"0.0.0.0", "TCP", 80}, HostPort{"0.0.0.0", "UDP", 80}, false},
		{HostPort{"0.0.0.0", "TCP", 80}, HostPort{"0.0.0.0", "TCP", 81}, false},
		{HostPort{"10.0.0.1", "UDP", 53}, HostPort{"10.0.0.1", "UDP", 53}, true},
	}
	for _, tt := range tests {
		if got := tt.a.Conflicts(tt.b); got != tt.want {
			t.Errorf("%v conflicts %v = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestNodeInfoAddRemove(t *testing.T) {
	node := &v1.Node{Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("4")}}}
	node.Name = "n"
	c := container("1", "")
	c.Ports = []v1.ContainerPort{{HostPort: 80}}
	p1 := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{c}}}
	p1.UID = "1"
	p2 := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{container("2", "")}}}
	p2.UID = "2"
	ni := NewNodeInfo(node, NewPodInfo(p1), NewPodInfo(p2))
	clone := ni.Clone()
	if ni.Requested.MilliCPU != 3000 || ni.Requested.AllowedPodNumber != 2 || len(ni.UsedPorts) != 1 {
		t.Fatalf("after add: %+v ports %v", ni.Requested, ni.UsedPorts)
	}
	if !ni.RemovePod("1") || ni.RemovePod("1") {
		t.Fatal("RemovePod should succeed once")
	}
	if ni.Requested.MilliCPU != 2000 || ni.Requested.AllowedPodNumber != 1 || len(ni.UsedPorts) != 0 {
		t.Fatalf("after remove: %+v ports %v", ni.Requested, ni.UsedPorts)
	}
	if clone.Requested.MilliCPU != 3000 || len(clone.Pods) != 2 {
		t.Fatalf("clone changed with original: %+v", clone.Requested)
	}
}
