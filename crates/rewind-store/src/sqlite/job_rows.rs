//! Restore-job rows as the SQLite writer binds them, and the guard query of their insert.

use rewind_domain::Timestamp;
use rewind_domain::restore_job::RestoreJob;
use rusqlite::params;

use super::execute;
use crate::rows::{encode_strings, pit_columns};

/// Active restore jobs into one target cluster. `+state` keeps SQLite from planning the `IN`
/// as an index lookup, which builds a temporary table on every execution: the seek is on the
/// target's two columns, and its few jobs are filtered by state as they are scanned.
pub(super) const TARGET_BUSY: &str = "SELECT COUNT(*) FROM restore_jobs WHERE target_group_id = ?1 AND target_cluster_name = ?2 AND +state IN ('queued', 'inProgress')";

/// The columns of a new restore job, formatted for binding.
pub(super) struct RestoreJobRow {
    id: String,
    pub(super) group_id: String,
    cluster_name: String,
    delivery_type: &'static str,
    snapshot_id: Option<String>,
    target_group_id: Option<String>,
    target_cluster_name: Option<String>,
    pit: (Option<i64>, Option<i64>, Option<i64>),
    state: &'static str,
    created_at: i64,
    snapshot_taken_at: Option<i64>,
    finished_at: Option<i64>,
    expires_at: Option<i64>,
    delivery_urls: String,
    failure_reason: Option<String>,
}

impl RestoreJobRow {
    pub(super) fn of(job: &RestoreJob) -> Self {
        Self {
            id: job.id.to_string(),
            group_id: job.group_id.to_string(),
            cluster_name: job.cluster_name.as_str().to_owned(),
            delivery_type: job.delivery_type.as_str(),
            snapshot_id: job.snapshot_id.map(|id| id.to_string()),
            target_group_id: job.target_group_id.map(|id| id.to_string()),
            target_cluster_name: job
                .target_cluster_name
                .as_ref()
                .map(|name| name.as_str().to_owned()),
            pit: pit_columns(job.pit),
            state: job.state.as_str(),
            created_at: job.created_at.millis(),
            snapshot_taken_at: job.snapshot_taken_at.map(Timestamp::millis),
            finished_at: job.finished_at.map(Timestamp::millis),
            expires_at: job.expires_at.map(Timestamp::millis),
            delivery_urls: encode_strings(&job.delivery_urls),
            failure_reason: job.failure_reason.clone(),
        }
    }

    pub(super) fn insert(&self, connection: &rusqlite::Connection) -> rusqlite::Result<usize> {
        let (pit_seconds, pit_ts, pit_inc) = self.pit;
        execute(
            connection,
            "INSERT INTO restore_jobs (id, group_id, cluster_name, delivery_type, snapshot_id, target_group_id, target_cluster_name, pit_utc_seconds, pit_oplog_ts, pit_oplog_inc, state, created_at, updated_at, snapshot_taken_at, finished_at, expires_at, delivery_urls, failure_reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16, ?17)",
            params![
                self.id,
                self.group_id,
                self.cluster_name,
                self.delivery_type,
                self.snapshot_id,
                self.target_group_id,
                self.target_cluster_name,
                pit_seconds,
                pit_ts,
                pit_inc,
                self.state,
                self.created_at,
                self.snapshot_taken_at,
                self.finished_at,
                self.expires_at,
                self.delivery_urls,
                self.failure_reason,
            ],
        )
    }
}
