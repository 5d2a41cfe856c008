package e2e

import (
	"reflect"
	"testing"
)

// The table parser decides what every other test sees, so it gets its own
// table-driven test; it needs no server.
func TestParseTables(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		headers [][]string
		rows    [][]map[string]string
	}{
		{
			name: "one table",
			out: "NAME   READY   STATUS    RESTARTS   AGE\n" +
				"p1     0/1     Pending   0          5s\n",
			headers: [][]string{{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}},
			rows: [][]map[string]string{{
				{"NAME": "p1", "READY": "0/1", "STATUS": "Pending", "RESTARTS": "0", "AGE": "5s"},
			}},
		},
		{
			name: "header names with spaces and an empty cell",
			out: "LAST SEEN   TYPE     REASON   OBJECT   MESSAGE\n" +
				"3s          Normal            pod/p1   hello from e2e\n",
			headers: [][]string{{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"}},
			rows: [][]map[string]string{{
				{"LAST SEEN": "3s", "TYPE": "Normal", "REASON": "", "OBJECT": "pod/p1", "MESSAGE": "hello from e2e"},
			}},
		},
		{
			name: "two tables and a short row",
			out: "NAME                  READY   UP-TO-DATE\n" +
				"deployment.apps/web   0/3     0\n" +
				"\n" +
				"NAME               DATA   AGE\n" +
				"configmap/a        1      1s\n" +
				"configmap/b\n",
			headers: [][]string{{"NAME", "READY", "UP-TO-DATE"}, {"NAME", "DATA", "AGE"}},
			rows: [][]map[string]string{
				{{"NAME": "deployment.apps/web", "READY": "0/3", "UP-TO-DATE": "0"}},
				{
					{"NAME": "configmap/a", "DATA": "1", "AGE": "1s"},
					{"NAME": "configmap/b", "DATA": "", "AGE": ""},
				},
			},
		},
		{name: "nothing", out: "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := parseTables(tc.out)
			if len(got) != len(tc.headers) {
				t.Fatalf("got %d tables, want %d: %#v", len(got), len(tc.headers), got)
			}
			for i, tb := range got {
				if !reflect.DeepEqual(tb.header, tc.headers[i]) {
					t.Errorf("table %d header = %q, want %q", i, tb.header, tc.headers[i])
				}
				if !reflect.DeepEqual(tb.rows, tc.rows[i]) {
					t.Errorf("table %d rows = %q, want %q", i, tb.rows, tc.rows[i])
				}
			}
		})
	}
}
