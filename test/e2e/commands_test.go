package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// getJSON runs `kubectl get ... -o json` and decodes the object.
func getJSON(t *testing.T, k *kubectl, args ...string) map[string]any {
	t.Helper()
	r := k.okR(t, append(append([]string{"get"}, args...), "-o", "json")...)
	var obj map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &obj); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r)
	}
	return obj
}

// field walks a decoded object along keys.
func field(obj any, keys ...string) any {
	for _, k := range keys {
		m, ok := obj.(map[string]any)
		if !ok {
			return nil
		}
		obj = m[k]
	}
	return obj
}

func TestCreateCommands(t *testing.T) {
	k := cluster(t).kubectl(t)
	const ns = "mk"
	k.createNamespace(t, ns)

	t.Run("configmap from literal", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "create", "configmap", "x", "--from-literal=a=b")
		wantLines(t, r, r.stdout, "configmap/x created")
		r = k.okR(t, "-n", ns, "get", "cm", "x", "-o", "jsonpath={.data.a}")
		wantLines(t, r, r.stdout, "b")
		r = k.okR(t, "-n", ns, "get", "cm", "x")
		tb := oneTable(t, r.stdout, "NAME", "DATA", "AGE")
		wantRow(t, tb, r.stdout, "x", map[string]string{"DATA": "1", "AGE": ageRE})
	})
	t.Run("secret generic", func(t *testing.T) {
		file := writeFile(t, "key.pem", "not really a key\n")
		r := k.okR(t, "-n", ns, "create", "secret", "generic", "s", "--from-literal=user=admin", "--from-file=key="+file)
		wantLines(t, r, r.stdout, "secret/s created")
		r = k.okR(t, "-n", ns, "get", "secret", "s", "-o", "jsonpath={.data.user} {.data.key}")
		wantLines(t, r, r.stdout, "YWRtaW4= bm90IHJlYWxseSBhIGtleQo=")
		r = k.okR(t, "-n", ns, "get", "secret", "s")
		tb := oneTable(t, r.stdout, "NAME", "TYPE", "DATA", "AGE")
		wantRow(t, tb, r.stdout, "s", map[string]string{"TYPE": "Opaque", "DATA": "2", "AGE": ageRE})
		r = k.okR(t, "-n", ns, "describe", "secret", "s")
		wantMatch(t, r, r.stdout, `^Name:\s+s$`, `^Type:\s+Opaque$`, `^user:\s+5 bytes$`, `^key:\s+17 bytes$`)
	})
	t.Run("deployment service job pod", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			line string
		}{
			{[]string{"create", "deployment", "d", "--image=nginx:1.25", "--replicas=2"}, "deployment.apps/d created"},
			{[]string{"create", "service", "clusterip", "svc", "--tcp=80:8080"}, "service/svc created"},
			{[]string{"create", "job", "j", "--image=busybox:1.36", "--", "echo", "hi"}, "job.batch/j created"},
			{[]string{"run", "p", "--image=nginx:1.25", "--labels=app=run"}, "pod/p created"},
		} {
			r := k.okR(t, append([]string{"-n", ns}, c.args...)...)
			wantLines(t, r, r.stdout, c.line)
		}
		r := k.okR(t, "-n", ns, "get", "deploy", "d", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].name} {.spec.strategy.type}")
		wantLines(t, r, r.stdout, "2 nginx RollingUpdate")
		r = k.okR(t, "-n", ns, "get", "job", "j")
		tb := oneTable(t, r.stdout, "NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE")
		wantRow(t, tb, r.stdout, "j", map[string]string{"COMPLETIONS": "0/1", "AGE": ageRE})
		// The server fills in the job's selector and pod labels.
		r = k.okR(t, "-n", ns, "get", "job", "j", "-o", "jsonpath={.spec.template.metadata.labels.job-name} {.spec.backoffLimit}")
		wantLines(t, r, r.stdout, "j 6")
	})
}

func TestErrors(t *testing.T) {
	k := cluster(t).kubectl(t)
	const ns = "errs"
	k.createNamespace(t, ns)

	t.Run("create existing", func(t *testing.T) {
		k.ok(t, "-n", ns, "create", "configmap", "dup", "--from-literal=a=b")
		r := k.fails(t, "-n", ns, "create", "configmap", "dup", "--from-literal=a=b")
		wantContains(t, r, r.stderr, `configmaps "dup" already exists`)
		r = k.runStdin(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dup\n", "-n", ns, "create", "-f", "-")
		if r.code == 0 {
			t.Fatalf("create of an existing object succeeded:\n%s", r)
		}
		wantLines(t, r, r.stderr, `Error from server (AlreadyExists): error when creating "STDIN": configmaps "dup" already exists`)
		r = k.fails(t, "create", "namespace", ns)
		wantContains(t, r, r.stderr, `namespaces "errs" already exists`)
	})
	t.Run("invalid deployment", func(t *testing.T) {
		// Kubernetes 1.33 prints the bad value with %#v, later releases
		// (and apimachinery v0.34+) as JSON; either is upstream's.
		const msg = `The Deployment "bad" is invalid: spec.template.metadata.labels: Invalid value: (map\[string\]string)?\{"app":"other"\}: ` +
			"`selector` does not match template `labels`"
		r := k.fails(t, "-n", ns, "apply", "-f", "testdata/bad-selector.yaml")
		wantMatch(t, r, r.stderr, msg)
		// -v=6 logs each request with its status: the 422. (kubectl 1.33
		// logs it as key=value pairs, older ones as one plain line.)
		r = k.fails(t, "-n", ns, "create", "-f", "testdata/bad-selector.yaml", "-v=6")
		wantMatch(t, r, r.stderr, `POST.*/apis/apps/v1/namespaces/errs/deployments.*422 Unprocessable Entity`, msg)
		r = k.fails(t, "-n", ns, "get", "deploy", "bad")
		wantLines(t, r, r.stderr, `Error from server (NotFound): deployments.apps "bad" not found`)
	})
	t.Run("unknown field", func(t *testing.T) {
		r := k.fails(t, "-n", ns, "apply", "-f", "testdata/unknown-field.yaml")
		wantContains(t, r, r.stderr, "unknown field", "replicass")
		r = k.fails(t, "-n", ns, "create", "-f", "testdata/unknown-field.yaml")
		wantContains(t, r, r.stderr, "unknown field", "replicass")
		r = k.fails(t, "-n", ns, "get", "deploy", "typo")
		wantLines(t, r, r.stderr, `Error from server (NotFound): deployments.apps "typo" not found`)
		// With validation off the field is dropped and the object made.
		r = k.okR(t, "-n", ns, "apply", "--validate=false", "-f", "testdata/unknown-field.yaml")
		wantLines(t, r, r.stdout, "deployment.apps/typo created")
	})
	t.Run("dry-run=server", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "create", "configmap", "dry", "--from-literal=a=b", "--dry-run=server")
		wantLines(t, r, r.stdout, "configmap/dry created (server dry run)")
		r = k.okR(t, "-n", ns, "apply", "--dry-run=server", "-f", appYAML)
		wantLines(t, r, r.stdout,
			"deployment.apps/web created (server dry run)",
			"service/web created (server dry run)",
			"configmap/web-config created (server dry run)",
			"secret/web-secret created (server dry run)",
			"job.batch/migrate created (server dry run)")
		r = k.fails(t, "-n", ns, "get", "cm", "dry")
		wantLines(t, r, r.stderr, `Error from server (NotFound): configmaps "dry" not found`)
		r = k.okR(t, "-n", ns, "get", "deploy,svc,cm,secret,job", "-o", "name")
		for _, n := range []string{"deployment.apps/web", "service/web", "configmap/web-config", "secret/web-secret", "job.batch/migrate"} {
			if strings.Contains(r.stdout, n+"\n") {
				t.Errorf("dry run created %s:\n%s", n, r)
			}
		}
		// A dry-run delete leaves the object alone.
		r = k.okR(t, "-n", ns, "delete", "cm", "dup", "--dry-run=server")
		wantLines(t, r, r.stdout, `configmap "dup" deleted (server dry run)`)
		k.ok(t, "-n", ns, "get", "cm", "dup")
	})
	t.Run("get missing", func(t *testing.T) {
		r := k.fails(t, "-n", ns, "get", "cm", "nope")
		wantLines(t, r, r.stderr, `Error from server (NotFound): configmaps "nope" not found`)
		r = k.fails(t, "-n", ns, "get", "pod", "nope", "-o", "yaml")
		wantLines(t, r, r.stderr, `Error from server (NotFound): pods "nope" not found`)
		r = k.fails(t, "get", "ns", "nope")
		wantLines(t, r, r.stderr, `Error from server (NotFound): namespaces "nope" not found`)
		r = k.okR(t, "-n", ns, "get", "pods")
		wantLines(t, r, r.stderr, "No resources found in errs namespace.")
		r = k.fails(t, "-n", ns, "get", "nosuchkind")
		wantContains(t, r, r.stderr, `the server doesn't have a resource type "nosuchkind"`)
	})
}

func TestPatch(t *testing.T) {
	k := cluster(t).kubectl(t)
	const ns = "patch"
	k.createNamespace(t, ns)
	k.ok(t, "-n", ns, "create", "configmap", "pc", "--from-literal=a=1")
	k.ok(t, "-n", ns, "create", "deployment", "pd", "--image=nginx:1.25")

	t.Run("merge", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "patch", "cm", "pc", "--type=merge", "-p", `{"data":{"b":"2"}}`)
		wantLines(t, r, r.stdout, "configmap/pc patched")
		r = k.okR(t, "-n", ns, "get", "cm", "pc", "-o", "jsonpath={.data.a},{.data.b}")
		wantLines(t, r, r.stdout, "1,2")
		r = k.okR(t, "-n", ns, "patch", "cm", "pc", "--type=merge", "-p", `{"data":{"b":"2"}}`)
		wantLines(t, r, r.stdout, "configmap/pc patched (no change)")
	})
	t.Run("json", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "patch", "cm", "pc", "--type=json", "-p",
			`[{"op":"replace","path":"/data/a","value":"3"},{"op":"remove","path":"/data/b"}]`)
		wantLines(t, r, r.stdout, "configmap/pc patched")
		data := field(getJSON(t, k, "-n", ns, "cm", "pc"), "data")
		if fmt.Sprint(data) != "map[a:3]" {
			t.Errorf("after json patch data = %v, want map[a:3]", data)
		}
		// Removing a path that is not there is an error, not a no-op.
		k.fails(t, "-n", ns, "patch", "cm", "pc", "--type=json", "-p", `[{"op":"remove","path":"/data/missing"}]`)
	})
	t.Run("strategic", func(t *testing.T) {
		// Strategic merge merges containers by name; a merge patch would
		// replace the list.
		r := k.okR(t, "-n", ns, "patch", "deploy", "pd", "-p",
			`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.36"}]}}}}`)
		wantLines(t, r, r.stdout, "deployment.apps/pd patched")
		r = k.okR(t, "-n", ns, "get", "deploy", "pd", "-o", "jsonpath={.spec.template.spec.containers[*].name}")
		names := strings.Fields(r.stdout)
		sort.Strings(names)
		if strings.Join(names, " ") != "nginx sidecar" {
			t.Errorf("containers after strategic patch = %v, want nginx and sidecar\n%s", names, r)
		}
		r = k.okR(t, "-n", ns, "patch", "deploy", "pd", "-p",
			`{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.26"}]}}}}`)
		wantLines(t, r, r.stdout, "deployment.apps/pd patched")
		r = k.okR(t, "-n", ns, "get", "deploy", "pd", "-o", `jsonpath={range .spec.template.spec.containers[*]}{.name}={.image}{"\n"}{end}`)
		lines := strings.Fields(r.stdout)
		sort.Strings(lines)
		if strings.Join(lines, " ") != "nginx=nginx:1.26 sidecar=busybox:1.36" {
			t.Errorf("containers = %v, want nginx=nginx:1.26 sidecar=busybox:1.36\n%s", lines, r)
		}
		// $patch: delete removes one list element.
		r = k.okR(t, "-n", ns, "patch", "deploy", "pd", "-p",
			`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}`)
		wantLines(t, r, r.stdout, "deployment.apps/pd patched")
		r = k.okR(t, "-n", ns, "get", "deploy", "pd", "-o", "jsonpath={.spec.template.spec.containers[*].name}")
		wantLines(t, r, r.stdout, "nginx")
		r = k.okR(t, "-n", ns, "patch", "deploy", "pd", "--type=merge", "-p",
			`{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"nginx:1.27"}]}}}}`)
		wantLines(t, r, r.stdout, "deployment.apps/pd patched")
		r = k.okR(t, "-n", ns, "get", "deploy", "pd", "-o", "jsonpath={.spec.template.spec.containers[*].name}")
		wantLines(t, r, r.stdout, "only")
	})
	t.Run("invalid result", func(t *testing.T) {
		r := k.fails(t, "-n", ns, "patch", "deploy", "pd", "--type=merge", "-p", `{"spec":{"replicas":-1}}`)
		wantContains(t, r, r.stderr, `The Deployment "pd" is invalid: `, "spec.replicas: Invalid value: -1: must be greater than or equal to 0")
	})
	t.Run("missing", func(t *testing.T) {
		r := k.fails(t, "-n", ns, "patch", "cm", "ghost", "--type=merge", "-p", `{"data":{"a":"1"}}`)
		wantLines(t, r, r.stderr, `Error from server (NotFound): configmaps "ghost" not found`)
	})
}

func TestOutputFormats(t *testing.T) {
	k := cluster(t).kubectl(t)
	const ns = "out"
	k.createNamespace(t, ns)
	// Created out of name order, ranked in a third order, so sorting by
	// name and by rank are both visible.
	var manifests []string
	for _, p := range [][2]string{{"pb", "1"}, {"pa", "3"}, {"pc", "2"}} {
		manifests = append(manifests, podYAML(p[0], map[string]string{"app": "out", "rank": p[1]}))
	}
	k.okStdin(t, strings.Join(manifests, "---\n"), "-n", ns, "create", "-f", "-")

	t.Run("table", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "get", "pods")
		tb := oneTable(t, r.stdout, "NAME", "READY", "STATUS", "RESTARTS", "AGE")
		if got := strings.Join(tb.names(), " "); got != "pa pb pc" {
			t.Errorf("pods listed as %s, want pa pb pc (by name)\n%s", got, r)
		}
		wantRow(t, tb, r.stdout, "pa", map[string]string{"READY": "0/1", "STATUS": "Pending", "RESTARTS": "0", "AGE": ageRE})
		r = k.okR(t, "-n", ns, "get", "pods", "-o", "wide")
		tb = oneTable(t, r.stdout, "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES")
		wantRow(t, tb, r.stdout, "pb", map[string]string{"IP": "<none>", "NODE": "<none>", "NOMINATED NODE": "<none>", "READINESS GATES": "<none>"})
		r = k.okR(t, "-n", ns, "get", "pods", "--no-headers")
		if strings.Contains(r.stdout, "NAME") || len(strings.Split(strings.TrimSpace(r.stdout), "\n")) != 3 {
			t.Errorf("--no-headers:\n%s", r)
		}
	})
	t.Run("name", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "get", "pods", "-o", "name")
		wantLines(t, r, r.stdout, "pod/pa", "pod/pb", "pod/pc")
	})
	t.Run("jsonpath", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "get", "pods", "-o", "jsonpath={.items[*].metadata.name}")
		wantLines(t, r, r.stdout, "pa pb pc")
		r = k.okR(t, "-n", ns, "get", "pods", "-o", `jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.rank} {.status.phase}{"\n"}{end}`)
		wantLines(t, r, r.stdout, "pa=3 Pending", "pb=1 Pending", "pc=2 Pending")
		r = k.okR(t, "-n", ns, "get", "pod", "pa", "-o", "jsonpath={.metadata.namespace}/{.metadata.name} {.kind} {.apiVersion}")
		wantLines(t, r, r.stdout, "out/pa Pod v1")
	})
	t.Run("yaml", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "get", "pod", "pa", "-o", "yaml")
		if !strings.HasPrefix(r.stdout, "apiVersion: v1\nkind: Pod\nmetadata:\n") {
			t.Errorf("single object yaml should start with apiVersion, kind, metadata:\n%s", r)
		}
		var pod map[string]any
		if err := yaml.Unmarshal([]byte(r.stdout), &pod); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, r)
		}
		if field(pod, "metadata", "name") != "pa" || field(pod, "metadata", "namespace") != ns ||
			field(pod, "metadata", "uid") == nil || field(pod, "metadata", "resourceVersion") == nil ||
			field(pod, "metadata", "creationTimestamp") == nil || field(pod, "status", "phase") != "Pending" {
			t.Errorf("pod yaml lacks name/namespace/uid/resourceVersion/creationTimestamp/phase:\n%s", r)
		}
		r = k.okR(t, "-n", ns, "get", "pods", "-o", "yaml")
		if !strings.HasPrefix(r.stdout, "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Pod\n") ||
			!strings.HasSuffix(r.stdout, "kind: List\nmetadata:\n  resourceVersion: \"\"\n") {
			t.Errorf("list yaml is not a v1 List of Pods:\n%s", r)
		}
		var list struct {
			Kind  string
			Items []map[string]any
		}
		if err := yaml.Unmarshal([]byte(r.stdout), &list); err != nil || list.Kind != "List" || len(list.Items) != 3 {
			t.Errorf("list yaml: err %v, kind %q, %d items; want List with 3\n%s", err, list.Kind, len(list.Items), r)
		}
	})
	t.Run("json", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "get", "pod", "pa", "-o", "json")
		if !strings.HasPrefix(r.stdout, "{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"Pod\",\n") {
			t.Errorf("single object json should start with apiVersion and kind, indented by 4:\n%s", r)
		}
		list := getJSON(t, k, "-n", ns, "pods")
		items, _ := list["items"].([]any)
		if list["kind"] != "List" || list["apiVersion"] != "v1" || len(items) != 3 {
			t.Fatalf("get pods -o json = kind %v apiVersion %v with %d items, want List v1 with 3", list["kind"], list["apiVersion"], len(items))
		}
		for _, it := range items {
			if field(it, "kind") != "Pod" || field(it, "apiVersion") != "v1" {
				t.Errorf("list item kind/apiVersion = %v/%v, want Pod/v1", field(it, "kind"), field(it, "apiVersion"))
			}
		}
	})
	t.Run("show-labels", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "get", "pods", "--show-labels")
		tb := oneTable(t, r.stdout, "NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS")
		wantRow(t, tb, r.stdout, "pa", map[string]string{"LABELS": "app=out,rank=3"})
		r = k.okR(t, "-n", ns, "get", "pods", "-L", "rank")
		tb = oneTable(t, r.stdout, "NAME", "READY", "STATUS", "RESTARTS", "AGE", "RANK")
		wantRow(t, tb, r.stdout, "pc", map[string]string{"RANK": "2"})
	})
	t.Run("sort-by", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "get", "pods", "--sort-by=.metadata.labels.rank")
		tb := oneTable(t, r.stdout, "NAME", "READY", "STATUS", "RESTARTS", "AGE")
		if got := strings.Join(tb.names(), " "); got != "pb pc pa" {
			t.Errorf("sorted by rank: %s, want pb pc pa\n%s", got, r)
		}
		r = k.okR(t, "-n", ns, "get", "pods", "--sort-by=.metadata.name", "-o", "name")
		wantLines(t, r, r.stdout, "pod/pa", "pod/pb", "pod/pc")
	})
	t.Run("selectors", func(t *testing.T) {
		for _, c := range []struct{ args, want []string }{
			{[]string{"-l", "rank=2"}, []string{"pod/pc"}},
			{[]string{"-l", "rank in (1,3)"}, []string{"pod/pa", "pod/pb"}},
			{[]string{"-l", "app=out,rank!=1"}, []string{"pod/pa", "pod/pc"}},
			{[]string{"--field-selector", "metadata.name=pb"}, []string{"pod/pb"}},
			{[]string{"--field-selector", "status.phase=Pending,metadata.name!=pa"}, []string{"pod/pb", "pod/pc"}},
		} {
			r := k.okR(t, append([]string{"-n", ns, "get", "pods", "-o", "name"}, c.args...)...)
			wantLines(t, r, r.stdout, c.want...)
		}
		r := k.okR(t, "-n", ns, "get", "pods", "-l", "rank=9")
		wantLines(t, r, r.stderr, "No resources found in out namespace.")
	})
	t.Run("custom-columns", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "get", "pods", "-o", "custom-columns=NAME:.metadata.name,RANK:.metadata.labels.rank,IMAGE:.spec.containers[0].image")
		tb := oneTable(t, r.stdout, "NAME", "RANK", "IMAGE")
		wantRow(t, tb, r.stdout, "pb", map[string]string{"RANK": "1", "IMAGE": "nginx:1.25"})
	})
}

func TestDelete(t *testing.T) {
	k := cluster(t).kubectl(t)
	const ns = "del"
	k.createNamespace(t, ns)
	var manifests []string
	for _, p := range []string{"x", "y", "z1", "z2"} {
		manifests = append(manifests, podYAML(p, map[string]string{"app": "del", "group": p[:1]}))
	}
	k.okStdin(t, strings.Join(manifests, "---\n"), "-n", ns, "create", "-f", "-")

	t.Run("force", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "delete", "pod", "x", "--grace-period=0", "--force")
		wantLines(t, r, r.stdout, `pod "x" force deleted`)
		wantContains(t, r, r.stderr, "Immediate deletion does not wait for confirmation that the running resource has been terminated")
		r = k.fails(t, "-n", ns, "get", "pod", "x")
		wantLines(t, r, r.stderr, `Error from server (NotFound): pods "x" not found`)
	})
	t.Run("unscheduled pod goes at once", func(t *testing.T) {
		// A pod no node has taken is deleted without a grace period.
		start := time.Now()
		r := k.okR(t, "-n", ns, "delete", "pod", "y", "--timeout=20s")
		wantLines(t, r, r.stdout, `pod "y" deleted`)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("deleting an unscheduled pod took %v", d)
		}
		k.fails(t, "-n", ns, "get", "pod", "y")
	})
	t.Run("by label", func(t *testing.T) {
		r := k.okR(t, "-n", ns, "delete", "pods", "-l", "group=z")
		wantLines(t, r, r.stdout, `pod "z1" deleted`, `pod "z2" deleted`)
		r = k.okR(t, "-n", ns, "get", "pods")
		wantLines(t, r, r.stderr, "No resources found in del namespace.")
	})
	t.Run("missing", func(t *testing.T) {
		r := k.fails(t, "-n", ns, "delete", "pod", "ghost")
		wantLines(t, r, r.stderr, `Error from server (NotFound): pods "ghost" not found`)
		r = k.okR(t, "-n", ns, "delete", "pod", "ghost", "--ignore-not-found")
		wantLines(t, r, r.stdout, "")
	})
}

func TestEvents(t *testing.T) {
	k := cluster(t).kubectl(t)
	const ns = "ev"
	k.createNamespace(t, ns)
	r := k.okR(t, "-n", ns, "get", "events")
	wantLines(t, r, r.stderr, "No resources found in ev namespace.")

	k.okStdin(t, podYAML("p1", nil), "-n", ns, "create", "-f", "-")
	// describe finds a pod's events by involvedObject.uid too.
	uid := strings.TrimSpace(k.ok(t, "-n", ns, "get", "pod", "p1", "-o", "jsonpath={.metadata.uid}"))
	now := time.Now().UTC().Format(time.RFC3339)
	event := fmt.Sprintf(`apiVersion: v1
kind: Event
metadata:
  name: p1.e2e
involvedObject:
  apiVersion: v1
  kind: Pod
  name: p1
  namespace: %s
  uid: %s
reason: Tested
message: hello from e2e
type: Normal
count: 1
firstTimestamp: %q
lastTimestamp: %q
source:
  component: e2e
`, ns, uid, now, now)
	r = k.runStdin(t, event, "-n", ns, "create", "-f", "-")
	if r.code != 0 {
		t.Fatalf("create event:\n%s", r)
	}
	wantLines(t, r, r.stdout, "event/p1.e2e created")

	r = k.okR(t, "-n", ns, "get", "events")
	tb := oneTable(t, r.stdout, "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")
	row, ok := tb.row("OBJECT", "pod/p1")
	if !ok {
		t.Fatalf("no event for pod/p1:\n%s", r)
	}
	if row["TYPE"] != "Normal" || row["REASON"] != "Tested" || row["MESSAGE"] != "hello from e2e" || !strings.HasSuffix(row["LAST SEEN"], "s") {
		t.Errorf("event row = %q, want Normal Tested hello from e2e, seen seconds ago\n%s", row, r)
	}
	r = k.okR(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=p1,reason=Tested", "-o", "name")
	wantLines(t, r, r.stdout, "event/p1.e2e")
	r = k.okR(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=other")
	wantLines(t, r, r.stderr, "No resources found in ev namespace.")
	r = k.okR(t, "-n", ns, "describe", "pod", "p1")
	wantMatch(t, r, r.stdout, `^Name:\s+p1$`, `^Status:\s+Pending$`, `^Events:$`, `Normal\s+Tested\s+\S+\s+e2e\s+hello from e2e`)
}
