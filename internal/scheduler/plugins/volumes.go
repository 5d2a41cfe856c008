package plugins

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
	"github.com/lotse/lotse/internal/storageclass"
)

// Reasons of the volume filters, worded as upstream.
const (
	ReasonVolumeNodeAffinity = "node(s) had volume node affinity conflict"
	ReasonVolumeZone         = "node(s) had no available volume zone"
	ReasonBoundToMissingPV   = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
	ReasonUnboundImmediate   = "pod has unbound immediate PersistentVolumeClaims"
)

// VolumeBinding is the part of upstream's VolumeBinding plugin that holds
// for volumes already bound: a pod's persistentVolumeClaim volumes must
// exist, and a node must satisfy the required node affinity of every
// PersistentVolume they are bound to.
//
// A claim counts as bound once spec.volumeName is set (upstream also waits
// for the PV controller's pv.kubernetes.io/bind-completed annotation,
// which lotse's binder writes in the same update). An unbound claim whose
// StorageClass binds Immediate makes the pod unschedulable until it is
// bound. An unbound WaitForFirstConsumer claim does not constrain the
// node: the binder (internal/controller/persistentvolume) then binds a PV
// the chosen node can reach, or provisions one there, from the
// volume.kubernetes.io/selected-node annotation the scheduler's binder
// sets. Upstream also checks here that a matching unbound PV exists on
// each node; lotse does not, so a WaitForFirstConsumer claim of a class
// nobody provisions for can land on a node without a fitting PV. Generic
// ephemeral volumes are not looked at (lotse has no ephemeral volume
// controller).
type VolumeBinding struct{ Listers Listers }

// Name implements fw.Plugin.
func (VolumeBinding) Name() string { return "VolumeBinding" }

// PreFilter implements fw.PreFilterPlugin: it resolves the pod's claims
// once per cycle and rejects the pod outright when one is missing or
// waits for a binding that only a controller can make. It skips the
// Filter when no bound volume constrains the node.
func (pl VolumeBinding) PreFilter(state *fw.CycleState, p *fw.PodInfo, _ fw.NodeLister) *fw.Status {
	vols, st := pl.Listers.podVolumes(state, p.Pod)
	switch {
	case st != nil:
		return st
	case vols == nil || (len(vols.nodeAffinity) == 0 && !vols.missingPV):
		return fw.NewStatus(fw.Skip)
	}
	return nil
}

// Filter implements fw.FilterPlugin.
func (VolumeBinding) Filter(state *fw.CycleState, _ *fw.PodInfo, n *fw.NodeInfo) *fw.Status {
	vols := cycleVolumes(state)
	if vols == nil {
		return nil
	}
	if vols.missingPV {
		return fw.NewStatus(fw.UnschedulableAndUnresolvable, ReasonBoundToMissingPV)
	}
	for _, ns := range vols.nodeAffinity {
		if !nodeSelectorMatches(ns, n.Node) {
			return fw.NewStatus(fw.UnschedulableAndUnresolvable, ReasonVolumeNodeAffinity)
		}
	}
	return nil
}

// VolumeZone is upstream's VolumeZone plugin: a PersistentVolume labelled
// with a zone or region (GA or deprecated beta keys; a value may list
// several, separated by "__") can be used only from nodes in one of them.
// Nodes with no zone or region label at all pass, as upstream, so that
// single-zone clusters without topology labels work.
type VolumeZone struct{ Listers Listers }

// Name implements fw.Plugin.
func (VolumeZone) Name() string { return "VolumeZone" }

// PreFilter implements fw.PreFilterPlugin; the claims are resolved once
// for both volume filters, so this costs nothing after VolumeBinding's.
// It skips the Filter when no bound volume has a zone or region.
func (pl VolumeZone) PreFilter(state *fw.CycleState, p *fw.PodInfo, _ fw.NodeLister) *fw.Status {
	vols, st := pl.Listers.podVolumes(state, p.Pod)
	switch {
	case st != nil:
		return st
	case vols == nil || len(vols.zones) == 0:
		return fw.NewStatus(fw.Skip)
	}
	return nil
}

// zoneLabels are the topology labels VolumeZone compares, GA first.
var zoneLabels = []string{
	v1.LabelTopologyZone, v1.LabelTopologyRegion,
	v1.LabelFailureDomainBetaZone, v1.LabelFailureDomainBetaRegion,
}

// gaLabel maps the deprecated beta keys to their GA successors, so a PV
// labelled the old way matches a node labelled the new way.
var gaLabel = map[string]string{
	v1.LabelFailureDomainBetaZone:   v1.LabelTopologyZone,
	v1.LabelFailureDomainBetaRegion: v1.LabelTopologyRegion,
}

// Filter implements fw.FilterPlugin.
func (VolumeZone) Filter(state *fw.CycleState, _ *fw.PodInfo, n *fw.NodeInfo) *fw.Status {
	vols := cycleVolumes(state)
	if vols == nil || len(vols.zones) == 0 {
		return nil
	}
	nodeLabels := n.Node.Labels
	constrained := false
	for _, k := range zoneLabels {
		if _, ok := nodeLabels[k]; ok {
			constrained = true
			break
		}
	}
	if !constrained {
		return nil
	}
	for _, z := range vols.zones {
		v, ok := nodeLabels[z.key]
		if !ok {
			v, ok = nodeLabels[gaLabel[z.key]]
		}
		if !ok || !z.values[v] {
			return fw.NewStatus(fw.UnschedulableAndUnresolvable, ReasonVolumeZone)
		}
	}
	return nil
}

// podVolumes is what the volume filters need of one pod's bound claims.
type podVolumes struct {
	// nodeAffinity holds the required node affinity of each bound PV
	// that has one.
	nodeAffinity []*v1.NodeSelector
	// zones holds one entry per zone or region label of a bound PV.
	zones []volumeZone
	// missingPV is set when a claim names a PV that does not exist.
	missingPV bool
}

// volumeZone is one topology label of a PV with the values it allows.
type volumeZone struct {
	key    string
	values map[string]bool
}

// volumesKey is where podVolumes keeps its result for the cycle.
const volumesKey = "plugins/volumes"

type volumesResult struct {
	vols   *podVolumes
	status *fw.Status
}

// cycleVolumes returns what the PreFilters resolved, or nil when the pod
// has nothing for the volume filters to check.
func cycleVolumes(state *fw.CycleState) *podVolumes {
	v, ok := state.Read(volumesKey)
	if !ok {
		return nil
	}
	return v.(*volumesResult).vols
}

// podVolumes resolves the pod's claims once per cycle. Pods without
// claims, the great majority, cost one pass over their volumes and leave
// nothing in state.
func (l Listers) podVolumes(state *fw.CycleState, pod *v1.Pod) (*podVolumes, *fw.Status) {
	if l.Claims == nil || !hasClaims(pod) {
		return nil, nil
	}
	if v, ok := state.Read(volumesKey); ok {
		r := v.(*volumesResult)
		return r.vols, r.status
	}
	vols, st := l.resolveClaims(pod)
	state.Write(volumesKey, &volumesResult{vols: vols, status: st})
	return vols, st
}

func hasClaims(pod *v1.Pod) bool {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].PersistentVolumeClaim != nil {
			return true
		}
	}
	return false
}

// resolveClaims looks up the pod's claims and their PVs. Every claim is
// checked for existence before an unbound one is reported, as upstream,
// so the message names the problem the user can fix first.
func (l Listers) resolveClaims(pod *v1.Pod) (*podVolumes, *fw.Status) {
	vols := &podVolumes{}
	unboundImmediate := false
	for i := range pod.Spec.Volumes {
		src := pod.Spec.Volumes[i].PersistentVolumeClaim
		if src == nil {
			continue
		}
		claim, err := l.Claims.PersistentVolumeClaims(pod.Namespace).Get(src.ClaimName)
		switch {
		case err != nil:
			return nil, fw.NewStatus(fw.UnschedulableAndUnresolvable, fmt.Sprintf("persistentvolumeclaim %q not found", src.ClaimName))
		case claim.Status.Phase == v1.ClaimLost:
			return nil, fw.NewStatus(fw.UnschedulableAndUnresolvable,
				fmt.Sprintf("persistentvolumeclaim %q bound to non-existent persistentvolume %q", claim.Name, claim.Spec.VolumeName))
		case claim.DeletionTimestamp != nil:
			return nil, fw.NewStatus(fw.UnschedulableAndUnresolvable, fmt.Sprintf("persistentvolumeclaim %q is being deleted", claim.Name))
		case claim.Spec.VolumeName == "":
			// Nothing to check for a claim that waits for its first
			// consumer (see VolumeBinding).
			unboundImmediate = unboundImmediate || !l.WaitsForFirstConsumer(claim)
			continue
		}
		pv, err := l.volume(claim.Spec.VolumeName)
		if err != nil {
			vols.missingPV = true
			continue
		}
		if na := pv.Spec.NodeAffinity; na != nil && na.Required != nil {
			vols.nodeAffinity = append(vols.nodeAffinity, na.Required)
		}
		vols.zones = appendVolumeZones(vols.zones, pv)
	}
	if unboundImmediate {
		return nil, fw.NewStatus(fw.UnschedulableAndUnresolvable, ReasonUnboundImmediate)
	}
	return vols, nil
}

func (l Listers) volume(name string) (*v1.PersistentVolume, error) {
	if l.Volumes == nil {
		return nil, fmt.Errorf("persistentvolume %q: no lister", name)
	}
	return l.Volumes.Get(name)
}

// WaitsForFirstConsumer reports whether the claim's StorageClass delays
// binding until a pod uses it. No class, or a class that does not exist,
// means Immediate, as upstream.
func (l Listers) WaitsForFirstConsumer(claim *v1.PersistentVolumeClaim) bool {
	name := storageclass.OfClaim(claim)
	if name == "" || l.Classes == nil {
		return false
	}
	class, err := l.Classes.Get(name)
	if err != nil || class.VolumeBindingMode == nil {
		return false
	}
	return *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
}

// appendVolumeZones adds the zone and region constraints of pv. A label
// value that names no zone is ignored, as upstream does with labels it
// cannot parse.
func appendVolumeZones(zones []volumeZone, pv *v1.PersistentVolume) []volumeZone {
	for _, key := range zoneLabels {
		value, ok := pv.Labels[key]
		if !ok {
			continue
		}
		values := map[string]bool{}
		for _, z := range strings.Split(value, "__") {
			if z = strings.TrimSpace(z); z != "" {
				values[z] = true
			}
		}
		if len(values) > 0 {
			zones = append(zones, volumeZone{key: key, values: values})
		}
	}
	return zones
}
