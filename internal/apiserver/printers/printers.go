package printers

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Printer renders objects of one served kind as table rows.
type Printer struct {
	Columns []metav1.TableColumnDefinition
	// Cells returns one value per column for obj (the first is the name).
	// now is the time "AGE"-style columns are measured against.
	Cells func(obj runtime.Object, now time.Time) []interface{}
}

// For returns the printer for objects of the served group/version/kind;
// kinds without a dedicated printer get the upstream default (Name, Created At).
func For(gvk schema.GroupVersionKind) Printer {
	if p, ok := byKind[gvk]; ok {
		return p
	}
	return defaultPrinter
}

func gvk(group, version, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: group, Version: version, Kind: kind}
}

// byKind lists every kind with a dedicated printer. LimitRange, Role and
// ClusterRole are absent on purpose: upstream serves them with the default
// table too.
var byKind = map[schema.GroupVersionKind]Printer{
	gvk("", "v1", "Namespace"):             namespacePrinter,
	gvk("", "v1", "Pod"):                   podPrinter,
	gvk("", "v1", "Service"):               servicePrinter,
	gvk("", "v1", "Endpoints"):             endpointsPrinter,
	gvk("", "v1", "ConfigMap"):             configMapPrinter,
	gvk("", "v1", "Secret"):                secretPrinter,
	gvk("", "v1", "Node"):                  nodePrinter,
	gvk("", "v1", "Event"):                 eventPrinter,
	gvk("", "v1", "ServiceAccount"):        serviceAccountPrinter,
	gvk("", "v1", "ResourceQuota"):         resourceQuotaPrinter,
	gvk("", "v1", "PersistentVolume"):      persistentVolumePrinter,
	gvk("", "v1", "PersistentVolumeClaim"): persistentVolumeClaimPrinter,
	gvk("", "v1", "PodTemplate"):           podTemplatePrinter,

	gvk("apps", "v1", "Deployment"):         deploymentPrinter,
	gvk("apps", "v1", "ReplicaSet"):         replicaSetPrinter,
	gvk("apps", "v1", "DaemonSet"):          daemonSetPrinter,
	gvk("apps", "v1", "StatefulSet"):        statefulSetPrinter,
	gvk("apps", "v1", "ControllerRevision"): controllerRevisionPrinter,

	gvk("batch", "v1", "Job"):     jobPrinter,
	gvk("batch", "v1", "CronJob"): cronJobPrinter,

	gvk("autoscaling", "v2", "HorizontalPodAutoscaler"): hpaV2Printer,
	gvk("autoscaling", "v1", "HorizontalPodAutoscaler"): hpaV1Printer,

	gvk("networking.k8s.io", "v1", "Ingress"):       ingressPrinter,
	gvk("networking.k8s.io", "v1", "IngressClass"):  ingressClassPrinter,
	gvk("networking.k8s.io", "v1", "NetworkPolicy"): networkPolicyPrinter,

	gvk("discovery.k8s.io", "v1", "EndpointSlice"): endpointSlicePrinter,

	gvk("coordination.k8s.io", "v1", "Lease"): leasePrinter,

	gvk("policy", "v1", "PodDisruptionBudget"): podDisruptionBudgetPrinter,

	gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"):        roleBindingPrinter,
	gvk("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"): clusterRoleBindingPrinter,

	gvk("events.k8s.io", "v1", "Event"): eventsV1Printer,

	gvk("scheduling.k8s.io", "v1", "PriorityClass"): priorityClassPrinter,

	gvk("storage.k8s.io", "v1", "StorageClass"): storageClassPrinter,
}

var objectMetaDoc = metav1.ObjectMeta{}.SwaggerDoc()

// nameColumn and ageColumn open and (usually) close every upstream table.
var (
	nameColumn = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: objectMetaDoc["name"]}
	ageColumn  = metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: objectMetaDoc["creationTimestamp"]}
)

// defaultPrinter is what upstream's generic table convertor prints for kinds
// without their own columns: the name and the creation time as RFC 3339.
var defaultPrinter = Printer{
	Columns: []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Created At", Type: "date", Description: objectMetaDoc["creationTimestamp"]},
	},
	Cells: func(obj runtime.Object, _ time.Time) []interface{} {
		var name string
		var created time.Time
		if m := accessor(obj); m != nil {
			name = m.GetName()
			created = m.GetCreationTimestamp().Time
		}
		return []interface{}{name, created.UTC().Format(time.RFC3339)}
	},
}

// typed builds a Printer whose cell function takes the concrete Go type. An
// object of another type (a caller's mistake) still gets a row of the right
// width, with its name in the name column and empty cells, rather than a
// panic.
func typed[T any](columns []metav1.TableColumnDefinition, cells func(obj *T, now time.Time) []interface{}) Printer {
	return Printer{
		Columns: columns,
		Cells: func(obj runtime.Object, now time.Time) []interface{} {
			if o, ok := any(obj).(*T); ok && o != nil {
				return cells(o, now)
			}
			row := make([]interface{}, len(columns))
			for i := range row {
				row[i] = ""
			}
			if m := accessor(obj); m != nil {
				for i, c := range columns {
					if c.Format == "name" {
						row[i] = m.GetName()
						break
					}
				}
			}
			return row
		},
	}
}

// accessor returns obj's metadata, or nil when there is none to read
// (including a typed nil pointer, on which the accessor methods panic).
func accessor(obj runtime.Object) metav1.Object {
	if obj == nil {
		return nil
	}
	if v := reflect.ValueOf(obj); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	return m
}

// since is upstream's "AGE" rendering of the time elapsed from t to now.
func since(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func sinceMicro(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// containerCells lists container names and images, comma-separated, for the
// wide CONTAINERS and IMAGES columns of the workload kinds.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i, c := range containers {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

// Descriptions upstream gives the wide container columns of every workload.
const (
	containersDoc = "Names of each container in the template."
	imagesDoc     = "Images referenced by each container in the template."
)

func containersColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Containers", Type: "string", Priority: 1, Description: containersDoc}
}

func imagesColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Images", Type: "string", Priority: 1, Description: imagesDoc}
}

func boolPtrString(b *bool) string {
	if b == nil {
		return "<unset>"
	}
	if *b {
		return "True"
	}
	return "False"
}

func deref[T any](p *T, fallback T) T {
	if p == nil {
		return fallback
	}
	return *p
}

// joinWithMore joins the first max items shown and, when there were more
// than max in all, says how many were left out, as upstream's lists do.
func joinWithMore(shown []string, total, max int) string {
	s := strings.Join(shown, ",")
	if total > max {
		return fmt.Sprintf("%s + %d more...", s, total-max)
	}
	return s
}
