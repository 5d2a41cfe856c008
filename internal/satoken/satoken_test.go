package satoken

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func newTestIssuer(t *testing.T, dir string) *Issuer {
	t.Helper()
	key, err := LoadOrCreateKey(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	i, err := NewIssuer(key, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestIssueVerify(t *testing.T) {
	dir := t.TempDir()
	iss := newTestIssuer(t, dir)
	other := newTestIssuer(t, t.TempDir())
	sa := Ref{Name: "default", UID: "sa-uid"}
	pod := &Ref{Name: "web", UID: "pod-uid"}
	tests := []struct {
		name      string
		req       Request
		verify    *Issuer
		at        time.Time
		audiences []string
		tamper    func(string) string
		wantErr   string
	}{
		{name: "good", req: Request{Namespace: "shop", ServiceAccount: sa, Expiration: time.Hour}, at: t0.Add(59 * time.Minute)},
		{name: "expired", req: Request{Namespace: "shop", ServiceAccount: sa, Expiration: time.Hour}, at: t0.Add(61 * time.Minute), wantErr: "expired"},
		{name: "not yet valid", req: Request{Namespace: "shop", ServiceAccount: sa, Expiration: time.Hour}, at: t0.Add(-time.Hour), wantErr: "not valid yet"},
		{name: "foreign audience", req: Request{Namespace: "shop", ServiceAccount: sa, Expiration: time.Hour, Audiences: []string{"vault"}}, at: t0, wantErr: "audiences"},
		{name: "asked-for audience", req: Request{Namespace: "shop", ServiceAccount: sa, Expiration: time.Hour, Audiences: []string{"vault"}}, at: t0, audiences: []string{"vault"}},
		{name: "other key", req: Request{Namespace: "shop", ServiceAccount: sa, Expiration: time.Hour}, verify: other, at: t0, wantErr: "signature"},
		{name: "tampered payload", req: Request{Namespace: "shop", ServiceAccount: sa, Expiration: time.Hour}, at: t0, wantErr: "signature",
			tamper: func(s string) string {
				parts := strings.Split(s, ".")
				payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
				parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), "shop", "kube", -1)))
				return strings.Join(parts, ".")
			}},
		{name: "kube-api-access lifetime is extended", req: Request{Namespace: "shop", ServiceAccount: sa, Pod: pod, Expiration: WarnAfterSeconds * time.Second},
			at: t0.Add(30 * 24 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, _, err := iss.Issue(tt.req, t0)
			if err != nil {
				t.Fatal(err)
			}
			if tt.tamper != nil {
				token = tt.tamper(token)
			}
			v := iss
			if tt.verify != nil {
				v = tt.verify
			}
			c, err := v.Verify(token, tt.at, tt.audiences)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "system:serviceaccount:shop:default" || c.Kubernetes.ServiceAccount != sa || c.Kubernetes.Namespace != "shop" {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
}

func TestWarnAfter(t *testing.T) {
	iss := newTestIssuer(t, t.TempDir())
	req := Request{Namespace: "shop", ServiceAccount: Ref{Name: "default"}, Pod: &Ref{Name: "p", UID: "u"}, Expiration: WarnAfterSeconds * time.Second}
	token, exp, err := iss.Issue(req, t0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.Verify(token, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(WarnAfterSeconds * time.Second); c.Kubernetes.WarnAfter == nil || !c.Kubernetes.WarnAfter.Equal(want) {
		t.Fatalf("warnafter = %v, want %v", c.Kubernetes.WarnAfter, want)
	}
	if !exp.Equal(c.ExpiresAt.Time) || exp.Sub(t0) < 300*24*time.Hour {
		t.Fatalf("exp = %v (claim %v), want about a year", exp, c.ExpiresAt)
	}
	// Any other lifetime is honoured as asked.
	req.Expiration = time.Hour
	_, exp, _ = iss.Issue(req, t0)
	if !exp.Equal(t0.Add(time.Hour)) {
		t.Fatalf("exp = %v, want %v", exp, t0.Add(time.Hour))
	}
}

func TestKeyPersists(t *testing.T) {
	dir := t.TempDir()
	a, b := newTestIssuer(t, dir), newTestIssuer(t, dir)
	token, _, err := a.Issue(Request{Namespace: "x", ServiceAccount: Ref{Name: "y"}, Expiration: time.Hour}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(token, t0, nil); err != nil {
		t.Fatalf("a restarted issuer rejects its own token: %v", err)
	}
}

func TestJWKS(t *testing.T) {
	iss := newTestIssuer(t, t.TempDir())
	var set struct {
		Keys []struct{ Kid, N, E, Alg string }
	}
	if err := json.Unmarshal(iss.JWKS(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks %s: %v", iss.JWKS(), err)
	}
	k := set.Keys[0]
	n, _ := base64.RawURLEncoding.DecodeString(k.N)
	e, _ := base64.RawURLEncoding.DecodeString(k.E)
	pub := rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if !pub.Equal(&iss.key.PublicKey) || k.Kid != iss.keyID || k.Alg != "RS256" {
		t.Fatalf("jwks key does not match the signing key: %+v", k)
	}
	var conf map[string]any
	if err := json.Unmarshal(iss.OpenIDConfiguration(), &conf); err != nil {
		t.Fatal(err)
	}
	if conf["issuer"] != DefaultIssuer || conf["jwks_uri"] != DefaultIssuer+JWKSPath {
		t.Fatalf("openid configuration = %v", conf)
	}
}

func TestAuthenticate(t *testing.T) {
	iss := newTestIssuer(t, t.TempDir())
	deleted := metav1.NewTime(t0.Add(-2 * time.Minute))
	deleting := metav1.NewTime(t0.Add(10 * time.Second))
	objects := map[string]*metav1.ObjectMeta{
		"serviceaccounts/shop/default": {UID: "sa1"},
		"pods/shop/web":                {UID: "p1"},
		"pods/shop/gone":               {UID: "p2", DeletionTimestamp: &deleted},
		"pods/shop/stopping":           {UID: "p3", DeletionTimestamp: &deleting},
	}
	lookup := func(resource, ns, name string) (metav1.Object, error) {
		if o, ok := objects[resource+"/"+ns+"/"+name]; ok {
			return o, nil
		}
		return nil, errors.New("not found")
	}
	sa := Ref{Name: "default", UID: "sa1"}
	tests := []struct {
		name    string
		req     Request
		wantErr string
	}{
		{"unbound", Request{ServiceAccount: sa}, ""},
		{"bound to a pod", Request{ServiceAccount: sa, Pod: &Ref{Name: "web", UID: "p1"}}, ""},
		{"pod being deleted", Request{ServiceAccount: sa, Pod: &Ref{Name: "stopping", UID: "p3"}}, ""},
		{"pod recreated", Request{ServiceAccount: sa, Pod: &Ref{Name: "web", UID: "old"}}, "recreated"},
		{"pod gone", Request{ServiceAccount: sa, Pod: &Ref{Name: "nope", UID: "p9"}}, "not found"},
		{"pod deleted a while ago", Request{ServiceAccount: sa, Pod: &Ref{Name: "gone", UID: "p2"}}, "deleted"},
		{"service account recreated", Request{ServiceAccount: Ref{Name: "default", UID: "old"}}, "recreated"},
		{"service account missing", Request{ServiceAccount: Ref{Name: "robot", UID: "r"}}, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Namespace, tt.req.Expiration = "shop", time.Hour
			token, _, err := iss.Issue(tt.req, t0)
			if err != nil {
				t.Fatal(err)
			}
			user, groups, err := iss.Authenticate(token, t0, nil, lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if user != Username("shop", tt.req.ServiceAccount.Name) || len(groups) != 2 || groups[1] != "system:serviceaccounts:shop" {
				t.Fatalf("user %q groups %v", user, groups)
			}
		})
	}
}
