//! The embedded default store: one SQLite file in WAL mode.
//!
//! This module holds the connections and the writer; `projects`, `backups` and `credentials`
//! implement the store traits on them.
//!
//! Reads run on pooled reader connections directly on the calling task: they take
//! microseconds, and WAL readers never wait for the writer.
//!
//! Writes go to one writer thread, which commits them in groups: it takes every write queued
//! while the previous commit was syncing, and those queued while its group runs, runs each
//! in one transaction (inside its own savepoint, or alone for a write whose one change is its
//! last statement: either way a failing write rolls back alone), commits once, and only then
//! answers each caller (see `writer`). One fsync thus covers many acknowledged writes, and one writer makes every
//! check-then-insert (`insert_restore_job`, `insert_on_demand_snapshot`) atomic.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rewind_domain::cluster::{Cluster, ClusterState};
use rewind_domain::group::{Group, Organization};
use rewind_domain::restore_job::{RestoreJob, RestoreJobState};
use rewind_domain::schedule::BackupSchedule;
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_domain::{ClusterName, ObjectId, Timestamp};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Params, Row, TransactionBehavior, params,
};

mod backups;
mod credentials;
mod hot;
mod job_rows;
mod projects;
mod restore_runs;
mod writer;

use crate::rows::{encode_policy_items, encode_strings};
use crate::schema::MIGRATIONS;
use crate::{Page, StoreError};

/// States in which a restore job occupies its target or a download slot.
const ACTIVE_STATES: &str = "('queued', 'inProgress')";

/// Idle reader connections kept open.
const MAX_IDLE_READERS: usize = 16;

/// A queued write of a group commit.
struct WriteJob {
    work: WriteWork,
    /// Whether the write needs a savepoint of its own to be undone alone: false for a write
    /// whose only change is one statement, its last, which SQLite undoes by itself when it
    /// fails.
    savepoint: bool,
}

/// Runs a write and says whether it succeeded, and how to answer its caller.
type WriteWork = Box<dyn FnOnce(&Connection) -> (bool, Answer) + Send>;
/// Answers a write's caller with the group commit's outcome.
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;

/// The SQLite store.
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    writes: std::sync::mpsc::Sender<WriteJob>,
    /// `None` for an in-memory database, whose only connection is the writer.
    readers: Option<ReaderPool>,
    /// Point lookups of the request path, served from memory while their tables are unchanged.
    hot: hot::HotReads,
    /// Held for the store's life: the file belongs to this process alone (see [`Self::open`]).
    _owner: Option<std::fs::File>,
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

/// What a connection is for: the one writer, or a pooled reader.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
}

fn configure(connection: &Connection, role: Role) -> Result<(), StoreError> {
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // FULL: an acknowledged API write survives power loss, not just a process crash.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.set_prepared_statement_cache_capacity(128);
    connection.pragma_update(None, "cache_size", -16_384)?;
    match role {
        Role::Writer => {
            // The writer maps the database file: nobody else writes it, so its mapping stays
            // valid across commits.
            connection.pragma_update(None, "mmap_size", 1i64 << 30)?;
            // A write of a group runs in its own savepoint, or (one-statement writes) under
            // SQLite's statement journal; both keep the pages it changes in temporary
            // storage: in memory rather than in a file, that is a copy instead of a `pwrite`
            // per page on the writer's critical path.
            connection.pragma_update(None, "temp_store", "MEMORY")?;
        }
        Role::Reader => {
            // Readers read pages with `pread` into their own cache, not through a mapping:
            // a reader that finds the WAL changed since its last transaction drops its
            // mapping (`munmap`, a TLB shootdown on every core) and faults it back in, which
            // under a steady stream of commits cost more than the reads themselves.
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    ///
    /// The file belongs to this store alone while it is open: an exclusive lock on
    /// `<path>.lock` refuses a second process (two `rewind serve` on one data directory), so
    /// that this process sees every write and can serve hot reads from memory. Replicas that
    /// share metadata use PostgreSQL.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let owner = lock_owner(&path)?;
        let writer = tokio::task::spawn_blocking({
            let path = path.clone();
            move || -> Result<Connection, StoreError> {
                let connection = Connection::open(&path)?;
                connection.pragma_update(None, "journal_mode", "WAL")?;
                configure(&connection, Role::Writer)?;
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
            Some(owner),
        )
        .await
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let connection = Connection::open_in_memory()?;
        configure(&connection, Role::Writer)?;
        Self::start(connection, None, None).await
    }

    /// Migrates, then starts the writer thread with the update hook that tracks which tables
    /// each commit changed.
    async fn start(
        writer: Connection,
        readers: Option<ReaderPool>,
        owner: Option<std::fs::File>,
    ) -> Result<Self, StoreError> {
        let writer = Arc::new(Mutex::new(writer));
        let migrating = writer.clone();
        tokio::task::spawn_blocking(move || migrate(&mut lock(&migrating)))
            .await
            .map_err(|error| StoreError::Task(error.to_string()))??;
        let generations = Arc::new(hot::Generations::default());
        lock(&writer).update_hook(Some({
            let generations = generations.clone();
            move |_: rusqlite::hooks::Action, _: &str, table: &str, _: i64| {
                generations.touched(table);
            }
        }));
        let (writes, queue) = std::sync::mpsc::channel();
        let thread_writer = writer.clone();
        let thread_generations = generations.clone();
        std::thread::Builder::new()
            .name("rewind-sqlite-writer".into())
            .spawn(move || writer::run(&thread_writer, &queue, &thread_generations))
            .map_err(|error| StoreError::Task(error.to_string()))?;
        Ok(Self {
            writer,
            writes,
            readers,
            hot: hot::HotReads::new(generations),
            _owner: owner,
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
                configure(&connection, Role::Reader)?;
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
        self.queue_write(work, true).await
    }

    /// [`Self::write`] for a write that reads what it likes but changes the database with
    /// one statement, its last: it runs without a savepoint, whose sub-journal would copy
    /// every page the statement changes.
    async fn write_one_statement<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.queue_write(work, false).await
    }

    async fn queue_write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        savepoint: bool,
    ) -> Result<T, StoreError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let work = Box::new(move |connection: &Connection| {
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
            .send(WriteJob { work, savepoint })
            .map_err(|_| StoreError::Task("the writer thread stopped".into()))?;
        receiver
            .await
            .map_err(|_| StoreError::Task("the write was not committed; see the log".into()))?
    }
}

/// Takes the exclusive lock that makes the database file this process's alone.
fn lock_owner(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let io_error = |source| StoreError::Io {
        path: lock_path.display().to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
            path: path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(error)) => Err(io_error(error)),
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

impl crate::rows::RowAccess for Row<'_> {
    fn text_at(&self, index: usize) -> Result<String, StoreError> {
        Ok(self.get(index)?)
    }

    fn optional_text_at(&self, index: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(index)?)
    }

    fn number_at(&self, index: usize) -> Result<i64, StoreError> {
        Ok(self.get(index)?)
    }

    fn optional_number_at(&self, index: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(index)?)
    }
}

/// Executes a statement through the connection's statement cache: preparing is most of the
/// cost of a small write.
fn execute(connection: &Connection, sql: &str, parameters: impl Params) -> rusqlite::Result<usize> {
    connection.prepare_cached(sql)?.execute(parameters)
}

fn one<T>(
    connection: &Connection,
    sql: &str,
    parameters: impl Params,
    decode: crate::rows::Decode<T>,
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
    decode: crate::rows::Decode<T>,
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
