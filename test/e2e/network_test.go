package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// networkPorts are the ports the node server's cluster DNS and Ingress
// proxy listen on, picked free by the test.
type networkPorts struct{ dns, http, https string }

func pickNetworkPorts(t *testing.T) networkPorts {
	return networkPorts{dns: freePort(t), http: freePort(t), https: freePort(t)}
}

func (p networkPorts) args() []string {
	return []string{"--bind-address", "0.0.0.0", "--cluster-dns-port", p.dns,
		"--ingress-http-port", p.http, "--ingress-https-port", p.https}
}

// testNetwork checks Services, cluster DNS, Ingress and NetworkPolicy on
// real pods of the node server: what `kubectl expose`, a pod's resolver,
// an Ingress and a deny-all policy do for a user.
func testNetwork(t *testing.T, k *kubectl, ports networkPorts) {
	n := func(args ...string) []string { return append([]string{"-n", "node"}, args...) }
	nodeIP := k.ok(t, "get", "node", "e2e-node", "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)

	// Two web pods answering with their own name, and a client pod.
	k.okStdin(t, webDeployment(""), n("apply", "-f", "-")...)
	k.ok(t, n("run", "client", "--image=busybox:1.36", "--labels=role=client", "--", "sleep", "3600")...)
	k.ok(t, n("run", "stranger", "--image=busybox:1.36", "--", "sleep", "3600")...)
	k.ok(t, n("rollout", "status", "deployment/web", "--timeout=55s")...)
	waitRunning(t, k, "client")
	waitRunning(t, k, "stranger")
	webPods := strings.Fields(k.ok(t, n("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}")...))
	isWeb := func(body string) bool {
		for _, p := range webPods {
			if strings.TrimSpace(body) == p {
				return true
			}
		}
		return false
	}
	// fromPod fetches http://host:port/ inside a pod and leaves the body's
	// last line in stdout. Debian's busybox 1.35 wget crashes when given
	// a timeout (-T), and one is needed where a policy drops packets; nc
	// -w and a hand-written request do the job (and resolve names through
	// the pod's resolv.conf).
	fromPod := func(pod, host, port string) result {
		return k.run(t, n("exec", pod, "--", "sh", "-c", httpOverNC(host, port))...)
	}
	waitFromPod := func(what, pod, host, port string) {
		t.Helper()
		waitFor(t, 30*time.Second, what, func() (bool, string) {
			r := fromPod(pod, host, port)
			return r.code == 0 && isWeb(r.stdout), r.String()
		})
	}

	k.ok(t, n("expose", "deployment", "web", "--port=80", "--target-port=http")...)
	clusterIP := k.ok(t, n("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")...)

	t.Run("ClusterIP from a pod, by name through cluster DNS", func(t *testing.T) {
		waitFromPod("web.node.svc.cluster.local from the client pod", "client", "web.node.svc.cluster.local", "80")
		waitFromPod("the short name from the client pod", "client", "web", "80")
		r := k.run(t, n("exec", "client", "--", "nslookup", "web.node.svc.cluster.local")...)
		if r.code != 0 || !strings.Contains(r.stdout, clusterIP) {
			t.Errorf("nslookup web:\n%s", r)
		}
		r = k.run(t, n("exec", "client", "--", "nslookup", "nothing-here.node.svc.cluster.local")...)
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "NXDOMAIN") {
			t.Errorf("nslookup of a missing service:\n%s", r)
		}
		resolv := k.ok(t, n("exec", "client", "--", "cat", "/etc/resolv.conf")...)
		for _, want := range []string{"nameserver 10.43.0.10", "search node.svc.cluster.local svc.cluster.local cluster.local", "ndots:5"} {
			if !strings.Contains(resolv, want) {
				t.Errorf("resolv.conf lacks %q:\n%s", want, resolv)
			}
		}
		// The API is reachable from pods at the kubernetes Service.
		// (Plain HTTP to the TLS port: the answer proves who is there.)
		r = k.run(t, n("exec", "client", "--", "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 kubernetes.default.svc.cluster.local 443`)...)
		if !strings.Contains(r.stdout, "HTTP request to an HTTPS server") {
			t.Errorf("kubernetes.default:443 from a pod:\n%s", r)
		}
	})

	t.Run("ClusterIP from the host", func(t *testing.T) {
		if body := httpGet(t, "http://"+clusterIP); !isWeb(body) {
			t.Errorf("GET %s from the host = %q", clusterIP, body)
		}
	})

	t.Run("NodePort and LoadBalancer", func(t *testing.T) {
		k.ok(t, n("expose", "deployment", "web", "--name=web-np", "--type=NodePort", "--port=80", "--target-port=8080")...)
		nodePort := k.ok(t, n("get", "svc", "web-np", "-o", "jsonpath={.spec.ports[0].nodePort}")...)
		if body := httpGet(t, "http://"+net.JoinHostPort(nodeIP, nodePort)); !isWeb(body) {
			t.Errorf("GET the NodePort from the host = %q", body)
		}
		waitFromPod("the NodePort from a pod", "client", nodeIP, nodePort)

		k.ok(t, n("expose", "deployment", "web", "--name=web-lb", "--type=LoadBalancer", "--port=18080", "--target-port=8080")...)
		waitFor(t, 30*time.Second, "the balancer's address", func() (bool, string) {
			r := k.run(t, n("get", "svc", "web-lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")...)
			return r.stdout == nodeIP, r.String()
		})
		if body := httpGet(t, "http://"+net.JoinHostPort(nodeIP, "18080")); !isWeb(body) {
			t.Errorf("GET the LoadBalancer address = %q", body)
		}
	})

	t.Run("session affinity", func(t *testing.T) {
		k.ok(t, n("patch", "svc", "web", "-p", `{"spec":{"sessionAffinity":"ClientIP"}}`)...)
		time.Sleep(time.Second) // the proxy applies changes within ~100 ms
		seen := map[string]bool{}
		for range 8 {
			r := fromPod("client", "web", "80")
			if r.code != 0 {
				t.Fatalf("GET web with affinity:\n%s", r)
			}
			seen[strings.TrimSpace(r.stdout)] = true
		}
		if len(seen) != 1 {
			t.Errorf("ClientIP affinity: answers came from %v", seen)
		}
	})

	t.Run("ingress routes by host and path, TLS from a Secret", func(t *testing.T) {
		certPEM, keyPEM := selfSigned(t, "web.example.test")
		dir := t.TempDir()
		must(t, os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600))
		must(t, os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600))
		k.ok(t, n("create", "secret", "tls", "web-tls", "--cert="+filepath.Join(dir, "tls.crt"), "--key="+filepath.Join(dir, "tls.key"))...)
		k.okStdin(t, `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  tls: [{hosts: [web.example.test], secretName: web-tls}]
  rules:
  - host: web.example.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
`, n("apply", "-f", "-")...)
		if got := k.ok(t, "get", "ingressclass", "lotse", "-o", `jsonpath={.metadata.annotations.ingressclass\.kubernetes\.io/is-default-class}`); got != "true" {
			t.Errorf("IngressClass lotse default annotation = %q", got)
		}
		get := func(client *http.Client, url string) (int, string) {
			req, _ := http.NewRequest("GET", url, nil)
			req.Host = "web.example.test"
			resp, err := client.Do(req)
			if err != nil {
				return 0, err.Error()
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		plain := &http.Client{Timeout: 5 * time.Second}
		waitFor(t, 30*time.Second, "the Ingress to route", func() (bool, string) {
			code, body := get(plain, "http://127.0.0.1:"+ports.http+"/")
			return code == 200 && isWeb(body), body
		})
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(certPEM)
		secure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, ServerName: "web.example.test"}}}
		if code, body := get(secure, "https://127.0.0.1:"+ports.https+"/"); code != 200 || !isWeb(body) {
			t.Errorf("HTTPS through the Ingress with the Secret's certificate: %d %q", code, body)
		}
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+ports.http+"/", nil)
		req.Host = "other.example.test"
		if resp, err := plain.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("a host no rule names: %v %v, want 404", resp, err)
		} else {
			resp.Body.Close()
		}
		waitFor(t, 30*time.Second, "the Ingress status address", func() (bool, string) {
			r := k.run(t, n("get", "ingress", "web", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")...)
			return r.stdout == nodeIP, r.String()
		})
	})

	t.Run("network policy denies, then allows", func(t *testing.T) {
		k.okStdin(t, `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-web}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
`, n("apply", "-f", "-")...)
		waitFor(t, 30*time.Second, "traffic to web to stop", func() (bool, string) {
			r := fromPod("client", "web", "80")
			return r.code != 0, r.String()
		})
		k.okStdin(t, `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-clients}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: client}}}]
    ports: [{port: http}]
`, n("apply", "-f", "-")...)
		waitFromPod("the allowed client to get through", "client", "web", "80")
		if r := fromPod("stranger", "web", "80"); r.code == 0 {
			t.Errorf("a pod the policy does not allow got through:\n%s", r)
		}
		k.ok(t, n("delete", "networkpolicy", "deny-web", "allow-clients")...)
		waitFromPod("the stranger once the policies are gone", "stranger", "web", "80")
	})
}

// webDeployment is a Deployment of two busybox httpd pods that answer
// GET / with their own name on port 8080 (named http); spec is added to
// the pod spec.
func webDeployment(spec string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
` + spec + `      containers:
      - name: web
        image: busybox:1.36
        command: [sh, -c, "mkdir /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
`
}

// httpOverNC is a shell command that GETs / from host:port with busybox
// nc and prints the last line of the answer; it fails when nc does.
func httpOverNC(host, port string) string {
	return `set -o pipefail; printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 ` + host + " " + port + " | tail -n 1"
}

// selfSigned returns a certificate and key for host.
func selfSigned(t *testing.T, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
