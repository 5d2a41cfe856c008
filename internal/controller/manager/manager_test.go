package manager

import (
	"reflect"
	"testing"
)

func TestSelect(t *testing.T) {
	tests := []struct {
		enabled []string
		want    []string
		wantErr bool
	}{
		{nil, []string{"deployment", "garbagecollector", "namespace", "replicaset", "serviceaccount"}, false},
		{[]string{"*"}, []string{"deployment", "garbagecollector", "namespace", "replicaset", "serviceaccount"}, false},
		{[]string{"*", "-namespace"}, []string{"deployment", "garbagecollector", "replicaset", "serviceaccount"}, false},
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
