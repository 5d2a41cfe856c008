// Command lotse is a container orchestrator that speaks the Kubernetes API:
// `lotse server` runs the control plane; the subcommands live in internal/cli.
package main
