package controller

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/tools/cache"
)

func TestRunWorkers(t *testing.T) {
	yes := func() bool { return true }
	no := func() bool { return false }
	tests := []struct {
		name    string
		synced  []cache.InformerSynced
		n       int
		wantErr string // "" when the workers should run
	}{
		{name: "no informers", n: 1},
		{name: "synced", synced: []cache.InformerSynced{yes, yes}, n: 3},
		{name: "one never syncs", synced: []cache.InformerSynced{yes, no}, n: 2, wantErr: "test: informers did not sync"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var started atomic.Int32
			worker := func(ctx context.Context) {
				started.Add(1)
				<-ctx.Done()
			}
			done := make(chan error, 1)
			go func() { done <- RunWorkers(ctx, "test", tt.synced, tt.n, worker) }()

			if tt.wantErr == "" {
				// Every worker starts, and RunWorkers keeps running.
				deadline := time.Now().Add(5 * time.Second)
				for started.Load() < int32(tt.n) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			} else {
				// Give the sync wait a few polls before giving up on it.
				time.Sleep(300 * time.Millisecond)
			}
			select {
			case err := <-done:
				t.Fatalf("RunWorkers returned %v before ctx was done", err)
			default:
			}
			cancel()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("RunWorkers did not return after ctx was done")
			}

			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
				if got := started.Load(); got != int32(tt.n) {
					t.Errorf("started %d workers, want %d", got, tt.n)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
			if got := started.Load(); got != 0 {
				t.Errorf("started %d workers before the informers synced", got)
			}
		})
	}
}
