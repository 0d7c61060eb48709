//! Statements both stores run, written once in SQLite's `?N` form; PostgreSQL runs them
//! through `postgres::numbered`, which only changes the placeholders.

/// A download job is active until its link is used or gone: queued, running, or completed
/// with the link not yet downloaded (an expired link's job becomes `expired`).
macro_rules! download_active {
    () => {
        "(state IN ('queued', 'inProgress') OR (state = 'completed' AND downloaded_at IS NULL))"
    };
}

/// Active download jobs of snapshot `?1`.
pub const SNAPSHOT_DOWNLOADS_ACTIVE: &str = concat!(
    "SELECT COUNT(*) FROM restore_jobs WHERE snapshot_id = ?1 AND delivery_type = 'download' AND ",
    download_active!()
);

/// Active download jobs of project `?1`.
pub const GROUP_DOWNLOADS_ACTIVE: &str = concat!(
    "SELECT COUNT(*) FROM restore_jobs WHERE group_id = ?1 AND delivery_type = 'download' AND ",
    download_active!()
);

/// Claims the oldest queued restore job a replica can run: downloads of snapshots of clusters
/// it hosts, restores into clusters it hosts. `?1` owner, `?2` lease end, `?3` now, `?4`
/// replica; `{SKIP_LOCKED}` is PostgreSQL's row-lock clause.
pub const CLAIM_RESTORE_JOB: &str = "UPDATE restore_jobs SET state = 'inProgress', updated_at = ?3, lease_owner = ?1, lease_expires_at = ?2, attempts = attempts + 1 WHERE id = (SELECT j.id FROM restore_jobs j WHERE j.state = 'queued' AND j.retry_at <= ?3 AND EXISTS (SELECT 1 FROM clusters c WHERE c.host_replica = ?4 AND ((j.delivery_type = 'download' AND c.group_id = j.group_id AND c.name = j.cluster_name) OR (j.delivery_type <> 'download' AND c.group_id = j.target_group_id AND c.name = j.target_cluster_name))) ORDER BY j.created_at, j.id LIMIT 1 {SKIP_LOCKED}) AND state = 'queued' RETURNING *";

/// Hands restore jobs whose lease lapsed back to the queue, or fails them after `?2`
/// attempts. `?1` now.
pub const RESTORE_LEASE_REAP: &str = "UPDATE restore_jobs SET state = CASE WHEN attempts >= ?2 THEN 'failed' ELSE 'queued' END, failure_reason = CASE WHEN attempts >= ?2 THEN 'the worker running this restore stopped before finishing, every attempt' ELSE failure_reason END, finished_at = CASE WHEN attempts >= ?2 THEN ?1 ELSE finished_at END, updated_at = ?1, lease_owner = NULL, lease_expires_at = NULL WHERE state = 'inProgress' AND lease_expires_at < ?1";

/// Extends the lease of a snapshot its holder still runs: `?1` id, `?2` owner, `?3` lease end.
pub const RENEW_SNAPSHOT_LEASE: &str = "UPDATE snapshots SET lease_expires_at = ?3 WHERE id = ?1 AND status = 'inProgress' AND lease_owner = ?2";

/// Hands a running snapshot back to the queue: `?1` id, `?2` owner, `?3` attempt refund, `?4` retry_at, `?5` last error.
pub const RELEASE_SNAPSHOT: &str = "UPDATE snapshots SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts - ?3, retry_at = ?4, last_error = COALESCE(?5, last_error) WHERE id = ?1 AND status = 'inProgress' AND lease_owner = ?2";

/// Assigns every unhosted cluster to replica `?1`.
pub const HOST_UNHOSTED_CLUSTERS: &str =
    "UPDATE clusters SET host_replica = ?1 WHERE host_replica IS NULL";

/// The clusters replica `?1` hosts.
pub const CLUSTERS_HOSTED_BY: &str =
    "SELECT * FROM clusters WHERE host_replica = ?1 ORDER BY created_at, id";

/// Records that replica `?1` is alive at `?2`.
pub const REPLICA_HEARTBEAT: &str = "INSERT INTO replicas (id, heartbeat_at) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at";

/// Moves to replica `?1` the clusters of replicas silent since before `?2`.
pub const TAKE_OVER_CLUSTERS: &str = "UPDATE clusters SET host_replica = ?1, host_address = NULL WHERE host_replica IN (SELECT id FROM replicas WHERE heartbeat_at < ?2 AND id <> ?1) RETURNING *";

/// Records where cluster `?1`, hosted by `?2`, answers (`?3`) and its state (`?4`).
pub const RECORD_CLUSTER_ADDRESS: &str =
    "UPDATE clusters SET host_address = ?3, state = ?4 WHERE id = ?1 AND host_replica = ?2";

/// Extends the lease of a restore job its holder still runs: `?1` id, `?2` owner, `?3` lease end.
pub const RENEW_RESTORE_LEASE: &str = "UPDATE restore_jobs SET lease_expires_at = ?3 WHERE id = ?1 AND state = 'inProgress' AND lease_owner = ?2";

/// Hands a running restore job back to the queue: `?1` id, `?2` owner, `?3` attempt refund, `?4` retry_at, `?5` last error.
pub const RELEASE_RESTORE_JOB: &str = "UPDATE restore_jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts - ?3, retry_at = ?4, last_error = COALESCE(?5, last_error) WHERE id = ?1 AND state = 'inProgress' AND lease_owner = ?2";

/// Records the progress (`?3`) of restore job `?1` held by `?2`.
pub const RECORD_RESTORE_PROGRESS: &str = "UPDATE restore_jobs SET progress = ?3 WHERE id = ?1 AND state = 'inProgress' AND lease_owner = ?2";

/// Ends restore job `?1` held by `?2`: state, time, reason, links, expiry, token hash, progress (`?3`…`?9`).
pub const FINISH_RESTORE_JOB: &str = "UPDATE restore_jobs SET state = ?3, updated_at = ?4, finished_at = ?4, failure_reason = ?5, delivery_urls = ?6, expires_at = ?7, download_token_sha256 = ?8, progress = COALESCE(?9, progress), lease_owner = NULL, lease_expires_at = NULL WHERE id = ?1 AND state = 'inProgress' AND lease_owner = ?2";

/// The restore job whose download token hashes to `?1`.
pub const RESTORE_JOB_BY_DOWNLOAD_TOKEN: &str =
    "SELECT * FROM restore_jobs WHERE download_token_sha256 = ?1";

/// Records that cluster `?1`, deleted at `?2`, left backups to remove.
pub const INSERT_DELETED_CLUSTER_BACKUPS: &str = "INSERT INTO deleted_cluster_backups (cluster_id, deleted_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING";

/// Clusters deleted at or before `?1` whose backups are still to be removed, oldest first.
pub const DELETED_CLUSTER_BACKUPS: &str = "SELECT cluster_id FROM deleted_cluster_backups WHERE deleted_at <= ?1 ORDER BY deleted_at LIMIT 100";

/// Forgets cluster `?1` once its backups were removed.
pub const FORGET_DELETED_CLUSTER_BACKUPS: &str =
    "DELETE FROM deleted_cluster_backups WHERE cluster_id = ?1";

/// The files of restore job `?1` whose one complete download happened.
pub const DOWNLOADED_FILES: &str = "SELECT file FROM restore_job_downloads WHERE job_id = ?1";

/// Records the one complete download of file `?2` of restore job `?1` at `?3`.
pub const MARK_FILE_DOWNLOADED: &str = "INSERT INTO restore_job_downloads (job_id, file, downloaded_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";

/// The files restore job `?1`'s links serve (`rows::delivery_file_count`).
pub const DELIVERY_URLS: &str = "SELECT delivery_urls FROM restore_jobs WHERE id = ?1";

/// Restore job `?1` is downloaded (at `?2`) once `?3` of its files are.
pub const MARK_DOWNLOADED: &str = "UPDATE restore_jobs SET downloaded_at = ?2 WHERE id = ?1 AND downloaded_at IS NULL AND (SELECT COUNT(*) FROM restore_job_downloads WHERE job_id = ?1) >= ?3";

/// Completed download jobs whose link expired by `?1` become `expired`.
pub const EXPIRE_DOWNLOADS: &str = "UPDATE restore_jobs SET state = 'expired', updated_at = ?1 WHERE delivery_type = 'download' AND state = 'completed' AND expires_at <= ?1";

/// Records a gap of a cluster's point-in-time history.
pub const INSERT_PIT_GAP: &str = "INSERT INTO pit_gaps (id, cluster_id, from_at, closed_at, cause) VALUES (?1, ?2, ?3, NULL, ?4)";

/// Closes a cluster's open gaps that a snapshot requested at ?2 and completed at ?3 re-bases.
pub const CLOSE_PIT_GAPS: &str = "UPDATE pit_gaps SET closed_at = ?3 WHERE cluster_id = ?1 AND closed_at IS NULL AND from_at <= ?2";

/// The earliest gap that starts by ?2 (the last instant a target needs) and is not closed
/// by ?3 (the latest capture time a replay base may have).
pub const PIT_GAP_AT: &str = "SELECT cluster_id, from_at, closed_at, cause FROM pit_gaps WHERE cluster_id = ?1 AND from_at <= ?2 AND (closed_at IS NULL OR closed_at > ?3) ORDER BY from_at LIMIT 1";
