package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// File names inside DIR/pki.
const (
	caCertFile      = "ca.crt"
	caKeyFile       = "ca.key"
	servingCertFile = "serving.crt"
	servingKeyFile  = "serving.key"
	adminCertFile   = "admin.crt"
	adminKeyFile    = "admin.key"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// renewBefore is how close to expiry a leaf certificate may get before
	// LoadOrCreate replaces it.
	renewBefore = 30 * 24 * time.Hour
	// backdate tolerates clocks that run a little behind ours.
	backdate = 5 * time.Minute

	// AdminUser and AdminGroup name the identity in the admin certificate;
	// system:masters is the group RBAC lets do anything.
	AdminUser  = "lotse-admin"
	AdminGroup = "system:masters"
)

// clusterDNSNames are the in-cluster names of the API server's Service.
var clusterDNSNames = []string{
	"kubernetes",
	"kubernetes.default",
	"kubernetes.default.svc",
	"kubernetes.default.svc.cluster.local",
}

// Bundle holds the cluster CA and the certificates lotse server needs.
type Bundle struct {
	CA    *x509.Certificate
	CAKey crypto.Signer
	// CAPEM is CA in PEM form, as clients are handed it.
	CAPEM []byte
	// ServingCert is the API server's TLS certificate, chained to CA.
	ServingCert tls.Certificate
	// AdminCertPEM and AdminKeyPEM are a client certificate for AdminUser
	// in AdminGroup.
	AdminCertPEM, AdminKeyPEM []byte
}

// LoadOrCreate reads DIR/pki/{ca.crt,ca.key,serving.crt,serving.key,admin.crt,admin.key},
// creating what is missing.
//
// The CA is created once and reused on every later start; a CA that is
// present but unreadable is an error rather than a reason to make a new one,
// since every issued credential hangs off it. The serving certificate names
// localhost, 127.0.0.1, ::1, the host name, extraSANs (IPs or DNS names) and
// the in-cluster kubernetes.default.svc names; it is reissued when that set
// changes, when it was not signed by the CA, or when it expires within 30
// days. The admin certificate is reissued on the same terms.
func LoadOrCreate(dir string, extraSANs []string) (*Bundle, error) {
	pkiDir := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	// MkdirAll keeps the mode of a directory that already exists.
	if err := os.Chmod(pkiDir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}

	b, err := loadOrCreateCA(pkiDir)
	if err != nil {
		return nil, err
	}

	dnsNames, ips := servingSANs(extraSANs)
	now := time.Now()

	servingCertPEM, servingKeyPEM, err := readPair(pkiDir, servingCertFile, servingKeyFile)
	if err != nil {
		return nil, err
	}
	if servingCertPEM == nil || !b.servingUpToDate(servingCertPEM, servingKeyPEM, dnsNames, ips, now) {
		servingCertPEM, servingKeyPEM, err = b.issue(leafTemplate{
			subject:  pkix.Name{CommonName: "lotse-apiserver"},
			usage:    x509.ExtKeyUsageServerAuth,
			dnsNames: dnsNames,
			ips:      ips,
			notAfter: now.Add(leafValidity),
		})
		if err != nil {
			return nil, err
		}
		if err := writePair(pkiDir, servingCertFile, servingKeyFile, servingCertPEM, servingKeyPEM); err != nil {
			return nil, err
		}
	}
	b.ServingCert, err = tls.X509KeyPair(servingCertPEM, servingKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: serving certificate: %w", err)
	}

	b.AdminCertPEM, b.AdminKeyPEM, err = readPair(pkiDir, adminCertFile, adminKeyFile)
	if err != nil {
		return nil, err
	}
	if b.AdminCertPEM == nil || !b.adminUpToDate(now) {
		b.AdminCertPEM, b.AdminKeyPEM, err = b.IssueClientCert(AdminUser, []string{AdminGroup}, leafValidity)
		if err != nil {
			return nil, err
		}
		if err := writePair(pkiDir, adminCertFile, adminKeyFile, b.AdminCertPEM, b.AdminKeyPEM); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// loadOrCreateCA reads the CA pair, or makes and writes one when neither
// file exists.
func loadOrCreateCA(pkiDir string) (*Bundle, error) {
	certPEM, keyPEM, err := readPair(pkiDir, caCertFile, caKeyFile)
	if err != nil {
		return nil, err
	}
	if certPEM == nil {
		certPEM, keyPEM, err = newCA(time.Now())
		if err != nil {
			return nil, err
		}
		if err := writePair(pkiDir, caCertFile, caKeyFile, certPEM, keyPEM); err != nil {
			return nil, err
		}
	}
	ca, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", caCertFile, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", caKeyFile, err)
	}
	if !publicKeysEqual(ca.PublicKey, key.Public()) {
		return nil, fmt.Errorf("pki: %s does not belong to %s", caKeyFile, caCertFile)
	}
	if !ca.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", caCertFile)
	}
	return &Bundle{CA: ca, CAKey: key, CAPEM: certPEM}, nil
}

func newCA(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The creation time in the name tells two clusters' CAs apart in a
		// kubeconfig or a trust store.
		Subject:               pkix.Name{CommonName: fmt.Sprintf("lotse-ca@%d", now.Unix())},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// IssueClientCert signs a client certificate for user in groups, valid for
// validity from now. The API server reads the user from the common name and
// the groups from the organizations, as Kubernetes does.
func (b *Bundle) IssueClientCert(user string, groups []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if user == "" {
		return nil, nil, errors.New("pki: client certificate needs a user name")
	}
	if validity <= 0 {
		return nil, nil, fmt.Errorf("pki: client certificate validity %v is not positive", validity)
	}
	return b.issue(leafTemplate{
		subject:  pkix.Name{CommonName: user, Organization: slices.Clone(groups)},
		usage:    x509.ExtKeyUsageClientAuth,
		notAfter: time.Now().Add(validity),
	})
}

// IssueServingCert signs a TLS serving certificate for name (the common
// name) valid for the given DNS names and IPs, as a node agent serves its
// API with.
func (b *Bundle) IssueServingCert(name string, dnsNames []string, ips []net.IP, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, nil, errors.New("pki: serving certificate needs a DNS name or an IP")
	}
	return b.issue(leafTemplate{
		subject:  pkix.Name{CommonName: name},
		usage:    x509.ExtKeyUsageServerAuth,
		dnsNames: slices.Clone(dnsNames),
		ips:      slices.Clone(ips),
		notAfter: time.Now().Add(validity),
	})
}

// SignClientKey certifies pub (from a node's certificate request: its
// private key never leaves the node) as user in groups.
func (b *Bundle) SignClientKey(pub crypto.PublicKey, user string, groups []string, validity time.Duration) ([]byte, error) {
	return b.sign(pub, leafTemplate{
		subject:  pkix.Name{CommonName: user, Organization: slices.Clone(groups)},
		usage:    x509.ExtKeyUsageClientAuth,
		notAfter: time.Now().Add(validity),
	})
}

// SignServingKey certifies pub for serving TLS as dnsNames and ips.
func (b *Bundle) SignServingKey(pub crypto.PublicKey, name string, dnsNames []string, ips []net.IP, validity time.Duration) ([]byte, error) {
	return b.sign(pub, leafTemplate{
		subject:  pkix.Name{CommonName: name},
		usage:    x509.ExtKeyUsageServerAuth,
		dnsNames: slices.Clone(dnsNames),
		ips:      slices.Clone(ips),
		notAfter: time.Now().Add(validity),
	})
}

// leafTemplate is what differs between the leaf certificates we issue.
type leafTemplate struct {
	subject  pkix.Name
	usage    x509.ExtKeyUsage
	dnsNames []string
	ips      []net.IP
	notAfter time.Time
}

// issue makes a fresh key and a certificate for it signed by the CA.
func (b *Bundle) issue(t leafTemplate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate key: %w", err)
	}
	certPEM, err = b.sign(key.Public(), t)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// sign makes a certificate for pub signed by the CA.
func (b *Bundle) sign(pub crypto.PublicKey, t leafTemplate) ([]byte, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notAfter := t.notAfter
	// A leaf that outlives its CA would fail verification early anyway.
	if notAfter.After(b.CA.NotAfter) {
		notAfter = b.CA.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               t.subject,
		NotBefore:             time.Now().Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{t.usage},
		BasicConstraintsValid: true,
		DNSNames:              t.dnsNames,
		IPAddresses:           t.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, b.CA, pub, b.CAKey)
	if err != nil {
		return nil, fmt.Errorf("pki: sign certificate for %q: %w", t.subject.CommonName, err)
	}
	return encodeCert(der), nil
}

// servingSANs returns the wanted DNS names and IPs of the serving
// certificate, sorted and without duplicates so sets compare by equality.
func servingSANs(extra []string) ([]string, []net.IP) {
	dns := map[string]bool{"localhost": true}
	ips := map[string]net.IP{}
	addIP := func(ip net.IP) { ips[ip.String()] = ip }
	addIP(net.ParseIP("127.0.0.1"))
	addIP(net.ParseIP("::1"))
	for _, n := range clusterDNSNames {
		dns[n] = true
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		dns[strings.ToLower(host)] = true
	}
	for _, s := range extra {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if ip := net.ParseIP(s); ip != nil {
			addIP(ip)
			continue
		}
		dns[strings.ToLower(s)] = true
	}
	return sortedDNS(slices.Collect(maps.Keys(dns))), sortedIPs(slices.Collect(maps.Values(ips)))
}

// servingUpToDate reports whether the stored serving pair can be kept.
func (b *Bundle) servingUpToDate(certPEM, keyPEM []byte, dnsNames []string, ips []net.IP, now time.Time) bool {
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return false
	}
	cert, err := parseCert(certPEM)
	if err != nil || !b.fresh(cert, x509.ExtKeyUsageServerAuth, now) {
		return false
	}
	return slices.Equal(sortedDNS(cert.DNSNames), dnsNames) &&
		slices.EqualFunc(sortedIPs(cert.IPAddresses), ips, net.IP.Equal)
}

// adminUpToDate reports whether the loaded admin pair can be kept.
func (b *Bundle) adminUpToDate(now time.Time) bool {
	if _, err := tls.X509KeyPair(b.AdminCertPEM, b.AdminKeyPEM); err != nil {
		return false
	}
	cert, err := parseCert(b.AdminCertPEM)
	if err != nil || !b.fresh(cert, x509.ExtKeyUsageClientAuth, now) {
		return false
	}
	return cert.Subject.CommonName == AdminUser && slices.Equal(cert.Subject.Organization, []string{AdminGroup})
}

// fresh reports whether cert chains to our CA for usage and stays valid for
// longer than renewBefore.
func (b *Bundle) fresh(cert *x509.Certificate, usage x509.ExtKeyUsage, now time.Time) bool {
	if now.Add(renewBefore).After(cert.NotAfter) {
		return false
	}
	roots := x509.NewCertPool()
	roots.AddCert(b.CA)
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err == nil
}

// WriteKubeconfig writes an admin kubeconfig for serverURL to path: cluster
// "lotse", user "admin" and context "lotse", with the CA and the admin
// client certificate embedded. The file is written with mode 0600 through a
// temporary file and a rename, so a reader never sees half of it.
func (b *Bundle) WriteKubeconfig(path, serverURL string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["lotse"] = &clientcmdapi.Cluster{
		Server:                   serverURL,
		CertificateAuthorityData: b.CAPEM,
	}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: b.AdminCertPEM,
		ClientKeyData:         b.AdminKeyPEM,
	}
	cfg.Contexts["lotse"] = &clientcmdapi.Context{Cluster: "lotse", AuthInfo: "admin"}
	cfg.CurrentContext = "lotse"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("pki: encode kubeconfig: %w", err)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
	}
	return writeFileAtomic(path, data, 0o600)
}

// readPair returns both files of a cert/key pair, or nil, nil when neither
// exists. Half a pair is an error: something removed a file by hand.
func readPair(dir, certName, keyName string) (certPEM, keyPEM []byte, err error) {
	certPEM, certErr := os.ReadFile(filepath.Join(dir, certName))
	keyPEM, keyErr := os.ReadFile(filepath.Join(dir, keyName))
	certMissing, keyMissing := errors.Is(certErr, fs.ErrNotExist), errors.Is(keyErr, fs.ErrNotExist)
	switch {
	case certMissing && keyMissing:
		return nil, nil, nil
	case certErr != nil && !certMissing:
		return nil, nil, fmt.Errorf("pki: %w", certErr)
	case keyErr != nil && !keyMissing:
		return nil, nil, fmt.Errorf("pki: %w", keyErr)
	case certMissing || keyMissing:
		// A lost leaf key or cert is harmless to replace; a lost CA half is not.
		if certName == caCertFile {
			return nil, nil, fmt.Errorf("pki: %s and %s must both exist or both be absent", certName, keyName)
		}
		return nil, nil, nil
	}
	return certPEM, keyPEM, nil
}

func writePair(dir, certName, keyName string, certPEM, keyPEM []byte) error {
	// Key first: a crash between the two leaves a pair that fails the
	// key-match check and is reissued, never a certificate without its key.
	if err := writeFileAtomic(filepath.Join(dir, keyName), keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, certName), certPEM, 0o644)
}

// writeFileAtomic replaces path with data via a synced temp file in the same
// directory and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return serial, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// parseKey accepts SEC 1 EC keys (what we write) and PKCS #8 keys, so a CA
// brought in from elsewhere can be dropped into DIR/pki.
func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	switch block.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("key of type %T cannot sign", key)
		}
		return signer, nil
	}
	return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

func sortedDNS(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func sortedIPs(ips []net.IP) []net.IP {
	out := slices.Clone(ips)
	// Compare 16-byte forms so 127.0.0.1 parsed two ways sorts as one.
	slices.SortFunc(out, func(a, b net.IP) int { return bytes.Compare(a.To16(), b.To16()) })
	return slices.CompactFunc(out, net.IP.Equal)
}
