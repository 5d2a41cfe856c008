package persistentvolume

// Names of the built-in local-path storage, shared with the node agent
// (which announces its directory) and the scheduler (which picks the node).
const (
	// ClassName is the StorageClass the controller creates at start-up.
	ClassName = "local-path"
	// ProvisionerName is the provisioner of ClassName; a class naming it
	// gets hostPath volumes from this controller.
	ProvisionerName = "lotse.io/local-path"
	// LocalPathDirAnnotation is the Node annotation that holds the
	// directory under which the node's local-path volumes live.
	LocalPathDirAnnotation = "lotse.io/local-path-dir"
	// LocalPathNodeLabel labels a provisioned PV with its node's name, so
	// that an agent can list its own volumes.
	LocalPathNodeLabel = "lotse.io/local-path-node"
)

// Upstream's annotations, keys and event reasons.
const (
	annBindCompleted        = "pv.kubernetes.io/bind-completed"
	annBoundByController    = "pv.kubernetes.io/bound-by-controller"
	annProvisionedBy        = "pv.kubernetes.io/provisioned-by"
	annSelectedNode         = "volume.kubernetes.io/selected-node"
	annStorageProvisioner   = "volume.kubernetes.io/storage-provisioner"
	annBetaStorageProvision = "volume.beta.kubernetes.io/storage-provisioner"

	hostnameLabel = "kubernetes.io/hostname"

	reasonProvisioningSucceeded = "ProvisioningSucceeded"
	reasonProvisioningFailed    = "ProvisioningFailed"
	reasonExternalProvisioning  = "ExternalProvisioning"
	reasonFailedBinding         = "FailedBinding"
	reasonWaitForFirstConsumer  = "WaitForFirstConsumer"
	reasonVolumeMismatch        = "VolumeMismatch"
	reasonClaimLost             = "ClaimLost"
	reasonClaimMisbound         = "ClaimMisbound"
	reasonVolumeFailedDelete    = "VolumeFailedDelete"
	reasonVolumeFailedRecycle   = "VolumeFailedRecycle"
)
