//! The embedded default store: one SQLite file in WAL mode.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use rewind_domain::cluster::Cluster;
use rewind_domain::group::{Group, Organization};
use rewind_domain::restore_job::{RestoreJob, RestoreJobState};
use rewind_domain::restore_request::PitTarget;
use rewind_domain::schedule::BackupSchedule;
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_domain::{ClusterName, ObjectId, Timestamp};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use tokio::sync::Mutex;

use crate::rows::{self, encode_group_roles, encode_policy_items, encode_secrets, encode_strings};
use crate::schema::MIGRATIONS;
use crate::{AccessToken, ApiKey, MetadataStore, Page, RestoreGuard, ServiceAccount, StoreError};

/// States in which a restore job occupies its target or a download slot.
const ACTIVE_STATES: &str = "('queued', 'inProgress')";

/// The SQLite store. Writes that check before they insert hold `write_lock`, so the check and
/// the insert are one step even across the pool's connections (SQLite allows one writer).
pub struct SqliteStore {
    pool: SqlitePool,
    write_lock: Mutex<()>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged API write survives power loss, not just a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(options, 8).await
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to `:memory:` would be its own database.
        Self::connect(options, 1).await
    }

    async fn connect(options: SqliteConnectOptions, connections: u32) -> Result<Self, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        let store = Self {
            pool,
            write_lock: Mutex::new(()),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().await;
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(&self.pool)
            .await?;
        for (version, statements) in MIGRATIONS {
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await?;
            if applied.is_some() {
                continue;
            }
            let mut transaction = self.pool.begin().await?;
            sqlx::raw_sql(statements).execute(&mut *transaction).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(Timestamp::now().millis())
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
            tracing::info!(migration.version = version, "applied metadata migration");
        }
        Ok(())
    }

    async fn fetch_one_of<'q, T>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
        decode: fn(&SqliteRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        query
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    async fn fetch_all_of<'q, T>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
        decode: fn(&SqliteRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    async fn count<'q>(
        &self,
        query: sqlx::query::QueryScalar<'q, sqlx::Sqlite, i64, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<u64, StoreError> {
        Ok(query.fetch_one(&self.pool).await?.max(0) as u64)
    }
}

fn limit(page: Page) -> i64 {
    i64::try_from(page.limit).unwrap_or(i64::MAX)
}

fn offset(page: Page) -> i64 {
    i64::try_from(page.offset).unwrap_or(i64::MAX)
}

fn flag(value: bool) -> i64 {
    i64::from(value)
}

fn pit_columns(pit: Option<PitTarget>) -> (Option<i64>, Option<i64>, Option<i64>) {
    match pit {
        None => (None, None, None),
        Some(PitTarget::UtcSeconds(seconds)) => (Some(i64::from(seconds)), None, None),
        Some(PitTarget::Oplog { ts, inc }) => (None, Some(i64::from(ts)), Some(i64::from(inc))),
    }
}

const INSERT_SCHEDULE: &str = "INSERT INTO schedules (cluster_id, reference_hour_of_day, reference_minute_of_hour, restore_window_days, policy_id, policy_items, auto_export_enabled, use_org_and_group_names_in_export_prefix, auto_copy_settings_enabled, copy_policy_items_enabled, copy_settings, extra_retention_settings) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

fn bind_schedule<'q>(
    schedule: &BackupSchedule,
    sql: &'q str,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    sqlx::query(sql)
        .bind(schedule.cluster_id.to_string())
        .bind(i64::from(schedule.reference_hour_of_day))
        .bind(i64::from(schedule.reference_minute_of_hour))
        .bind(i64::from(schedule.restore_window_days))
        .bind(schedule.policy_id.to_string())
        .bind(encode_policy_items(&schedule.policy_items))
        .bind(flag(schedule.auto_export_enabled))
        .bind(flag(schedule.use_org_and_group_names_in_export_prefix))
        .bind(flag(schedule.auto_copy_settings_enabled))
        .bind(flag(schedule.copy_policy_items_enabled))
        .bind(serde_json::Value::from(schedule.copy_settings.clone()).to_string())
        .bind(serde_json::Value::from(schedule.extra_retention_settings.clone()).to_string())
}

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn create_org(&self, org: &Organization) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(org.id.to_string())
            .bind(&org.name)
            .bind(org.created_at.millis())
            .execute(&self.pool)
            .await
            .map_err(|error| StoreError::from_insert(error, "organization"))?;
        Ok(())
    }

    async fn get_org(&self, id: ObjectId) -> Result<Option<Organization>, StoreError> {
        self.fetch_one_of(
            sqlx::query("SELECT * FROM orgs WHERE id = $1").bind(id.to_string()),
            rows::organization,
        )
        .await
    }

    async fn list_orgs(&self, page: Page) -> Result<(Vec<Organization>, u64), StoreError> {
        let items = self
            .fetch_all_of(
                sqlx::query("SELECT * FROM orgs ORDER BY created_at, id LIMIT $1 OFFSET $2")
                    .bind(limit(page))
                    .bind(offset(page)),
                rows::organization,
            )
            .await?;
        let total = self
            .count(sqlx::query_scalar("SELECT COUNT(*) FROM orgs"))
            .await?;
        Ok((items, total))
    }

    async fn create_group(&self, group: &Group) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO groups (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(group.id.to_string())
            .bind(group.org_id.to_string())
            .bind(&group.name)
            .bind(group.created_at.millis())
            .execute(&self.pool)
            .await
            .map_err(|error| StoreError::from_insert(error, "group name"))?;
        Ok(())
    }

    async fn get_group(&self, id: ObjectId) -> Result<Option<Group>, StoreError> {
        self.fetch_one_of(
            sqlx::query("SELECT * FROM groups WHERE id = $1").bind(id.to_string()),
            rows::group,
        )
        .await
    }

    async fn list_groups(
        &self,
        org_ids: &[ObjectId],
        page: Page,
    ) -> Result<(Vec<Group>, u64), StoreError> {
        // Credentials belong to one organization, so this is one id in practice; a JSON array
        // parameter keeps the statement fixed whatever the count.
        let ids = encode_strings(&org_ids.iter().map(ObjectId::to_string).collect::<Vec<_>>());
        let items = self
            .fetch_all_of(
                sqlx::query("SELECT * FROM groups WHERE org_id IN (SELECT value FROM json_each($1)) ORDER BY created_at, id LIMIT $2 OFFSET $3")
                    .bind(ids.clone())
                    .bind(limit(page))
                    .bind(offset(page)),
                rows::group,
            )
            .await?;
        let total = self
            .count(
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM groups WHERE org_id IN (SELECT value FROM json_each($1))",
                )
                .bind(ids),
            )
            .await?;
        Ok((items, total))
    }

    async fn delete_group(&self, id: ObjectId) -> Result<bool, StoreError> {
        let _guard = self.write_lock.lock().await;
        let mut transaction = self.pool.begin().await?;
        let clusters: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clusters WHERE group_id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *transaction)
            .await?;
        if clusters > 0 {
            return Err(StoreError::Conflict(format!(
                "group {id} has {clusters} clusters"
            )));
        }
        let deleted = sqlx::query("DELETE FROM groups WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn create_cluster(
        &self,
        cluster: &Cluster,
        schedule: Option<&BackupSchedule>,
    ) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().await;
        let mut transaction = self.pool.begin().await?;
        sqlx::query("INSERT INTO clusters (id, group_id, name, cluster_type, backup_enabled, pit_enabled, paused, state, created_at, spec) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(cluster.id.to_string())
            .bind(cluster.group_id.to_string())
            .bind(cluster.name.as_str())
            .bind(cluster.cluster_type.as_str())
            .bind(flag(cluster.backup_enabled))
            .bind(flag(cluster.pit_enabled))
            .bind(flag(cluster.paused))
            .bind(cluster.state.as_str())
            .bind(cluster.created_at.millis())
            .bind(cluster.spec.to_string())
            .execute(&mut *transaction)
            .await
            .map_err(|error| StoreError::from_insert(error, "cluster name"))?;
        if let Some(schedule) = schedule {
            bind_schedule(schedule, INSERT_SCHEDULE)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn get_cluster(
        &self,
        group_id: ObjectId,
        name: &ClusterName,
    ) -> Result<Option<Cluster>, StoreError> {
        self.fetch_one_of(
            sqlx::query("SELECT * FROM clusters WHERE group_id = $1 AND name = $2")
                .bind(group_id.to_string())
                .bind(name.as_str()),
            rows::cluster,
        )
        .await
    }

    async fn list_clusters(
        &self,
        group_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<Cluster>, u64), StoreError> {
        let items = self
            .fetch_all_of(
                sqlx::query("SELECT * FROM clusters WHERE group_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3")
                    .bind(group_id.to_string())
                    .bind(limit(page))
                    .bind(offset(page)),
                rows::cluster,
            )
            .await?;
        let total = self
            .count(
                sqlx::query_scalar("SELECT COUNT(*) FROM clusters WHERE group_id = $1")
                    .bind(group_id.to_string()),
            )
            .await?;
        Ok((items, total))
    }

    async fn update_cluster(
        &self,
        cluster: &Cluster,
        schedule_if_missing: Option<&BackupSchedule>,
    ) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().await;
        let mut transaction = self.pool.begin().await?;
        sqlx::query("UPDATE clusters SET cluster_type = $2, backup_enabled = $3, pit_enabled = $4, paused = $5, state = $6, spec = $7 WHERE id = $1")
            .bind(cluster.id.to_string())
            .bind(cluster.cluster_type.as_str())
            .bind(flag(cluster.backup_enabled))
            .bind(flag(cluster.pit_enabled))
            .bind(flag(cluster.paused))
            .bind(cluster.state.as_str())
            .bind(cluster.spec.to_string())
            .execute(&mut *transaction)
            .await?;
        if let Some(schedule) = schedule_if_missing {
            let sql = format!("{INSERT_SCHEDULE} ON CONFLICT (cluster_id) DO NOTHING");
            bind_schedule(schedule, &sql)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn delete_cluster(&self, cluster_id: ObjectId) -> Result<bool, StoreError> {
        let _guard = self.write_lock.lock().await;
        let mut transaction = self.pool.begin().await?;
        let Some(row) = sqlx::query("SELECT group_id, name FROM clusters WHERE id = $1")
            .bind(cluster_id.to_string())
            .fetch_optional(&mut *transaction)
            .await?
        else {
            return Ok(false);
        };
        let group_id: String = row.try_get("group_id")?;
        let name: String = row.try_get("name")?;
        let busy: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM restore_jobs WHERE state IN {ACTIVE_STATES} AND ((target_group_id = $1 AND target_cluster_name = $2) OR (group_id = $1 AND cluster_name = $2))"
        ))
        .bind(&group_id)
        .bind(&name)
        .fetch_one(&mut *transaction)
        .await?;
        if busy > 0 {
            return Err(StoreError::Conflict(format!(
                "cluster {name} has {busy} active restore jobs"
            )));
        }
        sqlx::query("DELETE FROM snapshots WHERE cluster_id = $1")
            .bind(cluster_id.to_string())
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM schedules WHERE cluster_id = $1")
            .bind(cluster_id.to_string())
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM clusters WHERE id = $1")
            .bind(cluster_id.to_string())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn get_schedule(
        &self,
        cluster_id: ObjectId,
    ) -> Result<Option<BackupSchedule>, StoreError> {
        self.fetch_one_of(
            sqlx::query("SELECT * FROM schedules WHERE cluster_id = $1")
                .bind(cluster_id.to_string()),
            rows::schedule,
        )
        .await
    }

    async fn put_schedule(&self, schedule: &BackupSchedule) -> Result<(), StoreError> {
        let sql = format!(
            "{INSERT_SCHEDULE} ON CONFLICT (cluster_id) DO UPDATE SET reference_hour_of_day = excluded.reference_hour_of_day, reference_minute_of_hour = excluded.reference_minute_of_hour, restore_window_days = excluded.restore_window_days, policy_id = excluded.policy_id, policy_items = excluded.policy_items, auto_export_enabled = excluded.auto_export_enabled, use_org_and_group_names_in_export_prefix = excluded.use_org_and_group_names_in_export_prefix, auto_copy_settings_enabled = excluded.auto_copy_settings_enabled, copy_policy_items_enabled = excluded.copy_policy_items_enabled, copy_settings = excluded.copy_settings, extra_retention_settings = excluded.extra_retention_settings"
        );
        bind_schedule(schedule, &sql).execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_on_demand_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().await;
        let mut transaction = self.pool.begin().await?;
        let unfinished: Option<String> = sqlx::query_scalar(
            "SELECT id FROM snapshots WHERE cluster_id = $1 AND snapshot_type = 'onDemand' AND status IN ('queued', 'inProgress') LIMIT 1",
        )
        .bind(snapshot.cluster_id.to_string())
        .fetch_optional(&mut *transaction)
        .await?;
        if let Some(unfinished) = unfinished {
            return Err(StoreError::Conflict(unfinished));
        }
        sqlx::query("INSERT INTO snapshots (id, group_id, cluster_id, cluster_name, status, snapshot_type, frequency_type, description, requested_at, created_at, expires_at, storage_size_bytes, mongod_version, policy_items, failure_reason, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)")
            .bind(snapshot.id.to_string())
            .bind(snapshot.group_id.to_string())
            .bind(snapshot.cluster_id.to_string())
            .bind(snapshot.cluster_name.as_str())
            .bind(snapshot.status.as_str())
            .bind(snapshot.snapshot_type.as_str())
            .bind(&snapshot.frequency_type)
            .bind(&snapshot.description)
            .bind(snapshot.requested_at.millis())
            .bind(snapshot.created_at.map(Timestamp::millis))
            .bind(snapshot.expires_at.millis())
            .bind(snapshot.storage_size_bytes)
            .bind(&snapshot.mongod_version)
            .bind(encode_strings(&snapshot.policy_items.iter().map(ObjectId::to_string).collect::<Vec<_>>()))
            .bind(&snapshot.failure_reason)
            .bind(snapshot.deleted_at.map(Timestamp::millis))
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn get_snapshot(
        &self,
        cluster_id: ObjectId,
        id: ObjectId,
    ) -> Result<Option<Snapshot>, StoreError> {
        self.fetch_one_of(
            sqlx::query("SELECT * FROM snapshots WHERE cluster_id = $1 AND id = $2")
                .bind(cluster_id.to_string())
                .bind(id.to_string()),
            rows::snapshot,
        )
        .await
    }

    async fn list_snapshots(
        &self,
        cluster_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<Snapshot>, u64), StoreError> {
        let items = self
            .fetch_all_of(
                sqlx::query("SELECT * FROM snapshots WHERE cluster_id = $1 AND deleted_at IS NULL ORDER BY requested_at DESC, id DESC LIMIT $2 OFFSET $3")
                    .bind(cluster_id.to_string())
                    .bind(limit(page))
                    .bind(offset(page)),
                rows::snapshot,
            )
            .await?;
        let total = self
            .count(
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM snapshots WHERE cluster_id = $1 AND deleted_at IS NULL",
                )
                .bind(cluster_id.to_string()),
            )
            .await?;
        Ok((items, total))
    }

    async fn latest_completed_snapshot(
        &self,
        cluster_id: ObjectId,
        at: Timestamp,
    ) -> Result<Option<Snapshot>, StoreError> {
        self.fetch_one_of(
            sqlx::query("SELECT * FROM snapshots WHERE cluster_id = $1 AND status = 'completed' AND deleted_at IS NULL AND created_at <= $2 ORDER BY created_at DESC, id DESC LIMIT 1")
                .bind(cluster_id.to_string())
                .bind(at.millis()),
            rows::snapshot,
        )
        .await
    }

    async fn set_snapshot_expiry(
        &self,
        id: ObjectId,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query("UPDATE snapshots SET expires_at = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(expires_at.millis())
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() > 0)
    }

    async fn delete_snapshot(&self, id: ObjectId, now: Timestamp) -> Result<bool, StoreError> {
        let deleted = sqlx::query(
            "UPDATE snapshots SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id.to_string())
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn claim_queued_snapshot(
        &self,
        mongod_version: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        let _guard = self.write_lock.lock().await;
        let row = sqlx::query(
            "UPDATE snapshots SET status = 'inProgress', mongod_version = $1 WHERE id = (SELECT id FROM snapshots WHERE status = 'queued' ORDER BY requested_at, id LIMIT 1) AND status = 'queued' RETURNING *",
        )
        .bind(mongod_version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::snapshot).transpose()
    }

    async fn finish_snapshot(
        &self,
        id: ObjectId,
        status: SnapshotStatus,
        created_at: Timestamp,
        storage_size_bytes: i64,
        failure_reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE snapshots SET status = $2, created_at = $3, storage_size_bytes = $4, failure_reason = $5 WHERE id = $1 AND status = 'inProgress'",
        )
        .bind(id.to_string())
        .bind(status.as_str())
        .bind(created_at.millis())
        .bind(storage_size_bytes)
        .bind(failure_reason)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() > 0)
    }

    async fn expired_snapshots(&self, now: Timestamp) -> Result<Vec<Snapshot>, StoreError> {
        self.fetch_all_of(
            sqlx::query("SELECT * FROM snapshots WHERE expires_at <= $1 AND status IN ('completed', 'failed') AND deleted_at IS NULL ORDER BY expires_at LIMIT 100").bind(now.millis()),
            rows::snapshot,
        )
        .await
    }

    async fn insert_restore_job(
        &self,
        job: &RestoreJob,
        guard: &RestoreGuard,
    ) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().await;
        let mut transaction = self.pool.begin().await?;
        if let Some((group_id, name)) = &guard.target {
            let busy: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM restore_jobs WHERE target_group_id = $1 AND target_cluster_name = $2 AND state IN {ACTIVE_STATES}"
            ))
            .bind(group_id.to_string())
            .bind(name.as_str())
            .fetch_one(&mut *transaction)
            .await?;
            if busy > 0 {
                return Err(StoreError::Conflict("target".to_owned()));
            }
        }
        if let Some(snapshot_id) = guard.download_snapshot {
            let active: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM restore_jobs WHERE snapshot_id = $1 AND delivery_type = 'download' AND state IN {ACTIVE_STATES}"
            ))
            .bind(snapshot_id.to_string())
            .fetch_one(&mut *transaction)
            .await?;
            if active > 0 {
                return Err(StoreError::Conflict("snapshot download".to_owned()));
            }
        }
        if let Some(max) = guard.max_group_downloads {
            let active: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM restore_jobs WHERE group_id = $1 AND delivery_type = 'download' AND state IN {ACTIVE_STATES}"
            ))
            .bind(job.group_id.to_string())
            .fetch_one(&mut *transaction)
            .await?;
            if active >= i64::from(max) {
                return Err(StoreError::Conflict("group downloads".to_owned()));
            }
        }
        let (pit_seconds, pit_ts, pit_inc) = pit_columns(job.pit);
        sqlx::query("INSERT INTO restore_jobs (id, group_id, cluster_name, delivery_type, snapshot_id, target_group_id, target_cluster_name, pit_utc_seconds, pit_oplog_ts, pit_oplog_inc, state, created_at, updated_at, snapshot_taken_at, finished_at, expires_at, delivery_urls, failure_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16, $17)")
            .bind(job.id.to_string())
            .bind(job.group_id.to_string())
            .bind(job.cluster_name.as_str())
            .bind(job.delivery_type.as_str())
            .bind(job.snapshot_id.map(|id| id.to_string()))
            .bind(job.target_group_id.map(|id| id.to_string()))
            .bind(job.target_cluster_name.as_ref().map(|name| name.as_str().to_owned()))
            .bind(pit_seconds)
            .bind(pit_ts)
            .bind(pit_inc)
            .bind(job.state.as_str())
            .bind(job.created_at.millis())
            .bind(job.snapshot_taken_at.map(Timestamp::millis))
            .bind(job.finished_at.map(Timestamp::millis))
            .bind(job.expires_at.map(Timestamp::millis))
            .bind(encode_strings(&job.delivery_urls))
            .bind(&job.failure_reason)
            .execute(&mut *transaction)
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
        self.fetch_one_of(
            sqlx::query(
                "SELECT * FROM restore_jobs WHERE id = $1 AND group_id = $2 AND cluster_name = $3",
            )
            .bind(id.to_string())
            .bind(group_id.to_string())
            .bind(cluster_name.as_str()),
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
        let row = sqlx::query(
            "SELECT j.*, g.org_id AS owning_org_id FROM restore_jobs j JOIN groups g ON g.id = j.group_id JOIN clusters c ON c.group_id = j.group_id AND c.name = j.cluster_name WHERE j.id = $1 AND j.group_id = $2 AND j.cluster_name = $3",
        )
        .bind(id.to_string())
        .bind(group_id.to_string())
        .bind(cluster_name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let org: String = row.try_get("owning_org_id")?;
        let org = org
            .parse()
            .map_err(|_| StoreError::Corrupt("owning_org_id".into()))?;
        Ok(Some((rows::restore_job(&row)?, org)))
    }

    async fn list_restore_jobs(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
        page: Page,
    ) -> Result<(Vec<RestoreJob>, u64), StoreError> {
        let items = self
            .fetch_all_of(
                sqlx::query("SELECT * FROM restore_jobs WHERE group_id = $1 AND cluster_name = $2 ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4")
                    .bind(group_id.to_string())
                    .bind(cluster_name.as_str())
                    .bind(limit(page))
                    .bind(offset(page)),
                rows::restore_job,
            )
            .await?;
        let total = self
            .count(
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM restore_jobs WHERE group_id = $1 AND cluster_name = $2",
                )
                .bind(group_id.to_string())
                .bind(cluster_name.as_str()),
            )
            .await?;
        Ok((items, total))
    }

    async fn target_restoring(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
    ) -> Result<bool, StoreError> {
        let busy = self
            .count(
                sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM restore_jobs WHERE target_group_id = $1 AND target_cluster_name = $2 AND state IN {ACTIVE_STATES}"
                ))
                .bind(group_id.to_string())
                .bind(cluster_name.as_str()),
            )
            .await?;
        Ok(busy > 0)
    }

    async fn active_downloads(
        &self,
        group_id: ObjectId,
        snapshot_id: ObjectId,
    ) -> Result<(u32, u32), StoreError> {
        let of_snapshot = self
            .count(
                sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM restore_jobs WHERE snapshot_id = $1 AND delivery_type = 'download' AND state IN {ACTIVE_STATES}"
                ))
                .bind(snapshot_id.to_string()),
            )
            .await?;
        let of_group = self
            .count(
                sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM restore_jobs WHERE group_id = $1 AND delivery_type = 'download' AND state IN {ACTIVE_STATES}"
                ))
                .bind(group_id.to_string()),
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
        let from = encode_strings(
            &from
                .iter()
                .map(|state| state.as_str().to_owned())
                .collect::<Vec<_>>(),
        );
        let updated = sqlx::query("UPDATE restore_jobs SET state = $2, updated_at = $3 WHERE id = $1 AND state IN (SELECT value FROM json_each($4))")
            .bind(id.to_string())
            .bind(to.as_str())
            .bind(now.millis())
            .bind(from)
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() > 0)
    }

    async fn state_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT 'restore_job' AS kind, state, COUNT(*) AS count FROM restore_jobs GROUP BY state UNION ALL SELECT 'snapshot' AS kind, status AS state, COUNT(*) AS count FROM snapshots GROUP BY status",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| -> Result<(String, String, u64), StoreError> {
                Ok((
                    row.try_get("kind")?,
                    row.try_get("state")?,
                    row.try_get::<i64, _>("count")?.max(0) as u64,
                ))
            })
            .collect()
    }

    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO api_keys (id, org_id, public_key, description, ha1_md5, ha1_sha256, private_key_suffix, org_roles, group_roles, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(key.id.to_string())
            .bind(key.org_id.to_string())
            .bind(&key.public_key)
            .bind(&key.description)
            .bind(&key.ha1_md5)
            .bind(&key.ha1_sha256)
            .bind(&key.private_key_suffix)
            .bind(encode_strings(&key.org_roles))
            .bind(encode_group_roles(&key.group_roles))
            .bind(key.created_at.millis())
            .execute(&self.pool)
            .await
            .map_err(|error| StoreError::from_insert(error, "api key"))?;
        Ok(())
    }

    async fn get_api_key_by_public_key(
        &self,
        public_key: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.fetch_one_of(
            sqlx::query("SELECT * FROM api_keys WHERE public_key = $1").bind(public_key),
            rows::api_key,
        )
        .await
    }

    async fn get_api_key(&self, id: ObjectId) -> Result<Option<ApiKey>, StoreError> {
        self.fetch_one_of(
            sqlx::query("SELECT * FROM api_keys WHERE id = $1").bind(id.to_string()),
            rows::api_key,
        )
        .await
    }

    async fn list_api_keys(
        &self,
        org_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<ApiKey>, u64), StoreError> {
        let items = self
            .fetch_all_of(
                sqlx::query("SELECT * FROM api_keys WHERE org_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3")
                    .bind(org_id.to_string())
                    .bind(limit(page))
                    .bind(offset(page)),
                rows::api_key,
            )
            .await?;
        let total = self
            .count(
                sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE org_id = $1")
                    .bind(org_id.to_string()),
            )
            .await?;
        Ok((items, total))
    }

    async fn update_api_key(&self, key: &ApiKey) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE api_keys SET description = $2, org_roles = $3, group_roles = $4 WHERE id = $1",
        )
        .bind(key.id.to_string())
        .bind(&key.description)
        .bind(encode_strings(&key.org_roles))
        .bind(encode_group_roles(&key.group_roles))
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() > 0)
    }

    async fn delete_api_key(&self, id: ObjectId) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM api_keys WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn create_service_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO service_accounts (client_id, org_id, name, description, org_roles, group_roles, secrets, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&account.client_id)
            .bind(account.org_id.to_string())
            .bind(&account.name)
            .bind(&account.description)
            .bind(encode_strings(&account.org_roles))
            .bind(encode_group_roles(&account.group_roles))
            .bind(encode_secrets(&account.secrets))
            .bind(account.created_at.millis())
            .execute(&self.pool)
            .await
            .map_err(|error| StoreError::from_insert(error, "service account"))?;
        Ok(())
    }

    async fn get_service_account(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        self.fetch_one_of(
            sqlx::query("SELECT * FROM service_accounts WHERE client_id = $1").bind(client_id),
            rows::service_account,
        )
        .await
    }

    async fn list_service_accounts(
        &self,
        org_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<ServiceAccount>, u64), StoreError> {
        let items = self
            .fetch_all_of(
                sqlx::query("SELECT * FROM service_accounts WHERE org_id = $1 ORDER BY created_at, client_id LIMIT $2 OFFSET $3")
                    .bind(org_id.to_string())
                    .bind(limit(page))
                    .bind(offset(page)),
                rows::service_account,
            )
            .await?;
        let total = self
            .count(
                sqlx::query_scalar("SELECT COUNT(*) FROM service_accounts WHERE org_id = $1")
                    .bind(org_id.to_string()),
            )
            .await?;
        Ok((items, total))
    }

    async fn delete_service_account(&self, client_id: &str) -> Result<bool, StoreError> {
        let _guard = self.write_lock.lock().await;
        let mut transaction = self.pool.begin().await?;
        sqlx::query("DELETE FROM access_tokens WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *transaction)
            .await?;
        let deleted = sqlx::query("DELETE FROM service_accounts WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn create_access_token(&self, token: &AccessToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO access_tokens (token_sha256, client_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&token.token_sha256)
        .bind(&token.client_id)
        .bind(token.expires_at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_access_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<AccessToken>, StoreError> {
        let row = sqlx::query("SELECT * FROM access_tokens WHERE token_sha256 = $1")
            .bind(token_sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| -> Result<AccessToken, StoreError> {
            Ok(AccessToken {
                token_sha256: row.try_get("token_sha256")?,
                client_id: row.try_get("client_id")?,
                expires_at: Timestamp::from_millis(row.try_get("expires_at")?),
            })
        })
        .transpose()
    }

    async fn get_access_token_with_account(
        &self,
        token_sha256: &str,
    ) -> Result<Option<(AccessToken, ServiceAccount)>, StoreError> {
        let row = sqlx::query(
            "SELECT a.*, t.token_sha256, t.expires_at AS token_expires_at FROM access_tokens t JOIN service_accounts a ON a.client_id = t.client_id WHERE t.token_sha256 = $1",
        )
        .bind(token_sha256)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let account = rows::service_account(&row)?;
        let token = AccessToken {
            token_sha256: row.try_get("token_sha256")?,
            client_id: account.client_id.clone(),
            expires_at: Timestamp::from_millis(row.try_get("token_expires_at")?),
        };
        Ok(Some((token, account)))
    }

    async fn revoke_access_token(&self, token_sha256: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM access_tokens WHERE token_sha256 = $1")
            .bind(token_sha256)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }
}
