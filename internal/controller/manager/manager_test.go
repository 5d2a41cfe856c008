package manager

import (
	"reflect"
	"testing"
)

func TestSelect(t *testing.T) {
	all := []string{"cronjob", "daemonset", "deployment", "disruption", "endpointslice", "endpointslicemirroring", "garbagecollector", "horizontalpodautoscaling", "job", "namespace",
		"nodeipam", "nodelifecycle", "persistentvolume-binder", "podgc", "replicaset", "root-ca-cert-publisher", "serviceaccount", "serviceaccount-token", "servicelb", "statefulset"}
	allBut := func(name string) []string {
		var out []string
		for _, n := range all {
			if n != name {
				out = append(out, n)
			}
		}
		return out
	}
	tests := []struct {
		enabled []string
		want    []string
		wantErr bool
	}{
		{nil, all, false},
		{[]string{"*"}, all, false},
		{[]string{"*", "-namespace"}, allBut("namespace"), false},
		{[]string{"namespace"}, []string{"namespace"}, false},
		{[]string{"-namespace"}, nil, false},
		{[]string{"*", "-nosuch"}, nil, true},
	}
	for _, tc := range tests {
		got, err := Select(tc.enabled)
		if (err != nil) != tc.wantErr {
			t.Errorf("Select(%v) error = %v, want error %v", tc.enabled, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Select(%v) = %v, want %v", tc.enabled, got, tc.want)
		}
	}
}
