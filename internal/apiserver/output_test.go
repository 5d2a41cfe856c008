package apiserver_test

import (
	"encoding/json"
	"mime"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const tableAccept = "Accept: application/json;as=Table;v=v1;g=meta.k8s.io"

func columnNames(t *testing.T, r response) (*metav1.Table, []string) {
	t.Helper()
	if r.code != 200 {
		t.Fatalf("table request = %d: %s", r.code, r.body)
	}
	var tbl metav1.Table
	must(t, json.Unmarshal(r.body, &tbl))
	if tbl.Kind != "Table" || tbl.APIVersion != "meta.k8s.io/v1" {
		t.Errorf("table is %s %s, want meta.k8s.io/v1 Table", tbl.APIVersion, tbl.Kind)
	}
	var names []string
	for _, c := range tbl.ColumnDefinitions {
		names = append(names, c.Name)
	}
	return &tbl, names
}

func TestTableOutput(t *testing.T) {
	e := start(t)
	ns := e.namespace("table")
	_, err := e.s.Client.CoreV1().Pods(ns).Create(e.ctx, newPod("p", nil), metav1.CreateOptions{})
	must(t, err)
	_, err = e.s.Client.AppsV1().Deployments(ns).Create(e.ctx, newDeployment("d", 2), metav1.CreateOptions{})
	must(t, err)

	tests := []struct {
		path    string
		columns []string
	}{
		{"/api/v1/namespaces/" + ns + "/pods", []string{"Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"}},
		{"/apis/apps/v1/namespaces/" + ns + "/deployments", []string{"Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"}},
	}
	for _, tc := range tests {
		for _, path := range []string{tc.path, tc.path + "/" + map[bool]string{true: "p", false: "d"}[tc.columns[2] == "Status"]} {
			tbl, got := columnNames(t, e.do("GET", path, nil, tableAccept))
			if len(got) != len(tc.columns) {
				t.Errorf("%s columns = %q, want %q", path, got, tc.columns)
				continue
			}
			for i := range got {
				if got[i] != tc.columns[i] {
					t.Errorf("%s column %d = %q, want %q", path, i, got[i], tc.columns[i])
				}
			}
			if len(tbl.Rows) != 1 || len(tbl.Rows[0].Cells) != len(tc.columns) {
				t.Fatalf("%s rows = %+v, want one row with a cell per column", path, tbl.Rows)
			}
			var pom metav1.PartialObjectMetadata
			must(t, json.Unmarshal(tbl.Rows[0].Object.Raw, &pom))
			if pom.Kind != "PartialObjectMetadata" || pom.Name == "" {
				t.Errorf("%s row object = %s, want PartialObjectMetadata by default", path, tbl.Rows[0].Object.Raw)
			}
		}
	}
	tbl, _ := columnNames(t, e.do("GET", tests[0].path, nil, tableAccept))
	if tbl.Rows[0].Cells[0] != "p" || tbl.Rows[0].Cells[1] != "0/1" || tbl.Rows[0].Cells[2] != "Pending" {
		t.Errorf("pod row = %v, want p 0/1 Pending ...", tbl.Rows[0].Cells)
	}
	tbl, _ = columnNames(t, e.do("GET", tests[1].path, nil, tableAccept))
	if tbl.Rows[0].Cells[0] != "d" || tbl.Rows[0].Cells[1] != "0/2" || tbl.Rows[0].Cells[7] != "app=d" {
		t.Errorf("deployment row = %v, want d 0/2 ... app=d", tbl.Rows[0].Cells)
	}

	t.Run("fallback to JSON", func(t *testing.T) {
		// kubectl sends Table first and plain JSON as a fallback.
		r := e.do("GET", tests[0].path, nil, "Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
		_, cols := columnNames(t, r)
		if len(cols) == 0 {
			t.Error("no columns")
		}
		r = e.do("GET", tests[0].path, nil, "Accept: application/json;as=Table;v=v9;g=meta.k8s.io,application/json")
		var tm metav1.TypeMeta
		must(t, json.Unmarshal(r.body, &tm))
		if r.code != 200 || tm.Kind != "PodList" {
			t.Errorf("unknown Table version with a JSON fallback answered %d %s, want 200 PodList", r.code, tm.Kind)
		}
	})

	t.Run("PartialObjectMetadataList", func(t *testing.T) {
		r := e.do("GET", tests[0].path, nil, "Accept: application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")
		if r.code != 200 {
			t.Fatalf("= %d: %s", r.code, r.body)
		}
		var l metav1.PartialObjectMetadataList
		must(t, json.Unmarshal(r.body, &l))
		if l.Kind != "PartialObjectMetadataList" || l.APIVersion != "meta.k8s.io/v1" || len(l.Items) != 1 || l.ResourceVersion == "" {
			t.Fatalf("answer %s %s with %d items rv %q", l.APIVersion, l.Kind, len(l.Items), l.ResourceVersion)
		}
		if l.Items[0].Name != "p" || l.Items[0].UID == "" || l.Items[0].Kind != "PartialObjectMetadata" || l.Items[0].APIVersion != "meta.k8s.io/v1" {
			t.Errorf("item = %+v", l.Items[0])
		}
		var raw map[string]any
		must(t, json.Unmarshal(r.body, &raw))
		if item := raw["items"].([]any)[0].(map[string]any); item["spec"] != nil {
			t.Error("PartialObjectMetadata item carries spec")
		}
		r = e.do("GET", tests[0].path+"/p", nil, "Accept: application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io")
		var one metav1.PartialObjectMetadata
		must(t, json.Unmarshal(r.body, &one))
		if one.Kind != "PartialObjectMetadata" || one.Name != "p" {
			t.Errorf("single PartialObjectMetadata = %s", r.body)
		}
	})
}

func TestDiscovery(t *testing.T) {
	e := start(t)
	t.Run("/api", func(t *testing.T) {
		var v metav1.APIVersions
		r := e.do("GET", "/api", nil)
		must(t, json.Unmarshal(r.body, &v))
		if v.Kind != "APIVersions" || len(v.Versions) != 1 || v.Versions[0] != "v1" {
			t.Errorf("/api = %s", r.body)
		}
	})
	t.Run("/apis", func(t *testing.T) {
		var gl metav1.APIGroupList
		r := e.do("GET", "/apis", nil)
		must(t, json.Unmarshal(r.body, &gl))
		groups := map[string]metav1.APIGroup{}
		for _, g := range gl.Groups {
			groups[g.Name] = g
		}
		if gl.Kind != "APIGroupList" {
			t.Errorf("kind = %q", gl.Kind)
		}
		for _, name := range []string{"apps", "batch", "autoscaling", "networking.k8s.io", "events.k8s.io", "rbac.authorization.k8s.io", "coordination.k8s.io"} {
			if _, ok := groups[name]; !ok {
				t.Errorf("/apis lacks group %s", name)
			}
		}
		if g := groups["autoscaling"]; g.PreferredVersion.Version != "v2" || len(g.Versions) != 2 || g.Versions[0].Version != "v2" {
			t.Errorf("autoscaling = %+v, want v2 preferred and listed first, then v1", g)
		}
		if g := groups["apps"]; g.PreferredVersion.GroupVersion != "apps/v1" {
			t.Errorf("apps preferred = %+v", g.PreferredVersion)
		}
	})
	t.Run("/apis/apps/v1", func(t *testing.T) {
		var rl metav1.APIResourceList
		r := e.do("GET", "/apis/apps/v1", nil)
		must(t, json.Unmarshal(r.body, &rl))
		res := map[string]metav1.APIResource{}
		for _, x := range rl.APIResources {
			res[x.Name] = x
		}
		if rl.GroupVersion != "apps/v1" || rl.Kind != "APIResourceList" {
			t.Errorf("groupVersion %q kind %q", rl.GroupVersion, rl.Kind)
		}
		d := res["deployments"]
		if d.Kind != "Deployment" || !d.Namespaced || d.SingularName != "deployment" || len(d.ShortNames) == 0 || d.ShortNames[0] != "deploy" {
			t.Errorf("deployments = %+v", d)
		}
		if s := res["deployments/scale"]; s.Kind != "Scale" || s.Group != "autoscaling" || s.Version != "v1" {
			t.Errorf("deployments/scale = %+v, want autoscaling/v1 Scale", s)
		}
		if s := res["deployments/status"]; s.Kind != "Deployment" {
			t.Errorf("deployments/status = %+v", s)
		}
		r = e.do("GET", "/apis/apps", nil)
		var g metav1.APIGroup
		must(t, json.Unmarshal(r.body, &g))
		if g.Kind != "APIGroup" || g.Name != "apps" {
			t.Errorf("/apis/apps = %s", r.body)
		}
	})
	t.Run("aggregated", func(t *testing.T) {
		const accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
		for _, path := range []string{"/api", "/apis"} {
			r := e.do("GET", path, nil, "Accept: "+accept+",application/json")
			if r.code != 200 {
				t.Fatalf("%s = %d", path, r.code)
			}
			mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
			if err != nil || mt != "application/json" || params["g"] != "apidiscovery.k8s.io" || params["v"] != "v2" || params["as"] != "APIGroupDiscoveryList" {
				t.Errorf("%s Content-Type = %q, want %s", path, r.header.Get("Content-Type"), accept)
			}
			var l apidiscoveryv2.APIGroupDiscoveryList
			must(t, json.Unmarshal(r.body, &l))
			if l.Kind != "APIGroupDiscoveryList" || l.APIVersion != "apidiscovery.k8s.io/v2" || len(l.Items) == 0 {
				t.Errorf("%s: %s %s with %d groups", path, l.APIVersion, l.Kind, len(l.Items))
			}
			if path == "/api" {
				found := false
				for _, v := range l.Items[0].Versions {
					for _, res := range v.Resources {
						if res.Resource == "pods" && res.Scope == apidiscoveryv2.ScopeNamespace && res.ResponseKind.Kind == "Pod" {
							found = true
						}
					}
				}
				if !found {
					t.Error("aggregated /api lacks a namespaced pods resource")
				}
			}
		}
	})
}

func TestHPAVersions(t *testing.T) {
	e := start(t)
	ns := e.namespace("hpa")
	target := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	fifty := int32(50)
	v2 := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "from-v2"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: target, MinReplicas: int32p(1), MaxReplicas: 5,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &fifty}}}},
		},
	}
	_, err := e.s.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(e.ctx, v2, metav1.CreateOptions{})
	must(t, err)
	asV1, err := e.s.Client.AutoscalingV1().HorizontalPodAutoscalers(ns).Get(e.ctx, "from-v2", metav1.GetOptions{})
	must(t, err)
	if asV1.Spec.TargetCPUUtilizationPercentage == nil || *asV1.Spec.TargetCPUUtilizationPercentage != 50 {
		t.Errorf("v1 targetCPUUtilizationPercentage = %v, want 50", asV1.Spec.TargetCPUUtilizationPercentage)
	}
	if asV1.Spec.MaxReplicas != 5 || asV1.Spec.ScaleTargetRef.Name != "web" {
		t.Errorf("v1 spec = %+v", asV1.Spec)
	}
	r := e.do("GET", "/apis/autoscaling/v1/namespaces/"+ns+"/horizontalpodautoscalers/from-v2", nil)
	var tm metav1.TypeMeta
	must(t, json.Unmarshal(r.body, &tm))
	if tm.APIVersion != "autoscaling/v1" || tm.Kind != "HorizontalPodAutoscaler" {
		t.Errorf("v1 read is %s %s", tm.APIVersion, tm.Kind)
	}

	seventy := int32(70)
	v1 := &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "from-v1"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MaxReplicas:    3, TargetCPUUtilizationPercentage: &seventy,
		},
	}
	created, err := e.s.Client.AutoscalingV1().HorizontalPodAutoscalers(ns).Create(e.ctx, v1, metav1.CreateOptions{})
	must(t, err)
	if created.Spec.TargetCPUUtilizationPercentage == nil || *created.Spec.TargetCPUUtilizationPercentage != 70 {
		t.Errorf("v1 create answered target %v", created.Spec.TargetCPUUtilizationPercentage)
	}
	if created.Spec.MinReplicas == nil || *created.Spec.MinReplicas != 1 {
		t.Errorf("v1 minReplicas default = %v, want 1", created.Spec.MinReplicas)
	}
	asV2, err := e.s.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(e.ctx, "from-v1", metav1.GetOptions{})
	must(t, err)
	if len(asV2.Spec.Metrics) != 1 || asV2.Spec.Metrics[0].Resource == nil || asV2.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU ||
		asV2.Spec.Metrics[0].Resource.Target.Type != autoscalingv2.UtilizationMetricType ||
		asV2.Spec.Metrics[0].Resource.Target.AverageUtilization == nil || *asV2.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 {
		t.Errorf("v2 metrics = %+v, want cpu Utilization 70", asV2.Spec.Metrics)
	}
	// Both versions list the same objects.
	l1, err := e.s.Client.AutoscalingV1().HorizontalPodAutoscalers(ns).List(e.ctx, metav1.ListOptions{})
	must(t, err)
	l2, err := e.s.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).List(e.ctx, metav1.ListOptions{})
	must(t, err)
	if len(l1.Items) != 2 || len(l2.Items) != 2 {
		t.Errorf("v1 lists %d, v2 lists %d, want 2 each", len(l1.Items), len(l2.Items))
	}
	// An update through v1 keeps the v2-only fields it cannot express? Upstream
	// keeps them in an annotation; at least the v1 field round-trips.
	asV1.Spec.MaxReplicas = 9
	upd, err := e.s.Client.AutoscalingV1().HorizontalPodAutoscalers(ns).Update(e.ctx, asV1, metav1.UpdateOptions{})
	must(t, err)
	if upd.Spec.MaxReplicas != 9 || upd.Spec.TargetCPUUtilizationPercentage == nil || *upd.Spec.TargetCPUUtilizationPercentage != 50 {
		t.Errorf("v1 update answered %+v", upd.Spec)
	}
}

func TestEventVersions(t *testing.T) {
	e := start(t)
	ns := e.namespace("events")
	now := metav1.NowMicro()
	ev := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "new-style"},
		EventTime:           now,
		ReportingController: "example.com/controller",
		ReportingInstance:   "controller-1",
		Action:              "Scheduling",
		Reason:              "Scheduled",
		Note:                "hello from events.k8s.io",
		Type:                corev1.EventTypeNormal,
		Regarding:           corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "p", APIVersion: "v1"},
	}
	_, err := e.s.Client.EventsV1().Events(ns).Create(e.ctx, ev, metav1.CreateOptions{})
	must(t, err)
	core, err := e.s.Client.CoreV1().Events(ns).Get(e.ctx, "new-style", metav1.GetOptions{})
	must(t, err)
	if core.Message != ev.Note || core.Reason != "Scheduled" || core.InvolvedObject.Name != "p" || core.InvolvedObject.Kind != "Pod" ||
		core.ReportingController != "example.com/controller" || core.Action != "Scheduling" || core.Type != corev1.EventTypeNormal {
		t.Errorf("core view of an events.k8s.io event = %+v", core)
	}

	old := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "old-style"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "q", APIVersion: "v1"},
		Reason:         "Pulled",
		Message:        "image pulled",
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: metav1.NewTime(time.Now()),
		LastTimestamp:  metav1.NewTime(time.Now()),
		Count:          3,
		Type:           corev1.EventTypeWarning,
	}
	_, err = e.s.Client.CoreV1().Events(ns).Create(e.ctx, old, metav1.CreateOptions{})
	must(t, err)
	nev, err := e.s.Client.EventsV1().Events(ns).Get(e.ctx, "old-style", metav1.GetOptions{})
	must(t, err)
	if nev.Note != "image pulled" || nev.Reason != "Pulled" || nev.Regarding.Name != "q" || nev.Type != corev1.EventTypeWarning ||
		nev.DeprecatedSource.Component != "kubelet" || nev.DeprecatedCount != 3 {
		t.Errorf("events.k8s.io view of a core event = %+v", nev)
	}
	l, err := e.s.Client.EventsV1().Events(ns).List(e.ctx, metav1.ListOptions{})
	must(t, err)
	if len(l.Items) != 2 {
		t.Errorf("events.k8s.io lists %d events, want 2", len(l.Items))
	}
	cl, err := e.s.Client.CoreV1().Events(ns).List(e.ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=q"})
	must(t, err)
	if len(cl.Items) != 1 || cl.Items[0].Name != "old-style" {
		t.Errorf("core events with involvedObject.name=q = %d", len(cl.Items))
	}
}
