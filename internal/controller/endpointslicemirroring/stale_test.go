package endpointslicemirroring

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/lotse/lotse/internal/controller/slicetracker"
)

// A slice created a moment ago may not be in the informer yet when the
// Service goes: the sync must wait for it instead of deleting only what it
// lists, or the slice outlives the Service (its owner, the Endpoints,
// stays). Found as a flake of TestMirroring.
func TestServiceGoneWaitsForSlicesNotYetListed(t *testing.T) {
	indexer := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	endpoints := indexer()
	if err := endpoints.Add(&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"}}); err != nil {
		t.Fatal(err)
	}
	c := &Controller{
		client:    fake.NewClientset(),
		services:  corelisters.NewServiceLister(indexer()), // the Service is gone
		endpoints: corelisters.NewEndpointsLister(endpoints),
		slices:    discoverylisters.NewEndpointSliceLister(indexer()), // and the new slice not listed yet
		tracker:   slicetracker.New(),
	}
	c.tracker.Wrote("default/ext", &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
		Namespace: "default", Name: "ext-abcde", UID: "s1", ResourceVersion: "7"}})

	if err := c.sync(context.Background(), "default/ext"); !errors.Is(err, errStale) {
		t.Fatalf("sync with a written slice not yet listed: %v, want %v", err, errStale)
	}
}
