package ingress

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// serveHTTP routes one request by the current table.
func (c *Controller) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rt := c.table.Load().match(normalizeHost(r.Host), r.URL.Path)
	if rt == nil {
		http.Error(w, "404 page not found: no Ingress rule matches this host and path", http.StatusNotFound)
		return
	}
	be := rt.backend
	if be.unavailable != "" {
		http.Error(w, "503 service unavailable: "+be.unavailable, http.StatusServiceUnavailable)
		return
	}
	ep := be.pick()
	if ep == nil {
		http.Error(w, "503 service unavailable: no ready endpoints for "+be.name, http.StatusServiceUnavailable)
		return
	}
	if ep.handler == nil { // tables built without proxies (unit tests)
		http.Error(w, "502 bad gateway: no proxy for "+ep.addr, http.StatusBadGateway)
		return
	}
	ep.handler.ServeHTTP(w, r)
}

// newEndpointProxy makes the reverse proxy for one endpoint. Proxies are
// cheap and share the Transport (and so its idle connections) and the
// buffer pool; one per endpoint avoids passing the target per request.
func (c *Controller) newEndpointProxy(addr string) http.Handler {
	target := &url.URL{Scheme: "http", Host: addr}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Backends see the host the client asked for, as with every
			// ingress controller, not the pod address.
			pr.Out.Host = pr.In.Host
			// Forwarded headers from the client are dropped by Rewrite's
			// contract and set afresh: we are the edge and do not trust them.
			pr.SetXForwarded()
		},
		Transport:  c.transport,
		BufferPool: c.bufferPool,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil {
				c.log.Warn("proxy error", "endpoint", addr, "host", r.Host, "path", r.URL.Path, "err", err)
			}
			http.Error(w, "502 bad gateway: "+addr+" did not answer", http.StatusBadGateway)
		},
		ErrorLog: slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
	}
}

// newTransport returns the Transport shared by all endpoints. Idle
// connections per endpoint are plentiful because a busy ingress talks to
// few pods with many concurrent requests; the default of 2 would make it
// dial (and leave TIME_WAIT sockets) on nearly every request.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil, // pods are reached directly, never through HTTP_PROXY
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0, // no global cap; the per-host cap bounds it
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Pass bodies through as the backend encoded them; otherwise the
		// Transport would ask for gzip and decompress behind the client's back.
		DisableCompression: true,
		// No ResponseHeaderTimeout: long polls and slow handlers are the
		// backend's business, and a client that gives up cancels the request.
		ReadBufferSize:  32 << 10,
		WriteBufferSize: 32 << 10,
	}
}

// bufferPool recycles the copy buffers of ReverseProxy.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(p []byte) { b.p.Put(&p) }

// Serve serves the proxy: plain HTTP on httpLn and TLS on httpsLn, with the
// certificate chosen by SNI from the served Ingresses' Secrets. Either
// listener may be nil. It returns when ctx is done (after a graceful
// shutdown of up to 10 s) or when a listener fails.
func (c *Controller) Serve(ctx context.Context, httpLn, httpsLn net.Listener) error {
	errLog := slog.NewLogLogger(c.log.Handler(), slog.LevelDebug)
	type server struct {
		srv *http.Server
		run func() error
	}
	var servers []server
	if httpLn != nil {
		srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: errLog}
		servers = append(servers, server{srv, func() error { return srv.Serve(httpLn) }})
	}
	if httpsLn != nil {
		// HTTP/1.1 only: WebSocket clients upgrade over it, and HTTP/2 to
		// clients buys little in front of HTTP/1.1 pods.
		protos := new(http.Protocols)
		protos.SetHTTP1(true)
		srv := &http.Server{
			Protocols:         protos,
			Handler:           c.Handler(),
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          errLog,
			TLSConfig: &tls.Config{
				MinVersion:     tls.VersionTLS12,
				GetCertificate: c.getCertificate,
			},
		}
		servers = append(servers, server{srv, func() error { return srv.ServeTLS(httpsLn, "", "") }})
	}
	if len(servers) == 0 {
		<-ctx.Done()
		return nil
	}

	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.run() }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("ingress: serving: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		if serr := s.srv.Shutdown(sctx); serr != nil {
			_ = s.srv.Close() // graceful time is up: drop what is left
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// getCertificate picks the certificate for a TLS handshake by SNI: an
// Ingress's Secret, else the generated default.
func (c *Controller) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if cert := c.table.Load().certificate(hello.ServerName); cert != nil {
		return cert, nil
	}
	if c.defaultCert == nil {
		return nil, errors.New("ingress: no certificate for " + hello.ServerName)
	}
	return c.defaultCert, nil
}

// selfSignedCert makes the certificate served for unknown names, as
// ingress controllers do, so that TLS clients get an answer they can choose
// to ignore instead of a handshake failure.
func selfSignedCert(now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "lotse ingress default certificate", Organization: []string{"lotse"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
