package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lotse/lotse/internal/storage"
)

// metricsGV is metrics.k8s.io/v1beta1, which `kubectl top` reads. lotse
// serves it itself, from the node agents' samples, where upstream needs
// metrics-server behind the aggregation layer.
var metricsGV = schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}

// metricsResources are the group's resources for discovery.
var metricsResources = []virtualResource{
	{Name: "nodes", Singular: "", Kind: "NodeMetrics", Verbs: []string{"get", "list"}},
	{Name: "pods", Singular: "", Kind: "PodMetrics", Namespaced: true, Verbs: []string{"get", "list"}},
}

// The metrics.k8s.io/v1beta1 types, as JSON.
type (
	nodeMetrics struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata,omitempty"`
		Timestamp         metav1.Time         `json:"timestamp"`
		Window            metav1.Duration     `json:"window"`
		Usage             corev1.ResourceList `json:"usage"`
	}
	podMetrics struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata,omitempty"`
		Timestamp         metav1.Time        `json:"timestamp"`
		Window            metav1.Duration    `json:"window"`
		Containers        []containerMetrics `json:"containers"`
	}
	containerMetrics struct {
		Name  string              `json:"name"`
		Usage corev1.ResourceList `json:"usage"`
	}
	metricsList[T any] struct {
		metav1.TypeMeta `json:",inline"`
		metav1.ListMeta `json:"metadata"`
		Items           []T `json:"items"`
	}
)

// agentMetrics is the agent's /metrics/resource document.
type agentMetrics struct {
	Node agentUsage `json:"node"`
	Pods []struct {
		Namespace, Name, UID string
		Containers           []struct {
			Name string `json:"name"`
			agentUsage
		} `json:"containers"`
	} `json:"pods"`
}

type agentUsage struct {
	Timestamp   time.Time     `json:"timestamp"`
	Window      time.Duration `json:"window"`
	CPUNanos    int64         `json:"cpuNanoCores"`
	MemoryBytes int64         `json:"memoryWorkingSetBytes"`
}

func (u agentUsage) resources() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(u.CPUNanos, resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(u.MemoryBytes, resource.BinarySI),
	}
}

// serveMetrics answers /apis/metrics.k8s.io/v1beta1/{nodes,pods}[/name]
// and the namespaced pods forms.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.writeError(w, r, apierrors.NewMethodNotSupported(metricsGV.WithResource("pods").GroupResource(), r.Method))
		return
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/apis/"+metricsGV.String()), "/"), "/")
	var namespace string
	if len(parts) >= 3 && parts[0] == "namespaces" {
		namespace, parts = parts[1], parts[2:]
	}
	if len(parts) == 0 || len(parts) > 2 || (parts[0] != "nodes" && parts[0] != "pods") || (parts[0] == "nodes" && namespace != "") {
		s.writeError(w, r, notFoundPath)
		return
	}
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		s.writeError(w, r, apierrors.NewBadRequest(err.Error()))
		return
	}
	var name string
	if len(parts) == 2 {
		name = parts[1]
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if parts[0] == "nodes" {
		s.serveNodeMetrics(ctx, w, r, name, sel)
	} else {
		s.servePodMetrics(ctx, w, r, namespace, name, sel)
	}
}

func (s *Server) serveNodeMetrics(ctx context.Context, w http.ResponseWriter, r *http.Request, name string, sel labels.Selector) {
	nodes, err := s.listObjects(ctx, "nodes", "", name, sel)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	samples := s.agentMetrics(ctx, nodes)
	list := metricsList[nodeMetrics]{TypeMeta: metav1.TypeMeta{Kind: "NodeMetricsList", APIVersion: metricsGV.String()}}
	for _, obj := range nodes {
		n := obj.(*corev1.Node)
		m, ok := samples[n.Name]
		if !ok || m.Node.Timestamp.IsZero() {
			continue
		}
		list.Items = append(list.Items, nodeMetrics{
			TypeMeta:   metav1.TypeMeta{Kind: "NodeMetrics", APIVersion: metricsGV.String()},
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels, CreationTimestamp: metav1.Now()},
			Timestamp:  metav1.NewTime(m.Node.Timestamp), Window: metav1.Duration{Duration: m.Node.Window},
			Usage: m.Node.resources(),
		})
	}
	writeMetrics(s, w, r, name, "nodes", list)
}

func (s *Server) servePodMetrics(ctx context.Context, w http.ResponseWriter, r *http.Request, namespace, name string, sel labels.Selector) {
	pods, err := s.listObjects(ctx, "pods", namespace, name, sel)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var nodes []runtime.Object
	seen := map[string]bool{}
	nodeRes, _ := s.store.Resource(corev1.Resource("nodes"))
	for _, obj := range pods {
		if n := obj.(*corev1.Pod).Spec.NodeName; n != "" && !seen[n] {
			seen[n] = true
			if node, err := nodeRes.GetCached("", n); err == nil {
				nodes = append(nodes, node)
			}
		}
	}
	samples := s.agentMetrics(ctx, nodes)
	list := metricsList[podMetrics]{TypeMeta: metav1.TypeMeta{Kind: "PodMetricsList", APIVersion: metricsGV.String()}}
	for _, obj := range pods {
		p := obj.(*corev1.Pod)
		m, ok := samples[p.Spec.NodeName]
		if !ok {
			continue
		}
		for _, pu := range m.Pods {
			if pu.UID != string(p.UID) || len(pu.Containers) == 0 {
				continue
			}
			pm := podMetrics{
				TypeMeta:   metav1.TypeMeta{Kind: "PodMetrics", APIVersion: metricsGV.String()},
				ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels, CreationTimestamp: metav1.Now()},
				Timestamp:  metav1.NewTime(pu.Containers[0].Timestamp), Window: metav1.Duration{Duration: pu.Containers[0].Window},
			}
			for _, c := range pu.Containers {
				pm.Containers = append(pm.Containers, containerMetrics{Name: c.Name, Usage: c.resources()})
			}
			list.Items = append(list.Items, pm)
		}
	}
	writeMetrics(s, w, r, name, "pods", list)
}

// writeMetrics writes the one object asked for, or the list.
func writeMetrics[T any](s *Server, w http.ResponseWriter, r *http.Request, name, resourceName string, list metricsList[T]) {
	switch {
	case name == "":
		writeJSON(w, http.StatusOK, list)
	case len(list.Items) == 0:
		s.writeError(w, r, apierrors.NewNotFound(metricsGV.WithResource(resourceName).GroupResource(), name))
	default:
		writeJSON(w, http.StatusOK, list.Items[0])
	}
}

// listObjects reads nodes or pods from the watch cache.
func (s *Server) listObjects(ctx context.Context, resourceName, namespace, name string, sel labels.Selector) ([]runtime.Object, error) {
	res, ok := s.store.Resource(corev1.Resource(resourceName))
	if !ok {
		return nil, apierrors.NewServiceUnavailable(resourceName + " are not served")
	}
	if name != "" {
		obj, err := res.GetCached(namespace, name)
		if err != nil {
			return nil, apierrors.NewNotFound(metricsGV.WithResource(resourceName).GroupResource(), name)
		}
		return []runtime.Object{obj}, nil
	}
	out, err := res.List(ctx, storage.ListOptions{Namespace: namespace, Match: func(a storage.Attrs) bool {
		return sel.Matches(a.Labels)
	}})
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(err.Error())
	}
	items, err := out.Items()
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(err.Error())
	}
	return items, nil
}

// agentMetrics asks each node's agent for its samples, concurrently;
// nodes that do not answer are left out, as metrics-server does.
func (s *Server) agentMetrics(ctx context.Context, nodes []runtime.Object) map[string]agentMetrics {
	out := map[string]agentMetrics{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	client := &http.Client{Transport: s.cfg.NodeTransport, Timeout: 5 * time.Second}
	for _, obj := range nodes {
		node := obj.(*corev1.Node)
		addr, err := agentAddress(node)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://%s/metrics/resource", addr), nil)
			if err != nil {
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var m agentMetrics
			if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&m) != nil {
				return
			}
			mu.Lock()
			out[node.Name] = m
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}
