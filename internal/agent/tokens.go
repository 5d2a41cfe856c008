package agent

import (
	"context"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// A projected token is renewed once 80% of the lifetime asked for has
// passed, and at least daily, as the kubelet does; the file then changes
// under the running container, and clients reread it.
const (
	defaultTokenSeconds = 3600
	maxTokenAge         = 24 * time.Hour
)

// cachedToken is a token the agent wrote into a pod's volume.
type cachedToken struct {
	token     string
	refreshAt time.Time
	expires   time.Time
}

// serviceAccountToken returns the token for a projected serviceAccountToken
// source of pod: the cached one while it is fresh, else a new one from the
// TokenRequest API, bound to the pod so that it dies with it.
func (a *Agent) serviceAccountToken(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) ([]byte, error) {
	seconds := ptr.Deref(src.ExpirationSeconds, defaultTokenSeconds)
	key := tokenKey(pod.UID, src.Audience, seconds)
	now := time.Now()
	a.mu.Lock()
	cached, ok := a.tokens[key]
	a.mu.Unlock()
	if ok && now.Before(cached.refreshAt) {
		return []byte(cached.token), nil
	}
	var audiences []string
	if src.Audience != "" {
		audiences = []string{src.Audience}
	}
	tr, err := a.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         audiences,
			ExpirationSeconds: &seconds,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		if ok && now.Before(cached.expires) {
			// Keep the old one while it is good; the next sync retries.
			a.log.Warn("renewing a service account token", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			return []byte(cached.token), nil
		}
		return nil, err
	}
	refresh := min(time.Duration(seconds)*time.Second*8/10, maxTokenAge)
	a.mu.Lock()
	a.tokens[key] = cachedToken{token: tr.Status.Token, refreshAt: now.Add(refresh), expires: tr.Status.ExpirationTimestamp.Time}
	a.mu.Unlock()
	return []byte(tr.Status.Token), nil
}

func tokenKey(uid types.UID, audience string, seconds int64) string {
	return string(uid) + "/" + strconv.FormatInt(seconds, 10) + "/" + audience
}

// forgetTokens drops the tokens of a pod that is gone.
func (a *Agent) forgetTokens(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.tokens {
		if strings.HasPrefix(k, string(uid)+"/") {
			delete(a.tokens, k)
		}
	}
}
