package apiserver_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// debugContainer is an ephemeral container as kubectl debug builds it.
func debugContainer(name, target string) corev1.EphemeralContainer {
	return corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: name, Image: "busybox:1.36", Stdin: true, TTY: true,
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		},
		TargetContainerName: target,
	}
}

// kubectlDebugPatch is the body kubectl debug sends: a strategic merge
// patch from the pod as read to the pod with one more ephemeral container.
func kubectlDebugPatch(t *testing.T, pod *corev1.Pod, ec corev1.EphemeralContainer) []byte {
	t.Helper()
	next := pod.DeepCopy()
	next.Spec.EphemeralContainers = append(next.Spec.EphemeralContainers, ec)
	patch, err := strategicpatch.CreateTwoWayMergePatch(mustJSON(t, pod), mustJSON(t, next), pod)
	must(t, err)
	return patch
}

func ephemeralNames(pod *corev1.Pod) []string {
	var out []string
	for _, ec := range pod.Spec.EphemeralContainers {
		out = append(out, ec.Name)
	}
	return out
}

func TestEphemeralContainers(t *testing.T) {
	e := start(t)
	ns := e.namespace("ephemeral")
	pods := e.s.Client.CoreV1().Pods(ns)
	pod, err := pods.Create(e.ctx, newPod("p", map[string]string{"app": "p"}, "main"), metav1.CreateOptions{})
	must(t, err)
	path := "/api/v1/namespaces/" + ns + "/pods/p/ephemeralcontainers"

	t.Run("get returns the pod", func(t *testing.T) {
		r := e.do(http.MethodGet, path, nil)
		var got corev1.Pod
		if r.code != http.StatusOK || json.Unmarshal(r.body, &got) != nil || got.Kind != "Pod" || got.Name != "p" {
			t.Fatalf("GET %s = %d %s", path, r.code, r.body)
		}
	})

	t.Run("update adds one and nothing else", func(t *testing.T) {
		cur, err := pods.Get(e.ctx, "p", metav1.GetOptions{})
		must(t, err)
		next := cur.DeepCopy()
		next.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugContainer("debugger", "main")}
		// Everything but the ephemeral containers is kept as stored.
		next.Labels = map[string]string{"app": "changed"}
		next.Spec.Containers[0].Image = "busybox:1.37"
		next.Status.Phase = corev1.PodRunning
		out, err := pods.UpdateEphemeralContainers(e.ctx, "p", next, metav1.UpdateOptions{})
		must(t, err)
		if got := ephemeralNames(out); !slices.Equal(got, []string{"debugger"}) {
			t.Fatalf("ephemeral containers = %v, want [debugger]", got)
		}
		ec := out.Spec.EphemeralContainers[0]
		if ec.ImagePullPolicy != corev1.PullIfNotPresent || ec.TerminationMessagePath != corev1.TerminationMessagePathDefault || ec.TargetContainerName != "main" {
			t.Errorf("ephemeral container not defaulted as upstream: %+v", ec)
		}
		if out.Labels["app"] != "p" || out.Spec.Containers[0].Image != "busybox:1.36" || out.Status.Phase != corev1.PodPending {
			t.Errorf("the subresource changed more than ephemeral containers: labels %v, image %s, phase %s",
				out.Labels, out.Spec.Containers[0].Image, out.Status.Phase)
		}
		if out.ResourceVersion == pod.ResourceVersion {
			t.Error("resourceVersion did not change")
		}
	})

	t.Run("kubectl debug's strategic merge patch", func(t *testing.T) {
		cur, err := pods.Get(e.ctx, "p", metav1.GetOptions{})
		must(t, err)
		patch := kubectlDebugPatch(t, cur, debugContainer("debugger-abcde", "main"))
		r := e.do(http.MethodPatch, path, patch, "Content-Type: application/strategic-merge-patch+json")
		var out corev1.Pod
		if r.code != http.StatusOK || json.Unmarshal(r.body, &out) != nil {
			t.Fatalf("PATCH = %d %s", r.code, r.body)
		}
		if got := ephemeralNames(&out); !slices.Equal(got, []string{"debugger", "debugger-abcde"}) {
			t.Errorf("ephemeral containers = %v, want [debugger debugger-abcde]", got)
		}
	})

	t.Run("json and merge patches", func(t *testing.T) {
		out, err := pods.Patch(e.ctx, "p", types.JSONPatchType,
			[]byte(`[{"op":"add","path":"/spec/ephemeralContainers/-","value":{"name":"jp","image":"busybox:1.36"}}]`),
			metav1.PatchOptions{}, "ephemeralcontainers")
		must(t, err)
		if got := ephemeralNames(out); len(got) != 3 || got[2] != "jp" {
			t.Fatalf("after JSON patch: %v", got)
		}
		// A merge patch replaces the list, so it must repeat what is there.
		list := append(out.Spec.EphemeralContainers, debugContainer("mp", ""))
		body := mustJSON(t, map[string]any{"spec": map[string]any{"ephemeralContainers": list}})
		out, err = pods.Patch(e.ctx, "p", types.MergePatchType, body, metav1.PatchOptions{}, "ephemeralcontainers")
		must(t, err)
		if got := ephemeralNames(out); len(got) != 4 || got[3] != "mp" {
			t.Fatalf("after merge patch: %v", got)
		}
	})

	t.Run("dry run stores nothing", func(t *testing.T) {
		cur, err := pods.Get(e.ctx, "p", metav1.GetOptions{})
		must(t, err)
		patch := kubectlDebugPatch(t, cur, debugContainer("dry", "main"))
		out, err := pods.Patch(e.ctx, "p", types.StrategicMergePatchType, patch, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}, "ephemeralcontainers")
		must(t, err)
		if !slices.Contains(ephemeralNames(out), "dry") {
			t.Errorf("dry run answer lacks the container: %v", ephemeralNames(out))
		}
		again, err := pods.Get(e.ctx, "p", metav1.GetOptions{})
		must(t, err)
		if slices.Contains(ephemeralNames(again), "dry") || again.ResourceVersion != cur.ResourceVersion {
			t.Errorf("dry run was stored: %v", ephemeralNames(again))
		}
	})

	// The answers kubectl shows for refused changes, as upstream words them.
	refused := []struct {
		name   string
		mutate func(p *corev1.Pod)
		msg    string
	}{
		{"remove", func(p *corev1.Pod) { p.Spec.EphemeralContainers = p.Spec.EphemeralContainers[1:] },
			`spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may not be removed`},
		{"change", func(p *corev1.Pod) { p.Spec.EphemeralContainers[0].Image = "busybox:1.37" },
			`spec.ephemeralContainers[debugger]: Forbidden: existing ephemeral containers "debugger" may not be changed`},
		{"duplicate name", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, debugContainer("main", ""))
		}, `spec.ephemeralContainers[4].name: Duplicate value: "main"`},
		{"unknown target", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, debugContainer("x", "nope"))
		}, `spec.ephemeralContainers[4].targetContainerName: Not found: "nope"`},
		{"no image", func(p *corev1.Pod) {
			ec := debugContainer("x", "")
			ec.Image = ""
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
		}, `spec.ephemeralContainers[4].image: Required value`},
		{"ports", func(p *corev1.Pod) {
			ec := debugContainer("x", "")
			ec.Ports = []corev1.ContainerPort{{ContainerPort: 80}}
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
		}, `spec.ephemeralContainers[4].ports: Forbidden: cannot be set for an Ephemeral Container`},
	}
	for _, tt := range refused {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			cur, err := pods.Get(e.ctx, "p", metav1.GetOptions{})
			must(t, err)
			tt.mutate(cur)
			_, err = pods.UpdateEphemeralContainers(e.ctx, "p", cur, metav1.UpdateOptions{})
			wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")
			if !strings.Contains(err.Error(), `Pod "p" is invalid: `) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message = %q, want it to contain %q", err.Error(), tt.msg)
			}
		})
	}

	t.Run("the pod itself refuses them", func(t *testing.T) {
		cur, err := pods.Get(e.ctx, "p", metav1.GetOptions{})
		must(t, err)
		cur.Spec.EphemeralContainers = append(cur.Spec.EphemeralContainers, debugContainer("sneaky", ""))
		_, err = pods.Update(e.ctx, cur, metav1.UpdateOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")
		if !strings.Contains(err.Error(), "spec: Forbidden: pod updates may not change fields other than") {
			t.Errorf("message = %q", err.Error())
		}
		p := newPod("q", nil)
		p.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugContainer("debugger", "main")}
		_, err = pods.Create(e.ctx, p, metav1.CreateOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			`Pod "q" is invalid: spec.ephemeralContainers: Forbidden: cannot be set on create`)
	})

	t.Run("missing pod and other verbs", func(t *testing.T) {
		wantStatus(t, e.do(http.MethodGet, "/api/v1/namespaces/"+ns+"/pods/missing/ephemeralcontainers", nil),
			http.StatusNotFound, metav1.StatusReasonNotFound, `pods "missing" not found`)
		wantStatus(t, e.do(http.MethodPost, path, mustJSON(t, pod)), http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "")
		wantStatus(t, e.do(http.MethodDelete, path, nil), http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "")
	})

	t.Run("discovery", func(t *testing.T) {
		var list metav1.APIResourceList
		r := e.do(http.MethodGet, "/api/v1", nil)
		must(t, json.Unmarshal(r.body, &list))
		for _, res := range list.APIResources {
			if res.Name != "pods/ephemeralcontainers" {
				continue
			}
			if res.Kind != "Pod" || !res.Namespaced || !slices.Equal([]string(res.Verbs), []string{"get", "patch", "update"}) {
				t.Errorf("pods/ephemeralcontainers = %+v", res)
			}
			return
		}
		t.Error("discovery lacks pods/ephemeralcontainers")
	})
}

// TestKubectlDebug runs the real kubectl debug, oldest and newest bundled
// minor, against the server. Without -i it only adds the container (no
// node runs it here), which is the API half of kubectl debug -it.
func TestKubectlDebug(t *testing.T) {
	e := start(t)
	ns := e.namespace("kdebug")
	pods := e.s.Client.CoreV1().Pods(ns)
	_, err := pods.Create(e.ctx, newPod("p", nil, "main"), metav1.CreateOptions{})
	must(t, err)
	for _, minor := range []string{"27", "33"} {
		t.Run("1."+minor, func(t *testing.T) {
			bin := kubectlBinary(t, minor)
			name := "debugger-" + minor
			cmd := exec.CommandContext(e.ctx, bin, "--kubeconfig", e.s.Kubeconfig, "-n", ns,
				"debug", "p", "--image=busybox:1.36", "--target=main", "-c", name)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl debug: %v\n%s", err, out)
			}
			got, err := pods.Get(e.ctx, "p", metav1.GetOptions{})
			must(t, err)
			i := slices.IndexFunc(got.Spec.EphemeralContainers, func(ec corev1.EphemeralContainer) bool { return ec.Name == name })
			if i < 0 {
				t.Fatalf("no ephemeral container %s after kubectl debug (output %s)", name, out)
			}
			if ec := got.Spec.EphemeralContainers[i]; ec.TargetContainerName != "main" || ec.Image != "busybox:1.36" {
				t.Errorf("ephemeral container = %+v", ec)
			}
		})
	}
}

// kubectlBinary finds the bundled kubectl of one minor version beside the
// dispatcher on PATH, or skips the test.
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
