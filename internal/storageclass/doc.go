// Package storageclass answers what the API server, the scheduler, the PV
// binder and the printers all ask of StorageClasses: which class a claim or
// volume names (the beta annotation still wins over the field), and which
// class is the cluster's default (the same rule picks the default
// IngressClass).
package storageclass
