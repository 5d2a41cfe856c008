package validation

import (
	"fmt"
	"reflect"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ephemeralAllowed names the container fields an ephemeral container may
// set. It lists what is allowed rather than what is not, as upstream does,
// so that a field added to Container later is refused until someone
// decides it makes sense for a debugging container. Everything else
// (ports, probes, lifecycle, resources, resizePolicy, restartPolicy...)
// would make the container part of the workload, which it must not be.
var ephemeralAllowed = sets.New(
	"Name", "Image", "Command", "Args", "WorkingDir", "EnvFrom", "Env",
	"VolumeMounts", "VolumeDevices", "TerminationMessagePath", "TerminationMessagePolicy",
	"ImagePullPolicy", "SecurityContext", "Stdin", "StdinOnce", "TTY",
)

const ephemeralForbidden = "cannot be set for an Ephemeral Container"

// validateEphemeralOnly checks what only ephemeral containers must obey;
// the checks every container shares (name, image...) ran already.
// others are the names of the pod's init and app containers: the only
// ones a debugging container may target.
func validateEphemeralOnly(ec *corev1.EphemeralContainer, others sets.Set[string], fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ec.TargetContainerName != "" && !others.Has(ec.TargetContainerName) {
		errs = append(errs, field.NotFound(fldPath.Child("targetContainerName"), ec.TargetContainerName))
	}
	v := reflect.ValueOf(ec.EphemeralContainerCommon)
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		if ephemeralAllowed.Has(name) || v.Field(i).IsZero() {
			continue
		}
		errs = append(errs, field.Forbidden(fldPath.Child(lowerFirst(name)), ephemeralForbidden))
	}
	// Sub-path mounts are bind mounts that outlive the container until the
	// pod ends, and imply the container serves the workload.
	for i, m := range ec.VolumeMounts {
		if m.SubPath != "" {
			errs = append(errs, field.Forbidden(fldPath.Child("volumeMounts").Index(i).Child("subPath"), ephemeralForbidden))
		}
		if m.SubPathExpr != "" {
			errs = append(errs, field.Forbidden(fldPath.Child("volumeMounts").Index(i).Child("subPathExpr"), ephemeralForbidden))
		}
	}
	return errs
}

// lowerFirst turns a Go field name into its JSON name for a field path.
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}

// ValidateEphemeralContainersUpdate checks a write through the
// pods/ephemeralcontainers subresource: the pod must still be valid, and
// the ephemeral containers it had must all still be there, unchanged.
// Only additions are possible: a debugging session leaves a trace.
func ValidateEphemeralContainersUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaAccessorUpdate(pod, old, metadataPath)
	errs = append(errs, validatePod(pod)...)
	// The kubelet runs static pods from files; their mirror in the API
	// cannot gain containers.
	if _, ok := old.Annotations[corev1.MirrorPodAnnotationKey]; ok {
		return field.ErrorList{field.Forbidden(field.NewPath(""), "static pods do not support ephemeral containers")}
	}
	byName := map[string]*corev1.EphemeralContainer{}
	for i := range pod.Spec.EphemeralContainers {
		byName[pod.Spec.EphemeralContainers[i].Name] = &pod.Spec.EphemeralContainers[i]
	}
	ecPath := specPath.Child("ephemeralContainers")
	// Patches do not keep the order, so each one is looked up by name.
	// The trailing newlines are upstream's, kept so messages compare equal.
	for _, was := range old.Spec.EphemeralContainers {
		now, ok := byName[was.Name]
		switch {
		case !ok:
			errs = append(errs, field.Forbidden(ecPath, fmt.Sprintf("existing ephemeral containers %q may not be removed\n", was.Name)))
		case !apiequality.Semantic.DeepEqual(was, *now):
			errs = append(errs, field.Forbidden(ecPath.Key(was.Name),
				fmt.Sprintf("existing ephemeral containers %q may not be changed\n%v", was.Name, cmp.Diff(was, *now))))
		}
	}
	return nilIfEmpty(errs)
}
