//! Backup snapshots and their lifecycle: queued → inProgress → completed | failed.

use crate::names::ClusterName;
use crate::schedule::PolicyItem;
use crate::{DomainError, ObjectId, Timestamp};

/// Lifecycle state of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// Requested, not started.
    Queued,
    /// Being taken.
    InProgress,
    /// Taken and restorable.
    Completed,
    /// Could not be taken.
    Failed,
}

impl SnapshotStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress => "inProgress",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(Self::Queued),
            "inProgress" => Some(Self::InProgress),
            "completed" => Some(Self::Completed),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    /// Whether the snapshot is still being worked on.
    pub fn is_unfinished(self) -> bool {
        matches!(self, Self::Queued | Self::InProgress)
    }
}

/// Why a snapshot was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotType {
    /// Requested through the API.
    OnDemand,
    /// Taken by the backup schedule.
    Scheduled,
}

impl SnapshotType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnDemand => "onDemand",
            Self::Scheduled => "scheduled",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "onDemand" => Some(Self::OnDemand),
            "scheduled" => Some(Self::Scheduled),
            _ => None,
        }
    }
}

/// A snapshot of one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Unique id.
    pub id: ObjectId,
    /// The project of the cluster.
    pub group_id: ObjectId,
    /// The cluster's id (a snapshot outlives a renamed or recreated cluster of the same name).
    pub cluster_id: ObjectId,
    /// The cluster's name.
    pub cluster_name: ClusterName,
    /// Lifecycle state.
    pub status: SnapshotStatus,
    /// On-demand or scheduled.
    pub snapshot_type: SnapshotType,
    /// `ondemand` for on-demand snapshots (as real Atlas returns), else the policy frequency.
    pub frequency_type: String,
    /// Free text given at request time.
    pub description: Option<String>,
    /// When it was requested.
    pub requested_at: Timestamp,
    /// When the snapshot's data was captured; set once completed.
    pub created_at: Option<Timestamp>,
    /// When it will be deleted.
    pub expires_at: Timestamp,
    /// Bytes stored; 0 until completed.
    pub storage_size_bytes: i64,
    /// MongoDB version of the cluster at capture; set once in progress.
    pub mongod_version: Option<String>,
    /// Policy items of the schedule that produced it (empty for on-demand).
    pub policy_items: Vec<ObjectId>,
    /// Reason for a failed snapshot.
    pub failure_reason: Option<String>,
    /// When it was deleted (by a client or by expiry); a deleted snapshot is kept as a
    /// tombstone so restores naming it are told it was deleted, not that it never existed.
    pub deleted_at: Option<Timestamp>,
}

/// A retention change (`BackupSnapshotRetention`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Unit of `value`.
    pub unit: RetentionUnit,
    /// Number of units, at least 1.
    pub value: i32,
}

/// Unit of a retention period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetentionUnit {
    /// Days.
    Days,
    /// Weeks.
    Weeks,
    /// Months (counted as 31 days, the longest, so nothing expires early).
    Months,
    /// Years (counted as 366 days, for the same reason).
    Years,
}

impl RetentionUnit {
    /// Parses a unit in either case (`DAYS` for snapshots, `days` for schedule items).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "days" => Some(Self::Days),
            "weeks" => Some(Self::Weeks),
            "months" => Some(Self::Months),
            "years" => Some(Self::Years),
            _ => None,
        }
    }

    /// Length of one unit in days.
    pub fn days(self) -> i64 {
        match self {
            Self::Days => 1,
            Self::Weeks => 7,
            Self::Months => 31,
            Self::Years => 366,
        }
    }

    /// Lower-case wire name, as schedule policy items write it.
    pub fn as_lower_str(self) -> &'static str {
        match self {
            Self::Days => "days",
            Self::Weeks => "weeks",
            Self::Months => "months",
            Self::Years => "years",
        }
    }
}

impl Snapshot {
    /// A new on-demand snapshot request, queued.
    pub fn on_demand(
        group_id: ObjectId,
        cluster_id: ObjectId,
        cluster_name: ClusterName,
        description: Option<String>,
        retention_days: i32,
        now: Timestamp,
    ) -> Self {
        Self {
            id: ObjectId::generate(),
            group_id,
            cluster_id,
            cluster_name,
            status: SnapshotStatus::Queued,
            snapshot_type: SnapshotType::OnDemand,
            frequency_type: "ondemand".to_owned(),
            description,
            requested_at: now,
            created_at: None,
            expires_at: now.plus_days(i64::from(retention_days)),
            storage_size_bytes: 0,
            mongod_version: None,
            policy_items: Vec::new(),
            failure_reason: None,
            deleted_at: None,
        }
    }

    /// A scheduled snapshot for the policy items due at `slot`: tagged with every due item,
    /// named by the least frequent one, and kept as long as the longest retention asks.
    pub fn scheduled(
        group_id: ObjectId,
        cluster_id: ObjectId,
        cluster_name: ClusterName,
        due: &[&PolicyItem],
        now: Timestamp,
    ) -> Self {
        let rank = |kind: &str| match kind {
            "hourly" => 0,
            "daily" => 1,
            "weekly" => 2,
            "monthly" => 3,
            _ => 4,
        };
        let frequency_type = due
            .iter()
            .max_by_key(|item| rank(&item.frequency_type))
            .map_or_else(|| "daily".to_owned(), |item| item.frequency_type.clone());
        let retention_days = due
            .iter()
            .map(|item| item.retention_days())
            .max()
            .unwrap_or(1);
        Self {
            snapshot_type: SnapshotType::Scheduled,
            frequency_type,
            policy_items: due.iter().map(|item| item.id).collect(),
            expires_at: now.plus_days(retention_days),
            ..Self::on_demand(group_id, cluster_id, cluster_name, None, 1, now)
        }
    }

    /// The expiry after a retention change, counted from capture (or request) time.
    pub fn expiry_with(&self, retention: Retention) -> Result<Timestamp, DomainError> {
        if self.status.is_unfinished() {
            return Err(DomainError::SnapshotInProgressCannotModify {
                snapshot_id: self.id.to_string(),
            });
        }
        let base = self.created_at.unwrap_or(self.requested_at);
        Ok(base.plus_days(i64::from(retention.value) * retention.unit.days()))
    }
}
