//! Snapshots and restore jobs in PostgreSQL.

use async_trait::async_trait;
use rewind_domain::pit_gap::PitGap;
use rewind_domain::restore_job::{RestoreJob, RestoreJobState};
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_domain::{ClusterName, ObjectId, Timestamp};
use sqlx::postgres::PgConnection;

use super::{PgStore, all, args, count, execute, limit, lock, numbered, offset, one};
use crate::rows::{self, encode_strings, pit_columns};
use crate::sql;
use crate::{Claimed, Lease, Page, Release, RestoreGuard, StoreError};

const ACTIVE: &str = "('queued', 'inProgress')";

/// Inserts a snapshot row; a scheduled one names its policy slot, and a slot that already has
/// a snapshot inserts nothing (returns 0).
async fn insert_snapshot(
    connection: &mut PgConnection,
    snapshot: &Snapshot,
    scheduled_for: Option<i64>,
) -> Result<u64, sqlx::Error> {
    execute(
        connection,
        "INSERT INTO snapshots (id, group_id, cluster_id, cluster_name, status, snapshot_type, frequency_type, description, requested_at, created_at, expires_at, storage_size_bytes, mongod_version, policy_items, failure_reason, deleted_at, scheduled_for) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (cluster_id, scheduled_for) DO NOTHING",
        args![
            snapshot.id.to_string(),
            snapshot.group_id.to_string(),
            snapshot.cluster_id.to_string(),
            snapshot.cluster_name.as_str(),
            snapshot.status.as_str(),
            snapshot.snapshot_type.as_str(),
            snapshot.frequency_type.as_str(),
            snapshot.description.clone(),
            snapshot.requested_at.millis(),
            snapshot.created_at.map(Timestamp::millis),
            snapshot.expires_at.millis(),
            snapshot.storage_size_bytes,
            snapshot.mongod_version.clone(),
            encode_strings(&snapshot.policy_items.iter().map(ObjectId::to_string).collect::<Vec<_>>()),
            snapshot.failure_reason.clone(),
            snapshot.deleted_at.map(Timestamp::millis),
            scheduled_for,
        ],
    )
    .await
}

#[async_trait]
impl crate::BackupStore for PgStore {
    async fn insert_on_demand_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        lock(
            &mut transaction,
            &format!("rewind.snapshots.{}", snapshot.cluster_id),
        )
        .await?;
        let unfinished = one(
            &mut transaction,
            "SELECT id FROM snapshots WHERE cluster_id = $1 AND snapshot_type = 'onDemand' AND status IN ('queued', 'inProgress') AND deleted_at IS NULL LIMIT 1",
            args![snapshot.cluster_id.to_string()],
            |row| row.text_at(0),
        )
        .await?;
        if let Some(unfinished) = unfinished {
            return Err(StoreError::Conflict(unfinished));
        }
        insert_snapshot(&mut transaction, snapshot, None).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn insert_scheduled_snapshot(
        &self,
        snapshot: &Snapshot,
        slot: Timestamp,
    ) -> Result<bool, StoreError> {
        let inserted = insert_snapshot(
            &mut *self.connection().await?,
            snapshot,
            Some(slot.millis()),
        )
        .await?;
        Ok(inserted > 0)
    }

    async fn get_snapshot(
        &self,
        cluster_id: ObjectId,
        id: ObjectId,
    ) -> Result<Option<Snapshot>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT * FROM snapshots WHERE cluster_id = $1 AND id = $2",
            args![cluster_id.to_string(), id.to_string()],
            rows::snapshot,
        )
        .await
    }

    async fn list_snapshots(
        &self,
        cluster_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<Snapshot>, u64), StoreError> {
        let mut connection = self.connection().await?;
        let items = all(
            &mut connection,
            "SELECT * FROM snapshots WHERE cluster_id = $1 AND deleted_at IS NULL ORDER BY requested_at DESC, id DESC LIMIT $2 OFFSET $3",
            args![cluster_id.to_string(), limit(page), offset(page)],
            rows::snapshot,
        )
        .await?;
        let total = count(
            &mut connection,
            "SELECT COUNT(*) FROM snapshots WHERE cluster_id = $1 AND deleted_at IS NULL",
            args![cluster_id.to_string()],
        )
        .await?;
        Ok((items, total))
    }

    async fn latest_completed_snapshot(
        &self,
        cluster_id: ObjectId,
        at: Timestamp,
    ) -> Result<Option<Snapshot>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT * FROM snapshots WHERE cluster_id = $1 AND status = 'completed' AND deleted_at IS NULL AND created_at <= $2 ORDER BY created_at DESC, id DESC LIMIT 1",
            args![cluster_id.to_string(), at.millis()],
            rows::snapshot,
        )
        .await
    }

    async fn set_snapshot_expiry(
        &self,
        id: ObjectId,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let changed = execute(
            &mut *self.connection().await?,
            "UPDATE snapshots SET expires_at = $2 WHERE id = $1",
            args![id.to_string(), expires_at.millis()],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn delete_snapshot(&self, id: ObjectId, now: Timestamp) -> Result<bool, StoreError> {
        let changed = execute(
            &mut *self.connection().await?,
            "UPDATE snapshots SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL",
            args![id.to_string(), now.millis()],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn claim_queued_snapshot(
        &self,
        replica: &str,
        mongod_version: &str,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<Option<Claimed<Snapshot>>, StoreError> {
        // SKIP LOCKED: replicas claiming at once each get a different snapshot, none waits.
        one(
            &mut *self.connection().await?,
            "UPDATE snapshots SET status = 'inProgress', mongod_version = $1, lease_owner = $2, lease_expires_at = $3, attempts = attempts + 1 WHERE id = (SELECT id FROM snapshots WHERE status = 'queued' AND deleted_at IS NULL AND retry_at <= $4 AND cluster_id IN (SELECT id FROM clusters WHERE host_replica = $5 AND host_address IS NOT NULL) ORDER BY requested_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) AND status = 'queued' RETURNING *",
            args![mongod_version, lease.owner.as_str(), lease.until.millis(), now.millis(), replica],
            rows::claimed_snapshot,
        )
        .await
    }

    async fn renew_snapshot_lease(&self, id: ObjectId, lease: &Lease) -> Result<bool, StoreError> {
        let changed = execute(
            &mut *self.connection().await?,
            &numbered(sql::RENEW_SNAPSHOT_LEASE),
            args![id.to_string(), lease.owner.as_str(), lease.until.millis()],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn release_snapshot(
        &self,
        id: ObjectId,
        owner: &str,
        release: Release<'_>,
    ) -> Result<bool, StoreError> {
        let (refund, retry_at, error) = rows::release_columns(release);
        let changed = execute(
            &mut *self.connection().await?,
            &numbered(sql::RELEASE_SNAPSHOT),
            args![id.to_string(), owner, refund, retry_at, error],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn reap_snapshot_leases(
        &self,
        now: Timestamp,
        max_attempts: u32,
    ) -> Result<u64, StoreError> {
        Ok(execute(
            &mut *self.connection().await?,
            "UPDATE snapshots SET status = CASE WHEN attempts >= $2 THEN 'failed' ELSE 'queued' END, failure_reason = CASE WHEN attempts >= $2 THEN 'the worker taking this snapshot stopped before finishing, every attempt' ELSE failure_reason END, lease_owner = NULL, lease_expires_at = NULL WHERE status = 'inProgress' AND lease_expires_at < $1",
            args![now.millis(), i64::from(max_attempts)],
        )
        .await?)
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
        let changed = execute(
            &mut *self.connection().await?,
            "UPDATE snapshots SET status = $2, created_at = $3, storage_size_bytes = $4, failure_reason = $5, expires_at = $3 + (expires_at - requested_at), lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND status = 'inProgress' AND lease_owner = $6",
            args![id.to_string(), status.as_str(), created_at.millis(), storage_size_bytes, failure_reason.map(str::to_owned), owner],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn expired_snapshots(&self, now: Timestamp) -> Result<Vec<Snapshot>, StoreError> {
        all(
            &mut *self.connection().await?,
            "SELECT * FROM snapshots WHERE expires_at <= $1 AND status IN ('completed', 'failed') AND deleted_at IS NULL ORDER BY expires_at LIMIT 100",
            args![now.millis()],
            rows::snapshot,
        )
        .await
    }

    async fn open_pit_gap(&self, gap: &PitGap) -> Result<(), StoreError> {
        execute(
            &mut *self.connection().await?,
            &numbered(sql::INSERT_PIT_GAP),
            args![
                ObjectId::generate().to_string(),
                gap.cluster_id.to_string(),
                gap.from.millis(),
                gap.cause.as_str()
            ],
        )
        .await?;
        Ok(())
    }

    async fn close_pit_gaps(
        &self,
        cluster_id: ObjectId,
        requested_at: Timestamp,
        completed_at: Timestamp,
    ) -> Result<u64, StoreError> {
        Ok(execute(
            &mut *self.connection().await?,
            &numbered(sql::CLOSE_PIT_GAPS),
            args![
                cluster_id.to_string(),
                requested_at.millis(),
                completed_at.millis()
            ],
        )
        .await?)
    }

    async fn pit_gap_at(
        &self,
        cluster_id: ObjectId,
        needed_until: Timestamp,
        base_limit: Timestamp,
    ) -> Result<Option<PitGap>, StoreError> {
        one(
            &mut *self.connection().await?,
            &numbered(sql::PIT_GAP_AT),
            args![
                cluster_id.to_string(),
                needed_until.millis(),
                base_limit.millis()
            ],
            rows::pit_gap,
        )
        .await
    }

    async fn insert_restore_job(
        &self,
        job: &RestoreJob,
        guard: &RestoreGuard,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        // One lock for every guarded insert: the guards span targets, snapshots and projects.
        lock(&mut transaction, "rewind.restore_jobs").await?;
        if let Some((group_id, name)) = &guard.target {
            let busy = count(
                &mut transaction,
                &format!("SELECT COUNT(*) FROM restore_jobs WHERE target_group_id = $1 AND target_cluster_name = $2 AND state IN {ACTIVE}"),
                args![group_id.to_string(), name.as_str()],
            )
            .await?;
            if busy > 0 {
                return Err(StoreError::Conflict("target".to_owned()));
            }
        }
        if let Some(snapshot_id) = guard.download_snapshot {
            let active = count(
                &mut transaction,
                &numbered(crate::sql::SNAPSHOT_DOWNLOADS_ACTIVE),
                args![snapshot_id.to_string()],
            )
            .await?;
            if active > 0 {
                return Err(StoreError::Conflict("snapshot download".to_owned()));
            }
        }
        if let Some(max) = guard.max_group_downloads {
            let active = count(
                &mut transaction,
                &numbered(crate::sql::GROUP_DOWNLOADS_ACTIVE),
                args![job.group_id.to_string()],
            )
            .await?;
            if active >= u64::from(max) {
                return Err(StoreError::Conflict("group downloads".to_owned()));
            }
        }
        let (pit_seconds, pit_ts, pit_inc) = pit_columns(job.pit);
        execute(
            &mut transaction,
            "INSERT INTO restore_jobs (id, group_id, cluster_name, delivery_type, snapshot_id, target_group_id, target_cluster_name, pit_utc_seconds, pit_oplog_ts, pit_oplog_inc, state, created_at, updated_at, snapshot_taken_at, finished_at, expires_at, delivery_urls, failure_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16, $17)",
            args![
                job.id.to_string(),
                job.group_id.to_string(),
                job.cluster_name.as_str(),
                job.delivery_type.as_str(),
                job.snapshot_id.map(|id| id.to_string()),
                job.target_group_id.map(|id| id.to_string()),
                job.target_cluster_name.as_ref().map(|name| name.as_str().to_owned()),
                pit_seconds,
                pit_ts,
                pit_inc,
                job.state.as_str(),
                job.created_at.millis(),
                job.snapshot_taken_at.map(Timestamp::millis),
                job.finished_at.map(Timestamp::millis),
                job.expires_at.map(Timestamp::millis),
                encode_strings(&job.delivery_urls),
                job.failure_reason.clone(),
            ],
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn get_restore_job(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
        id: ObjectId,
    ) -> Result<Option<RestoreJob>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT * FROM restore_jobs WHERE id = $1 AND group_id = $2 AND cluster_name = $3",
            args![id.to_string(), group_id.to_string(), cluster_name.as_str()],
            rows::restore_job,
        )
        .await
    }

    async fn get_restore_job_with_org(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
        id: ObjectId,
    ) -> Result<Option<(RestoreJob, ObjectId)>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT j.*, g.org_id AS owning_org_id FROM restore_jobs j JOIN groups g ON g.id = j.group_id JOIN clusters c ON c.group_id = j.group_id AND c.name = j.cluster_name WHERE j.id = $1 AND j.group_id = $2 AND j.cluster_name = $3",
            args![id.to_string(), group_id.to_string(), cluster_name.as_str()],
            rows::restore_job_with_org,
        )
        .await
    }

    async fn list_restore_jobs(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
        page: Page,
    ) -> Result<(Vec<RestoreJob>, u64), StoreError> {
        let mut connection = self.connection().await?;
        let items = all(
            &mut connection,
            "SELECT * FROM restore_jobs WHERE group_id = $1 AND cluster_name = $2 ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
            args![group_id.to_string(), cluster_name.as_str(), limit(page), offset(page)],
            rows::restore_job,
        )
        .await?;
        let total = count(
            &mut connection,
            "SELECT COUNT(*) FROM restore_jobs WHERE group_id = $1 AND cluster_name = $2",
            args![group_id.to_string(), cluster_name.as_str()],
        )
        .await?;
        Ok((items, total))
    }

    async fn target_restoring(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
    ) -> Result<bool, StoreError> {
        let busy = count(
            &mut *self.connection().await?,
            &format!("SELECT COUNT(*) FROM restore_jobs WHERE target_group_id = $1 AND target_cluster_name = $2 AND state IN {ACTIVE}"),
            args![group_id.to_string(), cluster_name.as_str()],
        )
        .await?;
        Ok(busy > 0)
    }

    async fn active_downloads(
        &self,
        group_id: ObjectId,
        snapshot_id: ObjectId,
    ) -> Result<(u32, u32), StoreError> {
        let mut connection = self.connection().await?;
        let of_snapshot = count(
            &mut connection,
            &numbered(crate::sql::SNAPSHOT_DOWNLOADS_ACTIVE),
            args![snapshot_id.to_string()],
        )
        .await?;
        let of_group = count(
            &mut connection,
            &numbered(crate::sql::GROUP_DOWNLOADS_ACTIVE),
            args![group_id.to_string()],
        )
        .await?;
        Ok((of_snapshot as u32, of_group as u32))
    }

    async fn transition_restore_job(
        &self,
        id: ObjectId,
        from: &[RestoreJobState],
        to: RestoreJobState,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let from: Vec<String> = from.iter().map(|state| state.as_str().to_owned()).collect();
        let changed = execute(
            &mut *self.connection().await?,
            "UPDATE restore_jobs SET state = $2, updated_at = $3 WHERE id = $1 AND state = ANY($4)",
            args![id.to_string(), to.as_str(), now.millis(), from],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn state_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        all(
            &mut *self.connection().await?,
            "SELECT 'restore_job' AS kind, state, COUNT(*) AS count FROM restore_jobs GROUP BY state UNION ALL SELECT 'snapshot' AS kind, status AS state, COUNT(*) AS count FROM snapshots WHERE deleted_at IS NULL GROUP BY status",
            args![],
            rows::state_count,
        )
        .await
    }
}
