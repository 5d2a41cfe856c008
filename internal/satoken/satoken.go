package satoken

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"k8s.io/apimachinery/pkg/types"
)

// DefaultIssuer is the "iss" of tokens when none is configured, the
// in-cluster name of the API server as kubeadm and k3s set it.
const DefaultIssuer = "https://kubernetes.default.svc.cluster.local"

// WarnAfterSeconds is the lifetime the kubelet asks for in the token of a
// pod's kube-api-access volume. Upstream extends such tokens to a year so
// that clients which never reread the file keep working, and records the
// requested expiry as "warnafter".
const (
	WarnAfterSeconds     = 3607
	extendedTokenSeconds = 365 * 24 * 60 * 60
)

// Ref names an object a token is bound to.
type Ref struct {
	Name string    `json:"name"`
	UID  types.UID `json:"uid"`
}

// Private are the "kubernetes.io" claims of a token.
type Private struct {
	Namespace      string           `json:"namespace"`
	Node           *Ref             `json:"node,omitempty"`
	Pod            *Ref             `json:"pod,omitempty"`
	Secret         *Ref             `json:"secret,omitempty"`
	ServiceAccount Ref              `json:"serviceaccount"`
	WarnAfter      *jwt.NumericDate `json:"warnafter,omitempty"`
}

// Claims are what a service account token says.
type Claims struct {
	jwt.RegisteredClaims
	Kubernetes Private `json:"kubernetes.io"`
}

// Username is the user a service account authenticates as.
func Username(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Groups are the groups of a service account's user.
func Groups(namespace string) []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace}
}

// Issuer signs tokens and verifies them.
type Issuer struct {
	key   *rsa.PrivateKey
	keyID string
	// URL is the "iss" claim of issued tokens.
	URL string
	// Audiences are the audiences the API server accepts; a token must
	// name at least one of them. Tokens requested without audiences get
	// all of them.
	Audiences []string
}

// NewIssuer builds an issuer; empty url and audiences take the defaults.
func NewIssuer(key *rsa.PrivateKey, url string, audiences []string) (*Issuer, error) {
	if url == "" {
		url = DefaultIssuer
	}
	if len(audiences) == 0 {
		audiences = []string{url}
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &Issuer{key: key, keyID: base64.RawURLEncoding.EncodeToString(sum[:]), URL: url, Audiences: audiences}, nil
}

// Request is what a token is asked for.
type Request struct {
	Namespace      string
	ServiceAccount Ref
	// Audiences default to the issuer's.
	Audiences []string
	// Expiration is the requested lifetime.
	Expiration time.Duration
	// At most one of the bound objects.
	Pod, Secret, Node *Ref
}

// Issue signs a token for r and returns it with its expiry.
func (i *Issuer) Issue(r Request, now time.Time) (string, time.Time, error) {
	aud := r.Audiences
	if len(aud) == 0 {
		aud = i.Audiences
	}
	exp := now.Add(r.Expiration)
	var warnAfter *jwt.NumericDate
	if r.Pod != nil && r.Expiration == WarnAfterSeconds*time.Second {
		warnAfter = jwt.NewNumericDate(exp)
		exp = now.Add(extendedTokenSeconds * time.Second)
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.URL,
			Subject:   Username(r.Namespace, r.ServiceAccount.Name),
			Audience:  aud,
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ID:        randomID(),
		},
		Kubernetes: Private{
			Namespace: r.Namespace, ServiceAccount: r.ServiceAccount,
			Pod: r.Pod, Secret: r.Secret, Node: r.Node, WarnAfter: warnAfter,
		},
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	t.Header["kid"] = i.keyID
	s, err := t.SignedString(i.key)
	if err != nil {
		return "", time.Time{}, err
	}
	return s, exp, nil
}

// Verify checks a token's signature, issuer, lifetime and audience (one of
// audiences, or of the issuer's when audiences is empty) and returns its
// claims. It does not look at the objects it is bound to.
func (i *Issuer) Verify(token string, now time.Time, audiences []string) (*Claims, error) {
	if len(audiences) == 0 {
		audiences = i.Audiences
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return &i.key.PublicKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithIssuer(i.URL),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(audiences, a) }) {
		return nil, errors.New("token audiences are invalid")
	}
	if !strings.HasPrefix(c.Subject, "system:serviceaccount:") || c.Kubernetes.Namespace == "" || c.Kubernetes.ServiceAccount.Name == "" {
		return nil, errors.New("not a service account token")
	}
	return &c, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// KeyFile is where LoadOrCreateKey keeps the signing key in a data dir.
const KeyFile = "pki/service-account.key"

// LoadOrCreateKey reads the RSA signing key at path, creating a 2048-bit
// one on first start.
func LoadOrCreateKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("satoken: %s holds no PEM key", path)
		}
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("satoken: %s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	pemData := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pemData, 0o600); err != nil {
		return nil, err
	}
	return key, os.Rename(tmp, path)
}

// OpenIDConfiguration is the discovery document served at
// /.well-known/openid-configuration, so that other systems can check our
// tokens (upstream's service account issuer discovery).
func (i *Issuer) OpenIDConfiguration() []byte {
	b, _ := json.Marshal(map[string]any{
		"issuer":                                i.URL,
		"jwks_uri":                              strings.TrimSuffix(i.URL, "/") + JWKSPath,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
	return b
}

// Discovery paths, as upstream serves them.
const (
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
	JWKSPath                = "/openid/v1/jwks"
)

// JWKS is the public key set served at /openid/v1/jwks.
func (i *Issuer) JWKS() []byte {
	pub := i.key.PublicKey
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"use": "sig", "kty": "RSA", "kid": i.keyID, "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
	return b
}
