package manager

import (
	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/cronjob"
	"github.com/lotse/lotse/internal/controller/daemonset"
	"github.com/lotse/lotse/internal/controller/deployment"
	"github.com/lotse/lotse/internal/controller/disruption"
	"github.com/lotse/lotse/internal/controller/endpointslice"
	"github.com/lotse/lotse/internal/controller/endpointslicemirroring"
	"github.com/lotse/lotse/internal/controller/garbagecollector"
	"github.com/lotse/lotse/internal/controller/job"
	"github.com/lotse/lotse/internal/controller/namespace"
	"github.com/lotse/lotse/internal/controller/nodeipam"
	"github.com/lotse/lotse/internal/controller/nodelifecycle"
	"github.com/lotse/lotse/internal/controller/persistentvolume"
	"github.com/lotse/lotse/internal/controller/podautoscaler"
	"github.com/lotse/lotse/internal/controller/podgc"
	"github.com/lotse/lotse/internal/controller/replicaset"
	"github.com/lotse/lotse/internal/controller/rootcacert"
	"github.com/lotse/lotse/internal/controller/satokensecret"
	"github.com/lotse/lotse/internal/controller/serviceaccount"
	"github.com/lotse/lotse/internal/controller/servicelb"
	"github.com/lotse/lotse/internal/controller/statefulset"
)

// Controllers are the known controllers by the names --controllers uses.
var Controllers = map[string]controller.Constructor{
	"cronjob":                  cronjob.New,
	"daemonset":                daemonset.New,
	"deployment":               deployment.New,
	"disruption":               disruption.New,
	"endpointslice":            endpointslice.New,
	"endpointslicemirroring":   endpointslicemirroring.New,
	"garbagecollector":         garbagecollector.New,
	"horizontalpodautoscaling": podautoscaler.New,
	"job":                      job.New,
	"namespace":                namespace.New,
	"nodeipam":                 nodeipam.New,
	"nodelifecycle":            nodelifecycle.New,
	"persistentvolume-binder":  persistentvolume.New,
	"podgc":                    podgc.New,
	"replicaset":               replicaset.New,
	rootCAPublisher:            rootcacert.New,
	"serviceaccount":           serviceaccount.New,
	"serviceaccount-token":     satokensecret.New,
	"servicelb":                servicelb.New,
	"statefulset":              statefulset.New,
}

// rootCAPublisher is upstream's name for the controller of kube-root-ca.crt.
const rootCAPublisher = "root-ca-cert-publisher"
