package e2e

import (
	"strings"
	"testing"
)

// TestKubectlVersions runs a smoke subset with the oldest and newest
// bundled kubectl explicitly: they read discovery and OpenAPI differently
// (1.27 computes apply patches from OpenAPI v2, 1.33 from v3).
func TestKubectlVersions(t *testing.T) {
	s := cluster(t)
	for _, bin := range []string{"kubectl.1.27", "kubectl.1.33"} {
		t.Run(bin, func(t *testing.T) {
			k := s.kubectlBin(t, bin)
			ns := "smoke-" + strings.ReplaceAll(strings.TrimPrefix(bin, "kubectl.1."), ".", "")
			must := func(name string, f func(t *testing.T)) {
				if !t.Run(name, f) {
					t.FailNow()
				}
			}
			t.Run("client version", func(t *testing.T) {
				r := k.okR(t, "version", "--client", "-o", "json")
				wantContains(t, r, r.stdout, `"minor": "`+strings.TrimPrefix(bin, "kubectl.1.")+`"`)
			})
			must("create namespace", func(t *testing.T) { k.createNamespace(t, ns) })
			must("apply", func(t *testing.T) {
				r := k.okR(t, "-n", ns, "apply", "-f", appYAML)
				wantLines(t, r, r.stdout, appLines("created")...)
				r = k.okR(t, "-n", ns, "apply", "-f", appYAML)
				wantLines(t, r, r.stdout, appLines("unchanged")...)
			})
			t.Run("create", func(t *testing.T) {
				r := k.okR(t, "-n", ns, "create", "configmap", "extra", "--from-literal=k=v")
				wantLines(t, r, r.stdout, "configmap/extra created")
				r = k.fails(t, "-n", ns, "create", "configmap", "extra", "--from-literal=k=v")
				wantContains(t, r, r.stderr, `configmaps "extra" already exists`)
			})
			t.Run("get", func(t *testing.T) {
				r := k.okR(t, "-n", ns, "get", "deploy,svc,cm", "-o", "wide")
				tables := parseTables(r.stdout)
				if len(tables) != 3 {
					t.Fatalf("want 3 tables:\n%s", r)
				}
				wantRow(t, tables[0], r.stdout, "deployment.apps/web", map[string]string{"READY": "0/3", "IMAGES": "nginx:1.25"})
				wantRow(t, tables[1], r.stdout, "service/web", map[string]string{"TYPE": "ClusterIP", "PORT(S)": "80/TCP"})
				wantRow(t, tables[2], r.stdout, "configmap/extra", map[string]string{"DATA": "1"})
				r = k.okR(t, "-n", ns, "get", "cm", "web-config", "-o", "jsonpath={.data.greeting}")
				wantLines(t, r, r.stdout, "hello")
				r = k.fails(t, "-n", ns, "get", "cm", "nope")
				wantLines(t, r, r.stderr, `Error from server (NotFound): configmaps "nope" not found`)
			})
			t.Run("describe", func(t *testing.T) { checkDescribeWeb(t, k, ns, "3") })
			t.Run("explain", func(t *testing.T) {
				checkExplainStrategy(t, k.okR(t, "explain", "deployment.spec.strategy"))
			})
			t.Run("delete", func(t *testing.T) {
				r := k.okR(t, "-n", ns, "delete", "-f", appYAML)
				wantLines(t, r, r.stdout, appDeletedLines...)
				r = k.okR(t, "-n", ns, "delete", "configmap", "extra")
				wantLines(t, r, r.stdout, `configmap "extra" deleted`)
				r = k.fails(t, "-n", ns, "get", "cm", "extra")
				wantLines(t, r, r.stderr, `Error from server (NotFound): configmaps "extra" not found`)
			})
		})
	}
}
