//! Business-rule violations. Each variant is one situation Atlas reports with its own
//! `errorCode`; the API crate's mapping table turns a variant into status, code and body.

/// A request or state change that the domain refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// No organization with this id.
    #[error("No organization with ID {org_id} exists.")]
    OrgNotFound { org_id: String },
    /// No project (group) with this id.
    #[error("No group with ID {group_id} exists.")]
    GroupNotFound { group_id: String },
    /// A `groupId` that is not 24 lowercase hex digits.
    #[error("An invalid groupId {value} was specified.")]
    InvalidGroupId { value: String },
    /// A project with this name already exists in the organization.
    #[error("A group with name \"{name}\" already exists.")]
    GroupNameTaken { name: String },
    /// A project still holds clusters and cannot be deleted.
    #[error("Cannot delete group {group_id} because it has active clusters.")]
    GroupHasClusters { group_id: String },
    /// No cluster with this name in the project.
    #[error("No cluster named {name} exists in group {group_id}.")]
    ClusterNotFound { name: String, group_id: String },
    /// A cluster with this name already exists in the project.
    #[error("A cluster named {name} is already present in group {group_id}.")]
    ClusterNameTaken { name: String, group_id: String },
    /// The cluster is dedicated, so the flex API does not serve it.
    #[error("Cannot use non-flex cluster {name} in the flex API.")]
    NonFlexClusterInFlexApi { name: String },
    /// A cluster with a restore in progress cannot be changed or deleted.
    #[error("Cluster {name} has a restore in progress and cannot be updated.")]
    ClusterRestoreInProgress { name: String },
    /// The restore target is paused.
    #[error("Cluster {name} is paused and cannot be the target of a restore.")]
    ClusterPaused { name: String },
    /// Backups are not enabled on the cluster.
    #[error("Backups are not enabled for this cluster.")]
    BackupNotEnabled { name: String },
    /// No snapshot with this id for the cluster (or no id given where one is needed).
    #[error("No snapshot with ID {snapshot_id} exists for cluster {cluster}.")]
    SnapshotNotFound {
        snapshot_id: String,
        cluster: String,
    },
    /// A `snapshotId` path parameter that is not 24 lowercase hex digits.
    #[error("An invalid snapshotId {value} was specified.")]
    InvalidSnapshotId { value: String },
    /// The snapshot has not completed, so it cannot be restored.
    #[error("Cannot start restore job for snapshot {snapshot_id} because it has not completed.")]
    SnapshotIncomplete { snapshot_id: String },
    /// The snapshot has not completed, so it cannot be downloaded.
    #[error("Cannot download snapshot {snapshot_id} because it has not completed.")]
    DownloadOfIncompleteSnapshot { snapshot_id: String },
    /// The snapshot was deleted.
    #[error("Cannot start restore job for snapshot {snapshot_id} because it was deleted.")]
    SnapshotDeleted { snapshot_id: String },
    /// A snapshot that is queued or in progress cannot be deleted.
    #[error("Cannot delete snapshot {snapshot_id} while it is in progress.")]
    SnapshotInProgressCannotDelete { snapshot_id: String },
    /// A snapshot that is queued or in progress cannot have its retention changed.
    #[error("Cannot modify the retention of snapshot {snapshot_id} while it is in progress.")]
    SnapshotInProgressCannotModify { snapshot_id: String },
    /// An on-demand snapshot is already queued or in progress for the cluster.
    #[error(
        "Cannot take an on-demand snapshot of cluster {cluster}: snapshot {snapshot_id} is still queued or in progress."
    )]
    UnfinishedOnDemandSnapshot {
        cluster: String,
        snapshot_id: String,
    },
    /// No restore job with this id for the cluster.
    #[error("No restore job with ID {job_id} exists for cluster {cluster}.")]
    RestoreJobNotFound { job_id: String, cluster: String },
    /// A `restoreJobId` path parameter that is not 24 lowercase hex digits.
    #[error("An invalid restoreJobId {value} was specified.")]
    InvalidJobId { value: String },
    /// Only download restore jobs can be cancelled.
    #[error(
        "Restore job {job_id} is an {delivery_type} restore; only download restore jobs can be cancelled."
    )]
    CannotCancelAutomatedRestore {
        job_id: String,
        delivery_type: String,
    },
    /// The download job already ended (finished, expired, failed or cancelled).
    #[error("Restore job {job_id} is {state} and can no longer be cancelled.")]
    RestoreJobNotCancellable { job_id: String, state: String },
    /// A download of this snapshot is already active.
    #[error("Snapshot {snapshot_id} already has an active download.")]
    DownloadAlreadyActive { snapshot_id: String },
    /// The project already has the maximum number of active downloads.
    #[error("Group {group_id} already has {limit} active snapshot downloads.")]
    TooManyDownloads { group_id: String, limit: u32 },
    /// A pointInTime restore on a cluster without continuous cloud backup.
    #[error("Continuous Cloud Backup (pitEnabled) is not enabled for cluster {cluster}.")]
    PitNotEnabled { cluster: String },
    /// A pointInTime request whose time fields are absent, mixed or outside the window.
    #[error("Please provide a valid UTC time or an operation time (ts). {reason}")]
    InvalidPitRestoreTime { field: String, reason: String },
    /// The requested point in time precedes every completed snapshot.
    #[error("Unable to find a snapshot prior to the requested point in time {requested}.")]
    NoSnapshotBeforePit { requested: String },
    /// A required field is missing from the request body.
    #[error("The required attribute {field} was not specified.")]
    MissingAttribute { field: String },
    /// The request body names a field this resource does not have.
    #[error("Invalid attribute {field} specified.")]
    UnknownAttribute { field: String },
    /// The request body sets a field the server owns.
    #[error("Attribute {field} is read-only and cannot be set.")]
    AttributeReadOnly { field: String },
    /// A field holds a JSON value of the wrong type.
    #[error("Received JSON for the {field} attribute does not match expected format.")]
    WrongJsonType { field: String },
    /// The request body is not parsable JSON (or not the JSON shape expected at the top).
    #[error("Received JSON is malformed.")]
    MalformedJson { reason: String },
    /// A field's value is not one of its enumeration values.
    #[error("An invalid enumeration value {value} was specified for {field}.")]
    InvalidEnumValue { field: String, value: String },
    /// A field's value breaks a pattern, length or range rule.
    #[error("The request content produced the validation error: {field} {rule}.")]
    Validation { field: String, rule: String },
    /// The caller's role does not allow this operation.
    #[error("Current user is not authorized to perform this action.")]
    Unauthorized,
    /// The caller may not restore into the target project.
    #[error("Insufficient permission on source snapshot or target cluster.")]
    CannotRestoreToTarget { target_group_id: String },
    /// No API key or service account with this id.
    #[error("Cannot find resource {resource}.")]
    ResourceNotFound { resource: String },
}

impl DomainError {
    /// The request field or path parameter this error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidPitRestoreTime { field, .. }
            | Self::MissingAttribute { field }
            | Self::UnknownAttribute { field }
            | Self::AttributeReadOnly { field }
            | Self::WrongJsonType { field }
            | Self::InvalidEnumValue { field, .. }
            | Self::Validation { field, .. } => Some(field),
            _ => None,
        }
    }
}
