package apiserver

import (
	"testing"
	"time"

	"github.com/lotse/lotse/internal/apiserver/registry"
)

func TestStorageResourcesGiveOnlyEventsATTL(t *testing.T) {
	var events int
	for _, spec := range StorageResources(registry.Default(), time.Hour) {
		switch {
		case spec.GroupResource.String() == "events":
			events++
			if spec.TTL != time.Hour {
				t.Errorf("events TTL = %v, want 1h", spec.TTL)
			}
		case spec.TTL != 0:
			t.Errorf("%s has TTL %v; only events expire", spec.GroupResource, spec.TTL)
		}
	}
	if events != 1 {
		t.Fatalf("%d storage resources for events, want 1", events)
	}
}
