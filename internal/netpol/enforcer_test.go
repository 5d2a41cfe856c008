package netpol

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// recorder is a fake Config.Run that records scripts and can fail on demand.
type recorder struct {
	mu      sync.Mutex
	scripts []string
	failing bool
	wrote   chan string
}

func newRecorder() *recorder { return &recorder{wrote: make(chan string, 100)} }

func (r *recorder) run(_ context.Context, script string) error {
	r.mu.Lock()
	failing := r.failing
	r.scripts = append(r.scripts, script)
	r.mu.Unlock()
	r.wrote <- script
	if failing {
		return errors.New("injected failure")
	}
	return nil
}

func (r *recorder) setFailing(f bool) {
	r.mu.Lock()
	r.failing = f
	r.mu.Unlock()
}

func (r *recorder) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-r.wrote:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no nft script written within 5s")
		return ""
	}
}

// startEnforcer runs an Enforcer against a fake clientset. The fake
// clientset has no API server behind it, which is fine here: the enforcer
// only reads through informers.
func startEnforcer(t *testing.T, objs ...runtime.Object) (kubernetes.Interface, *recorder, func() error) {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := newRecorder()
	e := New(Config{NodeName: "n1", Run: rec.run, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		factory.Core().V1().Pods(), factory.Core().V1().Namespaces(), factory.Networking().V1().NetworkPolicies())
	e.burst = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
			return nil
		}
	}
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	return client, rec, stop
}

func TestEnforcerLifecycle(t *testing.T) {
	ctx := t.Context()
	web := pod("app", "web", "n1", "10.42.0.2", map[string]string{"app": "web"})
	api := pod("app", "api", "n1", "10.42.0.4", map[string]string{"app": "api"})
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}
	client, rec, stop := startEnforcer(t, ns, web, api)

	first := rec.next(t)
	if !strings.HasPrefix(first, "add table ip lotse-netpol\ndelete table ip lotse-netpol\n") {
		t.Fatalf("first write is not a full rebuild:\n%s", first)
	}
	if strings.Contains(first, "ing-") {
		t.Errorf("no policy yet, but the first write has pod chains:\n%s", first)
	}

	// A policy for web: an incremental write touching web's chain only.
	pol := withIngress(policy("app", "web", sel("app", "web"), ing),
		networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{tcp(80)}})
	if _, err := client.NetworkingV1().NetworkPolicies("app").Create(ctx, pol, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := rec.next(t)
	if strings.Contains(s, "delete table") || !strings.Contains(s, "add chain ip lotse-netpol "+chainName(web, ingress)) ||
		strings.Contains(s, chainName(api, ingress)) {
		t.Errorf("policy create: want an incremental write of web's chain only, got:\n%s", s)
	}

	// A status-only pod update (conditions) must not cause a write; the
	// label change after it must, and it must be the next write.
	web2, err := client.CoreV1().Pods("app").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	web2.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue}}
	if _, err := client.CoreV1().Pods("app").UpdateStatus(ctx, web2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	web2.Labels = map[string]string{"app": "other"}
	if _, err := client.CoreV1().Pods("app").Update(ctx, web2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s = rec.next(t)
	if !strings.Contains(s, "delete chain ip lotse-netpol "+chainName(web, ingress)) {
		t.Errorf("web no longer selected: want its chain deleted, got:\n%s", s)
	}

	// A failed write is followed by a full rebuild.
	rec.setFailing(true)
	pol2 := policy("app", "deny-api", sel("app", "api"), egr)
	if _, err := client.NetworkingV1().NetworkPolicies("app").Create(ctx, pol2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if s = rec.next(t); strings.Contains(s, "delete table") {
		t.Errorf("write before the failure should be incremental:\n%s", s)
	}
	rec.setFailing(false)
	s = rec.next(t)
	if !strings.HasPrefix(s, "add table ip lotse-netpol\ndelete table") || !strings.Contains(s, chainName(api, egress)) {
		t.Errorf("after a failed write: want a full rebuild with api's egress chain, got:\n%s", s)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	rec.mu.Lock()
	last := rec.scripts[len(rec.scripts)-1]
	rec.mu.Unlock()
	if last != "add table ip lotse-netpol\ndelete table ip lotse-netpol\n" {
		t.Errorf("Run did not delete its table on return; last script:\n%s", last)
	}
}

// TestEnforcerCoalesces checks that a burst of changes becomes one write.
func TestEnforcerCoalesces(t *testing.T) {
	ctx := t.Context()
	client, rec, stop := startEnforcer(t)
	rec.next(t) // the initial full rebuild
	for i := range 20 {
		p := pod("app", "p"+string(rune('a'+i)), "n1", "10.42.0."+strconv.Itoa(10+i), map[string]string{"app": "x"})
		if _, err := client.CoreV1().Pods("app").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.NetworkingV1().NetworkPolicies("app").Create(ctx, policy("app", "deny", &metav1.LabelSelector{}, ing), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Wait until all 20 chains are in; count the writes it took.
	deadline := time.After(5 * time.Second)
	writes, chains := 0, 0
	for chains < 20 {
		select {
		case s := <-rec.wrote:
			writes++
			chains += strings.Count(s, "add chain ip lotse-netpol ing-")
		case <-deadline:
			t.Fatalf("only %d chains after %d writes", chains, writes)
		}
	}
	// The informer delivers the creates over a little time; with a 10ms
	// window a handful of writes is expected, one per event is not.
	if writes > 10 {
		t.Errorf("21 changes took %d writes; bursts are not coalesced", writes)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
