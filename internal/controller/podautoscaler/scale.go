package podautoscaler

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

// knownScalable are the built-in kinds with a scale subresource; other
// kinds (custom resources) are looked up through discovery.
var knownScalable = map[schema.GroupKind]string{
	{Group: "apps", Kind: "Deployment"}:                  "deployments",
	{Group: "apps", Kind: "ReplicaSet"}:                  "replicasets",
	{Group: "apps", Kind: "StatefulSet"}:                 "statefulsets",
	{Group: "", Kind: "ReplicationController"}:           "replicationcontrollers",
	{Group: "extensions", Kind: "Deployment"}:            "deployments",
	{Group: "extensions", Kind: "ReplicaSet"}:            "replicasets",
	{Group: "extensions", Kind: "ReplicationController"}: "replicationcontrollers",
}

// scales reads and writes any target's autoscaling/v1 Scale by REST, as
// upstream's scale client does, so every kind with the subresource works.
type scales struct {
	rest      rest.Interface
	discovery discovery.DiscoveryInterface
}

// path is the target's /scale URL.
func (s scales) path(namespace string, ref autoscalingv2.CrossVersionObjectReference) (string, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return "", fmt.Errorf("invalid API version in scale target reference: %w", err)
	}
	resource, ok := knownScalable[schema.GroupKind{Group: gv.Group, Kind: ref.Kind}]
	if !ok {
		if resource, err = s.lookup(gv, ref.Kind); err != nil {
			return "", fmt.Errorf("unable to determine resource for scale target reference: %w", err)
		}
	}
	prefix := "/apis/" + gv.String()
	if gv.Group == "" {
		prefix = "/api/" + gv.Version
	}
	return strings.Join([]string{prefix, "namespaces", namespace, resource, ref.Name, "scale"}, "/"), nil
}

// lookup finds the resource serving kind with a scale subresource.
func (s scales) lookup(gv schema.GroupVersion, kind string) (string, error) {
	list, err := s.discovery.ServerResourcesForGroupVersion(gv.String())
	if err != nil {
		return "", err
	}
	subs := map[string]bool{}
	for _, r := range list.APIResources {
		subs[r.Name] = true
	}
	for _, r := range list.APIResources {
		if r.Kind == kind && !strings.Contains(r.Name, "/") && subs[r.Name+"/scale"] {
			return r.Name, nil
		}
	}
	return "", fmt.Errorf("no matches for kind %q in group %q", kind, gv.Group)
}

func (s scales) get(ctx context.Context, path string) (*autoscalingv1.Scale, error) {
	// JSON whatever the client's default (components talk protobuf).
	raw, err := s.rest.Get().AbsPath(path).SetHeader("Accept", "application/json").Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	scale := &autoscalingv1.Scale{}
	if err := json.Unmarshal(raw, scale); err != nil {
		return nil, fmt.Errorf("decoding Scale: %w", err)
	}
	return scale, nil
}

// update writes spec.replicas; the resourceVersion read with the scale
// makes a concurrent change a conflict rather than a lost update.
func (s scales) update(ctx context.Context, path string, scale *autoscalingv1.Scale) error {
	scale.APIVersion, scale.Kind = "autoscaling/v1", "Scale"
	body, err := json.Marshal(scale)
	if err != nil {
		return err
	}
	return s.rest.Put().AbsPath(path).SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error()
}
