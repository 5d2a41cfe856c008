package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

const appYAML = "testdata/app.yaml"

// appLines are kubectl's one-line reports for each object of app.yaml, in
// file order, for the given verb ("created", "unchanged", ...).
func appLines(verb string) []string {
	return []string{
		"deployment.apps/web " + verb,
		"service/web " + verb,
		"configmap/web-config " + verb,
		"secret/web-secret " + verb,
		"job.batch/migrate " + verb,
	}
}

// appDeletedLines is what `kubectl delete -f app.yaml` prints.
var appDeletedLines = []string{
	`deployment.apps "web" deleted`,
	`service "web" deleted`,
	`configmap "web-config" deleted`,
	`secret "web-secret" deleted`,
	`job.batch "migrate" deleted`,
}

// TestShopWorkflow is the workflow a new user runs, through the kubectl
// dispatcher. Steps build on one another, so a failed setup step stops it.
func TestShopWorkflow(t *testing.T) {
	k := cluster(t).kubectl(t)
	const ns = "shop"
	must := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	must("create namespace", func(t *testing.T) { k.createNamespace(t, ns) })
	must("apply", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "apply", "-f", appYAML)
		wantLines(t, r, r.stdout, appLines("created")...)
	})
	t.Run("apply again is unchanged", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "apply", "-f", appYAML)
		wantLines(t, r, r.stdout, appLines("unchanged")...)
	})
	t.Run("get deploy,svc,cm -o wide", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "get", "deploy,svc,cm", "-o", "wide")
		checkAppTables(t, r, true, "3")
	})
	t.Run("describe deployment", func(t *testing.T) { checkDescribeWeb(t, k, ns, "3") })
	t.Run("apply edited yaml is configured", func(t *testing.T) {
		edited := strings.NewReplacer("greeting: hello", "greeting: hi", "image: nginx:1.25", "image: nginx:1.26").
			Replace(readTestdata(t, "app.yaml"))
		r := k.okR(t, "-n", ns, "apply", "-f", writeFile(t, "app.yaml", edited))
		wantLines(t, r, r.stdout,
			"deployment.apps/web configured",
			"service/web unchanged",
			"configmap/web-config configured",
			"secret/web-secret unchanged",
			"job.batch/migrate unchanged")
		r = k.okR(t, "-n", ns, "get", "cm/web-config", "deploy/web", "-o", `jsonpath={.items[0].data.greeting} {.items[1].spec.template.spec.containers[0].image}`)
		wantLines(t, r, r.stdout, "hi nginx:1.26")
		// The original manifest stays applicable; put it back.
		r = k.okR(t, "-n", ns, "apply", "-f", appYAML)
		wantLines(t, r, r.stdout,
			"deployment.apps/web configured",
			"service/web unchanged",
			"configmap/web-config configured",
			"secret/web-secret unchanged",
			"job.batch/migrate unchanged")
	})
	t.Run("scale", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "scale", "deployment", "web", "--replicas=5")
		wantLines(t, r, r.stdout, "deployment.apps/web scaled")
		r = k.okR(t, "-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}")
		wantLines(t, r, r.stdout, "5")
		r = k.okR(t, "-n", ns, "get", "deploy", "web")
		tb := oneTable(t, r.stdout, "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE")
		wantRow(t, tb, r.stdout, "web", map[string]string{"READY": "0/5", "UP-TO-DATE": "0", "AVAILABLE": "0"})
		// The scale subresource itself.
		r = k.okR(t, "get", "--raw", "/apis/apps/v1/namespaces/"+ns+"/deployments/web/scale")
		var scale struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
			Spec       struct {
				Replicas int `json:"replicas"`
			} `json:"spec"`
			Status struct {
				Selector string `json:"selector"`
			} `json:"status"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &scale); err != nil {
			t.Fatalf("scale subresource is not JSON: %v\n%s", err, r)
		}
		if scale.Kind != "Scale" || scale.APIVersion != "autoscaling/v1" || scale.Spec.Replicas != 5 || scale.Status.Selector != "app=web" {
			t.Errorf("scale subresource = %+v, want kind Scale, autoscaling/v1, spec.replicas 5, status.selector app=web\n%s", scale, r)
		}
	})
	t.Run("label pods", func(t *testing.T) {
		r := k.runStdin(t, podYAML("p1", map[string]string{"app": "shop"})+"---\n"+podYAML("p2", map[string]string{"app": "shop"}),
			"-n", ns, "create", "-f", "-")
		if r.code != 0 {
			t.Fatalf("kubectl failed:\n%s", r)
		}
		wantLines(t, r, r.stdout, "pod/p1 created", "pod/p2 created")
		r = k.okR(t, "-n", ns, "label", "pods", "--all", "tier=frontend")
		wantLines(t, r, r.stdout, "pod/p1 labeled", "pod/p2 labeled")
		r = k.okR(t, "-n", ns, "label", "pods", "--all", "tier=frontend")
		wantLines(t, r, r.stdout, "pod/p1 not labeled", "pod/p2 not labeled")
		r = k.okR(t, "-n", ns, "get", "pods", "--show-labels")
		tb := oneTable(t, r.stdout, "NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS")
		for _, p := range []string{"p1", "p2"} {
			wantRow(t, tb, r.stdout, p, map[string]string{"READY": "0/1", "STATUS": "Pending", "RESTARTS": "0", "AGE": ageRE, "LABELS": "app=shop,tier=frontend"})
		}
		r = k.okR(t, "-n", ns, "label", "pod", "p2", "tier-")
		wantLines(t, r, r.stdout, "pod/p2 unlabeled")
		r = k.okR(t, "-n", ns, "get", "pods", "-l", "tier=frontend", "-o", "name")
		wantLines(t, r, r.stdout, "pod/p1")
	})
	t.Run("get all", func(t *testing.T) {
		r := k.okR(t, "get", "all", "-n", ns)
		found := map[string]bool{}
		for _, tb := range parseTables(r.stdout) {
			for _, n := range tb.names() {
				found[n] = true
			}
		}
		for _, n := range []string{"pod/p1", "pod/p2", "service/web", "deployment.apps/web", "job.batch/migrate"} {
			if !found[n] {
				t.Errorf("kubectl get all lacks %s:\n%s", n, r)
			}
		}
		for _, n := range []string{"configmap/web-config", "secret/web-secret"} {
			if found[n] {
				t.Errorf("kubectl get all lists %s, which is not in the \"all\" category:\n%s", n, r)
			}
		}
	})
	t.Run("delete -f", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "delete", "-f", appYAML)
		wantLines(t, r, r.stdout, appDeletedLines...)
		r = k.fails(t, "-n", ns, "get", "deploy", "web")
		wantLines(t, r, r.stderr, `Error from server (NotFound): deployments.apps "web" not found`)
		r = k.fails(t, "-n", ns, "get", "cm", "web-config")
		wantLines(t, r, r.stderr, `Error from server (NotFound): configmaps "web-config" not found`)
	})
}

// checkAppTables checks `kubectl get deploy,svc,cm [-o wide]` right after
// app.yaml was applied: three tables in the order asked for.
func checkAppTables(t *testing.T, r result, wide bool, replicas string) {
	t.Helper()
	tables := parseTables(r.stdout)
	if len(tables) != 3 {
		t.Fatalf("want 3 tables (deployments, services, configmaps), got %d:\n%s", len(tables), r)
	}
	deployHeader := []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}
	svcHeader := []string{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"}
	deployRow := map[string]string{"READY": "0/" + replicas, "UP-TO-DATE": "0", "AVAILABLE": "0", "AGE": ageRE}
	svcRow := map[string]string{"TYPE": "ClusterIP", "CLUSTER-IP": `~\d+\.\d+\.\d+\.\d+`, "EXTERNAL-IP": "<none>", "PORT(S)": "80/TCP", "AGE": ageRE}
	if wide {
		deployHeader = append(deployHeader, "CONTAINERS", "IMAGES", "SELECTOR")
		svcHeader = append(svcHeader, "SELECTOR")
		deployRow["CONTAINERS"], deployRow["IMAGES"], deployRow["SELECTOR"] = "web", "nginx:1.25", "app=web"
		svcRow["SELECTOR"] = "app=web"
	}
	wantHeader(t, tables[0], r.stdout, deployHeader...)
	wantRow(t, tables[0], r.stdout, "deployment.apps/web", deployRow)
	wantHeader(t, tables[1], r.stdout, svcHeader...)
	wantRow(t, tables[1], r.stdout, "service/web", svcRow)
	wantHeader(t, tables[2], r.stdout, "NAME", "DATA", "AGE")
	wantRow(t, tables[2], r.stdout, "configmap/web-config", map[string]string{"DATA": "1", "AGE": ageRE})
}

// checkDescribeWeb checks `kubectl describe deployment web` as upstream
// prints it for a deployment no controller has acted on yet.
func checkDescribeWeb(t *testing.T, k *kubectl, ns, replicas string) {
	t.Helper()
	r := k.okR(t, "-n", ns, "describe", "deployment", "web")
	wantMatch(t, r, r.stdout,
		`^Name:\s+web$`,
		`^Namespace:\s+`+ns+`$`,
		`^CreationTimestamp:\s+\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$`,
		`^Labels:\s+app=web$`,
		`^Selector:\s+app=web$`,
		`^Replicas:\s+`+replicas+` desired \| 0 updated \| 0 total \| 0 available \| 0 unavailable$`,
		`^StrategyType:\s+RollingUpdate$`,
		`^MinReadySeconds:\s+0$`,
		`^RollingUpdateStrategy:\s+25% max unavailable, 25% max surge$`,
		`^Pod Template:$`,
		`^  Labels:\s+app=web$`,
		`^  Containers:$`,
		`^   web:$`,
		`^    Image:\s+nginx:1.25$`,
		`^    Port:\s+80/TCP$`,
		`^Events:\s+`,
	)
}
