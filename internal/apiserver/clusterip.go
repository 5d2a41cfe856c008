package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/lotse/lotse/internal/storage"
)

// DefaultServiceCIDR is the range Service cluster IPs come from (k3s uses
// the same one, so addresses look familiar).
const DefaultServiceCIDR = "10.43.0.0/16"

var ipAddressesGR = networkingv1.Resource("ipaddresses")

// clusterIPs hands out Service cluster IPs. Each allocated address is an
// IPAddress object named by the address, created in etcd before the
// Service: etcd's create-if-absent makes the reservation unique even when
// several API servers allocate at once.
type clusterIPs struct {
	prefix netip.Prefix
	store  *storage.Resource
}

func newClusterIPs(cidr string, store *storage.Store) (*clusterIPs, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil || !prefix.Addr().Is4() {
		return nil, fmt.Errorf("apiserver: invalid service CIDR %q (an IPv4 CIDR is required)", cidr)
	}
	res, ok := store.Resource(ipAddressesGR)
	if !ok {
		return nil, errors.New("apiserver: ipaddresses are not stored")
	}
	return &clusterIPs{prefix: prefix.Masked(), store: res}, nil
}

// wantsIP reports whether a Service of this shape gets a cluster IP.
func wantsIP(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP != corev1.ClusterIPNone
}

func (c *clusterIPs) size() int64 {
	return int64(1) << (32 - c.prefix.Bits())
}

// nth returns the address at offset n of the range.
func (c *clusterIPs) nth(n int64) netip.Addr {
	base := new(big.Int).SetBytes(c.prefix.Addr().AsSlice())
	b := base.Add(base, big.NewInt(n)).FillBytes(make([]byte, 4))
	return netip.AddrFrom4([4]byte(b))
}

// allocate gives svc its cluster IP: the one it asks for, or a free one.
// It returns a release function to undo the reservation if the Service is
// not stored after all. dryRun checks and picks without reserving.
func (c *clusterIPs) allocate(ctx context.Context, svc *corev1.Service, dryRun bool) (release func(), err error) {
	noop := func() {}
	if svc.Spec.Type != corev1.ServiceTypeExternalName && len(svc.Spec.IPFamilies) == 0 {
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone && len(svc.Spec.ClusterIPs) == 0 {
		svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	}
	if !wantsIP(svc) {
		return noop, nil
	}
	path := field.NewPath("spec", "clusterIPs").Index(0)
	if want := svc.Spec.ClusterIP; want != "" {
		addr, err := netip.ParseAddr(want)
		if err != nil {
			return noop, invalidService(svc, field.Invalid(path, want, "must be a valid IP address"))
		}
		if !c.prefix.Contains(addr) || addr == c.prefix.Addr() {
			return noop, invalidService(svc, field.Invalid(path, want,
				fmt.Sprintf("the provided IP (%s) is not in the valid range. The range of valid IPs is %s", want, c.prefix)))
		}
		svc.Spec.ClusterIPs = []string{want}
		if dryRun {
			if _, err := c.store.Get(ctx, "", addr.String()); err == nil {
				return noop, invalidService(svc, field.Invalid(path, want, "provided IP is already allocated"))
			}
			return noop, nil
		}
		if err := c.reserve(ctx, addr, svc); err != nil {
			if errors.Is(err, storage.ErrExists) {
				return noop, invalidService(svc, field.Invalid(path, want, "provided IP is already allocated"))
			}
			return noop, storageError(err, ipAddressesGR, want)
		}
		return c.releaser(ctx, addr), nil
	}
	// Start at a random offset and probe upwards, skipping the network
	// address, the broadcast address, .1 and .10 (kept for the kubernetes
	// and kube-dns services).
	n := c.size()
	start := rand.Int64N(n)
	for i := int64(0); i < n; i++ {
		off := (start + i) % n
		if off < 2 || off == 10 || off == n-1 {
			continue
		}
		addr := c.nth(off)
		if _, err := c.store.GetCached("", addr.String()); err == nil {
			continue
		}
		if dryRun {
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = addr.String(), []string{addr.String()}
			return noop, nil
		}
		err := c.reserve(ctx, addr, svc)
		if errors.Is(err, storage.ErrExists) {
			continue
		}
		if err != nil {
			return noop, storageError(err, ipAddressesGR, addr.String())
		}
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = addr.String(), []string{addr.String()}
		return c.releaser(ctx, addr), nil
	}
	return noop, apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: range %s is full", c.prefix))
}

func (c *clusterIPs) reserve(ctx context.Context, addr netip.Addr, svc *corev1.Service) error {
	ip := &networkingv1.IPAddress{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "IPAddress"},
		ObjectMeta: metav1.ObjectMeta{
			Name: addr.String(), UID: uuid.NewUUID(), CreationTimestamp: metav1.Now(),
			Labels: map[string]string{
				networkingv1.LabelIPAddressFamily: string(corev1.IPv4Protocol),
				networkingv1.LabelManagedBy:       "ipallocator.k8s.io",
			},
		},
		Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{
			Resource: "services", Namespace: svc.Namespace, Name: svc.Name,
		}},
	}
	_, err := c.store.Create(ctx, "", addr.String(), ip)
	return err
}

func (c *clusterIPs) releaser(ctx context.Context, addr netip.Addr) func() {
	return func() { c.release(context.WithoutCancel(ctx), addr.String()) }
}

// release frees the address a Service held.
func (c *clusterIPs) release(ctx context.Context, ip string) {
	if ip == "" || ip == corev1.ClusterIPNone || net.ParseIP(ip) == nil {
		return
	}
	_, _ = c.store.Delete(ctx, "", ip, nil)
}

func invalidService(svc *corev1.Service, errs ...*field.Error) error {
	return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
}
