package agent

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func TestServiceEnv(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	add := func(ns, name, ip string, ports ...corev1.ServicePort) {
		_ = idx.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}})
	}
	add("default", "kubernetes", "10.43.0.1", corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP})
	add("shop", "web-front", "10.43.0.9", corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
	add("shop", "headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80})
	add("other", "elsewhere", "10.43.0.7", corev1.ServicePort{Port: 1})
	a := newTestAgent(t)
	a.services = corelisters.NewServiceLister(idx)

	env := func(links *bool) map[string]string {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}, Spec: corev1.PodSpec{EnableServiceLinks: links}}
		out := map[string]string{}
		for _, kv := range a.serviceEnv(pod) {
			out[kv[0]] = kv[1]
		}
		return out
	}
	got := env(nil)
	for k, v := range map[string]string{
		"KUBERNETES_SERVICE_HOST":       "10.43.0.1",
		"KUBERNETES_SERVICE_PORT":       "443",
		"KUBERNETES_SERVICE_PORT_HTTPS": "443",
		"WEB_FRONT_SERVICE_HOST":        "10.43.0.9",
		"WEB_FRONT_SERVICE_PORT":        "80",
		"WEB_FRONT_SERVICE_PORT_DNS":    "53",
		"WEB_FRONT_PORT":                "tcp://10.43.0.9:80",
		"WEB_FRONT_PORT_53_UDP":         "udp://10.43.0.9:53",
		"WEB_FRONT_PORT_53_UDP_PROTO":   "udp",
		"WEB_FRONT_PORT_80_TCP_ADDR":    "10.43.0.9",
		"WEB_FRONT_PORT_80_TCP_PORT":    "80",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "HEADLESS_") || strings.HasPrefix(k, "ELSEWHERE_") {
			t.Errorf("%s: headless and other namespaces' services give no variables", k)
		}
	}
	// Without service links only the kubernetes service remains.
	got = env(ptr.To(false))
	if got["KUBERNETES_SERVICE_HOST"] != "10.43.0.1" || got["WEB_FRONT_SERVICE_HOST"] != "" {
		t.Errorf("enableServiceLinks false: %v", got)
	}
}
