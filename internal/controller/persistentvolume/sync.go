package persistentvolume

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/lotse/lotse/internal/storageclass"
)

// syncClaim brings one claim towards Bound. A claim with the
// bind-completed annotation has been bound once and is only kept
// consistent; any other claim looks for (or waits for) its volume.
func (c *Controller) syncClaim(ctx context.Context, key string) error {
	ns, n, _ := cache.SplitMetaNamespaceKey(key)
	claim, err := c.claims.PersistentVolumeClaims(ns).Get(n)
	if apierrors.IsNotFound(err) {
		return nil // its volumes were queued by the delete handler
	}
	if err != nil {
		return err
	}
	if _, done := claim.Annotations[annBindCompleted]; done {
		return c.syncBoundClaim(ctx, claim)
	}
	if claim.Spec.VolumeName != "" {
		return c.syncPreboundClaim(ctx, claim)
	}
	return c.syncUnboundClaim(ctx, claim)
}

// syncUnboundClaim binds a claim that names no volume to the best
// matching one, or provisions one, or says why it waits.
func (c *Controller) syncUnboundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if done, err := c.assignDefaultClass(ctx, claim); done || err != nil {
		return err // the update brings the claim back with its class
	}
	// No class, or a missing one, binds Immediate as upstream.
	className := storageclass.OfClaim(claim)
	var class *storagev1.StorageClass
	if className != "" {
		var err error
		class, err = c.classes.Get(className)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	delay := class != nil && class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
	var node *corev1.Node
	if nodeName := claim.Annotations[annSelectedNode]; delay && nodeName != "" {
		var err error
		node, err = c.nodes.Get(nodeName)
		if err != nil {
			// The scheduler picked a node we cannot see (yet): try again.
			c.recorder.Eventf(claim, corev1.EventTypeWarning, reasonProvisioningFailed, "selected node %q: %v", nodeName, err)
			return fmt.Errorf("claim %s/%s: selected node: %w", claim.Namespace, claim.Name, err)
		}
	}
	pvs, err := c.volumes.List(labels.Everything())
	if err != nil {
		return err
	}
	pv, err := findBestMatch(claim, pvs, node, delay)
	if err != nil {
		c.recorder.Event(claim, corev1.EventTypeWarning, reasonFailedBinding, err.Error())
		return c.setClaimPhase(ctx, claim, corev1.ClaimPending)
	}
	if pv != nil {
		return c.bind(ctx, pv, claim)
	}
	switch {
	case delay && node == nil:
		c.recorder.Event(claim, corev1.EventTypeNormal, reasonWaitForFirstConsumer, "waiting for first consumer to be created before binding")
	case className == "":
		c.recorder.Event(claim, corev1.EventTypeNormal, reasonFailedBinding, "no persistent volumes available for this claim and no storage class is set")
	case class == nil:
		c.recorder.Eventf(claim, corev1.EventTypeWarning, reasonProvisioningFailed, "storageclass.storage.k8s.io %q not found", className)
	case class.Provisioner != ProvisionerName:
		// Someone else's provisioner, as upstream hands it to an
		// external one: say so on the claim and wait for its volume.
		claim, err = c.setClaimProvisioner(ctx, claim, class.Provisioner)
		if err != nil {
			return err
		}
		c.recorder.Eventf(claim, corev1.EventTypeNormal, reasonExternalProvisioning,
			"waiting for a volume to be created, either by external provisioner %q or manually created by system administrator", class.Provisioner)
	case node == nil:
		c.recorder.Eventf(claim, corev1.EventTypeWarning, reasonProvisioningFailed,
			"%s provisions only for classes with volumeBindingMode WaitForFirstConsumer: a volume must be placed on its pod's node", ProvisionerName)
	default:
		return c.provision(ctx, claim, class, node)
	}
	return c.setClaimPhase(ctx, claim, corev1.ClaimPending)
}

// syncPreboundClaim binds a claim that names its volume, once that
// volume is free or reserved for this claim and can serve it.
func (c *Controller) syncPreboundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	pv, err := c.volumes.Get(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		return c.setClaimPhase(ctx, claim, corev1.ClaimPending) // it may be created later
	}
	if err != nil {
		return err
	}
	if pv.Spec.ClaimRef != nil && !boundToClaim(pv, claim) {
		return c.setClaimPhase(ctx, claim, corev1.ClaimPending) // taken; wait until it is freed
	}
	if err := checkSatisfies(pv, claim); err != nil {
		c.recorder.Eventf(claim, corev1.EventTypeWarning, reasonVolumeMismatch, "Cannot bind to requested volume %q: %s", pv.Name, err)
		return c.setClaimPhase(ctx, claim, corev1.ClaimPending)
	}
	return c.bind(ctx, pv, claim)
}

// syncBoundClaim keeps a bound claim consistent with its volume: it
// finishes a binding interrupted half-way, and marks the claim Lost when
// the volume is gone or belongs to another claim.
func (c *Controller) syncBoundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Spec.VolumeName == "" {
		return c.lose(ctx, claim, reasonClaimLost, "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
	}
	pv, err := c.volumes.Get(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		return c.lose(ctx, claim, reasonClaimLost, "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
	}
	if err != nil {
		return err
	}
	if pv.Spec.ClaimRef == nil || boundToClaim(pv, claim) {
		return c.bind(ctx, pv, claim)
	}
	return c.lose(ctx, claim, reasonClaimMisbound, "Two claims are bound to the same volume, this one is bound incorrectly")
}

// lose marks a claim Lost, with an event the first time.
func (c *Controller) lose(ctx context.Context, claim *corev1.PersistentVolumeClaim, reason, msg string) error {
	if claim.Status.Phase != corev1.ClaimLost {
		c.recorder.Event(claim, corev1.EventTypeWarning, reason, msg)
	}
	return c.setClaimPhase(ctx, claim, corev1.ClaimLost)
}

// provision creates the local-path volume of claim on node and binds it.
func (c *Controller) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, node *corev1.Node) error {
	dir := node.Annotations[LocalPathDirAnnotation]
	if dir == "" {
		// The node's agent has not said where volumes live (yet); the
		// rate-limited retry and the resync try again.
		c.recorder.Eventf(claim, corev1.EventTypeWarning, reasonProvisioningFailed,
			"node %q has no %s annotation: its agent has not announced a local-path directory", node.Name, LocalPathDirAnnotation)
		return fmt.Errorf("claim %s/%s: node %q has no local-path directory", claim.Namespace, claim.Name, node.Name)
	}
	claim, err := c.setClaimProvisioner(ctx, claim, class.Provisioner)
	if err != nil {
		return err
	}
	want := localPathVolume(claim, class, node, dir)
	pv, err := c.client.CoreV1().PersistentVolumes().Create(ctx, want, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		// Made by an earlier attempt whose answer we did not see (or the
		// cache has not caught up): bind that one.
		pv, err = c.client.CoreV1().PersistentVolumes().Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !boundToClaim(pv, claim) {
			return fmt.Errorf("claim %s/%s: volume %s exists and belongs to another claim", claim.Namespace, claim.Name, pv.Name)
		}
	case err != nil:
		c.recorder.Eventf(claim, corev1.EventTypeWarning, reasonProvisioningFailed, "failed to create volume %s: %v", want.Name, err)
		return err
	default:
		c.recorder.Eventf(claim, corev1.EventTypeNormal, reasonProvisioningSucceeded, "Successfully provisioned volume %s using %s", pv.Name, ProvisionerName)
	}
	return c.bind(ctx, pv, claim)
}

// setClaimProvisioner records on the claim which provisioner it waits
// for, under the annotation and its beta name, as upstream does before
// provisioning; external provisioners look for it.
func (c *Controller) setClaimProvisioner(ctx context.Context, claim *corev1.PersistentVolumeClaim, provisioner string) (*corev1.PersistentVolumeClaim, error) {
	if claim.Annotations[annStorageProvisioner] == provisioner && claim.Annotations[annBetaStorageProvision] == provisioner {
		return claim, nil
	}
	claim = claim.DeepCopy()
	if claim.Annotations == nil {
		claim.Annotations = map[string]string{}
	}
	claim.Annotations[annStorageProvisioner] = provisioner
	claim.Annotations[annBetaStorageProvision] = provisioner
	return c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, claim, metav1.UpdateOptions{})
}

// bind binds volume and claim to each other, writing only what is not
// yet so: the volume's claimRef and phase first, then the claim's
// volumeName and annotations, then its status, upstream's order. Any
// step left undone by a failure is redone by the next sync of either
// side, because a volume reserved for the claim is what both look for.
func (c *Controller) bind(ctx context.Context, pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) error {
	pv, err := c.bindVolume(ctx, pv, claim)
	if err != nil {
		return err
	}
	claim, err = c.bindClaim(ctx, claim, pv)
	if err != nil {
		return err
	}
	if claim.Status.Phase == corev1.ClaimBound &&
		equality.Semantic.DeepEqual(claim.Status.AccessModes, pv.Spec.AccessModes) &&
		equality.Semantic.DeepEqual(claim.Status.Capacity, pv.Spec.Capacity) {
		return nil
	}
	claim = claim.DeepCopy()
	claim.Status.Phase = corev1.ClaimBound
	claim.Status.AccessModes = pv.Spec.AccessModes
	claim.Status.Capacity = pv.Spec.Capacity
	_, err = c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, claim, metav1.UpdateOptions{})
	return err
}

func (c *Controller) bindVolume(ctx context.Context, pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) (*corev1.PersistentVolume, error) {
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.Namespace != claim.Namespace || ref.Name != claim.Name || ref.UID != claim.UID {
		// The controller chose this volume unless it was reserved for
		// the claim by name; upstream marks the former so that it may
		// undo its choice (see syncVolume).
		byController := !boundToClaim(pv, claim)
		pv = pv.DeepCopy()
		pv.Spec.ClaimRef = claimRef(claim)
		if byController {
			metav1.SetMetaDataAnnotation(&pv.ObjectMeta, annBoundByController, "yes")
		}
		var err error
		if pv, err = c.client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{}); err != nil {
			return nil, err
		}
	}
	return c.setVolumePhase(ctx, pv, corev1.VolumeBound, "")
}

func (c *Controller) bindClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	_, completed := claim.Annotations[annBindCompleted]
	if claim.Spec.VolumeName == pv.Name && completed {
		return claim, nil
	}
	claim = claim.DeepCopy()
	if claim.Spec.VolumeName != pv.Name {
		claim.Spec.VolumeName = pv.Name
		metav1.SetMetaDataAnnotation(&claim.ObjectMeta, annBoundByController, "yes")
	}
	metav1.SetMetaDataAnnotation(&claim.ObjectMeta, annBindCompleted, "yes")
	return c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, claim, metav1.UpdateOptions{})
}

// setClaimPhase writes a claim's phase if it differs.
func (c *Controller) setClaimPhase(ctx context.Context, claim *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase) error {
	if claim.Status.Phase == phase {
		return nil
	}
	claim = claim.DeepCopy()
	claim.Status.Phase = phase
	_, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, claim, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// setVolumePhase writes a volume's phase and message if they differ,
// and returns the volume as written.
func (c *Controller) setVolumePhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase, msg string) (*corev1.PersistentVolume, error) {
	if pv.Status.Phase == phase && pv.Status.Message == msg {
		return pv, nil
	}
	pv = pv.DeepCopy()
	if pv.Status.Phase != phase {
		now := metav1.NewTime(c.clock.Now())
		pv.Status.LastPhaseTransitionTime = &now
	}
	pv.Status.Phase, pv.Status.Message = phase, msg
	return c.client.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{})
}

// syncVolume keeps one volume's phase true to its claim: Available while
// free or reserved, Bound while its claim holds it, Released (and then
// reclaimed) once the claim is gone.
func (c *Controller) syncVolume(ctx context.Context, name string) error {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil // the delete handler queued its claim, which becomes Lost
	}
	if err != nil {
		return err
	}
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.UID == "" {
		// Free, or reserved for a claim that has not bound yet.
		_, err := c.setVolumePhase(ctx, pv, corev1.VolumeAvailable, "")
		return ignoreNotFound(err)
	}
	claim, err := c.claims.PersistentVolumeClaims(ref.Namespace).Get(ref.Name)
	if apierrors.IsNotFound(err) {
		// The cache may not have seen a claim created a moment ago;
		// releasing a volume is not undone, so ask the API server.
		claim, err = c.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	}
	switch {
	case apierrors.IsNotFound(err):
		claim = nil
	case err != nil:
		return err
	case claim.UID != ref.UID:
		claim = nil // deleted and made again: not the claim this volume served
	}
	switch {
	case claim == nil:
		if pv.Status.Phase != corev1.VolumeReleased && pv.Status.Phase != corev1.VolumeFailed {
			if pv, err = c.setVolumePhase(ctx, pv, corev1.VolumeReleased, ""); err != nil {
				return ignoreNotFound(err)
			}
		}
		return c.reclaim(ctx, pv)
	case claim.Spec.VolumeName == "":
		// Half-way through binding: the claim's sync finishes it.
		c.claimQ.Add(claim.Namespace + "/" + claim.Name)
		return nil
	case claim.Spec.VolumeName == pv.Name:
		_, err := c.setVolumePhase(ctx, pv, corev1.VolumeBound, "")
		return ignoreNotFound(err)
	case pv.Annotations[annProvisionedBy] == ProvisionerName && pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete:
		// Provisioned for the claim, which then bound another volume:
		// nobody needs this one.
		return c.reclaim(ctx, pv)
	default:
		return c.unbindVolume(ctx, pv)
	}
}

// unbindVolume frees a volume whose claim is bound to another one. A
// volume the controller chose is freed completely; one an administrator
// reserved for the claim stays reserved by name, for the claim may come
// back to it.
func (c *Controller) unbindVolume(ctx context.Context, pv *corev1.PersistentVolume) error {
	pv = pv.DeepCopy()
	if _, ok := pv.Annotations[annBoundByController]; ok {
		pv.Spec.ClaimRef = nil
		delete(pv.Annotations, annBoundByController)
	} else {
		pv.Spec.ClaimRef.UID = ""
		pv.Spec.ClaimRef.ResourceVersion = ""
	}
	pv, err := c.client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{})
	if err != nil {
		return ignoreNotFound(err)
	}
	_, err = c.setVolumePhase(ctx, pv, corev1.VolumeAvailable, "")
	return ignoreNotFound(err)
}

// reclaim applies a released volume's reclaim policy. Retain keeps it
// Released for an administrator. Delete removes volumes lotse
// provisioned (the node agent removes their directories) and leaves
// those of external provisioners to them; lotse has no volume plugins to
// delete any other kind of storage, so such a volume, like one asking to
// be recycled, becomes Failed with the reason.
func (c *Controller) reclaim(ctx context.Context, pv *corev1.PersistentVolume) error {
	var reason, msg string
	switch pv.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimRetain, "":
		return nil
	case corev1.PersistentVolumeReclaimDelete:
		switch provisioner := pv.Annotations[annProvisionedBy]; provisioner {
		case ProvisionerName:
			err := c.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pv.UID}})
			if err == nil {
				c.log.Info("deleted released volume", "volume", pv.Name)
			}
			return ignoreNotFound(err)
		case "":
			reason, msg = reasonVolumeFailedDelete, "lotse cannot delete volumes of this type: it has no volume plugin for them; delete the data and the PersistentVolume by hand"
		default:
			return nil // the external provisioner deletes its volumes
		}
	default:
		reason, msg = reasonVolumeFailedRecycle, "lotse does not recycle volumes; delete the data and the PersistentVolume by hand, or use the Retain or Delete policy"
	}
	if pv.Status.Phase == corev1.VolumeFailed && pv.Status.Message == msg {
		return nil
	}
	c.recorder.Event(pv, corev1.EventTypeWarning, reason, msg)
	_, err := c.setVolumePhase(ctx, pv, corev1.VolumeFailed, msg)
	return ignoreNotFound(err)
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// assignDefaultClass gives an unbound claim created without a class (nil,
// not "") the newest default StorageClass, as upstream's retroactive
// default assignment does for claims made before a default existed (a
// chart applied the moment a fresh cluster answers, before the local-path
// class is created). It reports whether it updated the claim.
func (c *Controller) assignDefaultClass(ctx context.Context, claim *corev1.PersistentVolumeClaim) (bool, error) {
	if claim.Spec.StorageClassName != nil {
		return false, nil
	}
	if _, ok := claim.Annotations[storageclass.BetaAnnotation]; ok {
		return false, nil
	}
	classes, err := c.classes.List(labels.Everything())
	if err != nil {
		return false, err
	}
	name := storageclass.NewestDefault(classes, storageclass.DefaultAnnotation)
	if name == "" {
		return false, nil
	}
	claim = claim.DeepCopy()
	claim.Spec.StorageClassName = &name
	_, err = c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, claim, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return true, nil
	}
	return err == nil, err
}
