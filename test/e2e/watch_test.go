package e2e

import (
	"strings"
	"testing"
)

// watchRows returns the watch output's lines split into fields, header
// lines left out.
func watchRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "NAMESPACE" || f[0] == "NAME" || f[0] == "EVENT" {
			continue
		}
		rows = append(rows, f)
	}
	return rows
}

// countRows counts rows whose leading fields equal prefix.
func countRows(out string, prefix ...string) int {
	n := 0
	for _, f := range watchRows(out) {
		if len(f) >= len(prefix) && strings.Join(f[:len(prefix)], " ") == strings.Join(prefix, " ") {
			n++
		}
	}
	return n
}

func TestWatch(t *testing.T) {
	k := cluster(t).kubectl(t)
	const ns = "watch"
	k.createNamespace(t, ns)
	create := func(t *testing.T, name string, labels map[string]string) {
		t.Helper()
		k.okStdin(t, podYAML(name, labels), "-n", ns, "create", "-f", "-")
	}

	t.Run("all namespaces with set-based selector", func(t *testing.T) {
		// A matching pod made before the watch: kubectl lists it first, so
		// its row shows the list (and with it the watch's start) is done.
		create(t, "w-seed", map[string]string{"env": "prod", "tier": "frontend"})
		w := k.start(t, "get", "pods", "-A", "-l", "env in (prod,qa),tier!=backend", "-w")
		w.waitFor(t, "the header and the seed pod", func(out string) bool {
			return strings.HasPrefix(out, "NAMESPACE") && countRows(out, ns, "w-seed") == 1
		})
		if h := strings.Fields(strings.SplitN(w.stdout.String(), "\n", 2)[0]); strings.Join(h, " ") != "NAMESPACE NAME READY STATUS RESTARTS AGE" {
			t.Errorf("watch header = %q, want NAMESPACE NAME READY STATUS RESTARTS AGE\n%s", h, w)
		}

		create(t, "w-new", map[string]string{"env": "qa"})
		w.waitFor(t, "a row for the new matching pod", func(out string) bool { return countRows(out, ns, "w-new") == 1 })
		for _, f := range watchRows(w.stdout.String()) {
			if len(f) >= 4 && f[1] == "w-new" && (f[2] != "0/1" || f[3] != "Pending") {
				t.Errorf("w-new row = %q, want READY 0/1, STATUS Pending\n%s", f, w)
			}
		}

		create(t, "w-dev", map[string]string{"env": "dev"})
		create(t, "w-back", map[string]string{"env": "prod", "tier": "backend"})
		k.ok(t, "-n", ns, "annotate", "pod", "w-seed", "touched=yes")
		w.waitFor(t, "a second row for the modified seed pod", func(out string) bool { return countRows(out, ns, "w-seed") == 2 })
		k.ok(t, "-n", ns, "label", "pod", "w-dev", "env=qa", "--overwrite")
		w.waitFor(t, "a row for the pod relabelled into the selector", func(out string) bool { return countRows(out, ns, "w-dev") >= 1 })

		// Events arrive in order, so w-back (created before w-dev was
		// relabelled) would have shown by now if the selector let it in.
		if n := countRows(w.stdout.String(), ns, "w-back"); n != 0 {
			t.Errorf("the watch shows w-back (tier=backend), which the selector excludes:\n%s", w)
		}
	})

	t.Run("output-watch-events", func(t *testing.T) {
		create(t, "e-a", map[string]string{"watch": "events"})
		w := k.start(t, "-n", ns, "get", "pods", "-l", "watch=events", "-w", "--output-watch-events")
		w.waitFor(t, "ADDED for the existing pod", func(out string) bool { return countRows(out, "ADDED", "e-a") == 1 })
		if h := strings.Fields(strings.SplitN(w.stdout.String(), "\n", 2)[0]); strings.Join(h, " ") != "EVENT NAME READY STATUS RESTARTS AGE" {
			t.Errorf("watch header = %q, want EVENT NAME READY STATUS RESTARTS AGE\n%s", h, w)
		}
		k.ok(t, "-n", ns, "annotate", "pod", "e-a", "touched=yes")
		w.waitFor(t, "MODIFIED after annotate", func(out string) bool { return countRows(out, "MODIFIED", "e-a") == 1 })
		// Leaving the selector is a DELETED event for this watch, coming
		// back an ADDED one, as the upstream watch cache reports it.
		k.ok(t, "-n", ns, "label", "pod", "e-a", "watch=other", "--overwrite")
		w.waitFor(t, "DELETED when the pod leaves the selector", func(out string) bool { return countRows(out, "DELETED", "e-a") == 1 })
		k.ok(t, "-n", ns, "label", "pod", "e-a", "watch=events", "--overwrite")
		w.waitFor(t, "ADDED when the pod comes back", func(out string) bool { return countRows(out, "ADDED", "e-a") == 2 })
		k.ok(t, "-n", ns, "delete", "pod", "e-a", "--grace-period=0", "--force")
		w.waitFor(t, "DELETED on delete", func(out string) bool { return countRows(out, "DELETED", "e-a") == 2 })
	})
}
