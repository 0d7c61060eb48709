//! The engine handle: opening a directory, the single writer, readers and notifications.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::{RawDocumentBuf, Timestamp};
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::watch;

use crate::error::Result;
use crate::oplog::{Clock, now_secs};
use crate::read::{self, Pool, ReadView};
use crate::store::{self, Catalog, DB_FILE, Sync, ts_key};
use crate::txn::WriteTxn;

/// Tunables of one engine.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Commit durability (default [`Sync::Full`]: survives power loss).
    pub sync: Sync,
    /// Oplog size cap in bytes of BSON; the oldest entries go first (default 1 GiB).
    pub oplog_max_bytes: u64,
    /// Oplog age cap; entries older than this are removed (default none).
    pub oplog_max_age: Option<Duration>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            sync: Sync::Full,
            oplog_max_bytes: 1 << 30,
            oplog_max_age: None,
        }
    }
}

struct Writer {
    conn: Connection,
    catalog: Catalog,
    clock: Clock,
}

/// The storage engine of one replica set, living in one directory.
///
/// `Send + Sync`: share it as `Arc<Engine>`. The API is synchronous (call it from
/// `spawn_blocking`); writes are serialized, reads run concurrently on their own snapshot.
pub struct Engine {
    dir: PathBuf,
    options: EngineOptions,
    writer: Mutex<Writer>,
    pool: Arc<Pool>,
    optime_tx: watch::Sender<Option<Timestamp>>,
    /// Bytes of the committed oplog entries: kept by every commit (under the writer's lock),
    /// so that retention and `listDatabases` never sum the oplog table.
    oplog_bytes: AtomicI64,
}

impl Engine {
    /// Opens (creating if needed) the engine in `dir`, recovering the catalog and the last
    /// optime so that new optimes keep increasing across restarts.
    pub fn open(dir: impl AsRef<Path>, options: EngineOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(DB_FILE);
        let conn = store::open_connection(&path, options.sync, false)?;
        store::init_schema(&conn)?;
        let catalog = store::load_catalog(&conn)?;
        let max_oplog: Option<i64> =
            conn.query_row("SELECT MAX(ts) FROM oplog", [], |r| r.get(0))?;
        let last = match (store::last_ts(&conn)?, max_oplog.map(store::ts_from_key)) {
            (Some(a), Some(b)) => Some(if ts_key(a) >= ts_key(b) { a } else { b }),
            (a, b) => a.or(b),
        };
        let oplog_bytes: i64 =
            conn.query_row("SELECT COALESCE(SUM(size), 0) FROM oplog", [], |r| r.get(0))?;
        let clock = Clock {
            last: last.unwrap_or(Timestamp {
                time: 0,
                increment: 0,
            }),
        };
        let pool = Arc::new(Pool {
            path,
            sync: options.sync,
            idle: Mutex::new(Vec::new()),
            catalog: Mutex::new(None),
        });
        let (optime_tx, _) = watch::channel(last);
        Ok(Self {
            dir,
            options,
            writer: Mutex::new(Writer {
                conn,
                catalog,
                clock,
            }),
            pool,
            optime_tx,
            oplog_bytes: AtomicI64::new(oplog_bytes),
        })
    }

    /// The engine's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of BSON in the committed oplog entries.
    pub fn oplog_bytes(&self) -> u64 {
        u64::try_from(self.oplog_bytes.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// The tunables it was opened with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Runs `f` as one atomic, durable write. On `Ok` everything `f` did, with its oplog
    /// entries, is committed before this returns; on `Err` nothing is.
    pub fn write<T>(&self, f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T>) -> Result<T> {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let w = &mut *guard;
        // The block ends the transaction's borrows before the outcome is handled.
        let (committed, clock, added, last) = {
            let tx = w
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut txn = WriteTxn::new(tx, &mut w.catalog, w.clock);
            let outcome = f(&mut txn).and_then(|v| {
                let mut truncated = 0;
                if let Some(last) = txn.last {
                    store::set_last_ts(&txn.tx, last)?;
                    let bytes = self.oplog_bytes.load(Ordering::Relaxed) + txn.oplog_added;
                    truncated = enforce_retention(&txn.tx, &self.options, bytes, last)?;
                }
                Ok((v, truncated))
            });
            let (clock, added, last) = (txn.clock, txn.oplog_added, txn.last);
            let committed = outcome.and_then(|(v, truncated)| {
                txn.tx.commit()?;
                Ok((v, truncated))
            });
            (committed, clock, added, last)
        };
        match committed {
            Ok((v, truncated)) => {
                w.clock = clock;
                self.oplog_bytes
                    .fetch_add(added - truncated, Ordering::Relaxed);
                if let Some(ts) = last {
                    self.optime_tx.send_replace(Some(ts));
                }
                Ok(v)
            }
            Err(e) => {
                // The transaction rolled back on drop; the cached catalog may hold its changes.
                w.catalog = store::load_catalog(&w.conn)?;
                Err(e)
            }
        }
    }

    /// Opens a consistent point-in-time view of everything (see [`ReadView`]).
    pub fn read_view(&self) -> Result<ReadView> {
        ReadView::open(self.pool.clone())
    }

    /// The optime of the last commit, `None` if nothing was ever written.
    pub fn latest_optime(&self) -> Option<Timestamp> {
        *self.optime_tx.borrow()
    }

    /// A receiver of the last committed optime, updated after every commit that logged
    /// entries (for tailable / awaitData cursors on `local.oplog.rs`).
    pub fn subscribe(&self) -> watch::Receiver<Option<Timestamp>> {
        self.optime_tx.subscribe()
    }

    /// Oplog entries with `after < ts <= up_to`, oldest first, at most `limit`.
    pub fn oplog_range(
        &self,
        after: Option<Timestamp>,
        up_to: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<RawDocumentBuf>> {
        self.read_view()?.oplog_range(after, up_to, limit)
    }

    /// The oldest optime still in the oplog (for "is my resume point still there" checks).
    pub fn oldest_optime(&self) -> Result<Option<Timestamp>> {
        let view = self.read_view()?;
        read::oldest_optime(view.conn())
    }
}

/// Deletes the oldest oplog entries beyond the size or age cap (never the newest one).
/// Returns the bytes removed. The size cap trims to 90% so it does not run on every commit.
fn enforce_retention(
    conn: &Connection,
    opts: &EngineOptions,
    bytes: i64,
    last: Timestamp,
) -> Result<i64> {
    let mut removed = 0i64;
    let max = i64::try_from(opts.oplog_max_bytes).unwrap_or(i64::MAX);
    if bytes > max {
        let target = bytes - max / 10 * 9;
        let mut cutoff = None;
        let mut stmt =
            conn.prepare_cached("SELECT ts, size FROM oplog WHERE ts < ?1 ORDER BY ts")?;
        let mut rows = stmt.query([ts_key(last)])?;
        while let Some(r) = rows.next()? {
            removed += r.get::<_, i64>(1)?;
            cutoff = Some(r.get::<_, i64>(0)?);
            if removed >= target {
                break;
            }
        }
        if let Some(c) = cutoff {
            conn.prepare_cached("DELETE FROM oplog WHERE ts <= ?1")?
                .execute([c])?;
        }
    }
    if let Some(age) = opts.oplog_max_age {
        let secs = u32::try_from(age.as_secs()).unwrap_or(u32::MAX);
        let cutoff = ts_key(Timestamp {
            time: now_secs().saturating_sub(secs),
            increment: 0,
        })
        .min(ts_key(last));
        let old: i64 = conn
            .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM oplog WHERE ts < ?1")?
            .query_row([cutoff], |r| r.get(0))?;
        if old > 0 {
            conn.prepare_cached("DELETE FROM oplog WHERE ts < ?1")?
                .execute(params![cutoff])?;
            removed += old;
        }
    }
    Ok(removed)
}
