// Package registry lists every kind the API server serves: its group,
// version, resource name, scope, subresources and field selectors.
//
// It is the one table the handlers, discovery, OpenAPI and storage all read,
// so adding a kind means adding one entry here (plus its defaults,
// validation and printer in their own packages).
package registry
