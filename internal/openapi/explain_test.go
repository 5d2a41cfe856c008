package openapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lotse/lotse/internal/apiserver/registry"
)

// discoveryHandler serves legacy discovery for reg, just enough for
// kubectl to map "deployment" to a group version resource.
func discoveryHandler(reg *registry.Registry) http.Handler {
	mux := http.NewServeMux()
	write := func(path string, v any) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(v)
		})
	}
	write("/api", metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
	groups := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, gv := range reg.GroupVersions() {
		list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
		for _, k := range reg.KindsIn(gv) {
			list.APIResources = append(list.APIResources, metav1.APIResource{Name: k.Resource, SingularName: k.Singular,
				Namespaced: k.Namespaced, Kind: k.GVK.Kind, ShortNames: k.ShortNames,
				Verbs: []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}})
		}
		write(gvPrefix(gv), list)
		if gv.Group == "" {
			continue
		}
		var g *metav1.APIGroup
		for i := range groups.Groups {
			if groups.Groups[i].Name == gv.Group {
				g = &groups.Groups[i]
			}
		}
		if g == nil {
			groups.Groups = append(groups.Groups, metav1.APIGroup{Name: gv.Group})
			g = &groups.Groups[len(groups.Groups)-1]
		}
		v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
		g.Versions = append(g.Versions, v)
		if reg.PreferredVersion(gv.Group) == gv.Version {
			g.PreferredVersion = v
		}
	}
	write("/apis", groups)
	return mux
}

// kubectlBinary finds the bundled kubectl of one minor version beside the
// dispatcher on PATH.
func kubectlBinary(t *testing.T, minor string) string {
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("no kubectl on PATH")
	}
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	bin := filepath.Join(filepath.Dir(path), "kubectl.1."+minor)
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no %s", bin)
	}
	return bin
}

// TestKubectlExplain runs the real kubectl explain against the documents,
// through v3 (the default since 1.27) and through v2.
func TestKubectlExplain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kubectl")
	}
	reg := registry.Default()
	d, err := Build(reg, "v1.33.0-lotse")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/openapi/", d)
	mux.Handle("/", discoveryHandler(reg))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		minor string
		args  []string
		want  []string
	}{
		{"33", []string{"deployment.spec.strategy"}, []string{"GROUP:      apps", "KIND:       Deployment", "FIELD: strategy <DeploymentStrategy>", "rollingUpdate\t<RollingUpdateDeployment>", "Recreate"}},
		{"27", []string{"deployment.spec.strategy"}, []string{"KIND:       Deployment", "rollingUpdate\t<RollingUpdateDeployment>", "Recreate"}},
		{"33", []string{"deployment.spec.strategy.rollingUpdate.maxSurge"}, []string{"FIELD: maxSurge <IntOrString>", "percentage"}},
		{"33", []string{"pods.spec.containers.resources.limits"}, []string{"FIELD: limits <map[string]Quantity>"}},
		{"33", []string{"hpa", "--api-version=autoscaling/v1"}, []string{"VERSION:    v1", "spec\t<HorizontalPodAutoscalerSpec>"}},
		{"33", []string{"deployment.spec.strategy", "--output=plaintext-openapiv2"}, []string{"KIND:     Deployment", "RESOURCE: strategy <Object>", "rollingUpdate\t<Object>", "Recreate"}},
		{"33", []string{"deployment", "--recursive"}, []string{"maxSurge\t<IntOrString>", "containers\t<[]Container> -required-"}},
	}
	for _, tc := range tests {
		t.Run(tc.minor+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"--server", srv.URL, "--kubeconfig", os.DevNull, "--cache-dir", t.TempDir(), "explain"}, tc.args...)
			cmd := exec.Command(kubectlBinary(t, tc.minor), args...)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl %v: %v\n%s", args, err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
