package apiserver_test

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLabelSelectors(t *testing.T) {
	e := start(t)
	ns := e.namespace("labels")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	objects := map[string]map[string]string{
		"a": {"env": "prod", "tier": "web"},
		"b": {"env": "dev", "tier": "web"},
		"c": {"env": "test"},
		"d": nil,
		"e": {"env": "prod", "tier": "db"},
	}
	for name, labels := range objects {
		_, err := cms.Create(e.ctx, newConfigMap(name, labels, nil), metav1.CreateOptions{})
		must(t, err)
	}
	tests := []struct{ selector, want string }{
		{"", "a,b,c,d,e"},
		{"env=prod", "a,e"},
		{"env==prod", "a,e"},
		{"env!=prod", "b,c,d"}, // != also matches objects without the key
		{"env in (dev,test)", "b,c"},
		{"env notin (prod)", "b,c,d"},
		{"tier", "a,b,e"},
		{"!tier", "c,d"},
		{"env=prod,tier=web", "a"},
		{"env in (prod),tier!=web", "e"},
		{"env=nothing", ""},
	}
	for _, tc := range tests {
		list, err := cms.List(e.ctx, metav1.ListOptions{LabelSelector: tc.selector})
		if err != nil {
			t.Errorf("%q: %v", tc.selector, err)
			continue
		}
		if got := sortedNames(list.Items); got != tc.want {
			t.Errorf("labelSelector %q = %s, want %s", tc.selector, got, tc.want)
		}
	}
}

func sortedNames(items []corev1.ConfigMap) string {
	var names []string
	for _, it := range items {
		names = append(names, it.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func podNames(items []corev1.Pod) string {
	var names []string
	for _, it := range items {
		names = append(names, it.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func TestFieldSelectors(t *testing.T) {
	e := start(t)
	ns := e.namespace("fields")
	pods := e.s.Client.CoreV1().Pods(ns)
	for name, node := range map[string]string{"p1": "n1", "p2": "", "p3": "n2"} {
		p := newPod(name, map[string]string{"app": name})
		p.Spec.NodeName = node
		_, err := pods.Create(e.ctx, p, metav1.CreateOptions{})
		must(t, err)
	}
	p3, err := pods.Get(e.ctx, "p3", metav1.GetOptions{})
	must(t, err)
	p3.Status.Phase = corev1.PodRunning
	_, err = pods.UpdateStatus(e.ctx, p3, metav1.UpdateOptions{})
	must(t, err)

	tests := []struct{ field, label, want string }{
		{"metadata.name=p2", "", "p2"},
		{"metadata.name!=p2", "", "p1,p3"},
		{"metadata.namespace=" + ns, "", "p1,p2,p3"},
		{"spec.nodeName=n1", "", "p1"},
		{"spec.nodeName=", "", "p2"},
		{"spec.nodeName!=", "", "p1,p3"},
		{"status.phase=Pending", "", "p1,p2"},
		{"status.phase=Running", "", "p3"},
		{"status.phase=Running,spec.nodeName=n2", "", "p3"},
		{"status.phase=Pending", "app=p1", "p1"},
		{"status.phase==Pending", "", "p1,p2"},
	}
	for _, tc := range tests {
		list, err := pods.List(e.ctx, metav1.ListOptions{FieldSelector: tc.field, LabelSelector: tc.label})
		if err != nil {
			t.Errorf("%q: %v", tc.field, err)
			continue
		}
		if got := podNames(list.Items); got != tc.want {
			t.Errorf("fieldSelector %q labelSelector %q = %s, want %s", tc.field, tc.label, got, tc.want)
		}
	}
	_, err = pods.List(e.ctx, metav1.ListOptions{FieldSelector: "spec.foo=bar"})
	wantAPIError(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest, `field label not supported: spec.foo`)

	// All namespaces with a field selector (how the node agent lists its pods).
	all, err := e.s.Client.CoreV1().Pods("").List(e.ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=n1"})
	must(t, err)
	if got := podNames(all.Items); got != "p1" {
		t.Errorf("all-namespaces spec.nodeName=n1 = %s, want p1", got)
	}
	// Cluster-scoped kinds support metadata.name.
	nsList, err := e.s.Client.CoreV1().Namespaces().List(e.ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + ns})
	must(t, err)
	if len(nsList.Items) != 1 || nsList.Items[0].Name != ns {
		t.Errorf("namespaces metadata.name=%s gave %d items", ns, len(nsList.Items))
	}
	nsList, err = e.s.Client.CoreV1().Namespaces().List(e.ctx, metav1.ListOptions{FieldSelector: "status.phase=Active"})
	must(t, err)
	if len(nsList.Items) < 5 {
		t.Errorf("namespaces status.phase=Active gave %d items, want the 4 system ones and ours", len(nsList.Items))
	}
}

func TestPagination(t *testing.T) {
	e := start(t)
	ns := e.namespace("page")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		_, err := cms.Create(e.ctx, newConfigMap(n, nil, nil), metav1.CreateOptions{})
		must(t, err)
	}
	var seen []string
	opts := metav1.ListOptions{Limit: 2}
	wantRemaining := []int64{3, 1}
	for page := 0; ; page++ {
		list, err := cms.List(e.ctx, opts)
		must(t, err)
		for _, it := range list.Items {
			seen = append(seen, it.Name)
		}
		if list.Continue == "" {
			if page != 2 || len(list.Items) != 1 {
				t.Errorf("last page is page %d with %d items, want page 2 with 1", page, len(list.Items))
			}
			if list.RemainingItemCount != nil {
				t.Errorf("last page remainingItemCount = %d, want unset", *list.RemainingItemCount)
			}
			break
		}
		if page >= 2 {
			t.Fatalf("page %d still has a continue token", page)
		}
		if len(list.Items) != 2 {
			t.Errorf("page %d has %d items, want 2", page, len(list.Items))
		}
		if list.RemainingItemCount == nil || *list.RemainingItemCount != wantRemaining[page] {
			t.Errorf("page %d remainingItemCount = %v, want %d", page, list.RemainingItemCount, wantRemaining[page])
		}
		opts.Continue = list.Continue
		// Writes between pages do not show up: the list is a snapshot.
		if page == 0 {
			_, err := cms.Create(e.ctx, newConfigMap("zz-late", nil, nil), metav1.CreateOptions{})
			must(t, err)
		}
	}
	if strings.Join(seen, ",") != "a,b,c,d,e" {
		t.Errorf("pages gave %v, want a..e in order, each once", seen)
	}

	t.Run("malformed continue", func(t *testing.T) {
		_, err := cms.List(e.ctx, metav1.ListOptions{Limit: 2, Continue: "not-a-token"})
		wantAPIError(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest, "")
	})
	t.Run("resourceVersion=0", func(t *testing.T) {
		// resourceVersion=0 means "any": it may be served from a cache a
		// moment behind, but must catch up.
		deadline := time.Now().Add(5 * time.Second)
		for {
			list, err := cms.List(e.ctx, metav1.ListOptions{ResourceVersion: "0"})
			must(t, err)
			if list.ResourceVersion == "" {
				t.Fatal("rv=0 list has no resourceVersion")
			}
			if len(list.Items) == 6 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("rv=0 list still has %d items after 5s, want 6", len(list.Items))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("exact resourceVersion", func(t *testing.T) {
		list, err := cms.List(e.ctx, metav1.ListOptions{})
		must(t, err)
		_, err = cms.Create(e.ctx, newConfigMap("zz-later", nil, nil), metav1.CreateOptions{})
		must(t, err)
		old, err := cms.List(e.ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
		must(t, err)
		if len(old.Items) != len(list.Items) || old.ResourceVersion != list.ResourceVersion {
			t.Errorf("Exact list at %s: %d items rv %s, want %d items as then", list.ResourceVersion, len(old.Items), old.ResourceVersion, len(list.Items))
		}
		newer, err := cms.List(e.ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
		must(t, err)
		if len(newer.Items) != len(list.Items)+1 {
			t.Errorf("NotOlderThan list has %d items, want %d", len(newer.Items), len(list.Items)+1)
		}
	})
	t.Run("list options are validated", func(t *testing.T) {
		for _, q := range []struct{ query, msg string }{
			{"resourceVersionMatch=Exact", "resourceVersionMatch is forbidden unless resourceVersion is provided"},
			{"resourceVersion=5&resourceVersionMatch=Sometimes", `Unsupported value: "Sometimes"`},
			{"resourceVersion=0&resourceVersionMatch=Exact", `resourceVersionMatch "exact" is forbidden for resourceVersion "0"`},
			{"sendInitialEvents=true", "sendInitialEvents is forbidden for list"},
		} {
			r := e.do("GET", "/api/v1/namespaces/"+ns+"/configmaps?"+q.query, nil)
			wantStatus(t, r, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, q.msg)
		}
		r := e.do("GET", "/api/v1/namespaces/"+ns+"/configmaps?limit=abc", nil)
		if r.code != http.StatusBadRequest && r.code != http.StatusOK {
			t.Errorf("limit=abc = %d, want 400 (or 200 ignoring it)", r.code)
		}
	})
}
