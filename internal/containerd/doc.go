// Package containerd runs the container runtime a lotse node uses: it
// writes a containerd configuration into the data directory (own socket,
// state and root, CNI, sandbox image, registry mirrors) and supervises
// containerd as a child process, restarting it when it dies.
//
// It also dials the CRI endpoint, whether it is the supervised child's or
// one the user already runs (--container-runtime-endpoint).
package containerd
