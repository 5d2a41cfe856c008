// Package openapi renders the OpenAPI v2 (Swagger) and v3 documents that
// kubectl and client-go read from /openapi/v2 and /openapi/v3, by reflection
// over the k8s.io/api Go types of the kinds the registry serves.
// Documents are rendered once, on first request, and kept compressed with
// their ETags so that an idle server pays neither time nor memory for them.
package openapi
