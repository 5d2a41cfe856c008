package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/satoken"
	"github.com/lotse/lotse/internal/storage"
)

// Token lifetimes as upstream bounds them.
const (
	defaultTokenSeconds = 3600
	minTokenSeconds     = 600
)

var tokenRequestGVK = authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")

// createToken serves serviceaccounts/token (a TokenRequest, what `kubectl
// create token` and the node agent post): a signed token for the service
// account, optionally bound to a pod, secret or node, which it then lives
// no longer than.
func (rq *request) createToken() error {
	if rq.s.cfg.Tokens == nil {
		return apierrors.NewMethodNotSupported(rq.kind.GroupResource(), "create")
	}
	body, err := rq.readBody()
	if err != nil {
		return err
	}
	into := &authenticationv1.TokenRequest{TypeMeta: metav1.TypeMeta{APIVersion: tokenRequestGVK.GroupVersion().String(), Kind: tokenRequestGVK.Kind}}
	obj, err := rq.decode(body, rq.r.Header.Get("Content-Type"), into)
	if err != nil {
		return err
	}
	tr, ok := obj.(*authenticationv1.TokenRequest)
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("expected a TokenRequest, got %T", obj))
	}
	if tr.Spec.ExpirationSeconds == nil {
		tr.Spec.ExpirationSeconds = ptr.To[int64](defaultTokenSeconds)
	}
	if errs := validateTokenRequest(tr); len(errs) > 0 {
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), tr.Name, errs)
	}
	cur, err := rq.res.Get(rq.ctx, rq.info.Namespace, rq.info.Name)
	if err != nil {
		return rq.storageErr(err)
	}
	sa := cur.(*corev1.ServiceAccount)
	req := satoken.Request{
		Namespace:      sa.Namespace,
		ServiceAccount: satoken.Ref{Name: sa.Name, UID: sa.UID},
		Audiences:      tr.Spec.Audiences,
		Expiration:     time.Duration(*tr.Spec.ExpirationSeconds) * time.Second,
	}
	if ref := tr.Spec.BoundObjectRef; ref != nil {
		if err := rq.bindToken(&req, ref, sa); err != nil {
			return err
		}
	}
	if len(tr.Spec.Audiences) == 0 {
		tr.Spec.Audiences = rq.s.cfg.Tokens.Audiences
	}
	now := time.Now()
	token, exp, err := rq.s.cfg.Tokens.Issue(req, now)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	tr.Name, tr.Namespace = sa.Name, sa.Namespace
	tr.CreationTimestamp = metav1.NewTime(now)
	tr.Status = authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(exp)}
	return rq.encode(http.StatusCreated, tr)
}

func validateTokenRequest(tr *authenticationv1.TokenRequest) field.ErrorList {
	var errs field.ErrorList
	exp := field.NewPath("spec", "expirationSeconds")
	switch s := *tr.Spec.ExpirationSeconds; {
	case s < minTokenSeconds:
		errs = append(errs, field.Invalid(exp, s, "may not specify a duration less than 10 minutes"))
	case s > math.MaxUint32:
		errs = append(errs, field.Invalid(exp, s, "may not specify a duration larger than 2^32 seconds"))
	}
	if ref := tr.Spec.BoundObjectRef; ref != nil {
		p := field.NewPath("spec", "boundObjectRef")
		switch ref.Kind {
		case "Pod", "Secret", "Node":
		default:
			errs = append(errs, field.NotSupported(p.Child("kind"), ref.Kind, []string{"Pod", "Secret", "Node"}))
		}
		if ref.APIVersion != "" && ref.APIVersion != "v1" {
			errs = append(errs, field.NotSupported(p.Child("apiVersion"), ref.APIVersion, []string{"v1"}))
		}
		if ref.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
	}
	return errs
}

// bindToken checks the object a token is to be bound to and records it.
func (rq *request) bindToken(req *satoken.Request, ref *authenticationv1.BoundObjectReference, sa *corev1.ServiceAccount) error {
	resource, namespace := strings.ToLower(ref.Kind)+"s", sa.Namespace
	if ref.Kind == "Node" {
		namespace = ""
	}
	gr := schema.GroupResource{Resource: resource}
	res, ok := rq.s.store.Resource(gr)
	if !ok {
		return apierrors.NewBadRequest("cannot bind a token to a " + ref.Kind)
	}
	obj, err := res.Get(rq.ctx, namespace, ref.Name)
	if errors.Is(err, storage.ErrNotFound) {
		return apierrors.NewNotFound(gr, ref.Name)
	}
	if err != nil {
		return storageError(err, gr, ref.Name)
	}
	acc := accessor(obj)
	if ref.UID != "" && ref.UID != acc.GetUID() {
		return apierrors.NewConflict(gr, ref.Name, fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record (%s); the object might have been deleted and then recreated", ref.UID, acc.GetUID()))
	}
	if pod, ok := obj.(*corev1.Pod); ok && pod.Spec.ServiceAccountName != sa.Name {
		return apierrors.NewBadRequest(fmt.Sprintf("cannot bind a token for serviceaccount %q to pod %q running as serviceaccount %q", sa.Name, pod.Name, pod.Spec.ServiceAccountName))
	}
	bound := &satoken.Ref{Name: acc.GetName(), UID: acc.GetUID()}
	switch ref.Kind {
	case "Pod":
		req.Pod = bound
	case "Secret":
		req.Secret = bound
	case "Node":
		req.Node = bound
	}
	ref.UID = acc.GetUID()
	ref.APIVersion = "v1"
	return nil
}

// authenticateToken accepts a service account token in the Authorization
// header.
func (s *Server) authenticateToken(r *http.Request) (*User, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || s.cfg.Tokens == nil {
		return nil, false
	}
	name, groups, err := s.cfg.Tokens.Authenticate(strings.TrimSpace(token), time.Now(), nil, s.lookupBound)
	if err != nil {
		s.log.Debug("service account token rejected", "err", err)
		return nil, false
	}
	return &User{Name: name, Groups: append(groups, "system:authenticated")}, true
}

// lookupBound reads what a token names from the watch cache, and from
// etcd when the cache has not seen it yet (an object created a moment ago).
func (s *Server) lookupBound(resource, namespace, name string) (metav1.Object, error) {
	res, ok := s.store.Resource(schema.GroupResource{Resource: resource})
	if !ok {
		return nil, fmt.Errorf("no resource %s", resource)
	}
	obj, err := res.GetCached(namespace, name)
	if errors.Is(err, storage.ErrNotFound) {
		obj, err = res.Get(context.Background(), namespace, name)
	}
	if err != nil {
		return nil, err
	}
	return accessor(obj), nil
}

// The kube-api-access volume upstream's ServiceAccount admission gives
// pods: a token for the pod's service account, the cluster CA from the
// kube-root-ca.crt ConfigMap and the namespace, where client libraries
// look for them.
const (
	apiAccessVolumePrefix = "kube-api-access-"
	apiAccessMountPath    = "/var/run/secrets/kubernetes.io/serviceaccount"
	rootCAConfigMap       = "kube-root-ca.crt"
)

// admitServiceAccount is upstream's ServiceAccount admission for a new
// pod: its service account must exist (the "default" one is waited for a
// little, as its controller may not have made it yet), and unless
// automounting is turned off every container gets the kube-api-access
// volume.
func (s *Server) admitServiceAccount(ctx context.Context, pod *corev1.Pod) error {
	sa, err := s.serviceAccount(ctx, pod.Namespace, pod.Spec.ServiceAccountName)
	if err != nil {
		return apierrors.NewForbidden(corev1.Resource("pods"), pod.Name,
			fmt.Errorf("error looking up service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err))
	}
	automount := ptr.Deref(sa.AutomountServiceAccountToken, true)
	if pod.Spec.AutomountServiceAccountToken != nil {
		automount = *pod.Spec.AutomountServiceAccountToken
	}
	if !automount {
		return nil
	}
	name := ""
	mount := func(containers []corev1.Container) {
		for i := range containers {
			c := &containers[i]
			if slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == apiAccessMountPath }) {
				continue
			}
			if name == "" {
				name = generateName(apiAccessVolumePrefix)
			}
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: apiAccessMountPath})
		}
	}
	mount(pod.Spec.InitContainers)
	mount(pod.Spec.Containers)
	if name != "" {
		pod.Spec.Volumes = append(pod.Spec.Volumes, apiAccessVolume(name))
	}
	return nil
}

func apiAccessVolume(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To[int32](0o644),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To[int64](satoken.WarnAfterSeconds), Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfigMap},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
			}}}},
		},
	}}}
}

// serviceAccount reads a service account from the watch cache, then from
// etcd; the "default" one is tried for up to about two seconds.
func (s *Server) serviceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	gr := corev1.Resource("serviceaccounts")
	res, ok := s.store.Resource(gr)
	if !ok {
		return nil, apierrors.NewNotFound(gr, name)
	}
	if obj, err := res.GetCached(namespace, name); err == nil {
		return obj.(*corev1.ServiceAccount), nil
	}
	attempts := 1
	if name == "default" {
		attempts = 10
	}
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(100+rand.IntN(100)) * time.Millisecond):
			}
		}
		obj, err := res.Get(ctx, namespace, name)
		if err == nil {
			return obj.(*corev1.ServiceAccount), nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
	}
	return nil, apierrors.NewNotFound(gr, name)
}
