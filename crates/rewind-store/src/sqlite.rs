//! The embedded default store: one SQLite file in WAL mode.
//!
//! Reads run on pooled reader connections directly on the calling task: they take
//! microseconds, and WAL readers never wait for the writer.
//!
//! Writes go to one writer thread, which commits them in groups: it takes every write queued
//! while the previous commit was syncing, runs each inside its own savepoint of one
//! transaction (a failing write rolls back alone), commits once, and only then answers each
//! caller. One fsync thus covers many acknowledged writes, and one writer makes every
//! check-then-insert (`insert_restore_job`, `insert_on_demand_snapshot`) atomic.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rewind_domain::cluster::Cluster;
use rewind_domain::group::{Group, Organization};
use rewind_domain::restore_job::{RestoreJob, RestoreJobState};
use rewind_domain::restore_request::PitTarget;
use rewind_domain::schedule::BackupSchedule;
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_domain::{ClusterName, ObjectId, Timestamp};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Params, Row, TransactionBehavior, params,
};

use crate::rows::{self, encode_group_roles, encode_policy_items, encode_secrets, encode_strings};
use crate::schema::MIGRATIONS;
use crate::{AccessToken, ApiKey, MetadataStore, Page, RestoreGuard, ServiceAccount, StoreError};

/// States in which a restore job occupies its target or a download slot.
const ACTIVE_STATES: &str = "('queued', 'inProgress')";

/// Idle reader connections kept open.
const MAX_IDLE_READERS: usize = 16;

/// Writes committed together at most.
const MAX_GROUP_COMMIT: usize = 256;

/// A queued write: runs inside a savepoint and says whether it succeeded, and how to answer
/// its caller once the group's commit is known.
type WriteJob = Box<dyn FnOnce(&Connection) -> (bool, Answer) + Send>;
/// Answers a write's caller with the group commit's outcome.
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;

/// The SQLite store.
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    writes: std::sync::mpsc::Sender<WriteJob>,
    /// `None` for an in-memory database, whose only connection is the writer.
    readers: Option<ReaderPool>,
}

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection leaves it usable: SQLite rolls back an unfinished
    // transaction when the next one begins.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn configure(connection: &Connection) -> Result<(), StoreError> {
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // FULL: an acknowledged API write survives power loss, not just a process crash.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.set_prepared_statement_cache_capacity(128);
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let writer = tokio::task::spawn_blocking({
            let path = path.clone();
            move || -> Result<Connection, StoreError> {
                let connection = Connection::open(&path)?;
                connection.pragma_update(None, "journal_mode", "WAL")?;
                configure(&connection)?;
                Ok(connection)
            }
        })
        .await
        .map_err(|error| StoreError::Task(error.to_string()))??;
        Self::start(
            writer,
            Some(ReaderPool {
                path,
                idle: Mutex::new(Vec::new()),
            }),
        )
        .await
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let connection = Connection::open_in_memory()?;
        configure(&connection)?;
        Self::start(connection, None).await
    }

    /// Migrates, then starts the writer thread.
    async fn start(writer: Connection, readers: Option<ReaderPool>) -> Result<Self, StoreError> {
        let writer = Arc::new(Mutex::new(writer));
        let migrating = writer.clone();
        tokio::task::spawn_blocking(move || migrate(&mut lock(&migrating)))
            .await
            .map_err(|error| StoreError::Task(error.to_string()))??;
        let (writes, queue) = std::sync::mpsc::channel();
        let thread_writer = writer.clone();
        std::thread::Builder::new()
            .name("rewind-sqlite-writer".into())
            .spawn(move || run_writer(&thread_writer, &queue))
            .map_err(|error| StoreError::Task(error.to_string()))?;
        Ok(Self {
            writer,
            writes,
            readers,
        })
    }

    /// Runs a read on a pooled reader connection (or the writer, in memory).
    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(pool) = &self.readers else {
            return work(&lock(&self.writer));
        };
        let pooled = lock(&pool.idle).pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => {
                let connection = Connection::open_with_flags(
                    &pool.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&connection)?;
                connection
            }
        };
        let result = work(&connection);
        let mut idle = lock(&pool.idle);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(connection);
        }
        result
    }

    /// Queues a write for the writer thread and waits until its group is committed.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let job: WriteJob = Box::new(move |connection| {
            let result = work(connection);
            let succeeded = result.is_ok();
            let answer: Answer = Box::new(move |committed| {
                let outcome = match (result, committed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(error)) => Err(StoreError::Task(format!("commit failed: {error}"))),
                    (Err(error), _) => Err(error),
                };
                let _ = sender.send(outcome);
            });
            (succeeded, answer)
        });
        self.writes
            .send(job)
            .map_err(|_| StoreError::Task("the writer thread stopped".into()))?;
        receiver
            .await
            .map_err(|_| StoreError::Task("the write was not committed; see the log".into()))?
    }
}

/// Applies pending migrations, each in its own transaction.
fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    connection.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")?;
    for (version, statements) in MIGRATIONS {
        let applied: Option<i64> = connection
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                [version],
                |row| row.get(0),
            )
            .optional()?;
        if applied.is_some() {
            continue;
        }
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute_batch(statements)?;
        transaction.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, Timestamp::now().millis()],
        )?;
        transaction.commit()?;
        tracing::info!(migration.version = version, "applied metadata migration");
    }
    Ok(())
}

/// The writer thread: commits queued writes in groups until the store is dropped.
fn run_writer(writer: &Mutex<Connection>, queue: &std::sync::mpsc::Receiver<WriteJob>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP_COMMIT {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&mut lock(writer), group);
    }
}

/// Runs each write in its own savepoint of one transaction, commits, then answers everyone.
/// A write whose savepoint cannot be taken, or that panics, is dropped: its caller is told
/// the write was not committed.
fn commit_group(connection: &mut Connection, group: Vec<WriteJob>) {
    let mut transaction = match connection.transaction_with_behavior(TransactionBehavior::Immediate)
    {
        Ok(transaction) => transaction,
        Err(error) => {
            tracing::error!(%error, writes = group.len(), "cannot begin a write transaction");
            return;
        }
    };
    let mut answers = Vec::with_capacity(group.len());
    for job in group {
        let savepoint = match transaction.savepoint() {
            Ok(savepoint) => savepoint,
            Err(error) => {
                tracing::error!(%error, "cannot take a savepoint");
                continue;
            }
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&savepoint))) {
            Ok((true, answer)) => match savepoint.commit() {
                Ok(()) => answers.push(answer),
                Err(error) => tracing::error!(%error, "cannot release a savepoint"),
            },
            // Dropping the savepoint rolls the failed write back.
            Ok((false, answer)) => answers.push(answer),
            Err(_) => tracing::error!("a write panicked; rolled back"),
        }
    }
    let committed = transaction.commit().map_err(|error| {
        tracing::error!(%error, "group commit failed");
        error.to_string()
    });
    for answer in answers {
        answer(committed.clone());
    }
}

fn one<T>(
    connection: &Connection,
    sql: &str,
    parameters: impl Params,
    decode: fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut found = statement.query(parameters)?;
    match found.next()? {
        Some(row) => Ok(Some(decode(row)?)),
        None => Ok(None),
    }
}

fn all<T>(
    connection: &Connection,
    sql: &str,
    parameters: impl Params,
    decode: fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut found = statement.query(parameters)?;
    let mut items = Vec::new();
    while let Some(row) = found.next()? {
        items.push(decode(row)?);
    }
    Ok(items)
}

fn count(connection: &Connection, sql: &str, parameters: impl Params) -> Result<u64, StoreError> {
    let mut statement = connection.prepare_cached(sql)?;
    let total: i64 = statement.query_row(parameters, |row| row.get(0))?;
    Ok(total.max(0) as u64)
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

const INSERT_SCHEDULE: &str = "INSERT INTO schedules (cluster_id, reference_hour_of_day, reference_minute_of_hour, restore_window_days, policy_id, policy_items, auto_export_enabled, use_org_and_group_names_in_export_prefix, auto_copy_settings_enabled, copy_policy_items_enabled, copy_settings, extra_retention_settings) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

fn execute_schedule(
    connection: &Connection,
    schedule: &BackupSchedule,
    sql: &str,
) -> Result<(), StoreError> {
    connection.prepare_cached(sql)?.execute(params![
        schedule.cluster_id.to_string(),
        i64::from(schedule.reference_hour_of_day),
        i64::from(schedule.reference_minute_of_hour),
        i64::from(schedule.restore_window_days),
        schedule.policy_id.to_string(),
        encode_policy_items(&schedule.policy_items),
        flag(schedule.auto_export_enabled),
        flag(schedule.use_org_and_group_names_in_export_prefix),
        flag(schedule.auto_copy_settings_enabled),
        flag(schedule.copy_policy_items_enabled),
        serde_json::Value::from(schedule.copy_settings.clone()).to_string(),
        serde_json::Value::from(schedule.extra_retention_settings.clone()).to_string(),
    ])?;
    Ok(())
}

fn ids_json(ids: &[ObjectId]) -> String {
    encode_strings(&ids.iter().map(ObjectId::to_string).collect::<Vec<_>>())
}

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn create_org(&self, org: &Organization) -> Result<(), StoreError> {
        let org = org.clone();
        self.write(move |connection| {
            connection
                .execute(
                    "INSERT INTO orgs (id, name, created_at) VALUES (?1, ?2, ?3)",
                    params![org.id.to_string(), org.name, org.created_at.millis()],
                )
                .map_err(|error| StoreError::from_insert(error, "organization"))?;
            Ok(())
        })
        .await
    }

    async fn get_org(&self, id: ObjectId) -> Result<Option<Organization>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM orgs WHERE id = ?1",
                [id.to_string()],
                rows::organization,
            )
        })
    }

    async fn list_orgs(&self, page: Page) -> Result<(Vec<Organization>, u64), StoreError> {
        self.read(|connection| {
            let items = all(
                connection,
                "SELECT * FROM orgs ORDER BY created_at, id LIMIT ?1 OFFSET ?2",
                params![limit(page), offset(page)],
                rows::organization,
            )?;
            Ok((items, count(connection, "SELECT COUNT(*) FROM orgs", [])?))
        })
    }

    async fn create_group(&self, group: &Group) -> Result<(), StoreError> {
        let group = group.clone();
        self.write(move |connection| {
            connection
                .execute(
                    "INSERT INTO groups (id, org_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        group.id.to_string(),
                        group.org_id.to_string(),
                        group.name,
                        group.created_at.millis()
                    ],
                )
                .map_err(|error| StoreError::from_insert(error, "group name"))?;
            Ok(())
        })
        .await
    }

    async fn get_group(&self, id: ObjectId) -> Result<Option<Group>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM groups WHERE id = ?1",
                [id.to_string()],
                rows::group,
            )
        })
    }

    async fn list_groups(
        &self,
        org_ids: &[ObjectId],
        page: Page,
    ) -> Result<(Vec<Group>, u64), StoreError> {
        // A JSON array parameter keeps the statement fixed whatever the number of orgs.
        let ids = ids_json(org_ids);
        self.read(|connection| {
            let items = all(
                connection,
                "SELECT * FROM groups WHERE org_id IN (SELECT value FROM json_each(?1)) ORDER BY created_at, id LIMIT ?2 OFFSET ?3",
                params![ids, limit(page), offset(page)],
                rows::group,
            )?;
            let total = count(connection, "SELECT COUNT(*) FROM groups WHERE org_id IN (SELECT value FROM json_each(?1))", [&ids])?;
            Ok((items, total))
        })
    }

    async fn delete_group(&self, id: ObjectId) -> Result<bool, StoreError> {
        self.write(move |connection| {
            let clusters = count(
                connection,
                "SELECT COUNT(*) FROM clusters WHERE group_id = ?1",
                [id.to_string()],
            )?;
            if clusters > 0 {
                return Err(StoreError::Conflict(format!(
                    "group {id} has {clusters} clusters"
                )));
            }
            let deleted =
                connection.execute("DELETE FROM groups WHERE id = ?1", [id.to_string()])?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn create_cluster(
        &self,
        cluster: &Cluster,
        schedule: Option<&BackupSchedule>,
    ) -> Result<(), StoreError> {
        let (cluster, schedule) = (cluster.clone(), schedule.cloned());
        self.write(move |connection| {
            connection
                .execute(
                    "INSERT INTO clusters (id, group_id, name, cluster_type, backup_enabled, pit_enabled, paused, state, created_at, spec) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        cluster.id.to_string(),
                        cluster.group_id.to_string(),
                        cluster.name.as_str(),
                        cluster.cluster_type.as_str(),
                        flag(cluster.backup_enabled),
                        flag(cluster.pit_enabled),
                        flag(cluster.paused),
                        cluster.state.as_str(),
                        cluster.created_at.millis(),
                        cluster.spec.to_string(),
                    ],
                )
                .map_err(|error| StoreError::from_insert(error, "cluster name"))?;
            if let Some(schedule) = &schedule {
                execute_schedule(connection, schedule, INSERT_SCHEDULE)?;
            }
            Ok(())
        })
        .await
    }

    async fn get_cluster(
        &self,
        group_id: ObjectId,
        name: &ClusterName,
    ) -> Result<Option<Cluster>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM clusters WHERE group_id = ?1 AND name = ?2",
                params![group_id.to_string(), name.as_str()],
                rows::cluster,
            )
        })
    }

    async fn list_clusters(
        &self,
        group_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<Cluster>, u64), StoreError> {
        self.read(|connection| {
            let items = all(
                connection,
                "SELECT * FROM clusters WHERE group_id = ?1 ORDER BY created_at, id LIMIT ?2 OFFSET ?3",
                params![group_id.to_string(), limit(page), offset(page)],
                rows::cluster,
            )?;
            Ok((items, count(connection, "SELECT COUNT(*) FROM clusters WHERE group_id = ?1", [group_id.to_string()])?))
        })
    }

    async fn update_cluster(
        &self,
        cluster: &Cluster,
        schedule_if_missing: Option<&BackupSchedule>,
    ) -> Result<(), StoreError> {
        let (cluster, schedule) = (cluster.clone(), schedule_if_missing.cloned());
        self.write(move |connection| {
            connection.execute(
                "UPDATE clusters SET cluster_type = ?2, backup_enabled = ?3, pit_enabled = ?4, paused = ?5, state = ?6, spec = ?7 WHERE id = ?1",
                params![
                    cluster.id.to_string(),
                    cluster.cluster_type.as_str(),
                    flag(cluster.backup_enabled),
                    flag(cluster.pit_enabled),
                    flag(cluster.paused),
                    cluster.state.as_str(),
                    cluster.spec.to_string(),
                ],
            )?;
            if let Some(schedule) = &schedule {
                execute_schedule(connection, schedule, &format!("{INSERT_SCHEDULE} ON CONFLICT (cluster_id) DO NOTHING"))?;
            }
            Ok(())
        })
        .await
    }

    async fn delete_cluster(&self, cluster_id: ObjectId) -> Result<bool, StoreError> {
        self.write(move |connection| {
            let found: Option<(String, String)> = connection
                .query_row("SELECT group_id, name FROM clusters WHERE id = ?1", [cluster_id.to_string()], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let Some((group_id, name)) = found else {
                return Ok(false);
            };
            let busy = count(
                connection,
                &format!("SELECT COUNT(*) FROM restore_jobs WHERE state IN {ACTIVE_STATES} AND ((target_group_id = ?1 AND target_cluster_name = ?2) OR (group_id = ?1 AND cluster_name = ?2))"),
                params![group_id, name],
            )?;
            if busy > 0 {
                return Err(StoreError::Conflict(format!("cluster {name} has {busy} active restore jobs")));
            }
            for sql in ["DELETE FROM snapshots WHERE cluster_id = ?1", "DELETE FROM schedules WHERE cluster_id = ?1", "DELETE FROM clusters WHERE id = ?1"] {
                connection.execute(sql, [cluster_id.to_string()])?;
            }
            Ok(true)
        })
        .await
    }

    async fn get_schedule(
        &self,
        cluster_id: ObjectId,
    ) -> Result<Option<BackupSchedule>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM schedules WHERE cluster_id = ?1",
                [cluster_id.to_string()],
                rows::schedule,
            )
        })
    }

    async fn put_schedule(&self, schedule: &BackupSchedule) -> Result<(), StoreError> {
        let schedule = schedule.clone();
        self.write(move |connection| {
            let sql = format!(
                "{INSERT_SCHEDULE} ON CONFLICT (cluster_id) DO UPDATE SET reference_hour_of_day = excluded.reference_hour_of_day, reference_minute_of_hour = excluded.reference_minute_of_hour, restore_window_days = excluded.restore_window_days, policy_id = excluded.policy_id, policy_items = excluded.policy_items, auto_export_enabled = excluded.auto_export_enabled, use_org_and_group_names_in_export_prefix = excluded.use_org_and_group_names_in_export_prefix, auto_copy_settings_enabled = excluded.auto_copy_settings_enabled, copy_policy_items_enabled = excluded.copy_policy_items_enabled, copy_settings = excluded.copy_settings, extra_retention_settings = excluded.extra_retention_settings"
            );
            execute_schedule(connection, &schedule, &sql)
        })
        .await
    }

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
            connection.execute(
                "INSERT INTO snapshots (id, group_id, cluster_id, cluster_name, status, snapshot_type, frequency_type, description, requested_at, created_at, expires_at, storage_size_bytes, mongod_version, policy_items, failure_reason, deleted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
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
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_snapshot(
        &self,
        cluster_id: ObjectId,
        id: ObjectId,
    ) -> Result<Option<Snapshot>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM snapshots WHERE cluster_id = ?1 AND id = ?2",
                params![cluster_id.to_string(), id.to_string()],
                rows::snapshot,
            )
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
            Ok(connection.execute(
                "UPDATE snapshots SET expires_at = ?2 WHERE id = ?1",
                params![id.to_string(), expires_at.millis()],
            )? > 0)
        })
        .await
    }

    async fn delete_snapshot(&self, id: ObjectId, now: Timestamp) -> Result<bool, StoreError> {
        self.write(move |connection| {
            Ok(connection.execute(
                "UPDATE snapshots SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
                params![id.to_string(), now.millis()],
            )? > 0)
        })
        .await
    }

    async fn claim_queued_snapshot(
        &self,
        mongod_version: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        let mongod_version = mongod_version.to_owned();
        self.write(move |connection| {
            one(
                connection,
                "UPDATE snapshots SET status = 'inProgress', mongod_version = ?1 WHERE id = (SELECT id FROM snapshots WHERE status = 'queued' AND deleted_at IS NULL ORDER BY requested_at, id LIMIT 1) AND status = 'queued' RETURNING *",
                [mongod_version],
                rows::snapshot,
            )
        })
        .await
    }

    async fn finish_snapshot(
        &self,
        id: ObjectId,
        status: SnapshotStatus,
        created_at: Timestamp,
        storage_size_bytes: i64,
        failure_reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let failure_reason = failure_reason.map(str::to_owned);
        self.write(move |connection| {
            let updated = connection.execute(
                "UPDATE snapshots SET status = ?2, created_at = ?3, storage_size_bytes = ?4, failure_reason = ?5 WHERE id = ?1 AND status = 'inProgress'",
                params![id.to_string(), status.as_str(), created_at.millis(), storage_size_bytes, failure_reason],
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

    async fn insert_restore_job(
        &self,
        job: &RestoreJob,
        guard: &RestoreGuard,
    ) -> Result<(), StoreError> {
        let (job, guard) = (job.clone(), guard.clone());
        self.write(move |connection| {
            if let Some((group_id, name)) = &guard.target {
                let busy = count(
                    connection,
                    &format!("SELECT COUNT(*) FROM restore_jobs WHERE target_group_id = ?1 AND target_cluster_name = ?2 AND state IN {ACTIVE_STATES}"),
                    params![group_id.to_string(), name.as_str()],
                )?;
                if busy > 0 {
                    return Err(StoreError::Conflict("target".to_owned()));
                }
            }
            if let Some(snapshot_id) = guard.download_snapshot {
                let active = count(
                    connection,
                    &format!("SELECT COUNT(*) FROM restore_jobs WHERE snapshot_id = ?1 AND delivery_type = 'download' AND state IN {ACTIVE_STATES}"),
                    [snapshot_id.to_string()],
                )?;
                if active > 0 {
                    return Err(StoreError::Conflict("snapshot download".to_owned()));
                }
            }
            if let Some(max) = guard.max_group_downloads {
                let active = count(
                    connection,
                    &format!("SELECT COUNT(*) FROM restore_jobs WHERE group_id = ?1 AND delivery_type = 'download' AND state IN {ACTIVE_STATES}"),
                    [job.group_id.to_string()],
                )?;
                if active >= u64::from(max) {
                    return Err(StoreError::Conflict("group downloads".to_owned()));
                }
            }
            let (pit_seconds, pit_ts, pit_inc) = pit_columns(job.pit);
            connection.prepare_cached(
                "INSERT INTO restore_jobs (id, group_id, cluster_name, delivery_type, snapshot_id, target_group_id, target_cluster_name, pit_utc_seconds, pit_oplog_ts, pit_oplog_inc, state, created_at, updated_at, snapshot_taken_at, finished_at, expires_at, delivery_urls, failure_reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?
            .execute(params![
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
                job.failure_reason,
            ])?;
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
        self.read(|connection| {
            one(
                connection,
                "SELECT j.*, g.org_id AS owning_org_id FROM restore_jobs j JOIN groups g ON g.id = j.group_id JOIN clusters c ON c.group_id = j.group_id AND c.name = j.cluster_name WHERE j.id = ?1 AND j.group_id = ?2 AND j.cluster_name = ?3",
                params![id.to_string(), group_id.to_string(), cluster_name.as_str()],
                |row| {
                    let org: String = row.get("owning_org_id")?;
                    let org = org.parse().map_err(|_| StoreError::Corrupt("owning_org_id".into()))?;
                    Ok((rows::restore_job(row)?, org))
                },
            )
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
                &format!("SELECT COUNT(*) FROM restore_jobs WHERE target_group_id = ?1 AND target_cluster_name = ?2 AND state IN {ACTIVE_STATES}"),
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
                &format!("SELECT COUNT(*) FROM restore_jobs WHERE snapshot_id = ?1 AND delivery_type = 'download' AND state IN {ACTIVE_STATES}"),
                [snapshot_id.to_string()],
            )?;
            let of_group = count(
                connection,
                &format!("SELECT COUNT(*) FROM restore_jobs WHERE group_id = ?1 AND delivery_type = 'download' AND state IN {ACTIVE_STATES}"),
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
            let updated = connection.execute(
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
                |row| Ok((row.get("kind")?, row.get("state")?, row.get::<_, i64>("count")?.max(0) as u64)),
            )
        })
    }

    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |connection| {
            connection
                .execute(
                    "INSERT INTO api_keys (id, org_id, public_key, description, ha1_md5, ha1_sha256, private_key_suffix, org_roles, group_roles, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        key.id.to_string(),
                        key.org_id.to_string(),
                        key.public_key,
                        key.description,
                        key.ha1_md5,
                        key.ha1_sha256,
                        key.private_key_suffix,
                        encode_strings(&key.org_roles),
                        encode_group_roles(&key.group_roles),
                        key.created_at.millis(),
                    ],
                )
                .map_err(|error| StoreError::from_insert(error, "api key"))?;
            Ok(())
        })
        .await
    }

    async fn get_api_key_by_public_key(
        &self,
        public_key: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM api_keys WHERE public_key = ?1",
                [public_key],
                rows::api_key,
            )
        })
    }

    async fn get_api_key(&self, id: ObjectId) -> Result<Option<ApiKey>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM api_keys WHERE id = ?1",
                [id.to_string()],
                rows::api_key,
            )
        })
    }

    async fn list_api_keys(
        &self,
        org_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<ApiKey>, u64), StoreError> {
        self.read(|connection| {
            let items = all(
                connection,
                "SELECT * FROM api_keys WHERE org_id = ?1 ORDER BY created_at, id LIMIT ?2 OFFSET ?3",
                params![org_id.to_string(), limit(page), offset(page)],
                rows::api_key,
            )?;
            Ok((items, count(connection, "SELECT COUNT(*) FROM api_keys WHERE org_id = ?1", [org_id.to_string()])?))
        })
    }

    async fn update_api_key(&self, key: &ApiKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.write(move |connection| {
            let updated = connection.execute(
                "UPDATE api_keys SET description = ?2, org_roles = ?3, group_roles = ?4 WHERE id = ?1",
                params![key.id.to_string(), key.description, encode_strings(&key.org_roles), encode_group_roles(&key.group_roles)],
            )?;
            Ok(updated > 0)
        })
        .await
    }

    async fn delete_api_key(&self, id: ObjectId) -> Result<bool, StoreError> {
        self.write(move |connection| {
            Ok(connection.execute("DELETE FROM api_keys WHERE id = ?1", [id.to_string()])? > 0)
        })
        .await
    }

    async fn create_service_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        let account = account.clone();
        self.write(move |connection| {
            connection
                .execute(
                    "INSERT INTO service_accounts (client_id, org_id, name, description, org_roles, group_roles, secrets, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        account.client_id,
                        account.org_id.to_string(),
                        account.name,
                        account.description,
                        encode_strings(&account.org_roles),
                        encode_group_roles(&account.group_roles),
                        encode_secrets(&account.secrets),
                        account.created_at.millis(),
                    ],
                )
                .map_err(|error| StoreError::from_insert(error, "service account"))?;
            Ok(())
        })
        .await
    }

    async fn get_service_account(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM service_accounts WHERE client_id = ?1",
                [client_id],
                rows::service_account,
            )
        })
    }

    async fn list_service_accounts(
        &self,
        org_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<ServiceAccount>, u64), StoreError> {
        self.read(|connection| {
            let items = all(
                connection,
                "SELECT * FROM service_accounts WHERE org_id = ?1 ORDER BY created_at, client_id LIMIT ?2 OFFSET ?3",
                params![org_id.to_string(), limit(page), offset(page)],
                rows::service_account,
            )?;
            Ok((items, count(connection, "SELECT COUNT(*) FROM service_accounts WHERE org_id = ?1", [org_id.to_string()])?))
        })
    }

    async fn delete_service_account(&self, client_id: &str) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.write(move |connection| {
            connection.execute(
                "DELETE FROM access_tokens WHERE client_id = ?1",
                [&client_id],
            )?;
            let deleted = connection.execute(
                "DELETE FROM service_accounts WHERE client_id = ?1",
                [&client_id],
            )?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn create_access_token(&self, token: &AccessToken) -> Result<(), StoreError> {
        let token = token.clone();
        self.write(move |connection| {
            connection.execute(
                "INSERT INTO access_tokens (token_sha256, client_id, expires_at) VALUES (?1, ?2, ?3)",
                params![token.token_sha256, token.client_id, token.expires_at.millis()],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_access_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<AccessToken>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM access_tokens WHERE token_sha256 = ?1",
                [token_sha256],
                |row| {
                    Ok(AccessToken {
                        token_sha256: row.get("token_sha256")?,
                        client_id: row.get("client_id")?,
                        expires_at: Timestamp::from_millis(row.get("expires_at")?),
                    })
                },
            )
        })
    }

    async fn get_access_token_with_account(
        &self,
        token_sha256: &str,
    ) -> Result<Option<(AccessToken, ServiceAccount)>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT a.*, t.token_sha256, t.expires_at AS token_expires_at FROM access_tokens t JOIN service_accounts a ON a.client_id = t.client_id WHERE t.token_sha256 = ?1",
                [token_sha256],
                |row| {
                    let account = rows::service_account(row)?;
                    let token = AccessToken {
                        token_sha256: row.get("token_sha256")?,
                        client_id: account.client_id.clone(),
                        expires_at: Timestamp::from_millis(row.get("token_expires_at")?),
                    };
                    Ok((token, account))
                },
            )
        })
    }

    async fn revoke_access_token(&self, token_sha256: &str) -> Result<bool, StoreError> {
        let token_sha256 = token_sha256.to_owned();
        self.write(move |connection| {
            Ok(connection.execute(
                "DELETE FROM access_tokens WHERE token_sha256 = ?1",
                [token_sha256],
            )? > 0)
        })
        .await
    }
}
