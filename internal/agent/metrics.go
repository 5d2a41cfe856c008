package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sampleInterval is how often CPU and memory are sampled; usage is the
// CPU rate between the last two samples, as metrics-server reports it.
const sampleInterval = 5 * time.Second

// ResourceMetrics is what the agent serves at /metrics/resource for the
// API server's metrics.k8s.io.
type ResourceMetrics struct {
	Node NodeUsage  `json:"node"`
	Pods []PodUsage `json:"pods"`
}

// Usage is CPU in nanocores and memory working set in bytes over a
// window ending at Timestamp.
type Usage struct {
	Timestamp   time.Time     `json:"timestamp"`
	Window      time.Duration `json:"window"`
	CPUNanos    uint64        `json:"cpuNanoCores"`
	MemoryBytes uint64        `json:"memoryWorkingSetBytes"`
}

type NodeUsage struct {
	Usage
}

type PodUsage struct {
	Namespace  string           `json:"namespace"`
	Name       string           `json:"name"`
	UID        string           `json:"uid"`
	Containers []ContainerUsage `json:"containers"`
}

type ContainerUsage struct {
	Name string `json:"name"`
	Usage
}

// sampler keeps the last two CPU readings per container and for the node.
type sampler struct {
	mu   sync.Mutex
	last map[string]cpuReading // container ID, "" for the node
	out  ResourceMetrics
}

type cpuReading struct {
	at    time.Time
	nanos uint64 // cumulative CPU time
}

func (a *Agent) metricsLoop(ctx context.Context) {
	ticker := time.NewTicker(sampleInterval)
	defer ticker.Stop()
	for {
		a.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// sample reads the runtime's container stats and the node's /proc.
func (a *Agent) sample(ctx context.Context) {
	now := time.Now()
	s := &a.metrics
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]cpuReading{}
	}
	rate := func(key string, cum uint64) (uint64, time.Duration, bool) {
		prev, ok := s.last[key]
		s.last[key] = cpuReading{at: now, nanos: cum}
		if !ok || cum < prev.nanos || !now.After(prev.at) {
			return 0, 0, false
		}
		window := now.Sub(prev.at)
		return uint64(float64(cum-prev.nanos) / window.Seconds()), window, true
	}
	out := ResourceMetrics{}
	if cpu, ok := nodeCPUNanos(); ok {
		if r, window, ok := rate("", cpu); ok {
			mem := readMeminfo()
			out.Node = NodeUsage{Usage{Timestamp: now, Window: window, CPUNanos: r, MemoryBytes: uint64(mem["MemTotal"] - mem["MemAvailable"])}}
		}
	}
	stats, err := a.runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
	if err != nil {
		s.out = out
		return
	}
	pods := map[string]*PodUsage{}
	seen := map[string]bool{"": true}
	for _, st := range stats.Stats {
		attr := st.GetAttributes()
		if attr == nil || st.Cpu == nil || st.Cpu.UsageCoreNanoSeconds == nil {
			continue
		}
		seen[attr.Id] = true
		r, window, ok := rate(attr.Id, st.Cpu.UsageCoreNanoSeconds.Value)
		if !ok {
			continue
		}
		uid := attr.Labels[labelPodUID]
		p := pods[uid]
		if p == nil {
			p = &PodUsage{Namespace: attr.Labels[labelPodNamespace], Name: attr.Labels[labelPodName], UID: uid}
			pods[uid] = p
		}
		var mem uint64
		if st.Memory != nil && st.Memory.WorkingSetBytes != nil {
			mem = st.Memory.WorkingSetBytes.Value
		}
		p.Containers = append(p.Containers, ContainerUsage{Name: attr.Metadata.GetName(), Usage: Usage{Timestamp: now, Window: window, CPUNanos: r, MemoryBytes: mem}})
	}
	for id := range s.last {
		if !seen[id] {
			delete(s.last, id) // containers that are gone
		}
	}
	for _, p := range pods {
		out.Pods = append(out.Pods, *p)
	}
	s.out = out
}

func (a *Agent) serveMetrics(w http.ResponseWriter, r *http.Request) {
	a.metrics.mu.Lock()
	out := a.metrics.out
	a.metrics.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// nodeCPUNanos is the node's cumulative busy CPU time from /proc/stat.
func nodeCPUNanos() (uint64, bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, false
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, false
	}
	var busy uint64
	for i, v := range fields[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 7 { // guest time is already counted in user
			break
		}
		busy += n
	}
	// USER_HZ is 100 on Linux.
	return busy * uint64(time.Second/100), true
}
