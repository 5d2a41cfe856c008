// Package convert translates between the versions of a kind that the API
// server serves and the one version it stores.
//
// HorizontalPodAutoscalers are stored as autoscaling/v2 and events.k8s.io/v1
// Events as core/v1 Events; the functions here follow upstream's conversion
// rules, including the annotations that let autoscaling/v1 carry v2 fields.
package convert
