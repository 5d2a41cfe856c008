// Package inmemory is an http.RoundTripper that hands requests straight to
// an http.Handler in the same process: the server's own components reach
// its API through the same handlers, authentication, authorization and
// admission as any client, without TCP, TLS or HTTP/2 framing between
// them (DESIGN.md, "No back doors").
package inmemory
