//go:build linux

package etcd

import (
	_ "unsafe" // for go:linkname

	bolt "go.etcd.io/bbolt"
)

// etcd opens its bbolt file with MAP_POPULATE, which faults the whole
// database file (at least 16 MiB, bbolt's growth step) into lotse's RSS at
// start-up. lotse serves reads from its own watch cache, so most of those
// pages are rarely needed; without the flag they are paged in on demand.
// etcd offers no option for it, hence the linkname to its open options.
//
//go:linkname boltOpenOptions go.etcd.io/etcd/server/v3/storage/backend.boltOpenOptions
var boltOpenOptions *bolt.Options

func init() {
	if boltOpenOptions != nil {
		boltOpenOptions.MmapFlags = 0
	}
}
