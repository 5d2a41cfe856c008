// Package statefulset runs StatefulSets as upstream does: pods with stable
// names and storage, created, scaled down and rolled out in ordinal order
// (or in parallel), with ControllerRevisions recording each template.
//
// The ordering decisions live in reconcile, which acts only through the
// narrow podControl interface so that tests can record what it would do.
package statefulset
