//! Stretches of a cluster's history a point-in-time restore cannot reach.
//!
//! A point-in-time restore replays captured oplog from a snapshot taken before the target.
//! Two events break that chain: oplog entries lost before capture read them (the oplog was
//! truncated), and a restore into the cluster (its history restarts from the restored data).
//! Atlas refuses targets "between the start of a restore and completion of the snapshot Atlas
//! takes after the restore"; a gap here is the same: it opens at the break and closes when a
//! snapshot requested after the break completes, since that snapshot is a new replay base.

use crate::ObjectId;
use crate::Timestamp;

/// Why a gap opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PitGapCause {
    /// Oplog entries were lost before they were captured.
    OplogLost,
    /// The cluster's data was replaced by a restore.
    Restored,
}

impl PitGapCause {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OplogLost => "oplogLost",
            Self::Restored => "restored",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "oplogLost" => Some(Self::OplogLost),
            "restored" => Some(Self::Restored),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::OplogLost => "oplog entries were lost before they were captured",
            Self::Restored => "the cluster's data was replaced by a restore",
        }
    }
}

/// One gap of one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PitGap {
    /// The cluster.
    pub cluster_id: ObjectId,
    /// Operations after this instant may be missing from the captured oplog; a snapshot
    /// requested at or after it closes the gap when it completes.
    pub from: Timestamp,
    /// When such a snapshot completed (its capture time); `None` while the gap is open.
    pub closed_at: Option<Timestamp>,
    /// Why.
    pub cause: PitGapCause,
}

impl PitGap {
    /// A reason for refusing a target inside this gap.
    pub fn reason(&self) -> String {
        let until = match self.closed_at {
            Some(closed_at) => {
                format!("until the snapshot completed at {}", closed_at.to_iso8601())
            }
            None => String::from("until a snapshot taken after it completes"),
        };
        format!(
            "No point in time from {} {until} can be restored: {}.",
            self.from.to_iso8601(),
            self.cause.describe()
        )
    }
}
