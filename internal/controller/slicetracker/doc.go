// Package slicetracker remembers the EndpointSlices a controller wrote or
// deleted, so that a sync working from an informer that has not caught up
// with those writes waits instead of creating duplicates or undoing them.
// The EndpointSlice and EndpointSlice mirroring controllers share it.
package slicetracker
