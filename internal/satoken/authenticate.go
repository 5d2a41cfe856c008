package satoken

import (
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Lookup reads the current object a token names: resource is
// "serviceaccounts", "pods", "secrets" or "nodes"; namespace is empty for
// nodes. A missing object is an error.
type Lookup func(resource, namespace, name string) (metav1.Object, error)

// deletedGrace is how long a token bound to a pod stays good after the
// pod's deletion time has passed, as upstream.
const deletedGrace = 60 * time.Second

// Authenticate verifies token and checks that the service account and the
// object the token is bound to still exist as the same objects (same UID),
// so that deleting a pod revokes its tokens. It returns the user and
// groups the token authenticates as. Empty audiences mean the issuer's.
func (i *Issuer) Authenticate(token string, now time.Time, audiences []string, lookup Lookup) (string, []string, error) {
	c, err := i.Verify(token, now, audiences)
	if err != nil {
		return "", nil, err
	}
	k := c.Kubernetes
	if err := still(lookup, "serviceaccounts", k.Namespace, k.ServiceAccount, now); err != nil {
		return "", nil, err
	}
	for _, b := range []struct {
		resource, namespace string
		ref                 *Ref
	}{{"pods", k.Namespace, k.Pod}, {"secrets", k.Namespace, k.Secret}, {"nodes", "", k.Node}} {
		if b.ref == nil {
			continue
		}
		if err := still(lookup, b.resource, b.namespace, *b.ref, now); err != nil {
			return "", nil, err
		}
	}
	return Username(k.Namespace, k.ServiceAccount.Name), Groups(k.Namespace), nil
}

func still(lookup Lookup, resource, namespace string, ref Ref, now time.Time) error {
	obj, err := lookup(resource, namespace, ref.Name)
	if err != nil {
		return fmt.Errorf("%s %q the token is bound to: %w", resource, ref.Name, err)
	}
	if ref.UID != "" && obj.GetUID() != ref.UID {
		return fmt.Errorf("%s %q the token is bound to was recreated", resource, ref.Name)
	}
	if d := obj.GetDeletionTimestamp(); d != nil && d.Time.Add(deletedGrace).Before(now) {
		return errors.New(resource + " " + ref.Name + " the token is bound to was deleted")
	}
	return nil
}
