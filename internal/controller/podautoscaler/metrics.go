package podautoscaler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
)

// PodMetrics is one pod's sample from metrics.k8s.io/v1beta1 PodMetrics.
type PodMetrics struct {
	Name       string
	Timestamp  time.Time
	Window     time.Duration
	Containers []ContainerMetrics
}

// ContainerMetrics is one container's usage in a PodMetrics sample.
type ContainerMetrics struct {
	Name  string              `json:"name"`
	Usage corev1.ResourceList `json:"usage"`
}

// MetricsSource lists the resource metrics of the pods in a namespace
// that match a selector. The controller reads the API server's
// metrics.k8s.io group through it; tests substitute a fake.
type MetricsSource interface {
	PodMetrics(ctx context.Context, namespace string, selector labels.Selector) ([]PodMetrics, error)
}

// podMetricsJSON is the wire shape of a PodMetrics item; only the fields
// the controller reads are decoded.
type podMetricsJSON struct {
	Metadata   metav1.ObjectMeta  `json:"metadata"`
	Timestamp  metav1.Time        `json:"timestamp"`
	Window     metav1.Duration    `json:"window"`
	Containers []ContainerMetrics `json:"containers"`
}

// restMetrics reads metrics.k8s.io/v1beta1 through any REST client of the
// API server, as an out-of-tree metrics client would.
type restMetrics struct {
	rest rest.Interface
}

func (m restMetrics) PodMetrics(ctx context.Context, namespace string, selector labels.Selector) ([]PodMetrics, error) {
	raw, err := m.rest.Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces", namespace, "pods").
		Param("labelSelector", selector.String()).SetHeader("Accept", "application/json").Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []podMetricsJSON `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("decoding PodMetricsList: %w", err)
	}
	out := make([]PodMetrics, 0, len(list.Items))
	for _, it := range list.Items {
		out = append(out, PodMetrics{
			Name: it.Metadata.Name, Timestamp: it.Timestamp.Time, Window: it.Window.Duration, Containers: it.Containers,
		})
	}
	return out, nil
}

// sample is one pod's usage of one resource, in milli-units.
type sample struct {
	value     int64
	timestamp time.Time
	window    time.Duration
}

// resourceSamples picks one resource's usage per pod out of the metrics:
// summed over all containers, or of the named container only. A pod that
// lacks the resource in any summed container is left out, as upstream.
func resourceSamples(pms []PodMetrics, res corev1.ResourceName, container string) (map[string]sample, error) {
	out := make(map[string]sample, len(pms))
	for _, pm := range pms {
		var sum int64
		found, missing := false, false
		for _, c := range pm.Containers {
			if container != "" && c.Name != container {
				continue
			}
			found = true
			q, ok := c.Usage[res]
			if !ok {
				missing = true
				break
			}
			sum += q.MilliValue()
		}
		if container != "" && !found {
			return nil, fmt.Errorf("failed to get container metrics: container %s not present in metrics for pod %s", container, pm.Name)
		}
		if !missing {
			out[pm.Name] = sample{value: sum, timestamp: pm.Timestamp, window: pm.Window}
		}
	}
	return out, nil
}
