package validation

import (
	"testing"

	storagev1 "k8s.io/api/storage/v1"
)

func TestStorageClass(t *testing.T) {
	sc := defaulted(&storagev1.StorageClass{ObjectMeta: clusterMeta("local"), Provisioner: "rancher.io/local-path"})
	checkErrors(t, ValidateCreate(sc))
	none := defaulted(&storagev1.StorageClass{ObjectMeta: clusterMeta("local")})
	checkErrors(t, ValidateCreate(none), required("provisioner"))
	changed := sc.DeepCopy()
	changed.Parameters = map[string]string{"a": "b"}
	changed.Provisioner = "example.com/other"
	checkErrors(t, ValidateUpdate(changed, sc), forbidden("parameters"), forbidden("provisioner"))
}
