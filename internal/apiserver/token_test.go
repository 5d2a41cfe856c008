package apiserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/testserver"
)

// startWithServiceAccounts runs a server with the ServiceAccount admission
// and the controllers behind it (default accounts, kube-root-ca.crt).
func startWithServiceAccounts(t *testing.T) *env {
	t.Helper()
	o := apiOnly(testserver.Options{ServiceAccountAdmission: true})
	o.Controllers = append(o.Controllers, "root-ca-cert-publisher")
	return newEnv(t, testserver.Start(t, o))
}

// accountNamespace makes a namespace and waits for its default account
// and CA ConfigMap.
func (e *env) accountNamespace(prefix string) string {
	e.t.Helper()
	ns := e.namespace(prefix)
	err := wait.PollUntilContextTimeout(e.ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err1 := e.s.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		_, err2 := e.s.Client.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err1 == nil && err2 == nil, nil
	})
	if err != nil {
		e.t.Fatalf("namespace %s: no default service account or kube-root-ca.crt: %v", ns, err)
	}
	return ns
}

// bearerClient talks to the server with nothing but token.
func (e *env) bearerClient(token string) kubernetes.Interface {
	cfg := rest.AnonymousClientConfig(e.s.Config)
	cfg.BearerToken = token
	return kubernetes.NewForConfigOrDie(cfg)
}

func whoami(t *testing.T, c kubernetes.Interface) (authenticationv1.UserInfo, error) {
	t.Helper()
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return authenticationv1.UserInfo{}, err
	}
	return r.Status.UserInfo, nil
}

func TestServiceAccountAdmission(t *testing.T) {
	e := startWithServiceAccounts(t)
	ns := e.accountNamespace("sa-admission")
	c := e.s.Client.CoreV1()

	root, err := c.ConfigMaps(ns).Get(e.ctx, "kube-root-ca.crt", metav1.GetOptions{})
	must(t, err)
	if got, want := root.Data["ca.crt"], string(e.s.Config.CAData); got != want || want == "" {
		t.Fatalf("kube-root-ca.crt holds %q, want the cluster CA %q", got, want)
	}
	// The publisher puts back what is changed.
	root.Data["ca.crt"] = "forged"
	_, err = c.ConfigMaps(ns).Update(e.ctx, root, metav1.UpdateOptions{})
	must(t, err)
	err = wait.PollUntilContextTimeout(e.ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		cm, err := c.ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err == nil && cm.Data["ca.crt"] == string(e.s.Config.CAData), nil
	})
	if err != nil {
		t.Fatalf("kube-root-ca.crt not restored: %v", err)
	}

	pod := newPod("web", nil, "main", "side")
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1.36"}}
	pod.Spec.Containers[1].VolumeMounts = []corev1.VolumeMount{{Name: "own", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "own", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	got, err := c.Pods(ns).Create(e.ctx, pod, metav1.CreateOptions{})
	must(t, err)
	if len(got.Spec.Volumes) != 2 || !strings.HasPrefix(got.Spec.Volumes[1].Name, "kube-api-access-") || got.Spec.Volumes[1].Projected == nil {
		t.Fatalf("volumes = %+v, want the pod's own and kube-api-access-*", got.Spec.Volumes)
	}
	vol := got.Spec.Volumes[1]
	src := vol.Projected.Sources
	if len(src) != 3 || src[0].ServiceAccountToken == nil || ptr.Deref(src[0].ServiceAccountToken.ExpirationSeconds, 0) != 3607 ||
		src[1].ConfigMap == nil || src[1].ConfigMap.Name != "kube-root-ca.crt" || src[2].DownwardAPI == nil {
		t.Fatalf("kube-api-access sources = %+v", src)
	}
	for _, ct := range append(got.Spec.InitContainers, got.Spec.Containers...) {
		mounted := 0
		for _, m := range ct.VolumeMounts {
			if m.Name == vol.Name && m.MountPath == "/var/run/secrets/kubernetes.io/serviceaccount" && m.ReadOnly {
				mounted++
			}
		}
		if want := map[string]int{"init": 1, "main": 1, "side": 0}[ct.Name]; mounted != want {
			t.Errorf("container %s mounts kube-api-access %d times, want %d", ct.Name, mounted, want)
		}
	}

	tests := []struct {
		name       string
		pod        func(*corev1.Pod)
		sa         *corev1.ServiceAccount
		wantVolume bool
		wantErr    string
	}{
		{name: "pod opts out", pod: func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = ptr.To(false) }},
		{name: "account opts out", sa: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "quiet"}, AutomountServiceAccountToken: ptr.To(false)},
			pod: func(p *corev1.Pod) { p.Spec.ServiceAccountName = "quiet" }},
		{name: "pod overrides the account", sa: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "quiet2"}, AutomountServiceAccountToken: ptr.To(false)},
			pod: func(p *corev1.Pod) {
				p.Spec.ServiceAccountName = "quiet2"
				p.Spec.AutomountServiceAccountToken = ptr.To(true)
			}, wantVolume: true},
		{name: "missing account", pod: func(p *corev1.Pod) { p.Spec.ServiceAccountName = "robot" },
			wantErr: `pods "missing-account" is forbidden: error looking up service account ` + ns + `/robot: serviceaccounts "robot" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.sa != nil {
				_, err := c.ServiceAccounts(ns).Create(e.ctx, tt.sa, metav1.CreateOptions{})
				must(t, err)
			}
			p := newPod(strings.ReplaceAll(tt.name, " ", "-"), nil)
			tt.pod(p)
			got, err := c.Pods(ns).Create(e.ctx, p, metav1.CreateOptions{})
			if tt.wantErr != "" {
				if !apierrors.IsForbidden(err) || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want 403 %q", err, tt.wantErr)
				}
				return
			}
			must(t, err)
			if has := len(got.Spec.Volumes) == 1 && len(got.Spec.Containers[0].VolumeMounts) == 1; has != tt.wantVolume {
				t.Fatalf("kube-api-access volume: %v, want %v (volumes %+v)", has, tt.wantVolume, got.Spec.Volumes)
			}
		})
	}
}

func TestTokenRequest(t *testing.T) {
	e := startWithServiceAccounts(t)
	ns := e.accountNamespace("tokens")
	c := e.s.Client.CoreV1()
	pod, err := c.Pods(ns).Create(e.ctx, newPod("web", nil), metav1.CreateOptions{})
	must(t, err)
	other, err := c.ServiceAccounts(ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{})
	must(t, err)

	// An unbound token, as `kubectl create token default` asks for it.
	before := time.Now()
	tr, err := c.ServiceAccounts(ns).CreateToken(e.ctx, "default", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	must(t, err)
	if tr.Status.Token == "" || tr.Status.ExpirationTimestamp.Time.Before(before.Add(59*time.Minute)) || tr.Status.ExpirationTimestamp.Time.After(time.Now().Add(61*time.Minute)) {
		t.Fatalf("token request status = %+v, want a token expiring in an hour", tr.Status)
	}
	if ptr.Deref(tr.Spec.ExpirationSeconds, 0) != 3600 || len(tr.Spec.Audiences) != 1 {
		t.Fatalf("token request spec = %+v, want the defaults filled in", tr.Spec)
	}
	user, err := whoami(t, e.bearerClient(tr.Status.Token))
	must(t, err)
	if user.Username != "system:serviceaccount:"+ns+":default" || !slices.Contains(user.Groups, "system:serviceaccounts:"+ns) || !slices.Contains(user.Groups, "system:authenticated") {
		t.Fatalf("the token authenticates as %+v", user)
	}
	// The admin is who the certificate says.
	if admin, err := whoami(t, e.s.Client); err != nil || !slices.Contains(admin.Groups, "system:masters") {
		t.Fatalf("whoami as admin = %+v, %v", admin, err)
	}

	// Bound to the pod: good while it lives, refused once it is gone.
	bound, err := c.ServiceAccounts(ns).CreateToken(e.ctx, "default", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web"},
	}}, metav1.CreateOptions{})
	must(t, err)
	if bound.Spec.BoundObjectRef.UID != pod.UID {
		t.Fatalf("bound object ref = %+v, want the pod's UID filled in", bound.Spec.BoundObjectRef)
	}
	podClient := e.bearerClient(bound.Status.Token)
	if _, err := podClient.CoreV1().Pods(ns).Get(e.ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("a pod-bound token cannot read: %v", err)
	}
	// TokenReview says the same as the API does.
	review, err := e.s.Client.AuthenticationV1().TokenReviews().Create(e.ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: bound.Status.Token}}, metav1.CreateOptions{})
	must(t, err)
	if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:"+ns+":default" {
		t.Fatalf("token review = %+v", review.Status)
	}
	must(t, c.Pods(ns).Delete(e.ctx, "web", metav1.DeleteOptions{}))
	err = wait.PollUntilContextTimeout(e.ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := whoami(t, podClient)
		return apierrors.IsUnauthorized(err), nil
	})
	if err != nil {
		t.Fatalf("a token bound to a deleted pod still authenticates: %v", err)
	}
	review, err = e.s.Client.AuthenticationV1().TokenReviews().Create(e.ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: bound.Status.Token}}, metav1.CreateOptions{})
	must(t, err)
	if review.Status.Authenticated || review.Status.Error == "" {
		t.Fatalf("token review of a revoked token = %+v", review.Status)
	}
	// Deleting the account revokes its tokens too.
	otherToken, err := c.ServiceAccounts(ns).CreateToken(e.ctx, "other", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	must(t, err)
	must(t, c.ServiceAccounts(ns).Delete(e.ctx, other.Name, metav1.DeleteOptions{}))
	// As upstream, tokens are checked against the cache, which learns of
	// the deletion a moment after it.
	otherClient := e.bearerClient(otherToken.Status.Token)
	var lastErr error
	err = wait.PollUntilContextTimeout(e.ctx, 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, lastErr = whoami(t, otherClient)
		return apierrors.IsUnauthorized(lastErr), nil
	})
	if err != nil {
		t.Fatalf("token of a deleted account: err = %v, want 401", lastErr)
	}
	// A token for another audience is not for us.
	vault, err := c.ServiceAccounts(ns).CreateToken(e.ctx, "default", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}}}, metav1.CreateOptions{})
	must(t, err)
	if _, err := whoami(t, e.bearerClient(vault.Status.Token)); !apierrors.IsUnauthorized(err) {
		t.Fatalf("token for audience vault: err = %v, want 401", err)
	}
	if _, err := whoami(t, e.bearerClient("not-a-token")); !apierrors.IsUnauthorized(err) {
		t.Fatalf("garbage token: err = %v, want 401", err)
	}

	secret, err := c.Secrets(ns).Create(e.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
	must(t, err)
	_, err = c.Pods(ns).Create(e.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "as-other"}, Spec: corev1.PodSpec{
		ServiceAccountName: "default", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	must(t, err)
	bad := []struct {
		name, account string
		spec          authenticationv1.TokenRequestSpec
		code          int32
		msg           string
	}{
		{"too short", "default", authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](60)}, http.StatusUnprocessableEntity,
			"spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"},
		{"no such account", "nobody", authenticationv1.TokenRequestSpec{}, http.StatusNotFound, `serviceaccounts "nobody" not found`},
		{"bound to a missing pod", "default", authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", Name: "gone"}},
			http.StatusNotFound, `pods "gone" not found`},
		{"bound to a deployment", "default", authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Deployment", Name: "web"}},
			http.StatusUnprocessableEntity, `spec.boundObjectRef.kind: Unsupported value: "Deployment"`},
		{"stale uid", "default", authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Secret", Name: "s", UID: "old"}},
			http.StatusConflict, "does not match the UID in record (" + string(secret.UID) + ")"},
	}
	_, err = c.ServiceAccounts(ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "third"}}, metav1.CreateOptions{})
	must(t, err)
	bad = append(bad, struct {
		name, account string
		spec          authenticationv1.TokenRequestSpec
		code          int32
		msg           string
	}{"bound to a pod of another account", "third", authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", Name: "as-other"}},
		http.StatusBadRequest, `running as serviceaccount "default"`})
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ServiceAccounts(ns).CreateToken(e.ctx, tt.account, &authenticationv1.TokenRequest{Spec: tt.spec}, metav1.CreateOptions{})
			status, ok := err.(apierrors.APIStatus)
			if !ok || status.Status().Code != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %d containing %q", err, tt.code, tt.msg)
			}
		})
	}
}

func TestServiceAccountIssuerDiscovery(t *testing.T) {
	e := start(t)
	r := e.do("GET", "/.well-known/openid-configuration", nil)
	var conf struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if r.code != http.StatusOK || json.Unmarshal(r.body, &conf) != nil || conf.Issuer != "https://kubernetes.default.svc.cluster.local" ||
		conf.JWKSURI != conf.Issuer+"/openid/v1/jwks" {
		t.Fatalf("openid configuration: %d %s", r.code, r.body)
	}
	r = e.do("GET", "/openid/v1/jwks", nil)
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if r.code != http.StatusOK || json.Unmarshal(r.body, &set) != nil || len(set.Keys) != 1 || set.Keys[0]["alg"] != "RS256" {
		t.Fatalf("jwks: %d %s", r.code, r.body)
	}
	if r := e.doWith(e.anonymous(), "GET", "/openid/v1/jwks", nil); r.code != http.StatusUnauthorized {
		t.Fatalf("anonymous jwks: %d, want 401", r.code)
	}
}
