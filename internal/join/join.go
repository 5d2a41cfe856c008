package join

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Path is where the server answers join requests.
const Path = "/lotse/v1/join"

// Request is what a joining node sends, with the token as bearer.
type Request struct {
	NodeName string `json:"nodeName"`
	NodeIP   string `json:"nodeIP"`
	// ClientCSR and ServingCSR are PEM certificate requests; only their
	// public keys are used, the server decides what the certificates say.
	ClientCSR  string `json:"clientCSR"`
	ServingCSR string `json:"servingCSR"`
}

// Response carries the node's credentials.
type Response struct {
	CA          string `json:"ca"`
	ClientCert  string `json:"clientCert"`
	ServingCert string `json:"servingCert"`
	PodCIDR     string `json:"podCIDR"`
	// ClusterCIDR and ClusterDNS are the server's network plan: the pod
	// network and the kube-dns Service's address.
	ClusterCIDR string `json:"clusterCIDR,omitempty"`
	ClusterDNS  string `json:"clusterDNS,omitempty"`
	// CAMAC is HMAC-SHA256 of CA keyed by the token secret.
	CAMAC []byte `json:"caMAC"`
}

// Signer is what the server provides to answer a join.
type Signer struct {
	Token Token
	CA    []byte // PEM
	// SignClient and SignServing certify a public key.
	SignClient  func(pub any, user string, groups []string) ([]byte, error)
	SignServing func(pub any, name string, dnsNames []string, ips []net.IP) ([]byte, error)
	// PodCIDR allocates (or finds) the pod CIDR of a node.
	PodCIDR func(ctx context.Context, node string) (string, error)
	// ClusterCIDR and ClusterDNS are passed on to the node.
	ClusterCIDR, ClusterDNS string
}

// ServeHTTP answers a join request.
func (s *Signer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, apierrors.NewMethodNotSupported(nodesResource, r.Method))
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(bearer)), []byte(s.Token.String())) != 1 {
		writeError(w, apierrors.NewUnauthorized("a valid node token is required to join"))
		return
	}
	var req Request
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, apierrors.NewBadRequest("join request: "+err.Error()))
		return
	}
	if errs := validation.IsDNS1123Subdomain(req.NodeName); len(errs) > 0 {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("node name %q: %s", req.NodeName, strings.Join(errs, "; "))))
		return
	}
	ip := net.ParseIP(req.NodeIP)
	if ip == nil {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("node IP %q is not an IP address", req.NodeIP)))
		return
	}
	clientKey, err := csrKey(req.ClientCSR)
	if err != nil {
		writeError(w, apierrors.NewBadRequest("client certificate request: "+err.Error()))
		return
	}
	servingKey, err := csrKey(req.ServingCSR)
	if err != nil {
		writeError(w, apierrors.NewBadRequest("serving certificate request: "+err.Error()))
		return
	}
	clientCert, err := s.SignClient(clientKey, "system:node:"+req.NodeName, []string{"system:nodes"})
	if err != nil {
		writeError(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	servingCert, err := s.SignServing(servingKey, req.NodeName, []string{req.NodeName}, []net.IP{ip})
	if err != nil {
		writeError(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	cidr, err := s.PodCIDR(r.Context(), req.NodeName)
	if err != nil {
		writeError(w, apierrors.NewServiceUnavailable("pod CIDR: "+err.Error()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Response{
		CA: string(s.CA), ClientCert: string(clientCert), ServingCert: string(servingCert), PodCIDR: cidr,
		ClusterCIDR: s.ClusterCIDR, ClusterDNS: s.ClusterDNS, CAMAC: mac(s.Token, s.CA),
	})
}

var nodesResource = schema.GroupResource{Resource: "nodes"}

func mac(t Token, ca []byte) []byte {
	h := hmac.New(sha256.New, []byte(t.Secret))
	h.Write(ca)
	return h.Sum(nil)
}

func csrKey(p string) (any, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, err
	}
	return csr.PublicKey, nil
}

func writeError(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.Status()
	st.Kind, st.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(&st)
}

// Credentials are what a node keeps after joining.
type Credentials struct {
	CA, ClientCert, ClientKey, ServingCert, ServingKey []byte // PEM
	PodCIDR                                            string
	// ClusterCIDR and ClusterDNS: empty from servers older than these
	// fields (the node then uses the defaults).
	ClusterCIDR, ClusterDNS string
}

// Join asks the server at serverURL for node credentials with token. The
// server's TLS certificate is checked against the CA it returns, once
// the CA's MAC proves the server knows the token.
func Join(ctx context.Context, serverURL string, token Token, nodeName string, nodeIP net.IP) (*Credentials, error) {
	clientKey, clientCSR, err := newKeyAndCSR(nodeName)
	if err != nil {
		return nil, err
	}
	servingKey, servingCSR, err := newKeyAndCSR(nodeName)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(Request{NodeName: nodeName, NodeIP: nodeIP.String(), ClientCSR: string(clientCSR), ServingCSR: string(servingCSR)})
	var peer []*x509.Certificate
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{
			// Verified below, against the CA the MAC vouches for.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				peer = cs.PeerCertificates
				return nil
			},
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(serverURL, "/")+Path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token.String())
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", serverURL, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var st struct{ Message string }
		if json.Unmarshal(data, &st) == nil && st.Message != "" {
			return nil, fmt.Errorf("join %s: %s (%d)", serverURL, st.Message, resp.StatusCode)
		}
		return nil, fmt.Errorf("join %s: HTTP %d", serverURL, resp.StatusCode)
	}
	var out Response
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("join %s: %w", serverURL, err)
	}
	if !hmac.Equal(out.CAMAC, mac(token, []byte(out.CA))) {
		return nil, fmt.Errorf("join %s: the server could not prove it knows the token; refusing its CA", serverURL)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(out.CA)) {
		return nil, errors.New("join: the server sent no usable CA")
	}
	if len(peer) == 0 {
		return nil, errors.New("join: no server certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	if _, err := peer[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter}); err != nil {
		return nil, fmt.Errorf("join %s: the server's certificate is not from the cluster CA: %w", serverURL, err)
	}
	return &Credentials{
		CA: []byte(out.CA), ClientCert: []byte(out.ClientCert), ClientKey: clientKey,
		ServingCert: []byte(out.ServingCert), ServingKey: servingKey, PodCIDR: out.PodCIDR,
		ClusterCIDR: out.ClusterCIDR, ClusterDNS: out.ClusterDNS,
	}, nil
}

func newKeyAndCSR(name string) (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
