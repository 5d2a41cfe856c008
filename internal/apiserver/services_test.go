package apiserver_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func service(name string, typ corev1.ServiceType, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Type: typ, Selector: map[string]string{"app": name}, Ports: ports},
	}
}

func TestServiceAddresses(t *testing.T) {
	e := start(t)
	c := kubernetes.NewForConfigOrDie(e.s.Config)
	ns := e.namespace("svc")
	svcs := c.CoreV1().Services(ns)
	tcp := func(port, nodePort int32) corev1.ServicePort {
		return corev1.ServicePort{Name: "p" + strconv.Itoa(int(port)), Port: port, NodePort: nodePort, Protocol: corev1.ProtocolTCP}
	}

	np, err := svcs.Create(e.ctx, service("np", corev1.ServiceTypeNodePort, tcp(80, 0), tcp(443, 0)), metav1.CreateOptions{})
	must(t, err)
	got := np.Spec.Ports
	for _, p := range got {
		if p.NodePort < 30000 || p.NodePort > 32767 {
			t.Fatalf("node port %d outside 30000-32767", p.NodePort)
		}
	}
	if got[0].NodePort == got[1].NodePort {
		t.Fatalf("both ports got node port %d", got[0].NodePort)
	}

	t.Run("a chosen node port is honoured", func(t *testing.T) {
		s, err := svcs.Create(e.ctx, service("chosen", corev1.ServiceTypeNodePort, tcp(80, 31999)), metav1.CreateOptions{})
		must(t, err)
		if s.Spec.Ports[0].NodePort != 31999 {
			t.Fatalf("node port = %d, want 31999", s.Spec.Ports[0].NodePort)
		}
	})
	t.Run("a taken node port is refused", func(t *testing.T) {
		_, err := svcs.Create(e.ctx, service("taken", corev1.ServiceTypeNodePort, tcp(80, got[0].NodePort)), metav1.CreateOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			`Service "taken" is invalid: spec.ports[0].nodePort: Invalid value: `+strconv.Itoa(int(got[0].NodePort))+`: provided port is already allocated`)
	})
	t.Run("a node port outside the range is refused", func(t *testing.T) {
		_, err := svcs.Create(e.ctx, service("far", corev1.ServiceTypeNodePort, tcp(80, 8080)), metav1.CreateOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			`Service "far" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767`)
	})
	t.Run("a chosen cluster IP is honoured, then refused when taken", func(t *testing.T) {
		s := service("ip", corev1.ServiceTypeClusterIP, tcp(80, 0))
		s.Spec.ClusterIP = "10.43.200.7"
		got, err := svcs.Create(e.ctx, s, metav1.CreateOptions{})
		must(t, err)
		if got.Spec.ClusterIP != "10.43.200.7" {
			t.Fatalf("clusterIP = %s", got.Spec.ClusterIP)
		}
		s.Name = "ip2"
		_, err = svcs.Create(e.ctx, s, metav1.CreateOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			`Service "ip2" is invalid: spec.clusterIPs[0]: Invalid value: "10.43.200.7": provided IP is already allocated`)
	})
	t.Run("changing the type drops and allocates node ports", func(t *testing.T) {
		s, err := svcs.Get(e.ctx, "np", metav1.GetOptions{})
		must(t, err)
		s.Spec.Type = corev1.ServiceTypeClusterIP
		s, err = svcs.Update(e.ctx, s, metav1.UpdateOptions{})
		must(t, err)
		if s.Spec.Ports[0].NodePort != 0 {
			t.Fatalf("ClusterIP service kept node port %d", s.Spec.Ports[0].NodePort)
		}
		s.Spec.Type = corev1.ServiceTypeNodePort
		s, err = svcs.Update(e.ctx, s, metav1.UpdateOptions{})
		must(t, err)
		if s.Spec.Ports[0].NodePort == 0 {
			t.Fatal("NodePort service got no node port on update")
		}
		// A later update that leaves node ports out keeps them.
		kept := s.Spec.Ports[0].NodePort
		s.Spec.Ports[0].NodePort = 0
		s, err = svcs.Update(e.ctx, s, metav1.UpdateOptions{})
		must(t, err)
		if s.Spec.Ports[0].NodePort != kept {
			t.Fatalf("node port %d changed to %d", kept, s.Spec.Ports[0].NodePort)
		}
	})
	t.Run("a local LoadBalancer gets a health check node port", func(t *testing.T) {
		s := service("lb", corev1.ServiceTypeLoadBalancer, tcp(80, 0))
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		got, err := svcs.Create(e.ctx, s, metav1.CreateOptions{})
		must(t, err)
		if got.Spec.HealthCheckNodePort < 30000 || got.Spec.Ports[0].NodePort < 30000 ||
			got.Spec.HealthCheckNodePort == got.Spec.Ports[0].NodePort {
			t.Fatalf("healthCheckNodePort %d, nodePort %d", got.Spec.HealthCheckNodePort, got.Spec.Ports[0].NodePort)
		}
	})
}

// TestDefaultIngressClass checks upstream's DefaultIngressClass admission:
// a new Ingress naming no class gets the newest class marked default;
// one naming a class, or the legacy annotation, keeps what it says.
func TestDefaultIngressClass(t *testing.T) {
	e := start(t)
	c := kubernetes.NewForConfigOrDie(e.s.Config)
	ns := e.namespace("ing")
	class := func(name string, isDefault bool) {
		t.Helper()
		ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: "example.com/" + name}}
		if isDefault {
			ic.Annotations = map[string]string{"ingressclass.kubernetes.io/is-default-class": "true"}
		}
		_, err := c.NetworkingV1().IngressClasses().Create(e.ctx, ic, metav1.CreateOptions{})
		must(t, err)
		time.Sleep(1100 * time.Millisecond) // creation timestamps have whole seconds
	}
	ingress := func(name string, className *string, annotations map[string]string) *string {
		t.Helper()
		got, err := c.NetworkingV1().Ingresses(ns).Create(e.ctx, &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
			Spec: networkingv1.IngressSpec{IngressClassName: className, DefaultBackend: &networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
		}, metav1.CreateOptions{})
		must(t, err)
		return got.Spec.IngressClassName
	}
	if got := ingress("before", nil, nil); got != nil {
		t.Errorf("with no default class, ingressClassName = %q", *got)
	}
	class("plain", false)
	class("old-default", true)
	class("new-default", true)
	if got := ingress("unnamed", nil, nil); got == nil || *got != "new-default" {
		t.Errorf("ingressClassName = %v, want the newest default new-default", got)
	}
	if got := ingress("named", ptr.To("plain"), nil); got == nil || *got != "plain" {
		t.Errorf("a named class changed to %v", got)
	}
	if got := ingress("legacy", nil, map[string]string{"kubernetes.io/ingress.class": "plain"}); got != nil {
		t.Errorf("an Ingress with the legacy annotation got ingressClassName %q", *got)
	}
}
