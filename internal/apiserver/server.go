package apiserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/lotse/lotse/internal/apiserver/registry"
	"github.com/lotse/lotse/internal/pki"
	"github.com/lotse/lotse/internal/satoken"
	"github.com/lotse/lotse/internal/storage"
)

// MaxRequestBytes is the largest request body accepted, as upstream: 3 MiB.
const MaxRequestBytes = 3 * 1024 * 1024

// User is an authenticated caller.
type User struct {
	Name   string
	Groups []string
}

// Authenticator identifies the caller of a request; ok is false when the
// request carries no credentials it accepts.
type Authenticator func(r *http.Request) (u *User, ok bool)

// Config wires the API server.
type Config struct {
	Registry      *registry.Registry
	Store         *storage.Store
	Authenticator Authenticator
	// OpenAPI serves /openapi/v2 and /openapi/v3...
	OpenAPI http.Handler
	// Ready reports whether the server should answer /readyz with 200.
	Ready   func() error
	Version version.Info
	Logger  *slog.Logger
	// NodeTransport reaches node agents (TLS with the API server's client
	// certificate) for pods/log, exec, attach and portforward; nil turns
	// those off.
	NodeTransport http.RoundTripper
	// Images, when set, is the image registry served at /v2/ to
	// authenticated clients.
	Images http.Handler
	// ServiceCIDR is the range of Service cluster IPs; DefaultServiceCIDR if empty.
	ServiceCIDR string
	// Profiling serves Go's profiles at /debug/pprof/ to members of
	// system:masters, as kube-apiserver's --profiling does.
	Profiling bool
	// Tokens issues service account tokens (serviceaccounts/token) and
	// authenticates requests that bear one; nil turns both off.
	Tokens *satoken.Issuer
	// ServiceAccountAdmission runs upstream's ServiceAccount admission on
	// new pods: their service account must exist, and they get the
	// kube-api-access volume with a token, the cluster CA and namespace.
	ServiceAccountAdmission bool
}

// Server is the HTTP handler of the Kubernetes API.
type Server struct {
	cfg       Config
	log       *slog.Logger
	reg       *registry.Registry
	store     *storage.Store
	discovery *discovery
	ips       *clusterIPs
	nodePorts *nodePorts
	// fieldManagers serve server-side apply and record managedFields.
	fieldManagers *fieldManagers
	// namespaceMarkedAt is the etcd revision at which this server last
	// marked a namespace Terminating: the namespace admission waits for
	// its cache to have seen it, so that content created right after the
	// delete is refused, as upstream's live lookup of recently deleted
	// namespaces ensures.
	namespaceMarkedAt atomic.Int64
}

// New builds the API server handler.
func New(cfg Config) (*Server, error) {
	if cfg.Registry == nil || cfg.Store == nil || cfg.Authenticator == nil {
		return nil, fmt.Errorf("apiserver: registry, store and authenticator are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Ready == nil {
		cfg.Ready = func() error { return nil }
	}
	if cfg.ServiceCIDR == "" {
		cfg.ServiceCIDR = DefaultServiceCIDR
	}
	s := &Server{cfg: cfg, log: cfg.Logger, reg: cfg.Registry, store: cfg.Store, fieldManagers: newFieldManagers(cfg.Registry)}
	virtual := []virtualGroupVersion{{GV: authenticationGV, Resources: authenticationResources},
		{GV: authorizationGV, Resources: authorizationResources}}
	if cfg.NodeTransport != nil {
		virtual = append(virtual, virtualGroupVersion{GV: metricsGV, Resources: metricsResources})
	}
	s.discovery = newDiscovery(cfg.Registry, virtual...)
	ips, err := newClusterIPs(cfg.ServiceCIDR, cfg.Store)
	if err != nil {
		return nil, err
	}
	s.ips = ips
	services, _ := cfg.Store.Resource(corev1.Resource("services"))
	s.nodePorts = &nodePorts{services: services}
	return s, nil
}

type userKey struct{}

// UserFrom returns the authenticated caller of a request.
func UserFrom(ctx context.Context) *User {
	u, _ := ctx.Value(userKey{}).(*User)
	return u
}

// ServeHTTP authenticates the request and routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
			s.writeError(w, r, apierrors.NewInternalError(fmt.Errorf("%v", v)))
		}
	}()
	path := r.URL.Path
	switch path {
	case "/healthz", "/livez", "/readyz":
		s.serveHealth(w, r)
		return
	case "/version", "/version/":
		writeJSON(w, http.StatusOK, s.cfg.Version)
		return
	}
	u, ok := s.cfg.Authenticator(r)
	if !ok {
		u, ok = s.authenticateToken(r)
	}
	if !ok {
		s.writeError(w, r, apierrors.NewUnauthorized("Unauthorized"))
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), userKey{}, u))
	if s.cfg.Images != nil && (path == "/v2" || strings.HasPrefix(path, "/v2/")) {
		// Image layers are larger than any API object: no body limit.
		s.cfg.Images.ServeHTTP(w, r)
		return
	}
	if r.ContentLength > MaxRequestBytes {
		s.writeError(w, r, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", MaxRequestBytes)))
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
	}
	switch {
	case s.cfg.Profiling && strings.HasPrefix(path, "/debug/pprof"):
		s.serveProfile(w, r)
	case s.cfg.Tokens != nil && path == satoken.OpenIDConfigurationPath:
		writeRaw(w, http.StatusOK, s.cfg.Tokens.OpenIDConfiguration())
	case s.cfg.Tokens != nil && path == satoken.JWKSPath:
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(s.cfg.Tokens.JWKS())
	case strings.HasPrefix(path, "/apis/"+authenticationGV.String()+"/"):
		s.serveAuthentication(w, r)
	case strings.HasPrefix(path, "/apis/"+authorizationGV.String()+"/"):
		s.serveAuthorization(w, r)
	case path == "/api" || path == "/api/" || path == "/apis" || path == "/apis/":
		s.discovery.serveRoot(s, w, r)
	case s.cfg.NodeTransport != nil && strings.HasPrefix(path, "/apis/"+metricsGV.String()+"/"):
		s.serveMetrics(w, r)
	case strings.HasPrefix(path, "/openapi/") && s.cfg.OpenAPI != nil:
		s.cfg.OpenAPI.ServeHTTP(w, r)
	case path == "/metrics":
		prometheusMetrics.ServeHTTP(w, r)
	default:
		if info, ok := parseResourcePath(r); ok {
			instrumented(w, r, info, func(w http.ResponseWriter) { s.serveResource(w, r, info) })
			return
		}
		if s.discovery.serveGroup(s, w, r) {
			return
		}
		s.writeError(w, r, apierrors.NewNotFound(notFoundResource, path))
	}
}

// serveProfile answers /debug/pprof/ for the cluster's administrators;
// RBAC gives nobody else that non-resource URL by default either.
func (s *Server) serveProfile(w http.ResponseWriter, r *http.Request) {
	if !slices.Contains(UserFrom(r.Context()).Groups, pki.AdminGroup) {
		s.writeError(w, r, apierrors.NewForbidden(schema.GroupResource{}, "", fmt.Errorf("user %q cannot get path %q", UserFrom(r.Context()).Name, r.URL.Path)))
		return
	}
	switch name, _ := strings.CutPrefix(r.URL.Path, "/debug/pprof/"); name {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r)
	}
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	var err error
	if r.URL.Path == "/readyz" {
		err = s.cfg.Ready()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	name := strings.TrimPrefix(r.URL.Path, "/")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "[-]%s failed: %v\n%s check failed\n", "storage", err, name)
		return
	}
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		fmt.Fprintf(w, "[+]ping ok\n[+]etcd ok\n%s check passed\n", name)
		return
	}
	fmt.Fprint(w, "ok")
}

// StorageResources lists what the store must hold for the registry's
// kinds: one resource per storage kind, however many versions serve it.
// Events expire eventTTL after their last write (0: never).
func StorageResources(reg *registry.Registry, eventTTL time.Duration) []storage.ResourceSpec {
	var specs []storage.ResourceSpec
	seen := map[schema.GroupResource]bool{}
	for _, k := range reg.Kinds() {
		if k.GVK != k.StorageGVK || seen[k.StorageResource] {
			continue
		}
		seen[k.StorageResource] = true
		spec := storage.ResourceSpec{GroupResource: k.StorageResource, Kind: k.StorageGVK, Namespaced: k.Namespaced, FieldLabels: k.FieldLabels}
		if k.StorageResource == (schema.GroupResource{Resource: "events"}) {
			spec.TTL = eventTTL
		}
		specs = append(specs, spec)
	}
	return specs
}
