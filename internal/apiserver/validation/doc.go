// Package validation checks objects before the API server stores them, with
// the field paths and messages upstream Kubernetes gives for the same mistakes.
//
// ValidateCreate and ValidateUpdate take the served-version k8s.io/api types
// after defaulting; a non-empty field.ErrorList becomes a 422 Invalid answer.
package validation
