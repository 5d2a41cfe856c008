package agent

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// res builds requirements the way the API server leaves them: requests
// defaulted from limits where a limit is set and the request is not.
func res(requests, limits map[corev1.ResourceName]string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{}
	for name, v := range limits {
		if r.Limits == nil {
			r.Limits = corev1.ResourceList{}
		}
		r.Limits[name] = resource.MustParse(v)
	}
	for name, v := range requests {
		if r.Requests == nil {
			r.Requests = corev1.ResourceList{}
		}
		r.Requests[name] = resource.MustParse(v)
	}
	for name, q := range r.Limits {
		if _, ok := r.Requests[name]; !ok {
			if r.Requests == nil {
				r.Requests = corev1.ResourceList{}
			}
			r.Requests[name] = q.DeepCopy()
		}
	}
	return r
}

type rl = map[corev1.ResourceName]string

const (
	cpu = corev1.ResourceCPU
	mem = corev1.ResourceMemory
)

func podWith(init []corev1.ResourceRequirements, app ...corev1.ResourceRequirements) *corev1.Pod {
	pod := testPod(corev1.RestartPolicyAlways, nil)
	for i, r := range init {
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: "init" + strconv.Itoa(i), Resources: r})
	}
	for i, r := range app {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "app" + strconv.Itoa(i), Resources: r})
	}
	return pod
}

func TestQOSClass(t *testing.T) {
	guaranteed := res(nil, rl{cpu: "500m", mem: "128Mi"})
	tests := []struct {
		name string
		pod  *corev1.Pod
		want corev1.PodQOSClass
	}{
		{"no resources", podWith(nil, res(nil, nil)), corev1.PodQOSBestEffort},
		{"zero quantities", podWith(nil, res(rl{cpu: "0", mem: "0"}, nil)), corev1.PodQOSBestEffort},
		{"only ephemeral storage", podWith(nil, res(rl{corev1.ResourceEphemeralStorage: "1Gi"}, rl{corev1.ResourceEphemeralStorage: "1Gi"})), corev1.PodQOSBestEffort},
		{"cpu request only", podWith(nil, res(rl{cpu: "100m"}, nil)), corev1.PodQOSBurstable},
		{"memory request only", podWith(nil, res(rl{mem: "64Mi"}, nil)), corev1.PodQOSBurstable},
		{"limits equal requests", podWith(nil, guaranteed), corev1.PodQOSGuaranteed},
		{"equal in other units", podWith(nil, res(rl{cpu: "0.5", mem: "134217728"}, rl{cpu: "500m", mem: "128Mi"})), corev1.PodQOSGuaranteed},
		{"requests below limits", podWith(nil, res(rl{cpu: "250m", mem: "128Mi"}, rl{cpu: "500m", mem: "128Mi"})), corev1.PodQOSBurstable},
		{"cpu limit only", podWith(nil, res(nil, rl{cpu: "1"})), corev1.PodQOSBurstable},
		{"memory limit only", podWith(nil, res(nil, rl{mem: "1Gi"})), corev1.PodQOSBurstable},
		// Every container needs both limits, not just the pod in sum.
		{"cpu and memory limits in different containers", podWith(nil, res(nil, rl{cpu: "1"}), res(nil, rl{mem: "1Gi"})), corev1.PodQOSBurstable},
		{"one of two containers without limits", podWith(nil, guaranteed, res(nil, nil)), corev1.PodQOSBurstable},
		{"two guaranteed containers", podWith(nil, guaranteed, res(nil, rl{cpu: "1", mem: "1Gi"})), corev1.PodQOSGuaranteed},
		{"guaranteed init and app", podWith([]corev1.ResourceRequirements{res(nil, rl{cpu: "2", mem: "1Gi"})}, guaranteed), corev1.PodQOSGuaranteed},
		{"init container without limits", podWith([]corev1.ResourceRequirements{res(nil, nil)}, guaranteed), corev1.PodQOSBurstable},
		{"init container alone has requests", podWith([]corev1.ResourceRequirements{res(rl{cpu: "100m"}, nil)}, res(nil, nil)), corev1.PodQOSBurstable},
		{"extended resources do not count", podWith(nil, res(nil, rl{cpu: "1", mem: "1Gi", "example.com/gpu": "1"})), corev1.PodQOSGuaranteed},
		{"status wins", func() *corev1.Pod {
			p := podWith(nil, res(nil, nil))
			p.Status.QOSClass = corev1.PodQOSBurstable
			return p
		}(), corev1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := qosClass(tt.pod); got != tt.want {
				t.Errorf("qosClass = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLinuxResources(t *testing.T) {
	capacity := readMeminfo()["MemTotal"]
	if capacity <= 0 {
		t.Fatal("no MemTotal in /proc/meminfo")
	}
	half := strconv.FormatInt(capacity/2, 10)
	tests := []struct {
		name                 string
		pod                  *corev1.Pod
		shares, quota, limit int64
		oom                  int64
	}{
		{"best effort", podWith(nil, res(nil, nil)), 2, 0, 0, 1000},
		{"tiny cpu request gets the minimum shares", podWith(nil, res(rl{cpu: "1m"}, nil)), 2, 0, 0, 999},
		{"cpu request", podWith(nil, res(rl{cpu: "250m"}, nil)), 256, 0, 0, 999},
		{"guaranteed", podWith(nil, res(nil, rl{cpu: "500m", mem: "128Mi"})), 512, 50000, 128 << 20, -997},
		{"two cpus", podWith(nil, res(nil, rl{cpu: "2", mem: "1Gi"})), 2048, 200000, 1 << 30, -997},
		{"quota is at least 1ms", podWith(nil, res(nil, rl{cpu: "1m"})), 2, 1000, 0, 999},
		{"burstable with half the memory", podWith(nil, res(rl{mem: half}, nil)), 2, 0, 0, 500},
		{"burstable asking for more than the node", podWith(nil, res(rl{mem: strconv.FormatInt(2*capacity, 10)}, nil)), 2, 0, 0, 3},
		{"burstable with limits above requests", podWith(nil, res(rl{cpu: "100m", mem: "0"}, rl{cpu: "1", mem: "256Mi"})), 102, 100000, 256 << 20, 999},
		// Not defaulted by an API server: shares come from the limit, as
		// the kubelet does for pods from older servers.
		{"cpu limit without request", podWith(nil, corev1.ResourceRequirements{Limits: corev1.ResourceList{cpu: resource.MustParse("300m")}}), 307, 30000, 0, 999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAgent(t)
			r := a.linuxResources(tt.pod, &tt.pod.Spec.Containers[0])
			if r.CpuPeriod != 100000 {
				t.Errorf("cpu period = %d, want 100000", r.CpuPeriod)
			}
			if r.CpuShares != tt.shares || r.CpuQuota != tt.quota || r.MemoryLimitInBytes != tt.limit || r.OomScoreAdj != tt.oom {
				t.Errorf("got shares=%d quota=%d memory=%d oom=%d, want shares=%d quota=%d memory=%d oom=%d",
					r.CpuShares, r.CpuQuota, r.MemoryLimitInBytes, r.OomScoreAdj, tt.shares, tt.quota, tt.limit, tt.oom)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vals := map[string]string{"A": "a", "B": "bee", "REF": "$(A)", "EMPTY": ""}
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"$(A)", "a"},
		{"x$(A)y$(B)z", "xaybeez"},
		{"$(A)$(A)", "aa"},
		{"$(UNKNOWN)", "$(UNKNOWN)"},
		{"pre $(UNKNOWN) $(A)", "pre $(UNKNOWN) a"},
		{"$(EMPTY)x", "x"},
		{"$$(A)", "$(A)"},
		{"$$", "$"},
		{"$$$(A)", "$a"},
		{"$", "$"},
		{"a$", "a$"},
		{"$x", "$x"},
		{"$A", "$A"},
		{"$(A", "$(A"},
		{"x $(", "x $("},
		{"$()", "$()"},
		// Values are not expanded again.
		{"$(REF)", "$(A)"},
		{"cost: 5$ or $(B)", "cost: 5$ or bee"},
	}
	for _, tt := range tests {
		if got := expand(tt.in, vals); got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func envNames(kvs []*runtimeapi.KeyValue) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key+"="+string(kv.Value))
	}
	return out
}

func TestContainerEnv(t *testing.T) {
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"mode": "fast"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "elsewhere"}, Data: map[string]string{"mode": "wrong-namespace"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default"}, Data: map[string][]byte{"password": []byte("s3cret")}},
	)
	cmKey := func(name, key string, optional bool) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: ptr.To(optional)}}
	}
	secretKey := func(name, key string, optional bool) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: ptr.To(optional)}}
	}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	tests := []struct {
		name    string
		envFrom []corev1.EnvFromSource
		env     []corev1.EnvVar
		want    []string
		wantErr string
	}{{
		name: "literal values in order",
		env:  []corev1.EnvVar{{Name: "B", Value: "2"}, {Name: "A", Value: "1"}, {Name: "EMPTY"}},
		want: []string{"B=2", "A=1", "EMPTY="},
	}, {
		name: "references to earlier variables expand, later ones stay",
		env:  []corev1.EnvVar{{Name: "A", Value: "x"}, {Name: "B", Value: "$(A)-$(C)"}, {Name: "C", Value: "c"}, {Name: "D", Value: "$$(A)"}},
		want: []string{"A=x", "B=x-$(C)", "C=c", "D=$(A)"},
	}, {
		name: "a later entry overrides in place",
		env:  []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}, {Name: "A", Value: "3$(A)"}},
		want: []string{"A=31", "B=2"},
	}, {
		name:    "envFrom with prefix, env overrides and refers to it",
		envFrom: []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		env:     []corev1.EnvVar{{Name: "X", Value: "$(CFG_mode)"}, {Name: "CFG_mode", Value: "slow"}},
		want:    []string{"CFG_mode=slow", "X=fast"},
	}, {
		name:    "secret envFrom",
		envFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}}},
		want:    []string{"password=s3cret"},
	}, {
		name: "optional envFrom sources that are missing are skipped",
		envFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: ptr.To(true)}},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: ptr.To(true)}},
		},
		env:  []corev1.EnvVar{{Name: "A", Value: "1"}},
		want: []string{"A=1"},
	}, {
		name:    "required configMap missing",
		envFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}},
		wantErr: `configmap "nope" not found`,
	}, {
		name:    "required secret missing",
		envFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}},
		wantErr: `secret "nope" not found`,
	}, {
		name:    "configMap of another namespace is not visible",
		envFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "other"}}}},
		wantErr: `configmap "other" not found`,
	}, {
		name: "key references",
		env: []corev1.EnvVar{
			{Name: "MODE", ValueFrom: cmKey("cfg", "mode", false)},
			{Name: "PW", ValueFrom: secretKey("creds", "password", false)},
			{Name: "OPT_KEY", ValueFrom: cmKey("cfg", "missing", true)},
			{Name: "OPT_CM", ValueFrom: cmKey("nope", "x", true)},
			{Name: "OPT_SECRET", ValueFrom: secretKey("nope", "x", true)},
			{Name: "OPT_SECRET_KEY", ValueFrom: secretKey("creds", "x", true)},
			{Name: "REF", Value: "$(MODE)/$(OPT_KEY)"},
		},
		want: []string{"MODE=fast", "PW=s3cret", "REF=fast/$(OPT_KEY)"},
	}, {
		name:    "required configMap key missing",
		env:     []corev1.EnvVar{{Name: "K", ValueFrom: cmKey("cfg", "missing", false)}},
		wantErr: "couldn't find key missing in ConfigMap default/cfg",
	}, {
		name:    "required secret key missing",
		env:     []corev1.EnvVar{{Name: "K", ValueFrom: secretKey("creds", "missing", false)}},
		wantErr: "couldn't find key missing in Secret default/creds",
	}, {
		name:    "required configMap of a key missing",
		env:     []corev1.EnvVar{{Name: "K", ValueFrom: cmKey("nope", "x", false)}},
		wantErr: `configmap "nope" not found`,
	}, {
		name: "downward API",
		env: []corev1.EnvVar{
			{Name: "POD", ValueFrom: field("metadata.name")},
			{Name: "IP", ValueFrom: field("status.podIP")},
			{Name: "NODE_IP", ValueFrom: field("status.hostIP")},
			{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "URL", Value: "http://$(IP):80/$(POD)"},
		},
		want: []string{"POD=web", "IP=10.244.0.7", "NODE_IP=10.0.0.5", "MEM=64", "URL=http://10.244.0.7:80/web"},
	}, {
		name:    "unsupported fieldPath",
		env:     []corev1.EnvVar{{Name: "X", ValueFrom: field("spec.nope")}},
		wantErr: `env X: unsupported fieldPath "spec.nope"`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAgent(t)
			a.client = client
			pod := testPod(corev1.RestartPolicyAlways, nil, "app")
			c := &pod.Spec.Containers[0]
			c.EnvFrom, c.Env = tt.envFrom, tt.env
			c.Resources = res(nil, rl{mem: "64Mi"})
			got, err := a.containerEnv(pod, c, &podEnv{pod: pod, podIP: "10.244.0.7", hostIP: "10.0.0.5"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if names := envNames(got); !slices.Equal(names, tt.want) {
				t.Errorf("env = %q, want %q", names, tt.want)
			}
		})
	}
}

func TestPodField(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "uid-7",
			Labels:      map[string]string{"tier": "front", "app": "web"},
			Annotations: map[string]string{"note": `say "hi"`}},
		Spec: corev1.PodSpec{NodeName: "node-1", ServiceAccountName: "robot"},
	}
	env := &podEnv{podIP: "10.244.0.7", hostIP: "10.0.0.5"}
	tests := []struct {
		path, want string
		wantErr    bool
	}{
		{path: "metadata.name", want: "web"},
		{path: "metadata.namespace", want: "shop"},
		{path: "metadata.uid", want: "uid-7"},
		{path: "metadata.labels", want: "app=\"web\"\ntier=\"front\""},
		{path: "metadata.annotations", want: `note="say \"hi\""`},
		{path: "metadata.labels['tier']", want: "front"},
		{path: "metadata.labels['missing']", want: ""},
		{path: "metadata.annotations['note']", want: `say "hi"`},
		{path: "spec.nodeName", want: "node-1"},
		{path: "spec.serviceAccountName", want: "robot"},
		{path: "status.hostIP", want: "10.0.0.5"},
		{path: "status.hostIPs", want: "10.0.0.5"},
		{path: "status.podIP", want: "10.244.0.7"},
		{path: "status.podIPs", want: "10.244.0.7"},
		{path: "spec.containers", wantErr: true},
		{path: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := podField(pod, tt.path, env)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("podField(%q) = %q, %v; want %q, error %v", tt.path, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatMap(t *testing.T) {
	tests := []struct {
		in   map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"k": "v"}, `k="v"`},
		{map[string]string{"b": "2", "a": "1", "c": ""}, "a=\"1\"\nb=\"2\"\nc=\"\""},
		{map[string]string{"k": "line\nbreak \"quoted\""}, `k="line\nbreak \"quoted\""`},
	}
	for _, tt := range tests {
		if got := formatMap(tt.in); got != tt.want {
			t.Errorf("formatMap(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestResourceField(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, nil, "app", "side", "bare")
	pod.Spec.Containers[0].Resources = res(rl{cpu: "250m", mem: "32Mi"}, rl{cpu: "1500m", mem: "64Mi", corev1.ResourceEphemeralStorage: "1Gi"})
	pod.Spec.Containers[1].Resources = res(nil, rl{cpu: "2", mem: "1Gi"})
	sel := func(resourceName, divisor, container string) *corev1.ResourceFieldSelector {
		s := &corev1.ResourceFieldSelector{Resource: resourceName, ContainerName: container}
		if divisor != "" {
			s.Divisor = resource.MustParse(divisor)
		}
		return s
	}
	tests := []struct {
		name    string
		sel     *corev1.ResourceFieldSelector
		want    string
		wantErr bool
	}{
		{"cpu limit rounds up to whole cores", sel("limits.cpu", "", ""), "2", false},
		{"cpu limit in millicores", sel("limits.cpu", "1m", ""), "1500", false},
		{"cpu request rounds up", sel("requests.cpu", "", ""), "1", false},
		{"cpu request by 100m", sel("requests.cpu", "100m", ""), "3", false},
		{"memory limit in bytes", sel("limits.memory", "", ""), strconv.Itoa(64 << 20), false},
		{"memory limit in Mi", sel("limits.memory", "1Mi", ""), "64", false},
		{"memory limit in M rounds up", sel("limits.memory", "1M", ""), "68", false},
		{"memory request in Ki", sel("requests.memory", "1Ki", ""), "32768", false},
		{"ephemeral storage limit in Gi", sel("limits.ephemeral-storage", "1Gi", ""), "1", false},
		{"another container by name", sel("limits.memory", "1Gi", "side"), "1", false},
		{"unset cpu limit is the node's cpus", sel("limits.cpu", "", "bare"), strconv.Itoa(numCPU()), false},
		{"no such container", sel("limits.cpu", "", "ghost"), "", true},
		{"unsupported kind", sel("capacity.cpu", "", ""), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAgent(t)
			got, err := a.resourceField(pod, &pod.Spec.Containers[0], tt.sel)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("resourceField = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDNSConfig(t *testing.T) {
	host := hostDNS()
	withDNS := func(policy corev1.DNSPolicy, hostNet bool, dc *corev1.PodDNSConfig) *corev1.Pod {
		p := testPod(corev1.RestartPolicyAlways, nil, "app")
		p.Namespace = "shop"
		p.Spec.DNSPolicy, p.Spec.HostNetwork, p.Spec.DNSConfig = policy, hostNet, dc
		return p
	}
	custom := &corev1.PodDNSConfig{
		Nameservers: []string{"192.0.2.53"},
		Searches:    []string{"svc.example"},
		Options:     []corev1.PodDNSConfigOption{{Name: "timeout", Value: ptr.To("3")}, {Name: "use-vc"}},
	}
	plus := func(base []string, extra ...string) []string { return append(slices.Clone(base), extra...) }
	cluster := []string{"10.43.0.10"}
	clusterSearch := append([]string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local"}, host.Searches...)
	tests := []struct {
		name                       string
		pod                        *corev1.Pod
		clusterDNS                 []string
		servers, searches, options []string
	}{
		{"None without config is empty", withDNS(corev1.DNSNone, false, nil), cluster, nil, nil, nil},
		{"None takes only the pod's config", withDNS(corev1.DNSNone, false, custom), cluster,
			[]string{"192.0.2.53"}, []string{"svc.example"}, []string{"timeout:3", "use-vc"}},
		{"Default is the node's", withDNS(corev1.DNSDefault, false, nil), cluster, host.Servers, host.Searches, host.Options},
		{"ClusterFirst is the cluster's", withDNS(corev1.DNSClusterFirst, false, nil), cluster, cluster, clusterSearch, []string{"ndots:5"}},
		{"an empty policy is ClusterFirst", withDNS("", false, nil), cluster, cluster, clusterSearch, []string{"ndots:5"}},
		{"ClusterFirst without cluster DNS falls back to the node's", withDNS(corev1.DNSClusterFirst, false, nil), nil,
			host.Servers, host.Searches, host.Options},
		{"ClusterFirst on the host network is the node's", withDNS(corev1.DNSClusterFirst, true, nil), cluster,
			host.Servers, host.Searches, host.Options},
		{"ClusterFirstWithHostNet is the cluster's", withDNS(corev1.DNSClusterFirstWithHostNet, true, nil), cluster,
			cluster, clusterSearch, []string{"ndots:5"}},
		{"Default merged with the pod's config", withDNS(corev1.DNSDefault, false, custom), cluster,
			plus(host.Servers, "192.0.2.53"), plus(host.Searches, "svc.example"), plus(host.Options, "timeout:3", "use-vc")},
		{"ClusterFirst merged with the pod's config", withDNS(corev1.DNSClusterFirst, false, custom), cluster,
			plus(cluster, "192.0.2.53"), plus(clusterSearch, "svc.example"), []string{"ndots:5", "timeout:3", "use-vc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dnsConfig(tt.pod, tt.clusterDNS, "cluster.local")
			if !slices.Equal(got.Servers, tt.servers) || !slices.Equal(got.Searches, tt.searches) || !slices.Equal(got.Options, tt.options) {
				t.Errorf("dnsConfig = servers %q searches %q options %q; want %q %q %q",
					got.Servers, got.Searches, got.Options, tt.servers, tt.searches, tt.options)
			}
		})
	}
	// Merging must not write into what the next pod starts from.
	_ = dnsConfig(withDNS(corev1.DNSDefault, false, custom), nil, "cluster.local")
	if again := dnsConfig(withDNS(corev1.DNSDefault, false, nil), nil, "cluster.local"); !slices.Equal(again.Servers, host.Servers) {
		t.Errorf("host servers changed to %q after a merge", again.Servers)
	}
	for _, s := range host.Servers {
		if strings.HasPrefix(s, "127.") || s == "::1" {
			t.Errorf("hostDNS kept loopback resolver %s", s)
		}
	}
}

func TestSecurityContext(t *testing.T) {
	tests := []struct {
		name   string
		podSC  *corev1.PodSecurityContext
		sc     *corev1.SecurityContext
		check  func(t *testing.T, got *runtimeapi.LinuxContainerSecurityContext)
		hostNS bool
	}{{
		name: "defaults mask /proc and keep privileges",
		check: func(t *testing.T, got *runtimeapi.LinuxContainerSecurityContext) {
			if !slices.Equal(got.MaskedPaths, defaultMaskedPaths) || !slices.Equal(got.ReadonlyPaths, defaultReadonlyPaths) {
				t.Errorf("masked %q readonly %q", got.MaskedPaths, got.ReadonlyPaths)
			}
			if got.RunAsUser != nil || got.RunAsGroup != nil || got.Privileged || got.NoNewPrivs || got.ReadonlyRootfs || got.Capabilities != nil {
				t.Errorf("unexpected settings: %v", got)
			}
			if got.NamespaceOptions.GetNetwork() != runtimeapi.NamespaceMode_POD {
				t.Errorf("network namespace = %v", got.NamespaceOptions.GetNetwork())
			}
		},
	}, {
		name:  "pod level user, group and groups; fsGroup joins the groups",
		podSC: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(1000)), RunAsGroup: ptr.To(int64(3000)), SupplementalGroups: []int64{4000}, FSGroup: ptr.To(int64(2000))},
		check: func(t *testing.T, got *runtimeapi.LinuxContainerSecurityContext) {
			if got.RunAsUser.GetValue() != 1000 || got.RunAsGroup.GetValue() != 3000 {
				t.Errorf("user %v group %v", got.RunAsUser, got.RunAsGroup)
			}
			if !slices.Equal(got.SupplementalGroups, []int64{4000, 2000}) {
				t.Errorf("supplemental groups = %v", got.SupplementalGroups)
			}
		},
	}, {
		name:  "container overrides the pod",
		podSC: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(1000)), RunAsGroup: ptr.To(int64(3000))},
		sc:    &corev1.SecurityContext{RunAsUser: ptr.To(int64(0)), ReadOnlyRootFilesystem: ptr.To(true)},
		check: func(t *testing.T, got *runtimeapi.LinuxContainerSecurityContext) {
			if got.RunAsUser == nil || got.RunAsUser.Value != 0 || got.RunAsGroup.GetValue() != 3000 {
				t.Errorf("user %v group %v", got.RunAsUser, got.RunAsGroup)
			}
			if !got.ReadonlyRootfs {
				t.Error("root filesystem not read-only")
			}
		},
	}, {
		name: "privileged unmasks",
		sc:   &corev1.SecurityContext{Privileged: ptr.To(true)},
		check: func(t *testing.T, got *runtimeapi.LinuxContainerSecurityContext) {
			if !got.Privileged || got.MaskedPaths != nil || got.ReadonlyPaths != nil {
				t.Errorf("privileged %v masked %q readonly %q", got.Privileged, got.MaskedPaths, got.ReadonlyPaths)
			}
		},
	}, {
		name: "allowPrivilegeEscalation false sets no_new_privs",
		sc:   &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false)},
		check: func(t *testing.T, got *runtimeapi.LinuxContainerSecurityContext) {
			if !got.NoNewPrivs {
				t.Error("NoNewPrivs not set")
			}
		},
	}, {
		name: "allowPrivilegeEscalation true leaves it",
		sc:   &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true)},
		check: func(t *testing.T, got *runtimeapi.LinuxContainerSecurityContext) {
			if got.NoNewPrivs {
				t.Error("NoNewPrivs set")
			}
		},
	}, {
		name:   "host namespaces reach the container",
		hostNS: true,
		check: func(t *testing.T, got *runtimeapi.LinuxContainerSecurityContext) {
			ns := got.NamespaceOptions
			if ns.Network != runtimeapi.NamespaceMode_NODE || ns.Pid != runtimeapi.NamespaceMode_NODE || ns.Ipc != runtimeapi.NamespaceMode_NODE {
				t.Errorf("namespaces = %v", ns)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod(corev1.RestartPolicyAlways, nil, "app")
			pod.Spec.SecurityContext = tt.podSC
			pod.Spec.Containers[0].SecurityContext = tt.sc
			pod.Spec.HostNetwork, pod.Spec.HostPID, pod.Spec.HostIPC = tt.hostNS, tt.hostNS, tt.hostNS
			tt.check(t, securityContext(pod, &pod.Spec.Containers[0]))
		})
	}
}

func TestNamespaceOptions(t *testing.T) {
	const (
		pod       = runtimeapi.NamespaceMode_POD
		container = runtimeapi.NamespaceMode_CONTAINER
		node      = runtimeapi.NamespaceMode_NODE
	)
	tests := []struct {
		name              string
		spec              corev1.PodSpec
		network, pid, ipc runtimeapi.NamespaceMode
	}{
		{"defaults", corev1.PodSpec{}, pod, container, pod},
		{"host network", corev1.PodSpec{HostNetwork: true}, node, container, pod},
		{"host pid", corev1.PodSpec{HostPID: true}, pod, node, pod},
		{"host ipc", corev1.PodSpec{HostIPC: true}, pod, container, node},
		{"shared process namespace", corev1.PodSpec{ShareProcessNamespace: ptr.To(true)}, pod, pod, pod},
		{"shared false", corev1.PodSpec{ShareProcessNamespace: ptr.To(false)}, pod, container, pod},
		{"host pid wins over sharing", corev1.PodSpec{HostPID: true, ShareProcessNamespace: ptr.To(true)}, pod, node, pod},
	}
	for _, tt := range tests {
		got := namespaceOptions(&corev1.Pod{Spec: tt.spec})
		if got.Network != tt.network || got.Pid != tt.pid || got.Ipc != tt.ipc {
			t.Errorf("%s: got %v/%v/%v, want %v/%v/%v", tt.name, got.Network, got.Pid, got.Ipc, tt.network, tt.pid, tt.ipc)
		}
	}
}

func TestPodHostname(t *testing.T) {
	nodeName, _ := os.Hostname()
	long := strings.Repeat("a", 62) + "-b"
	tests := []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"pod name", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0"}}, "web-0"},
		{"spec hostname", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0"}, Spec: corev1.PodSpec{Hostname: "db"}}, "db"},
		{"long name truncated without a trailing dash", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: long}}, strings.Repeat("a", 62)},
		{"host network is the node's", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0"}, Spec: corev1.PodSpec{HostNetwork: true, Hostname: "db"}}, nodeName},
	}
	for _, tt := range tests {
		if got := podHostname(&tt.pod); got != tt.want {
			t.Errorf("%s: podHostname = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 63, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc"},
		{"ab-.cd", 4, "ab"},
		{"ab.-", 4, "ab.-"}, // not cut: left as it is
		{"a--b", 3, "a"},
	}
	for _, tt := range tests {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestSandboxConfig(t *testing.T) {
	a := newTestAgent(t)
	pod := testPod(corev1.RestartPolicyAlways, []string{"setup"}, "app")
	pod.Labels = map[string]string{"app": "web"}
	pod.Annotations = map[string]string{"note": "x"}
	pod.Spec.InitContainers[0].Ports = []corev1.ContainerPort{{ContainerPort: 53, HostPort: 5353, Protocol: corev1.ProtocolUDP}}
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 81}, {ContainerPort: 9, HostPort: 9, Protocol: corev1.ProtocolSCTP, HostIP: "10.0.0.5"}}
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1024"}}, RunAsUser: ptr.To(int64(5))}
	cfg := a.sandboxConfig(pod, 2)
	if m := cfg.Metadata; m.Name != "web" || m.Namespace != "default" || m.Uid != "uid-1" || m.Attempt != 2 {
		t.Errorf("metadata = %v", m)
	}
	for k, v := range map[string]string{labelPodName: "web", labelPodNamespace: "default", labelPodUID: "uid-1", "app": "web"} {
		if cfg.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfg.Labels[k], v)
		}
	}
	if cfg.Annotations["note"] != "x" {
		t.Errorf("annotations = %v", cfg.Annotations)
	}
	var ports []string
	for _, p := range cfg.PortMappings {
		ports = append(ports, p.Protocol.String()+":"+strconv.Itoa(int(p.HostPort))+">"+strconv.Itoa(int(p.ContainerPort))+"@"+p.HostIp)
	}
	if want := []string{"UDP:5353>53@", "TCP:8080>80@", "SCTP:9>9@10.0.0.5"}; !slices.Equal(ports, want) {
		t.Errorf("port mappings = %q, want %q", ports, want)
	}
	sc := cfg.Linux.SecurityContext
	if !sc.Privileged || sc.RunAsUser.GetValue() != 5 || cfg.Linux.Sysctls["net.core.somaxconn"] != "1024" {
		t.Errorf("linux = %v", cfg.Linux)
	}
	if cfg.Hostname != "web" {
		t.Errorf("hostname = %q", cfg.Hostname)
	}
}
