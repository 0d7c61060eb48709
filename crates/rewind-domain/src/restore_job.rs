//! Restore jobs: the entity, its state machine and the rules that need stored state.

use crate::cluster::Cluster;
use crate::names::ClusterName;
use crate::pit_gap::PitGap;
use crate::restore_request::{DeliveryType, PitTarget, RestoreRequest};
use crate::schedule::BackupSchedule;
use crate::snapshot::{Snapshot, SnapshotStatus};
use crate::{DomainError, ObjectId, Timestamp};

/// At most this many download jobs may be active in one project at once.
pub const MAX_ACTIVE_DOWNLOADS_PER_GROUP: u32 = 20;

/// Lifecycle state of a restore job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreJobState {
    /// Accepted, waiting for an executor.
    Queued,
    /// An executor is moving data.
    InProgress,
    /// Automated/PIT: the target holds the restored data. Download: the link is ready.
    Completed,
    /// Ended without delivering; see the failure reason.
    Failed,
    /// A download job cancelled by a client.
    Cancelled,
    /// A download link that passed its expiry or was used.
    Expired,
}

impl RestoreJobState {
    /// The name stored in the metadata store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress => "inProgress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(Self::Queued),
            "inProgress" => Some(Self::InProgress),
            "completed" => Some(Self::Completed),
            "failed" => Some(Self::Failed),
            "cancelled" => Some(Self::Cancelled),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }

    /// Whether the job still occupies its target or its snapshot's download slot.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::InProgress)
    }
}

/// A restore job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreJob {
    /// Unique id.
    pub id: ObjectId,
    /// The source project.
    pub group_id: ObjectId,
    /// The source cluster.
    pub cluster_name: ClusterName,
    /// How the snapshot is delivered.
    pub delivery_type: DeliveryType,
    /// The snapshot restored (for pointInTime, the base snapshot chosen).
    pub snapshot_id: Option<ObjectId>,
    /// Target project, for automated and pointInTime.
    pub target_group_id: Option<ObjectId>,
    /// Target cluster, for automated and pointInTime.
    pub target_cluster_name: Option<ClusterName>,
    /// Replay target, for pointInTime.
    pub pit: Option<PitTarget>,
    /// Lifecycle state.
    pub state: RestoreJobState,
    /// When the job was created.
    pub created_at: Timestamp,
    /// Capture time of the source snapshot.
    pub snapshot_taken_at: Option<Timestamp>,
    /// When an automated or PIT restore finished.
    pub finished_at: Option<Timestamp>,
    /// When a download link stops working.
    pub expires_at: Option<Timestamp>,
    /// Download links, once ready.
    pub delivery_urls: Vec<String>,
    /// Why the job failed.
    pub failure_reason: Option<String>,
    /// How far the work has got, while it runs and once it ended.
    pub progress: Option<RestoreProgress>,
}

/// The progress of a running restore: a field beyond Atlas's schema (clients ignore it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreProgress {
    /// Bytes of documents restored or packaged so far.
    pub bytes_done: u64,
    /// Bytes in all.
    pub bytes_total: u64,
    /// Documents restored or packaged so far.
    pub documents_done: u64,
    /// Documents in all.
    pub documents_total: u64,
    /// Oplog entries replayed (pointInTime restores).
    pub oplog_entries_applied: u64,
    /// Bytes per second since the work started.
    pub bytes_per_second: u64,
}

impl RestoreJob {
    /// Whether a client may cancel the job now.
    pub fn check_cancellable(&self) -> Result<(), DomainError> {
        if self.delivery_type != DeliveryType::Download {
            return Err(DomainError::CannotCancelAutomatedRestore {
                job_id: self.id.to_string(),
                delivery_type: self.delivery_type.as_str().to_owned(),
            });
        }
        // A completed download job is cancellable: cancelling revokes its link.
        match self.state {
            RestoreJobState::Queued | RestoreJobState::InProgress | RestoreJobState::Completed => {
                Ok(())
            }
            other => Err(DomainError::RestoreJobNotCancellable {
                job_id: self.id.to_string(),
                state: other.as_str().to_owned(),
            }),
        }
    }
}

/// Everything the restore rules need to know, loaded by the caller.
pub struct RestoreContext<'a> {
    /// The source project.
    pub group_id: ObjectId,
    /// The source cluster (the path's cluster).
    pub source: &'a Cluster,
    /// The source cluster's schedule, when backup is enabled.
    pub source_schedule: Option<&'a BackupSchedule>,
    /// The snapshot named by `snapshotId`, or `None` when it does not exist for the source.
    pub snapshot: Option<&'a Snapshot>,
    /// The latest completed snapshot at or before the PIT target (pointInTime only).
    pub pit_base_snapshot: Option<&'a Snapshot>,
    /// A gap of the source's history reaching the PIT target (pointInTime only).
    pub pit_gap: Option<&'a PitGap>,
    /// The target cluster (automated and pointInTime).
    pub target: Option<&'a Cluster>,
    /// Whether the target already has an active automated or PIT restore.
    pub target_restoring: bool,
    /// Active download jobs of the named snapshot.
    pub active_downloads_of_snapshot: u32,
    /// Active download jobs in the source project.
    pub active_downloads_in_group: u32,
    /// The current time.
    pub now: Timestamp,
}

/// Applies every rule that needs stored state and returns the job to record.
pub fn plan_restore(
    request: &RestoreRequest,
    context: &RestoreContext<'_>,
) -> Result<RestoreJob, DomainError> {
    let source_name = context.source.name.as_str();
    if !context.source.backup_enabled {
        return Err(DomainError::BackupNotEnabled {
            name: source_name.to_owned(),
        });
    }

    let snapshot = match request.delivery_type {
        DeliveryType::Automated | DeliveryType::Download => {
            let requested = request
                .snapshot_id
                .map(|id| id.to_string())
                .unwrap_or_default();
            let snapshot = context
                .snapshot
                .ok_or_else(|| DomainError::SnapshotNotFound {
                    snapshot_id: requested,
                    cluster: source_name.to_owned(),
                })?;
            check_snapshot_restorable(snapshot, request.delivery_type)?;
            Some(snapshot)
        }
        DeliveryType::PointInTime => None,
    };

    if let Some(target) = &request.target {
        let target_cluster = context.target.ok_or_else(|| DomainError::ClusterNotFound {
            name: target.cluster_name.to_string(),
            group_id: target.group_id.to_string(),
        })?;
        if target_cluster.paused {
            return Err(DomainError::ClusterPaused {
                name: target_cluster.name.to_string(),
            });
        }
        if context.target_restoring {
            return Err(DomainError::ClusterRestoreInProgress {
                name: target_cluster.name.to_string(),
            });
        }
    }

    let mut snapshot_for_job = snapshot;
    if let Some(pit) = request.pit {
        snapshot_for_job = Some(check_point_in_time(pit, request, context)?);
    }

    if request.delivery_type == DeliveryType::Download {
        if let Some(snapshot) = snapshot
            && context.active_downloads_of_snapshot > 0
        {
            return Err(DomainError::DownloadAlreadyActive {
                snapshot_id: snapshot.id.to_string(),
            });
        }
        if context.active_downloads_in_group >= MAX_ACTIVE_DOWNLOADS_PER_GROUP {
            return Err(DomainError::TooManyDownloads {
                group_id: context.group_id.to_string(),
                limit: MAX_ACTIVE_DOWNLOADS_PER_GROUP,
            });
        }
    }

    Ok(RestoreJob {
        id: ObjectId::generate(),
        group_id: context.group_id,
        cluster_name: context.source.name.clone(),
        delivery_type: request.delivery_type,
        snapshot_id: snapshot_for_job.map(|snapshot| snapshot.id),
        target_group_id: request.target.as_ref().map(|target| target.group_id),
        target_cluster_name: request
            .target
            .as_ref()
            .map(|target| target.cluster_name.clone()),
        pit: request.pit,
        state: RestoreJobState::Queued,
        created_at: context.now,
        snapshot_taken_at: snapshot_for_job.and_then(|snapshot| snapshot.created_at),
        finished_at: None,
        expires_at: None,
        delivery_urls: Vec::new(),
        failure_reason: None,
        progress: None,
    })
}

fn check_snapshot_restorable(
    snapshot: &Snapshot,
    delivery_type: DeliveryType,
) -> Result<(), DomainError> {
    if snapshot.deleted_at.is_some() {
        return Err(DomainError::SnapshotDeleted {
            snapshot_id: snapshot.id.to_string(),
        });
    }
    match snapshot.status {
        SnapshotStatus::Completed => Ok(()),
        _ if delivery_type == DeliveryType::Download => {
            Err(DomainError::DownloadOfIncompleteSnapshot {
                snapshot_id: snapshot.id.to_string(),
            })
        }
        _ => Err(DomainError::SnapshotIncomplete {
            snapshot_id: snapshot.id.to_string(),
        }),
    }
}

/// PIT rules: continuous backup on, target inside the restore window and not in the future,
/// and a completed snapshot at or before it. Returns the base snapshot.
fn check_point_in_time<'a>(
    pit: PitTarget,
    request: &RestoreRequest,
    context: &RestoreContext<'a>,
) -> Result<&'a Snapshot, DomainError> {
    let field = match pit {
        PitTarget::UtcSeconds(_) => "pointInTimeUTCSeconds",
        PitTarget::Oplog { .. } => "oplogTs",
    };
    if !context.source.pit_enabled {
        return Err(DomainError::PitNotEnabled {
            cluster: context.source.name.to_string(),
        });
    }
    let window_days = context
        .source_schedule
        .map_or(0, |schedule| i64::from(schedule.restore_window_days));
    let earliest = context.now.plus_days(-window_days).secs();
    let seconds = pit.seconds();
    if seconds < earliest {
        return Err(DomainError::InvalidPitRestoreTime {
            field: field.to_owned(),
            reason: format!(
                "{field} {seconds} is outside the restore window of {window_days} days (earliest {earliest})."
            ),
        });
    }
    if seconds > context.now.secs() {
        return Err(DomainError::InvalidPitRestoreTime {
            field: field.to_owned(),
            reason: format!("{field} {seconds} is in the future."),
        });
    }
    if let Some(gap) = context.pit_gap {
        return Err(DomainError::InvalidPitRestoreTime {
            field: field.to_owned(),
            reason: format!("{field} {seconds} cannot be reached. {}", gap.reason()),
        });
    }
    let base = context
        .pit_base_snapshot
        .ok_or_else(|| DomainError::NoSnapshotBeforePit {
            requested: seconds.to_string(),
        })?;
    // A snapshotId sent with a PIT request must name a completed snapshot of the source.
    if request.snapshot_id.is_some() && context.snapshot.is_none() {
        return Err(DomainError::SnapshotNotFound {
            snapshot_id: request
                .snapshot_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            cluster: context.source.name.to_string(),
        });
    }
    Ok(base)
}
