// Command etcdonly runs nothing but lotse's embedded etcd member, as the
// baseline for the idle-memory and start-up benchmarks in package bench.
//
// It prints "etcd ready at URL" once the member serves clients and stops
// cleanly on SIGINT or SIGTERM.
package main
