//! Snapshots and restore jobs in SQLite.

use async_trait::async_trait;
use rewind_domain::pit_gap::PitGap;
use rusqlite::params;

use super::job_rows::{RestoreJobRow, TARGET_BUSY};
use super::*;
use crate::rows;
use crate::sql;
use crate::{Claimed, Lease, Release, RestoreGuard};

/// Inserts a snapshot row; a scheduled one names its policy slot, and a slot that already has
/// a snapshot inserts nothing (returns 0).
fn insert_snapshot(
    connection: &rusqlite::Connection,
    snapshot: &Snapshot,
    scheduled_for: Option<i64>,
) -> rusqlite::Result<usize> {
    execute(
        connection,
        "INSERT INTO snapshots (id, group_id, cluster_id, cluster_name, status, snapshot_type, frequency_type, description, requested_at, created_at, expires_at, storage_size_bytes, mongod_version, policy_items, failure_reason, deleted_at, scheduled_for) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) ON CONFLICT (cluster_id, scheduled_for) DO NOTHING",
        params![
            snapshot.id.to_string(),
            snapshot.group_id.to_string(),
            snapshot.cluster_id.to_string(),
            snapshot.cluster_name.as_str(),
            snapshot.status.as_str(),
            snapshot.snapshot_type.as_str(),
            snapshot.frequency_type,
            snapshot.description,
            snapshot.requested_at.millis(),
            snapshot.created_at.map(Timestamp::millis),
            snapshot.expires_at.millis(),
            snapshot.storage_size_bytes,
            snapshot.mongod_version,
            ids_json(&snapshot.policy_items),
            snapshot.failure_reason,
            snapshot.deleted_at.map(Timestamp::millis),
            scheduled_for,
        ],
    )
}

#[async_trait]
impl crate::BackupStore for SqliteStore {
    async fn insert_on_demand_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let snapshot = snapshot.clone();
        self.write(move |connection| {
            let unfinished: Option<String> = connection
                .query_row(
                    "SELECT id FROM snapshots WHERE cluster_id = ?1 AND snapshot_type = 'onDemand' AND status IN ('queued', 'inProgress') AND deleted_at IS NULL LIMIT 1",
                    [snapshot.cluster_id.to_string()],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(unfinished) = unfinished {
                return Err(StoreError::Conflict(unfinished));
            }
            insert_snapshot(connection, &snapshot, None)?;
            Ok(())
        })
        .await
    }

    async fn insert_scheduled_snapshot(
        &self,
        snapshot: &Snapshot,
        slot: Timestamp,
    ) -> Result<bool, StoreError> {
        let snapshot = snapshot.clone();
        self.write(move |connection| {
            Ok(insert_snapshot(connection, &snapshot, Some(slot.millis()))? > 0)
        })
        .await
    }

    async fn get_snapshot(
        &self,
        cluster_id: ObjectId,
        id: ObjectId,
    ) -> Result<Option<Snapshot>, StoreError> {
        let key = (cluster_id, id);
        self.hot
            .snapshots
            .get_or_read(&self.hot.generations, key, || {
                self.read(|connection| {
                    one(
                        connection,
                        "SELECT * FROM snapshots WHERE cluster_id = ?1 AND id = ?2",
                        params![cluster_id.to_string(), id.to_string()],
                        rows::snapshot,
                    )
                })
            })
    }

    async fn list_snapshots(
        &self,
        cluster_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<Snapshot>, u64), StoreError> {
        self.read(|connection| {
            let items = all(
                connection,
                "SELECT * FROM snapshots WHERE cluster_id = ?1 AND deleted_at IS NULL ORDER BY requested_at DESC, id DESC LIMIT ?2 OFFSET ?3",
                params![cluster_id.to_string(), limit(page), offset(page)],
                rows::snapshot,
            )?;
            let total = count(connection, "SELECT COUNT(*) FROM snapshots WHERE cluster_id = ?1 AND deleted_at IS NULL", [cluster_id.to_string()])?;
            Ok((items, total))
        })
    }

    async fn latest_completed_snapshot(
        &self,
        cluster_id: ObjectId,
        at: Timestamp,
    ) -> Result<Option<Snapshot>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM snapshots WHERE cluster_id = ?1 AND status = 'completed' AND deleted_at IS NULL AND created_at <= ?2 ORDER BY created_at DESC, id DESC LIMIT 1",
                params![cluster_id.to_string(), at.millis()],
                rows::snapshot,
            )
        })
    }

    async fn set_snapshot_expiry(
        &self,
        id: ObjectId,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |connection| {
            Ok(execute(
                connection,
                "UPDATE snapshots SET expires_at = ?2 WHERE id = ?1",
                params![id.to_string(), expires_at.millis()],
            )? > 0)
        })
        .await
    }

    async fn delete_snapshot(&self, id: ObjectId, now: Timestamp) -> Result<bool, StoreError> {
        self.write(move |connection| {
            Ok(execute(
                connection,
                "UPDATE snapshots SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
                params![id.to_string(), now.millis()],
            )? > 0)
        })
        .await
    }

    async fn claim_queued_snapshot(
        &self,
        replica: &str,
        mongod_version: &str,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<Option<Claimed<Snapshot>>, StoreError> {
        let (replica, mongod_version, lease) =
            (replica.to_owned(), mongod_version.to_owned(), lease.clone());
        self.write(move |connection| {
            one(
                connection,
                "UPDATE snapshots SET status = 'inProgress', mongod_version = ?1, lease_owner = ?2, lease_expires_at = ?3, attempts = attempts + 1 WHERE id = (SELECT id FROM snapshots WHERE status = 'queued' AND deleted_at IS NULL AND retry_at <= ?4 AND cluster_id IN (SELECT id FROM clusters WHERE host_replica = ?5 AND host_address IS NOT NULL) ORDER BY requested_at, id LIMIT 1) AND status = 'queued' RETURNING *",
                params![mongod_version, lease.owner, lease.until.millis(), now.millis(), replica],
                rows::claimed_snapshot,
            )
        })
        .await
    }

    async fn renew_snapshot_lease(&self, id: ObjectId, lease: &Lease) -> Result<bool, StoreError> {
        let lease = lease.clone();
        self.write(move |connection| {
            Ok(execute(
                connection,
                sql::RENEW_SNAPSHOT_LEASE,
                params![id.to_string(), lease.owner, lease.until.millis()],
            )? > 0)
        })
        .await
    }

    async fn release_snapshot(
        &self,
        id: ObjectId,
        owner: &str,
        release: Release<'_>,
    ) -> Result<bool, StoreError> {
        let (refund, retry_at, error) = rows::release_columns(release);
        let owner = owner.to_owned();
        self.write(move |connection| {
            Ok(execute(
                connection,
                sql::RELEASE_SNAPSHOT,
                params![id.to_string(), owner, refund, retry_at, error],
            )? > 0)
        })
        .await
    }

    async fn reap_snapshot_leases(
        &self,
        now: Timestamp,
        max_attempts: u32,
    ) -> Result<u64, StoreError> {
        self.write(move |connection| {
            let touched = execute(
                connection,
                "UPDATE snapshots SET status = CASE WHEN attempts >= ?2 THEN 'failed' ELSE 'queued' END, failure_reason = CASE WHEN attempts >= ?2 THEN 'the worker taking this snapshot stopped before finishing, every attempt' ELSE failure_reason END, lease_owner = NULL, lease_expires_at = NULL WHERE status = 'inProgress' AND lease_expires_at < ?1",
                params![now.millis(), i64::from(max_attempts)],
            )?;
            Ok(touched as u64)
        })
        .await
    }

    async fn finish_snapshot(
        &self,
        id: ObjectId,
        owner: &str,
        status: SnapshotStatus,
        created_at: Timestamp,
        storage_size_bytes: i64,
        failure_reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (owner, failure_reason) = (owner.to_owned(), failure_reason.map(str::to_owned));
        self.write(move |connection| {
            let updated = execute(connection,
                "UPDATE snapshots SET status = ?2, created_at = ?3, storage_size_bytes = ?4, failure_reason = ?5, expires_at = ?3 + (expires_at - requested_at), lease_owner = NULL, lease_expires_at = NULL WHERE id = ?1 AND status = 'inProgress' AND lease_owner = ?6",
                params![id.to_string(), status.as_str(), created_at.millis(), storage_size_bytes, failure_reason, owner],
            )?;
            Ok(updated > 0)
        })
        .await
    }

    async fn expired_snapshots(&self, now: Timestamp) -> Result<Vec<Snapshot>, StoreError> {
        self.read(|connection| {
            all(
                connection,
                "SELECT * FROM snapshots WHERE expires_at <= ?1 AND status IN ('completed', 'failed') AND deleted_at IS NULL ORDER BY expires_at LIMIT 100",
                [now.millis()],
                rows::snapshot,
            )
        })
    }

    async fn open_pit_gap(&self, gap: &PitGap) -> Result<(), StoreError> {
        let gap = gap.clone();
        self.write(move |connection| {
            execute(
                connection,
                sql::INSERT_PIT_GAP,
                params![
                    ObjectId::generate().to_string(),
                    gap.cluster_id.to_string(),
                    gap.from.millis(),
                    gap.cause.as_str()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn close_pit_gaps(
        &self,
        cluster_id: ObjectId,
        requested_at: Timestamp,
        completed_at: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write(move |connection| {
            let closed = execute(
                connection,
                sql::CLOSE_PIT_GAPS,
                params![
                    cluster_id.to_string(),
                    requested_at.millis(),
                    completed_at.millis()
                ],
            )?;
            Ok(closed as u64)
        })
        .await
    }

    async fn pit_gap_at(
        &self,
        cluster_id: ObjectId,
        needed_until: Timestamp,
        base_limit: Timestamp,
    ) -> Result<Option<PitGap>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                sql::PIT_GAP_AT,
                params![
                    cluster_id.to_string(),
                    needed_until.millis(),
                    base_limit.millis()
                ],
                rows::pit_gap,
            )
        })
    }

    async fn insert_restore_job(
        &self,
        job: &RestoreJob,
        guard: &RestoreGuard,
    ) -> Result<(), StoreError> {
        // Every value is formatted here, on the caller's task: the single writer's time is
        // what bounds a group commit, so it only binds and executes.
        let target = guard
            .target
            .as_ref()
            .map(|(group_id, name)| (group_id.to_string(), name.as_str().to_owned()));
        let download_snapshot = guard.download_snapshot.map(|id| id.to_string());
        let max_group_downloads = guard.max_group_downloads;
        let row = RestoreJobRow::of(job);
        // The guards only read; the insert is the one change.
        self.write_one_statement(move |connection| {
            if let Some((group_id, name)) = &target
                && count(connection, TARGET_BUSY, params![group_id, name])? > 0
            {
                return Err(StoreError::Conflict("target".to_owned()));
            }
            if let Some(snapshot_id) = &download_snapshot {
                let active = count(
                    connection,
                    crate::sql::SNAPSHOT_DOWNLOADS_ACTIVE,
                    [snapshot_id],
                )?;
                if active > 0 {
                    return Err(StoreError::Conflict("snapshot download".to_owned()));
                }
            }
            if let Some(max) = max_group_downloads {
                let active = count(
                    connection,
                    crate::sql::GROUP_DOWNLOADS_ACTIVE,
                    [&row.group_id],
                )?;
                if active >= u64::from(max) {
                    return Err(StoreError::Conflict("group downloads".to_owned()));
                }
            }
            row.insert(connection)?;
            Ok(())
        })
        .await
    }

    async fn get_restore_job(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
        id: ObjectId,
    ) -> Result<Option<RestoreJob>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM restore_jobs WHERE id = ?1 AND group_id = ?2 AND cluster_name = ?3",
                params![id.to_string(), group_id.to_string(), cluster_name.as_str()],
                rows::restore_job,
            )
        })
    }

    async fn get_restore_job_with_org(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
        id: ObjectId,
    ) -> Result<Option<(RestoreJob, ObjectId)>, StoreError> {
        let key = (group_id, cluster_name.clone(), id);
        self.hot.restore_jobs.get_or_read(&self.hot.generations, key, || {
            self.read(|connection| {
                one(
                    connection,
                    "SELECT j.*, g.org_id AS owning_org_id FROM restore_jobs j JOIN groups g ON g.id = j.group_id JOIN clusters c ON c.group_id = j.group_id AND c.name = j.cluster_name WHERE j.id = ?1 AND j.group_id = ?2 AND j.cluster_name = ?3",
                    params![id.to_string(), group_id.to_string(), cluster_name.as_str()],
                    rows::restore_job_with_org,
                )
            })
        })
    }

    async fn list_restore_jobs(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
        page: Page,
    ) -> Result<(Vec<RestoreJob>, u64), StoreError> {
        self.read(|connection| {
            let items = all(
                connection,
                "SELECT * FROM restore_jobs WHERE group_id = ?1 AND cluster_name = ?2 ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4",
                params![group_id.to_string(), cluster_name.as_str(), limit(page), offset(page)],
                rows::restore_job,
            )?;
            let total = count(connection, "SELECT COUNT(*) FROM restore_jobs WHERE group_id = ?1 AND cluster_name = ?2", params![group_id.to_string(), cluster_name.as_str()])?;
            Ok((items, total))
        })
    }

    async fn target_restoring(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
    ) -> Result<bool, StoreError> {
        self.read(|connection| {
            let busy = count(
                connection,
                TARGET_BUSY,
                params![group_id.to_string(), cluster_name.as_str()],
            )?;
            Ok(busy > 0)
        })
    }

    async fn active_downloads(
        &self,
        group_id: ObjectId,
        snapshot_id: ObjectId,
    ) -> Result<(u32, u32), StoreError> {
        self.read(|connection| {
            let of_snapshot = count(
                connection,
                crate::sql::SNAPSHOT_DOWNLOADS_ACTIVE,
                [snapshot_id.to_string()],
            )?;
            let of_group = count(
                connection,
                crate::sql::GROUP_DOWNLOADS_ACTIVE,
                [group_id.to_string()],
            )?;
            Ok((of_snapshot as u32, of_group as u32))
        })
    }

    async fn transition_restore_job(
        &self,
        id: ObjectId,
        from: &[RestoreJobState],
        to: RestoreJobState,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let from = encode_strings(
            &from
                .iter()
                .map(|state| state.as_str().to_owned())
                .collect::<Vec<_>>(),
        );
        self.write(move |connection| {
            let updated = execute(connection,
                "UPDATE restore_jobs SET state = ?2, updated_at = ?3 WHERE id = ?1 AND state IN (SELECT value FROM json_each(?4))",
                params![id.to_string(), to.as_str(), now.millis(), from],
            )?;
            Ok(updated > 0)
        })
        .await
    }

    async fn state_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.read(|connection| {
            all(
                connection,
                "SELECT 'restore_job' AS kind, state, COUNT(*) AS count FROM restore_jobs GROUP BY state UNION ALL SELECT 'snapshot' AS kind, status AS state, COUNT(*) AS count FROM snapshots WHERE deleted_at IS NULL GROUP BY status",
                [],
                rows::state_count,
            )
        })
    }
}
