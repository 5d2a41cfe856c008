package defaults

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

func TestRBACDefaults(t *testing.T) {
	rb := &rbacv1.RoleBinding{Subjects: []rbacv1.Subject{{Kind: "User", Name: "a"}, {Kind: "ServiceAccount", Name: "b"}}}
	Apply(rb)
	if rb.RoleRef.APIGroup != rbacv1.GroupName || rb.Subjects[0].APIGroup != rbacv1.GroupName || rb.Subjects[1].APIGroup != "" {
		t.Errorf("got %+v", rb)
	}
	crb := &rbacv1.ClusterRoleBinding{Subjects: []rbacv1.Subject{{Kind: "Group", Name: "g"}}}
	Apply(crb)
	if crb.RoleRef.APIGroup != rbacv1.GroupName || crb.Subjects[0].APIGroup != rbacv1.GroupName {
		t.Errorf("got %+v", crb)
	}
}
