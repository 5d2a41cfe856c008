// Package memtrim gives back to the kernel the pages of the lotse binary
// that a long-running process touched only while starting.
//
// One binary holds every component, and Go runs every package's init at
// start-up, so a small command like `lotse agent` maps in code and tables
// of the API server and etcd it never uses again. Those pages are clean
// and file-backed: the kernel can drop them from the process at no cost
// and fault them back in if they are ever needed.
package memtrim
