// Package persistentvolume binds PersistentVolumeClaims to
// PersistentVolumes with the semantics of upstream's PV controller
// ("persistentvolume-binder"), releases and reclaims volumes whose claims
// are gone, and provisions hostPath volumes on the chosen node for the
// built-in local-path StorageClass, as k3s ships.
//
// The binder never mounts or deletes data: a provisioned volume is a
// directory the node agent creates (hostPath DirectoryOrCreate) under the
// directory it announces in the Node annotation LocalPathDirAnnotation.
package persistentvolume
