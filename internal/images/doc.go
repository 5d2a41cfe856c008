// Package images assembles the small container images lotse needs without a
// registry or Docker: the sandbox ("pause") image built into the binary and
// test images made from files on the host.
//
// Images are go-containerregistry v1.Image values with fixed timestamps and
// uncompressed layers, so the same input always yields the same digest, and
// WriteArchive turns any of them into a docker-archive tarball for import.
package images
