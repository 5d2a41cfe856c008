package pki

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func mustLoad(t *testing.T, dir string, extra []string) *Bundle {
	t.Helper()
	b, err := LoadOrCreate(dir, extra)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	return b
}

func leaf(t *testing.T, c tls.Certificate) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestLoadOrCreateFilesAndModes(t *testing.T) {
	dir := t.TempDir()
	mustLoad(t, dir, nil)

	info, err := os.Stat(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o700 {
		t.Errorf("pki dir mode = %o, want 700", got)
	}
	for _, name := range []string{caKeyFile, servingKeyFile, adminKeyFile} {
		info, err := os.Stat(filepath.Join(dir, "pki", name))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode = %o, want 600", name, got)
		}
	}
	for _, name := range []string{caCertFile, servingCertFile, adminCertFile} {
		if _, err := os.Stat(filepath.Join(dir, "pki", name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// No temp files left behind by the atomic writes.
	entries, _ := os.ReadDir(filepath.Join(dir, "pki"))
	if len(entries) != 6 {
		t.Errorf("pki dir has %d entries, want 6", len(entries))
	}
}

func TestServingCertificate(t *testing.T) {
	b := mustLoad(t, t.TempDir(), []string{"10.0.0.7", "Lotse.Example.COM", " ", "fd00::1"})
	cert := leaf(t, b.ServingCert)
	roots := x509.NewCertPool()
	roots.AddCert(b.CA)

	host, _ := os.Hostname()
	names := []string{"localhost", "127.0.0.1", "::1", "10.0.0.7", "fd00::1", "lotse.example.com",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if host != "" {
		names = append(names, host)
	}
	for _, name := range names {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("serving cert does not verify for %q: %v", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "elsewhere.example.com"}); err == nil {
		t.Error("serving cert verifies for a name it should not carry")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("serving cert is accepted for client auth")
	}
	if got := cert.NotAfter.Sub(time.Now()); got < 364*24*time.Hour || got > 366*24*time.Hour {
		t.Errorf("serving cert valid for %v, want about a year", got)
	}
	if got := b.CA.NotAfter.Sub(time.Now()); got < 3649*24*time.Hour {
		t.Errorf("CA valid for %v, want about ten years", got)
	}
}

func TestReuseAndReissue(t *testing.T) {
	dir := t.TempDir()
	first := mustLoad(t, dir, []string{"10.0.0.1"})

	tests := []struct {
		name         string
		prepare      func(t *testing.T)
		extra        []string
		wantNewServe bool
		wantNewAdmin bool
	}{
		{name: "same SANs keep everything", extra: []string{"10.0.0.1"}},
		{name: "same SANs in another spelling", extra: []string{"10.0.0.1", "localhost", "127.0.0.1"}},
		{name: "added SAN reissues serving", extra: []string{"10.0.0.1", "api.example.com"}, wantNewServe: true},
		{name: "removed SAN reissues serving", extra: nil, wantNewServe: true},
		{
			name:         "missing serving key reissues serving",
			extra:        []string{"10.0.0.1"},
			prepare:      func(t *testing.T) { os.Remove(filepath.Join(dir, "pki", servingKeyFile)) },
			wantNewServe: true,
		},
		{
			name:  "expiring serving cert is reissued",
			extra: []string{"10.0.0.1"},
			prepare: func(t *testing.T) {
				dns, ips := servingSANs([]string{"10.0.0.1"})
				certPEM, keyPEM, err := first.issue(leafTemplate{
					subject: pkix.Name{CommonName: "x"}, usage: x509.ExtKeyUsageServerAuth,
					dnsNames: dns, ips: ips, notAfter: time.Now().Add(10 * 24 * time.Hour),
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := writePair(filepath.Join(dir, "pki"), servingCertFile, servingKeyFile, certPEM, keyPEM); err != nil {
					t.Fatal(err)
				}
			},
			wantNewServe: true,
		},
		{
			name:  "admin cert with wrong group is reissued",
			extra: []string{"10.0.0.1"},
			prepare: func(t *testing.T) {
				certPEM, keyPEM, err := first.IssueClientCert(AdminUser, []string{"nobody"}, leafValidity)
				if err != nil {
					t.Fatal(err)
				}
				if err := writePair(filepath.Join(dir, "pki"), adminCertFile, adminKeyFile, certPEM, keyPEM); err != nil {
					t.Fatal(err)
				}
			},
			wantNewAdmin: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every case starts from a start with the base SAN set.
			before := mustLoad(t, dir, []string{"10.0.0.1"})
			if tt.prepare != nil {
				tt.prepare(t)
			}
			beforeServe := leaf(t, before.ServingCert).SerialNumber
			after := mustLoad(t, dir, tt.extra)

			if !after.CA.Equal(first.CA) || !slices.Equal(after.CAPEM, first.CAPEM) {
				t.Fatal("CA changed between starts")
			}
			newServe := leaf(t, after.ServingCert).SerialNumber.Cmp(beforeServe) != 0
			if newServe != tt.wantNewServe {
				t.Errorf("serving cert reissued = %v, want %v", newServe, tt.wantNewServe)
			}
			newAdmin := !slices.Equal(after.AdminCertPEM, before.AdminCertPEM)
			if newAdmin != tt.wantNewAdmin {
				t.Errorf("admin cert reissued = %v, want %v", newAdmin, tt.wantNewAdmin)
			}
			// Whatever happened, the result is consistent and stable.
			again := mustLoad(t, dir, tt.extra)
			if leaf(t, again.ServingCert).SerialNumber.Cmp(leaf(t, after.ServingCert).SerialNumber) != 0 {
				t.Error("serving cert reissued on a start with nothing changed")
			}
		})
	}
}

func TestBrokenCAIsAnError(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(pkiDir string)
	}{
		{"key missing", func(d string) { os.Remove(filepath.Join(d, caKeyFile)) }},
		{"cert missing", func(d string) { os.Remove(filepath.Join(d, caCertFile)) }},
		{"cert garbage", func(d string) { os.WriteFile(filepath.Join(d, caCertFile), []byte("junk"), 0o644) }},
		{"key garbage", func(d string) { os.WriteFile(filepath.Join(d, caKeyFile), []byte("junk"), 0o600) }},
		{"key of another CA", func(d string) {
			_, otherKey, _ := newCA(time.Now())
			os.WriteFile(filepath.Join(d, caKeyFile), otherKey, 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustLoad(t, dir, nil)
			tt.break_(filepath.Join(dir, "pki"))
			if _, err := LoadOrCreate(dir, nil); err == nil {
				t.Fatal("LoadOrCreate accepted a broken CA instead of failing")
			}
		})
	}
}

func TestIssueClientCert(t *testing.T) {
	b := mustLoad(t, t.TempDir(), nil)
	roots := x509.NewCertPool()
	roots.AddCert(b.CA)

	tests := []struct {
		name     string
		user     string
		groups   []string
		validity time.Duration
		wantErr  bool
	}{
		{name: "node", user: "system:node:n1", groups: []string{"system:nodes"}, validity: time.Hour},
		{name: "no groups", user: "alice", validity: 24 * time.Hour},
		{name: "several groups", user: "bob", groups: []string{"a", "b", "c"}, validity: time.Minute},
		{name: "empty user", user: "", validity: time.Hour, wantErr: true},
		{name: "zero validity", user: "x", validity: 0, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := b.IssueClientCert(tt.user, tt.groups, tt.validity)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				t.Fatalf("key does not match cert: %v", err)
			}
			cert, err := parseCert(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("client cert does not verify for client auth: %v", err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
				t.Error("client cert verifies for server auth")
			}
			if cert.Subject.CommonName != tt.user || !slices.Equal(cert.Subject.Organization, tt.groups) {
				t.Errorf("subject = %q %q, want %q %q", cert.Subject.CommonName, cert.Subject.Organization, tt.user, tt.groups)
			}
			if d := time.Until(cert.NotAfter); d > tt.validity || d < tt.validity-time.Minute {
				t.Errorf("valid for %v more, want about %v", d, tt.validity)
			}
		})
	}

	admin, err := parseCert(b.AdminCertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if admin.Subject.CommonName != "lotse-admin" || !slices.Equal(admin.Subject.Organization, []string{"system:masters"}) {
		t.Errorf("admin subject = %v", admin.Subject)
	}
}

// TestKubeconfig loads the written kubeconfig with clientcmd and uses it
// against a TLS server holding the serving certificate and requiring client
// certificates from our CA.
func TestKubeconfig(t *testing.T) {
	dir := t.TempDir()
	b := mustLoad(t, dir, nil)

	var gotUser string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser = r.TLS.PeerCertificates[0].Subject.CommonName
		w.Write([]byte("ok"))
	}))
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(b.CA)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{b.ServingCert},
		ClientCAs:    clientCAs,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	srv.StartTLS()
	defer srv.Close()
	// httptest listens on 127.0.0.1; reach it as localhost to check the DNS SAN too.
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	url := "https://localhost:" + port

	path := filepath.Join(dir, "sub", "admin.kubeconfig")
	if err := b.WriteKubeconfig(path, url); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("kubeconfig mode = %o, want 600", got)
	}

	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "lotse" || cfg.Contexts["lotse"].Cluster != "lotse" || cfg.Contexts["lotse"].AuthInfo != "admin" {
		t.Errorf("unexpected contexts: current %q, %+v", cfg.CurrentContext, cfg.Contexts["lotse"])
	}
	if cfg.Clusters["lotse"].Server != url || !slices.Equal(cfg.Clusters["lotse"].CertificateAuthorityData, b.CAPEM) {
		t.Error("cluster entry does not carry the server URL and CA")
	}

	restCfg, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	client, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("request with kubeconfig credentials: %v", err)
	}
	resp.Body.Close()
	if gotUser != AdminUser {
		t.Errorf("server saw user %q, want %q", gotUser, AdminUser)
	}

	// Rewriting replaces the file in place.
	if err := b.WriteKubeconfig(path, "https://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	cfg, err = clientcmd.LoadFromFile(path)
	if err != nil || cfg.Clusters["lotse"].Server != "https://127.0.0.1:1" {
		t.Fatalf("rewritten kubeconfig: %v", err)
	}
}
