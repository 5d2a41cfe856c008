package ingress

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// harness runs a Controller against a fake clientset and serves it on
// loopback ports.
type harness struct {
	t         *testing.T
	ctx       context.Context
	client    kubernetes.Interface
	fake      *fake.Clientset
	c         *Controller
	httpAddr  string
	httpsAddr string
	http      *http.Client
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(Config{
		Client:    client,
		Addresses: []string{"192.0.2.10", "192.0.2.11"},
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, factory)
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	wg.Go(func() {
		if err := c.Serve(ctx, httpLn, httpsLn); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	h := &harness{
		t: t, ctx: ctx, client: client, fake: client, c: c,
		httpAddr: httpLn.Addr().String(), httpsAddr: httpsLn.Addr().String(),
		http: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second},
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
	})
	return h
}

// get requests path with the given Host header over plain HTTP.
func (h *harness) get(host, path string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, "http://"+h.httpAddr+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = host
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// eventually retries f until it returns nil or 5 s have passed.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRoute waits until host+path answers with the wanted status and a
// body starting with prefix.
func (h *harness) waitRoute(host, path string, status int, prefix string) {
	h.t.Helper()
	eventually(h.t, host+path, func() error {
		code, body := h.get(host, path)
		if code != status || !strings.HasPrefix(body, prefix) {
			return fmt.Errorf("got %d %q, want %d %q...", code, body, status, prefix)
		}
		return nil
	})
}

// backend is an httptest server that says who it is and what it received.
func testBackend(t *testing.T, name string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s host=%s path=%s xff=%s proto=%s xfh=%s", name, r.Host, r.URL.RequestURI(),
			r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func port(t testing.TB, srv *httptest.Server) int32 {
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

func service(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
}

// endpointSlice puts the servers (all on 127.0.0.1, so one slice each, as
// a slice has one port per name) behind the Service's "http" port.
func endpointSlice(t testing.TB, ns, svc, name string, srv *httptest.Server) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port(t, srv)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
}

// testCert makes a CA-less self-signed certificate for names and the
// kubernetes.io/tls Secret that holds it.
func testCert(t *testing.T, ns, secretName string, names ...string) (*corev1.Secret, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secretName},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		},
	}, cert
}

func TestEndToEnd(t *testing.T) {
	web1, web2, api, def := testBackend(t, "web1"), testBackend(t, "web2"), testBackend(t, "api"), testBackend(t, "default")
	secureSecret, secureCert := testCert(t, "shop", "secure-tls", "secure.example.com")
	wildSecret, wildCert := testCert(t, "shop", "wild-tls", "*.apps.example.com")

	shop := newIngress("shop", "shop", 1,
		rule("shop.example.com", path(prefix, "/", "web"), path(prefix, "/api", "api"), path(prefix, "/empty", "empty")),
		rule("secure.example.com", path(prefix, "/", "web")),
		rule("*.apps.example.com", path(prefix, "/", "api")),
	)
	shop.Spec.IngressClassName = ptr.To("lotse")
	shop.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
		Name: "default", Port: networkingv1.ServiceBackendPort{Name: "http"}}}
	shop.Spec.TLS = []networkingv1.IngressTLS{
		{Hosts: []string{"secure.example.com"}, SecretName: "secure-tls"},
		{Hosts: []string{"*.apps.example.com"}, SecretName: "wild-tls"},
	}
	shop.Spec.Rules = append(shop.Spec.Rules, networkingv1.IngressRule{Host: "res.example.com",
		IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
			Path: "/", PathType: ptr.To(prefix), Backend: networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{
				APIGroup: ptr.To("storage.example.com"), Kind: "Bucket", Name: "assets"}}}}}}})

	other := newIngress("shop", "other-class", 0, rule("other.example.com", path(prefix, "/", "api")))
	other.Spec.IngressClassName = ptr.To("nginx")

	h := newHarness(t,
		shop, other, secureSecret, wildSecret,
		service("shop", "web"), service("shop", "api"), service("shop", "default"), service("shop", "empty"),
		endpointSlice(t, "shop", "web", "web-1", web1), endpointSlice(t, "shop", "web", "web-2", web2),
		endpointSlice(t, "shop", "api", "api-1", api), endpointSlice(t, "shop", "default", "default-1", def),
	)

	t.Run("IngressClass created as default", func(t *testing.T) {
		eventually(t, "IngressClass", func() error {
			ic, err := h.client.NetworkingV1().IngressClasses().Get(h.ctx, "lotse", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if ic.Spec.Controller != ControllerName || ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] != "true" {
				return fmt.Errorf("got %+v", ic)
			}
			return nil
		})
	})

	t.Run("routing", func(t *testing.T) {
		h.waitRoute("shop.example.com", "/api/items?x=1", 200, "api host=shop.example.com path=/api/items?x=1 xff=127.0.0.1 proto=http xfh=shop.example.com")
		for _, tt := range []struct{ host, path, want string }{
			{"shop.example.com", "/apiary", "web"},
			{"x.apps.example.com", "/", "api host=x.apps.example.com"},
			{"y.x.apps.example.com", "/", "default"},
			{"unknown.example.com", "/", "default"},
			{"other.example.com", "/", "default"}, // another controller's Ingress
		} {
			if code, body := h.get(tt.host, tt.path); code != 200 || !strings.HasPrefix(body, tt.want) {
				t.Errorf("%s%s: %d %q, want 200 %q...", tt.host, tt.path, code, body, tt.want)
			}
		}
	})

	t.Run("round robin over endpoints", func(t *testing.T) {
		seen := map[string]int{}
		for range 10 {
			_, body := h.get("shop.example.com", "/")
			name, _, _ := strings.Cut(body, " ")
			seen[name]++
		}
		if seen["web1"] != 5 || seen["web2"] != 5 {
			t.Errorf("10 requests spread as %v, want 5 each on web1 and web2", seen)
		}
	})

	t.Run("503", func(t *testing.T) {
		if code, body := h.get("shop.example.com", "/empty"); code != 503 || !strings.Contains(body, "no ready endpoints for shop/empty") {
			t.Errorf("service without endpoints: %d %q", code, body)
		}
		if code, body := h.get("res.example.com", "/"); code != 503 || !strings.Contains(body, `resource backend Bucket "assets"`) {
			t.Errorf("resource backend: %d %q", code, body)
		}
	})

	t.Run("status written", func(t *testing.T) {
		eventually(t, "status", func() error {
			ing, err := h.client.NetworkingV1().Ingresses("shop").Get(h.ctx, "shop", metav1.GetOptions{})
			if err != nil {
				return err
			}
			lb := ing.Status.LoadBalancer.Ingress
			if len(lb) != 2 || lb[0].IP != "192.0.2.10" || lb[1].IP != "192.0.2.11" {
				return fmt.Errorf("status.loadBalancer = %+v", ing.Status.LoadBalancer)
			}
			return nil
		})
		// Rebuilds go on (other subtests change objects), but an Ingress
		// whose status is right is not written again.
		time.Sleep(3 * rebuildInterval)
		writes := 0
		for _, a := range h.fake.Actions() {
			if a.GetVerb() == "update" && a.GetSubresource() == "status" && a.GetResource().Resource == "ingresses" {
				writes++
			}
		}
		if writes != 1 {
			t.Errorf("%d status updates, want 1", writes)
		}
		ing, err := h.client.NetworkingV1().Ingresses("shop").Get(h.ctx, "other-class", metav1.GetOptions{})
		if err != nil || len(ing.Status.LoadBalancer.Ingress) != 0 {
			t.Errorf("another class's Ingress got status %+v (%v)", ing.Status.LoadBalancer, err)
		}
	})

	t.Run("HTTPS by SNI", func(t *testing.T) {
		for _, tt := range []struct {
			sni      string
			wantCert *x509.Certificate
			want     string
		}{
			{"secure.example.com", secureCert, "web"},
			{"a.apps.example.com", wildCert, "api"},
		} {
			roots := x509.NewCertPool()
			roots.AddCert(tt.wantCert)
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{ServerName: tt.sni, RootCAs: roots},
			}}
			req, _ := http.NewRequestWithContext(h.ctx, http.MethodGet, "https://"+h.httpsAddr+"/", nil)
			req.Host = tt.sni
			var resp *http.Response
			eventually(t, "HTTPS "+tt.sni, func() error {
				var err error
				resp, err = client.Do(req)
				return err
			})
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(string(body), tt.want) || !strings.Contains(string(body), "proto=https") {
				t.Errorf("HTTPS %s: %q, want %s with proto=https", tt.sni, body, tt.want)
			}
		}

		conn, err := tls.Dial("tcp", h.httpsAddr, &tls.Config{ServerName: "nobody.example.com", InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "lotse ingress default certificate" {
			t.Errorf("unknown SNI got certificate %q, want the default", cn)
		}
	})

	t.Run("plain HTTP for a TLS host", func(t *testing.T) {
		if code, body := h.get("secure.example.com", "/"); code != 200 || !strings.Contains(body, "proto=http ") {
			t.Errorf("got %d %q", code, body)
		}
	})

	t.Run("upgrade", func(t *testing.T) {
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "echo" {
				http.Error(w, "want upgrade", 400)
				return
			}
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "echo")
			w.WriteHeader(http.StatusSwitchingProtocols)
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_ = brw.Flush()
			_, _ = io.Copy(conn, brw)
		}))
		defer echo.Close()
		if _, err := h.client.CoreV1().Services("shop").Create(h.ctx, service("shop", "echo"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.DiscoveryV1().EndpointSlices("shop").Create(h.ctx, endpointSlice(t, "shop", "echo", "echo-1", echo), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ing := newIngress("shop", "echo", 5, rule("echo.example.com", path(prefix, "/", "echo")))
		if _, err := h.client.NetworkingV1().Ingresses("shop").Create(h.ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		h.waitRoute("echo.example.com", "/", 400, "want upgrade")

		conn, err := net.Dial("tcp", h.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: echo.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade answered %v, %v", resp, err)
		}
		for _, msg := range []string{"ping\n", "pong\n"} {
			fmt.Fprint(conn, msg)
			got, err := br.ReadString('\n')
			if err != nil || got != msg {
				t.Fatalf("echo of %q: %q, %v", msg, got, err)
			}
		}
	})
}

func TestDefaultClassAndNotFound(t *testing.T) {
	web := testBackend(t, "web")
	// The user took the default annotation off our class: classless
	// Ingresses are then not ours, and we must not put the annotation back.
	userClass := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "lotse"},
		Spec:       networkingv1.IngressClassSpec{Controller: ControllerName},
	}
	classless := newIngress("ns", "classless", 1, rule("classless.example.com", path(prefix, "/", "web")))
	legacy := newIngress("ns", "legacy", 2, rule("legacy.example.com", path(exact, "/only", "web")))
	legacy.Annotations = map[string]string{legacyClassAnnotation: "lotse"}
	h := newHarness(t, userClass, classless, legacy, service("ns", "web"), endpointSlice(t, "ns", "web", "web-1", web))

	h.waitRoute("legacy.example.com", "/only", 200, "web")
	for _, tt := range []struct {
		host, path string
		code       int
	}{
		{"legacy.example.com", "/only/", 404},
		{"legacy.example.com", "/", 404},
		{"classless.example.com", "/", 404},
	} {
		if code, body := h.get(tt.host, tt.path); code != tt.code {
			t.Errorf("%s%s: %d %q, want %d", tt.host, tt.path, code, body, tt.code)
		}
	}

	// Making our class the default brings the classless Ingress in.
	ic, err := h.client.NetworkingV1().IngressClasses().Get(h.ctx, "lotse", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ic.Annotations) != 0 {
		t.Errorf("controller changed the user's IngressClass annotations: %v", ic.Annotations)
	}
	ic.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
	if _, err := h.client.NetworkingV1().IngressClasses().Update(h.ctx, ic, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitRoute("classless.example.com", "/", 200, "web")
}

// TestSwapDuringLongRequest changes the routing table many times, and
// finally removes the route, while a streamed response is in flight; the
// response must arrive whole.
func TestSwapDuringLongRequest(t *testing.T) {
	const chunks = 20
	started := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			fmt.Fprint(w, "fast")
			return
		}
		rc := http.NewResponseController(w)
		for i := range chunks {
			fmt.Fprintf(w, "chunk %d\n", i)
			_ = rc.Flush()
			if i == 0 {
				close(started)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}))
	defer slow.Close()
	ing := newIngress("ns", "slow", 1, rule("slow.example.com", path(prefix, "/", "slow")))
	h := newHarness(t, ing, service("ns", "slow"), endpointSlice(t, "ns", "slow", "slow-1", slow))
	h.waitRoute("slow.example.com", "/", 200, "fast")

	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequestWithContext(h.ctx, http.MethodGet, "http://"+h.httpAddr+"/slow", nil)
		req.Host = "slow.example.com"
		resp, err := h.http.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{string(b), err}
	}()
	<-started

	for i := range 5 {
		host := fmt.Sprintf("new%d.example.com", i)
		ing.Spec.Rules = append(ing.Spec.Rules, rule(host, path(prefix, "/", "slow")))
		if _, err := h.client.NetworkingV1().Ingresses("ns").Update(h.ctx, ing, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		h.waitRoute(host, "/", 200, "fast")
	}
	// Take the endpoint away; new requests fail, the old one goes on.
	if err := h.client.DiscoveryV1().EndpointSlices("ns").Delete(h.ctx, "slow-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitRoute("slow.example.com", "/", 503, "503")

	r := <-done
	if r.err != nil {
		t.Fatalf("in-flight request broke: %v", r.err)
	}
	if n := strings.Count(r.body, "chunk "); n != chunks {
		t.Fatalf("in-flight request got %d of %d chunks: %q", n, chunks, r.body)
	}
}
