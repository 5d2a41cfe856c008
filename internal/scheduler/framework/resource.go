package framework

import (
	v1 "k8s.io/api/core/v1"
)

// Defaults the scorers assume for containers that request no cpu or memory,
// as upstream does, so best-effort pods still spread instead of piling up on
// one node that looks empty.
const (
	DefaultMilliCPURequest int64 = 100               // 0.1 core
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024 // 200 MiB
)

// Resource is a sum of resource quantities in the units the filters compare:
// millicores, bytes and counts.
type Resource struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	// AllowedPodNumber is the pod count: 1 for a pod's requests, the
	// node's "pods" allocatable for a node.
	AllowedPodNumber int64
	// Scalar holds extended resources such as nvidia.com/gpu and hugepages.
	Scalar map[v1.ResourceName]int64
}

// NewResource converts a ResourceList.
func NewResource(rl v1.ResourceList) Resource {
	var r Resource
	r.Add(rl)
	return r
}

// Add adds every quantity of rl to r.
func (r *Resource) Add(rl v1.ResourceList) {
	for name, q := range rl {
		switch name {
		case v1.ResourceCPU:
			r.MilliCPU += q.MilliValue()
		case v1.ResourceMemory:
			r.Memory += q.Value()
		case v1.ResourceEphemeralStorage:
			r.EphemeralStorage += q.Value()
		case v1.ResourcePods:
			r.AllowedPodNumber += q.Value()
		default:
			if r.Scalar == nil {
				r.Scalar = map[v1.ResourceName]int64{}
			}
			r.Scalar[name] += q.Value()
		}
	}
}

// AddResource adds o to r.
func (r *Resource) AddResource(o Resource) {
	r.combine(o, func(a, b int64) int64 { return a + b })
}

// SubResource subtracts o from r.
func (r *Resource) SubResource(o Resource) {
	r.combine(o, func(a, b int64) int64 { return a - b })
}

// MaxResource sets each quantity of r to the larger of r's and o's.
func (r *Resource) MaxResource(o Resource) {
	r.combine(o, func(a, b int64) int64 { return max(a, b) })
}

func (r *Resource) combine(o Resource, f func(a, b int64) int64) {
	r.MilliCPU = f(r.MilliCPU, o.MilliCPU)
	r.Memory = f(r.Memory, o.Memory)
	r.EphemeralStorage = f(r.EphemeralStorage, o.EphemeralStorage)
	r.AllowedPodNumber = f(r.AllowedPodNumber, o.AllowedPodNumber)
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[v1.ResourceName]int64{}
		}
		r.Scalar[name] = f(r.Scalar[name], v)
	}
}

// Clone returns a deep copy.
func (r Resource) Clone() Resource {
	c := r
	if r.Scalar != nil {
		c.Scalar = make(map[v1.ResourceName]int64, len(r.Scalar))
		for k, v := range r.Scalar {
			c.Scalar[k] = v
		}
	}
	return c
}

// PodRequests computes what a pod asks of a node, the way upstream does:
// the larger of the app containers' sum (plus sidecars, that is restartable
// init containers) and the largest init container (plus the sidecars started
// before it), plus the pod overhead. The pod itself counts as one pod.
// With nonZero, containers that leave cpu or memory unset count the
// scorers' defaults.
func PodRequests(pod *v1.Pod, nonZero bool) Resource {
	req := func(c *v1.Container) Resource {
		r := NewResource(c.Resources.Requests)
		if nonZero {
			if _, ok := c.Resources.Requests[v1.ResourceCPU]; !ok || r.MilliCPU == 0 {
				r.MilliCPU = DefaultMilliCPURequest
			}
			if _, ok := c.Resources.Requests[v1.ResourceMemory]; !ok || r.Memory == 0 {
				r.Memory = DefaultMemoryRequest
			}
		}
		return r
	}
	var apps Resource
	for i := range pod.Spec.Containers {
		apps.AddResource(req(&pod.Spec.Containers[i]))
	}
	var sidecars, maxInit Resource
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		r := req(c)
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			// A sidecar keeps running next to later init containers
			// and the app containers.
			sidecars.AddResource(r)
			maxInit.MaxResource(sidecars)
			continue
		}
		r.AddResource(sidecars)
		maxInit.MaxResource(r)
	}
	apps.AddResource(sidecars)
	apps.MaxResource(maxInit)
	apps.Add(pod.Spec.Overhead)
	apps.AllowedPodNumber = 1
	return apps
}
