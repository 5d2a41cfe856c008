// Package e2e drives a built lotse binary with the real, installed kubectl
// and checks what kubectl prints against how upstream Kubernetes answers.
//
// It holds only tests: `make e2e` (or `go test ./test/e2e/...`) runs them;
// LOTSE_BIN names the binary, otherwise the tests build one themselves.
package e2e
