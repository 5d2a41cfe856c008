package e2e

import (
	"strings"
	"testing"
)

const ssaDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ssa
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: ssa}}
  template:
    metadata: {labels: {app: ssa}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports: [{containerPort: 53, protocol: UDP}, {containerPort: 53}]
`

// TestServerSideApply drives `kubectl apply --server-side` through what
// its users meet: create, conflicts with another writer, --force-conflicts,
// server dry run, and kubectl's migration of client-side-applied objects.
func TestServerSideApply(t *testing.T) {
	k := cluster(t).kubectl(t)
	const ns = "ssa"
	k.createNamespace(t, ns)
	deployment := func(replicas string) string { return strings.Replace(ssaDeployment, "REPLICAS", replicas, 1) }

	t.Run("create and reapply", func(t *testing.T) {
		r := k.runStdin(t, deployment("2"), "-n", ns, "apply", "--server-side", "-f", "-")
		wantLines(t, r, r.stdout, "deployment.apps/ssa serverside-applied")
		r = k.okR(t, "-n", ns, "get", "deploy", "ssa", "--show-managed-fields", "-o",
			`jsonpath={range .metadata.managedFields[?(@.operation=="Apply")]}{.manager}{"\n"}{end}`)
		wantLines(t, r, r.stdout, "kubectl")
	})
	t.Run("conflict with scale, then forced", func(t *testing.T) {
		k.ok(t, "-n", ns, "scale", "deploy", "ssa", "--replicas=4")
		r := k.runStdin(t, deployment("2"), "-n", ns, "apply", "--server-side", "-f", "-")
		if r.code == 0 {
			t.Fatalf("apply over scale's replicas succeeded:\n%s", r)
		}
		wantContains(t, r, r.stderr, `Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas`,
			"--force-conflicts")
		r = k.runStdin(t, deployment("2"), "-n", ns, "apply", "--server-side", "--force-conflicts", "-f", "-")
		wantLines(t, r, r.stdout, "deployment.apps/ssa serverside-applied")
		r = k.okR(t, "-n", ns, "get", "deploy", "ssa", "-o", "jsonpath={.spec.replicas}")
		wantLines(t, r, r.stdout, "2")
	})
	t.Run("server dry run", func(t *testing.T) {
		r := k.runStdin(t, deployment("7"), "-n", ns, "apply", "--server-side", "--dry-run=server", "-f", "-")
		wantLines(t, r, r.stdout, "deployment.apps/ssa serverside-applied (server dry run)")
		r = k.okR(t, "-n", ns, "get", "deploy", "ssa", "-o", "jsonpath={.spec.replicas}")
		wantLines(t, r, r.stdout, "2")
	})
	t.Run("client-side applied object moves to server-side", func(t *testing.T) {
		cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: moved}\ndata: {a: \"1\", b: \"2\"}\n"
		r := k.runStdin(t, cm, "-n", ns, "apply", "-f", "-")
		wantLines(t, r, r.stdout, "configmap/moved created")
		r = k.runStdin(t, cm, "-n", ns, "apply", "--server-side", "-f", "-")
		wantLines(t, r, r.stdout, "configmap/moved serverside-applied")
		if r.stderr != "" {
			t.Errorf("migration warned:\n%s", r)
		}
		// kubectl now owns what client-side apply owned: leaving b out
		// of the next apply removes it.
		r = k.runStdin(t, strings.Replace(cm, `, b: "2"`, "", 1), "-n", ns, "apply", "--server-side", "-f", "-")
		wantLines(t, r, r.stdout, "configmap/moved serverside-applied")
		r = k.okR(t, "-n", ns, "get", "cm", "moved", "-o", "jsonpath={.data}")
		wantLines(t, r, r.stdout, `{"a":"1"}`)
	})
}
