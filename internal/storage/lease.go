package storage

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Objects that expire (events) are attached to an etcd lease. One lease
// serves the objects written within a short window, as kube-apiserver's
// lease manager does: a lease per object would cost a raft round per write.
const (
	// leaseReuseFraction of the TTL is how long one lease is handed out;
	// objects so live between TTL and TTL × (1 + leaseReuseFraction).
	leaseReuseFraction = 20 // i.e. 1/20 = 5%
	// leaseMaxObjects caps the objects on one lease, so that its expiry
	// does not delete an unbounded number of keys in one raft entry.
	leaseMaxObjects = 1000
)

// leases hands out the lease for objects of one TTL.
type leases struct {
	client *clientv3.Client
	ttl    time.Duration

	mu       sync.Mutex
	id       clientv3.LeaseID
	until    time.Time // the current lease is handed out until then
	attached int
}

// get returns a lease that ends no sooner than the TTL from now.
func (l *leases) get(ctx context.Context) (clientv3.LeaseID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.id != 0 && now.Before(l.until) && l.attached < leaseMaxObjects {
		l.attached++
		return l.id, nil
	}
	reuse := l.ttl / leaseReuseFraction
	resp, err := l.client.Grant(ctx, int64((l.ttl + reuse + time.Second - 1).Seconds()))
	if err != nil {
		return 0, err
	}
	l.id, l.until, l.attached = resp.ID, now.Add(reuse), 1
	return l.id, nil
}
