// Package cli implements the lotse command line: one function per
// subcommand, each parsing its flags and running one component.
//
// cmd/lotse stays a one-line main so the subcommands can be tested.
package cli
