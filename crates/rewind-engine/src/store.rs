//! The SQLite layout of one engine directory and the catalog cached from it.
//!
//! One file, `engine.sqlite`, in WAL mode. Tables:
//! - `meta(k, v)`: format version, the last committed optime (`last_ts`) and the catalog
//!   generation (`catalog_gen`, bumped by triggers on every change to the two catalog tables);
//! - `collections(id, db, name, uuid, options)`;
//! - `indexes(id, coll_id, name, spec)` (specs in `listIndexes` form);
//! - `docs(coll_id, k, doc)`: `k` = [`crate::key_bytes`] of `_id`, `doc` = the raw BSON;
//! - `idx_entries(index_id, key, doc_key)` for every index but `_id_`;
//! - `oplog(ts, size, entry)`: `ts` as an order-preserving integer, `entry` the raw BSON.

use std::collections::BTreeMap;
use std::path::Path;

use bson::{Binary, Document, Timestamp};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{EngineError, Result};
use crate::index::IndexSpec;

/// File name of the database inside an engine directory.
pub(crate) const DB_FILE: &str = "engine.sqlite";
const FORMAT_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS collections(
    id INTEGER PRIMARY KEY, db TEXT NOT NULL, name TEXT NOT NULL,
    uuid BLOB NOT NULL, options BLOB NOT NULL, UNIQUE(db, name));
CREATE TABLE IF NOT EXISTS indexes(
    id INTEGER PRIMARY KEY, coll_id INTEGER NOT NULL, name TEXT NOT NULL,
    spec BLOB NOT NULL, UNIQUE(coll_id, name));
CREATE TABLE IF NOT EXISTS docs(
    coll_id INTEGER NOT NULL, k BLOB NOT NULL, doc BLOB NOT NULL,
    PRIMARY KEY(coll_id, k)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_entries(
    index_id INTEGER NOT NULL, key BLOB NOT NULL, doc_key BLOB NOT NULL,
    PRIMARY KEY(index_id, key, doc_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS oplog(ts INTEGER PRIMARY KEY, size INTEGER NOT NULL, entry BLOB NOT NULL);
INSERT OR IGNORE INTO meta(k, v) VALUES('catalog_gen', 0);
";

/// The tables [`load_catalog`] reads: any change to them bumps `catalog_gen` by trigger.
const CATALOG_TABLES: [&str; 2] = ["collections", "indexes"];

/// Creates the triggers that bump `catalog_gen` in the transaction of every catalog change,
/// whichever code path makes it.
fn create_catalog_triggers(conn: &Connection) -> Result<()> {
    for table in CATALOG_TABLES {
        for event in ["INSERT", "UPDATE", "DELETE"] {
            conn.execute_batch(&format!(
                "CREATE TRIGGER IF NOT EXISTS catalog_gen_{table}_{event} AFTER {event} ON {table}
                 BEGIN UPDATE meta SET v = v + 1 WHERE k = 'catalog_gen'; END;"
            ))?;
        }
    }
    Ok(())
}

/// How hard a commit pushes data to stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sync {
    /// fsync the WAL on every commit: commits survive power loss (SQLite `synchronous=FULL`).
    #[default]
    Full,
    /// fsync only at checkpoints: commits survive a process crash (`kill -9`) but the last
    /// ones may be lost on power loss or an OS crash (SQLite `synchronous=NORMAL`).
    Normal,
}

/// Opens the writer or a reader connection on an existing or new engine file.
pub(crate) fn open_connection(path: &Path, sync: Sync, reader: bool) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let level = match sync {
        Sync::Full => "FULL",
        Sync::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", level)?;
    conn.pragma_update(None, "cache_size", -65536)?;
    if reader {
        conn.pragma_update(None, "query_only", true)?;
    }
    Ok(conn)
}

/// Creates the tables if missing and checks the format version.
pub(crate) fn init_schema(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA)?;
    create_catalog_triggers(conn)?;
    let version: Option<i64> = conn
        .query_row("SELECT v FROM meta WHERE k='format'", [], |r| r.get(0))
        .optional()?;
    match version {
        None => {
            conn.execute(
                "INSERT INTO meta(k, v) VALUES('format', ?1)",
                [FORMAT_VERSION],
            )?;
        }
        Some(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(EngineError::BadValue(format!(
                "unsupported engine format version {v}"
            )));
        }
    }
    Ok(())
}

/// One collection as the catalog knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectionInfo {
    /// Database name.
    pub db: String,
    /// Collection name.
    pub name: String,
    /// The collection UUID (BSON Binary subtype 4).
    pub uuid: Binary,
    /// Creation options exactly as given (empty for implicit creation).
    pub options: Document,
    /// Index definitions, `_id_` first, then in creation order.
    pub indexes: Vec<IndexSpec>,
    pub(crate) id: i64,
    pub(crate) index_ids: Vec<i64>,
}

impl CollectionInfo {
    /// Full namespace `db.name`.
    pub fn ns(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    /// The index of that name with its storage id.
    pub(crate) fn index(&self, name: &str) -> Option<(&IndexSpec, i64)> {
        self.indexes
            .iter()
            .zip(&self.index_ids)
            .find(|(s, _)| s.name == name)
            .map(|(s, id)| (s, *id))
    }

    /// Secondary indexes (all but `_id_`) with their storage ids.
    pub(crate) fn secondary(&self) -> impl Iterator<Item = (&IndexSpec, i64)> {
        self.indexes
            .iter()
            .zip(&self.index_ids)
            .filter(|(s, _)| !s.is_id())
            .map(|(s, id)| (s, *id))
    }
}

/// All collections, keyed by namespace.
pub(crate) type Catalog = BTreeMap<String, CollectionInfo>;

/// Reads the whole catalog as of the connection's current snapshot.
pub(crate) fn load_catalog(conn: &Connection) -> Result<Catalog> {
    let mut colls = BTreeMap::new();
    let mut by_id = BTreeMap::new();
    let mut stmt = conn.prepare_cached("SELECT id, db, name, uuid, options FROM collections")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let info = CollectionInfo {
            id,
            db: r.get(1)?,
            name: r.get(2)?,
            uuid: Binary {
                subtype: bson::spec::BinarySubtype::Uuid,
                bytes: r.get(3)?,
            },
            options: Document::from_reader(r.get_ref(4)?.as_blob()?)?,
            indexes: Vec::new(),
            index_ids: Vec::new(),
        };
        by_id.insert(id, info.ns());
        colls.insert(info.ns(), info);
    }
    let mut stmt = conn.prepare_cached("SELECT id, coll_id, spec FROM indexes ORDER BY id")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let coll_id: i64 = r.get(1)?;
        let spec = IndexSpec::parse(&Document::from_reader(r.get_ref(2)?.as_blob()?)?)?;
        if let Some(info) = by_id.get(&coll_id).and_then(|ns| colls.get_mut(ns)) {
            info.indexes.push(spec);
            info.index_ids.push(r.get(0)?);
        }
    }
    Ok(colls)
}

/// Inserts a collection row and its `_id_` index; returns the new catalog entry.
pub(crate) fn insert_collection(
    conn: &Connection,
    db: &str,
    name: &str,
    uuid: Binary,
    options: Document,
) -> Result<CollectionInfo> {
    conn.prepare_cached("INSERT INTO collections(db, name, uuid, options) VALUES(?1, ?2, ?3, ?4)")?
        .execute(params![db, name, uuid.bytes, options.to_vec()?])?;
    let id = conn.last_insert_rowid();
    let mut info = CollectionInfo {
        id,
        db: db.into(),
        name: name.into(),
        uuid,
        options,
        indexes: Vec::new(),
        index_ids: Vec::new(),
    };
    insert_index_row(conn, &mut info, IndexSpec::id_index())?;
    Ok(info)
}

/// Records an index definition (entries are the caller's job); returns its storage id.
pub(crate) fn insert_index_row(
    conn: &Connection,
    info: &mut CollectionInfo,
    spec: IndexSpec,
) -> Result<i64> {
    conn.prepare_cached("INSERT INTO indexes(coll_id, name, spec) VALUES(?1, ?2, ?3)")?
        .execute(params![info.id, spec.name, spec.spec.to_vec()?])?;
    let id = conn.last_insert_rowid();
    info.indexes.push(spec);
    info.index_ids.push(id);
    Ok(id)
}

/// Maps a timestamp to an `i64` whose signed order is the timestamp order.
pub(crate) fn ts_key(ts: Timestamp) -> i64 {
    let raw = (u64::from(ts.time) << 32) | u64::from(ts.increment);
    (raw ^ (1 << 63)) as i64
}

/// Inverse of [`ts_key`].
pub(crate) fn ts_from_key(key: i64) -> Timestamp {
    let raw = (key as u64) ^ (1 << 63);
    Timestamp {
        time: (raw >> 32) as u32,
        increment: raw as u32,
    }
}

/// The last committed optime recorded in `meta` (kept even when the oplog is truncated).
pub(crate) fn last_ts(conn: &Connection) -> Result<Option<Timestamp>> {
    let key: Option<i64> = conn
        .query_row("SELECT v FROM meta WHERE k='last_ts'", [], |r| r.get(0))
        .optional()?;
    Ok(key.map(ts_from_key))
}

/// The last committed optime and the catalog generation, read in one statement (a reader's
/// first read, which fixes its snapshot). [`init_schema`] writes the generation before any
/// reader opens.
pub(crate) fn snapshot_marks(conn: &Connection) -> Result<(Option<Timestamp>, i64)> {
    let (ts, generation): (Option<i64>, i64) = conn
        .prepare_cached(
            "SELECT (SELECT v FROM meta WHERE k='last_ts'), (SELECT v FROM meta WHERE k='catalog_gen')",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((ts.map(ts_from_key), generation))
}

/// Records the last committed optime.
pub(crate) fn set_last_ts(conn: &Connection, ts: Timestamp) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta(k, v) VALUES('last_ts', ?1) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
    )?
    .execute([ts_key(ts)])?;
    Ok(())
}

/// Fresh random UUID (version 4) as BSON Binary subtype 4.
pub(crate) fn new_uuid() -> Binary {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0F) | 0x40;
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: bytes.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_key_orders_like_timestamps() {
        let a = Timestamp {
            time: 1,
            increment: u32::MAX,
        };
        let b = Timestamp {
            time: 2,
            increment: 0,
        };
        let c = Timestamp {
            time: u32::MAX,
            increment: 1,
        };
        assert!(ts_key(a) < ts_key(b) && ts_key(b) < ts_key(c));
        assert_eq!(ts_from_key(ts_key(c)), c);
    }
}
