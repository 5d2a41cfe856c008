package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestClusterInfo covers the commands that read the cluster as a whole:
// health, version, discovery and the OpenAPI documents behind explain.
func TestClusterInfo(t *testing.T) {
	s := cluster(t)
	k := s.kubectl(t)

	t.Run("readyz livez healthz", func(t *testing.T) {
		for _, path := range []string{"/readyz", "/livez", "/healthz"} {
			r := k.okR(t, "get", "--raw", path)
			wantLines(t, r, r.stdout, "ok")
		}
		r := k.okR(t, "get", "--raw", "/readyz?verbose")
		wantMatch(t, r, r.stdout, `^\[\+\]ping ok$`, `^readyz check passed$`)
	})
	t.Run("version", func(t *testing.T) {
		r := k.okR(t, "version")
		wantMatch(t, r, r.stdout, `^Client Version: v1\.\d+\.\d+`, `^Server Version: v1\.\d+\.\d+`)
		r = k.okR(t, "version", "-o", "json")
		var v struct {
			ServerVersion struct {
				Major, Minor, GitVersion, Platform string
			} `json:"serverVersion"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("version -o json: %v\n%s", err, r)
		}
		sv := v.ServerVersion
		if sv.Major != "1" || sv.Minor < "27" || !strings.HasPrefix(sv.GitVersion, "v1."+sv.Minor+".") || sv.Platform == "" {
			t.Errorf("serverVersion = %+v, want major 1, minor >= 27 matching gitVersion, a platform\n%s", sv, r)
		}
	})
	t.Run("cluster-info", func(t *testing.T) {
		r := k.okR(t, "cluster-info")
		wantContains(t, r, r.stdout, "Kubernetes control plane is running at "+s.URL)
	})
	t.Run("get ns", func(t *testing.T) {
		r := k.okR(t, "get", "ns")
		tb := parseTables(r.stdout)
		if len(tb) != 1 {
			t.Fatalf("want one table:\n%s", r)
		}
		wantHeader(t, tb[0], r.stdout, "NAME", "STATUS", "AGE")
		for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
			wantRow(t, tb[0], r.stdout, ns, map[string]string{"STATUS": "Active", "AGE": ageRE})
		}
	})
	t.Run("api-resources", func(t *testing.T) {
		r := k.okR(t, "api-resources")
		tb := parseTables(r.stdout)
		if len(tb) != 1 {
			t.Fatalf("want one table:\n%s", r)
		}
		wantHeader(t, tb[0], r.stdout, "NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")
		for _, row := range [][5]string{
			{"pods", "po", "v1", "true", "Pod"},
			{"deployments", "deploy", "apps/v1", "true", "Deployment"},
			{"namespaces", "ns", "v1", "false", "Namespace"},
			{"services", "svc", "v1", "true", "Service"},
			{"configmaps", "cm", "v1", "true", "ConfigMap"},
			{"secrets", "", "v1", "true", "Secret"},
			{"jobs", "", "batch/v1", "true", "Job"},
			{"nodes", "no", "v1", "false", "Node"},
		} {
			wantRow(t, tb[0], r.stdout, row[0], map[string]string{"SHORTNAMES": row[1], "APIVERSION": row[2], "NAMESPACED": row[3], "KIND": row[4]})
		}
		r = k.okR(t, "api-resources", "--api-group=apps", "-o", "name")
		wantContains(t, r, "\n"+r.stdout, "\ndeployments.apps\n", "\nreplicasets.apps\n", "\nstatefulsets.apps\n", "\ndaemonsets.apps\n")
		r = k.okR(t, "api-versions")
		wantContains(t, r, "\n"+r.stdout, "\nv1\n", "\napps/v1\n", "\nbatch/v1\n")
	})
	t.Run("auth can-i", func(t *testing.T) {
		r := k.okR(t, "auth", "can-i", "create", "deployments", "-n", "default")
		wantLines(t, r, r.stdout, "yes")
		r = k.okR(t, "auth", "can-i", "--list", "-n", "default")
		wantContains(t, r, r.stdout, "*.*")
	})
	t.Run("explain", func(t *testing.T) {
		r := k.okR(t, "explain", "deployment.spec.strategy")
		checkExplainStrategy(t, r)
		// Upstream also prints "enum: Recreate, RollingUpdate": its OpenAPI
		// carries enum values from source comments that k8s.io/api does not
		// expose at run time, so lotse's documents have none (README).
		r = k.okR(t, "explain", "pods")
		wantMatch(t, r, r.stdout, `^KIND:\s+Pod$`, `^VERSION:\s+v1$`, `^DESCRIPTION:$`, `^FIELDS:$`,
			`^  apiVersion\t<string>$`, `^  spec\t<PodSpec>$`, `^  status\t<PodStatus>$`)
		r = k.fails(t, "explain", "deployment.spec.nosuchfield")
		wantContains(t, r, r.stderr, `field "nosuchfield" does not exist`)
	})
}

// checkExplainStrategy checks `kubectl explain deployment.spec.strategy`
// in the OpenAPI v3 layout that kubectl 1.27 and later print.
func checkExplainStrategy(t *testing.T, r result) {
	t.Helper()
	wantMatch(t, r, r.stdout,
		`^GROUP:\s+apps$`,
		`^KIND:\s+Deployment$`,
		`^VERSION:\s+v1$`,
		`^FIELD:\s+strategy <DeploymentStrategy>$`,
		`^DESCRIPTION:$`,
		`The deployment strategy to use to replace existing pods with new ones\.`,
		`^FIELDS:$`,
		`^  rollingUpdate\t<RollingUpdateDeployment>$`,
		`^  type\t<string>$`,
	)
}
