package validation

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

func TestRBAC(t *testing.T) {
	role := &rbacv1.Role{ObjectMeta: meta("reader:pods"), Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}},
		{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}},
	}}
	checkErrors(t, ValidateCreate(role), required("rules[1].verbs"), invalid("rules[2].nonResourceURLs"))

	badName := &rbacv1.ClusterRole{ObjectMeta: clusterMeta("a/b")}
	checkErrors(t, ValidateCreate(badName), invalid("metadata.name"))

	rb := defaulted(&rbacv1.RoleBinding{ObjectMeta: meta("read"),
		RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "reader"},
		Subjects: []rbacv1.Subject{
			{Kind: "User", Name: "alice"},
			{Kind: "ServiceAccount", Name: "builder"},
			{Kind: "Robot", Name: "r2"},
		}})
	checkErrors(t, ValidateCreate(rb), notSupported("subjects[2].kind"))
	changed := rb.DeepCopy()
	changed.Subjects = changed.Subjects[:2]
	changed.RoleRef.Name = "admin"
	checkErrors(t, ValidateUpdate(changed, rb), invalid("roleRef"))

	crb := defaulted(&rbacv1.ClusterRoleBinding{ObjectMeta: clusterMeta("read"),
		RoleRef:  rbacv1.RoleRef{Kind: "Role", Name: "reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "builder"}}})
	checkErrors(t, ValidateCreate(crb), notSupported("roleRef.kind"), required("subjects[0].namespace"))
}
