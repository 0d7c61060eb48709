//! Reads shared by [`ReadView`] and [`crate::WriteTxn`], and the read-view type itself.

use std::sync::{Arc, Mutex};

use bson::{Bson, RawDocument, RawDocumentBuf, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{EngineError, Result};
use crate::keys::{encode_component, key_bytes, prefix_successor};
use crate::store::{self, Catalog, CollectionInfo, Sync, ts_key};

/// Size and count of one database, for `listDatabases`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// Database name.
    pub name: String,
    /// Total BSON bytes of its documents (reported as `sizeOnDisk`).
    pub size_bytes: u64,
    /// Number of collections.
    pub collections: usize,
}

/// Document count and total BSON size of one collection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CollectionStats {
    /// Number of documents.
    pub count: u64,
    /// Sum of the documents' BSON sizes in bytes.
    pub size_bytes: u64,
}

fn raw_doc(bytes: Vec<u8>) -> Result<RawDocumentBuf> {
    RawDocumentBuf::from_bytes(bytes).map_err(|e| EngineError::InvalidBson(e.to_string()))
}

pub(crate) fn get(
    conn: &Connection,
    cat: &Catalog,
    ns: &str,
    id: &Bson,
) -> Result<Option<RawDocumentBuf>> {
    let Some(info) = cat.get(ns) else {
        return Ok(None);
    };
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT doc FROM docs WHERE coll_id=?1 AND k=?2")?
        .query_row(params![info.id, key_bytes(id)], |r| r.get(0))
        .optional()?;
    bytes.map(raw_doc).transpose()
}

/// Calls `f` with the document of each `_id` in `ids` that exists, in `ids` order, until it
/// returns `false`: one prepared statement stepped per key, each document read in place.
pub(crate) fn get_many(
    conn: &Connection,
    cat: &Catalog,
    ns: &str,
    ids: &[Bson],
    f: &mut dyn FnMut(&RawDocument) -> Result<bool>,
) -> Result<()> {
    let Some(info) = cat.get(ns) else {
        return Ok(());
    };
    let mut stmt = conn.prepare_cached("SELECT doc FROM docs WHERE coll_id=?1 AND k=?2")?;
    let mut key = Vec::new();
    for id in ids {
        key.clear();
        encode_component(id, false, &mut key);
        let mut rows = stmt.query(params![info.id, key])?;
        if let Some(row) = rows.next()? {
            let doc = RawDocument::from_bytes(row.get_ref(0)?.as_blob()?)
                .map_err(|e| EngineError::InvalidBson(e.to_string()))?;
            if !f(doc)? {
                break;
            }
        }
    }
    Ok(())
}

pub(crate) fn scan(
    conn: &Connection,
    cat: &Catalog,
    ns: &str,
    start_after: Option<&Bson>,
    limit: usize,
) -> Result<Vec<RawDocumentBuf>> {
    let Some(info) = cat.get(ns) else {
        return Ok(Vec::new());
    };
    let after = start_after.map(key_bytes).unwrap_or_default();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT doc FROM docs WHERE coll_id=?1 AND (?2 = 0 OR k > ?3) ORDER BY k LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![info.id, start_after.is_some(), after, limit], |r| {
        r.get(0)
    })?;
    rows.map(|r| raw_doc(r?)).collect()
}

pub(crate) fn for_each(
    conn: &Connection,
    cat: &Catalog,
    ns: &str,
    f: &mut dyn FnMut(&RawDocument) -> Result<bool>,
) -> Result<()> {
    let Some(info) = cat.get(ns) else {
        return Ok(());
    };
    let mut stmt = conn.prepare_cached("SELECT doc FROM docs WHERE coll_id=?1 ORDER BY k")?;
    let mut rows = stmt.query([info.id])?;
    while let Some(r) = rows.next()? {
        let doc = RawDocument::from_bytes(r.get_ref(0)?.as_blob()?)
            .map_err(|e| EngineError::InvalidBson(e.to_string()))?;
        if !f(doc)? {
            break;
        }
    }
    Ok(())
}

pub(crate) fn find_by_index(
    conn: &Connection,
    cat: &Catalog,
    ns: &str,
    index: &str,
    values: &[Bson],
) -> Result<Vec<RawDocumentBuf>> {
    let Some(info) = cat.get(ns) else {
        return Ok(Vec::new());
    };
    let (spec, index_id) = info
        .index(index)
        .ok_or_else(|| EngineError::IndexNotFound(index.into()))?;
    if spec.is_id() {
        let Some(id) = values.first() else {
            return scan(conn, cat, ns, None, usize::MAX);
        };
        return Ok(get(conn, cat, ns, id)?.into_iter().collect());
    }
    let lo = spec.encode_prefix(values)?;
    let hi = prefix_successor(&lo);
    let mut stmt = conn.prepare_cached(
        "SELECT e.doc_key, d.doc FROM idx_entries e JOIN docs d ON d.coll_id=?1 AND d.k=e.doc_key
         WHERE e.index_id=?2 AND e.key >= ?3 AND (?4 IS NULL OR e.key < ?4) ORDER BY e.key, e.doc_key",
    )?;
    let mut rows = stmt.query(params![info.id, index_id, lo, hi])?;
    // A multikey index can list one document under several matching keys.
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let doc_key: Vec<u8> = r.get(0)?;
        if seen.insert(doc_key) {
            out.push(raw_doc(r.get(1)?)?);
        }
    }
    Ok(out)
}

pub(crate) fn stats(conn: &Connection, info: &CollectionInfo) -> Result<CollectionStats> {
    let (count, size): (i64, i64) = conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(length(doc)), 0) FROM docs WHERE coll_id=?1",
        )?
        .query_row([info.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(CollectionStats {
        count: count.max(0) as u64,
        size_bytes: size.max(0) as u64,
    })
}

/// Count and total BSON size of the oplog's entries.
pub(crate) fn oplog_stats(conn: &Connection) -> Result<CollectionStats> {
    let (count, size): (i64, i64) = conn
        .prepare_cached("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM oplog")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(CollectionStats {
        count: count.max(0) as u64,
        size_bytes: size.max(0) as u64,
    })
}

/// Bytes of keys each index of a collection holds, in index order: `_id_` the encoded
/// `_id`s of its documents, a secondary index its entries' keys and document keys.
pub(crate) fn index_sizes(conn: &Connection, info: &CollectionInfo) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::with_capacity(info.indexes.len());
    for (spec, index_id) in info.indexes.iter().zip(&info.index_ids) {
        let bytes: i64 = if spec.is_id() {
            conn.prepare_cached("SELECT COALESCE(SUM(length(k)), 0) FROM docs WHERE coll_id=?1")?
                .query_row([info.id], |r| r.get(0))?
        } else {
            conn.prepare_cached(
                "SELECT COALESCE(SUM(length(key) + length(doc_key)), 0) FROM idx_entries \
                 WHERE index_id=?1",
            )?
            .query_row([index_id], |r| r.get(0))?
        };
        out.push((spec.name.clone(), bytes.max(0) as u64));
    }
    Ok(out)
}

pub(crate) fn list_databases(conn: &Connection, cat: &Catalog) -> Result<Vec<DatabaseInfo>> {
    let mut out: Vec<DatabaseInfo> = Vec::new();
    for info in cat.values() {
        let size = stats(conn, info)?.size_bytes;
        match out.last_mut() {
            Some(db) if db.name == info.db => {
                db.size_bytes += size;
                db.collections += 1;
            }
            _ => out.push(DatabaseInfo {
                name: info.db.clone(),
                size_bytes: size,
                collections: 1,
            }),
        }
    }
    Ok(out)
}

pub(crate) fn oplog_range(
    conn: &Connection,
    after: Option<Timestamp>,
    up_to: Option<Timestamp>,
    limit: usize,
) -> Result<Vec<RawDocumentBuf>> {
    let lo = after.map(ts_key).unwrap_or(i64::MIN);
    let hi = up_to.map(ts_key).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT entry FROM oplog WHERE ts > ?1 AND ts <= ?2 ORDER BY ts LIMIT ?3",
    )?;
    // `i64::MIN` is the key of Timestamp(0, 0), which the clock never hands out.
    let rows = stmt.query_map(params![lo, hi, limit], |r| r.get(0))?;
    rows.map(|r| raw_doc(r?)).collect()
}

pub(crate) fn oldest_optime(conn: &Connection) -> Result<Option<Timestamp>> {
    let key: Option<i64> = conn
        .query_row("SELECT MIN(ts) FROM oplog", [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(key.map(store::ts_from_key))
}

/// Reader connections, reused across views, and the newest catalog a view has loaded.
pub(crate) struct Pool {
    pub path: std::path::PathBuf,
    pub sync: Sync,
    pub idle: Mutex<Vec<Connection>>,
    /// The catalog of the highest generation loaded so far: views whose snapshot has that
    /// generation share it instead of decoding every collection and index spec again.
    pub catalog: Mutex<Option<(i64, Arc<Catalog>)>>,
}

impl Pool {
    fn take(&self) -> Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(c) => Ok(c),
            None => store::open_connection(&self.path, self.sync, true),
        }
    }

    /// The catalog as of `conn`'s snapshot, whose catalog generation is `generation`.
    fn catalog(&self, conn: &Connection, generation: i64) -> Result<Arc<Catalog>> {
        let cached = self.catalog.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached_generation, catalog)) = &*cached
            && *cached_generation == generation
        {
            return Ok(catalog.clone());
        }
        drop(cached);
        let catalog = Arc::new(store::load_catalog(conn)?);
        let mut cached = self.catalog.lock().unwrap_or_else(|p| p.into_inner());
        // Generations only grow with commits; a view on an older snapshot keeps its own.
        if cached
            .as_ref()
            .is_none_or(|(newest, _)| *newest < generation)
        {
            *cached = Some((generation, catalog.clone()));
        }
        Ok(catalog)
    }
}

/// A consistent point-in-time view of every namespace, index, UUID, document and the oplog
/// as of [`ReadView::optime`]. It holds an SQLite read transaction on its own connection, so
/// writers keep committing while it lives. `Send`: it can be moved to a blocking thread and
/// streamed for minutes; the WAL file grows meanwhile because checkpoints cannot pass it.
pub struct ReadView {
    conn: Option<Connection>,
    pool: Arc<Pool>,
    catalog: Arc<Catalog>,
    optime: Option<Timestamp>,
}

impl ReadView {
    pub(crate) fn open(pool: Arc<Pool>) -> Result<Self> {
        let conn = pool.take()?;
        // Cached statements: a view per `find` made parsing these a third of opening one.
        conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
        // The first read fixes the snapshot; everything below reads from it.
        let loaded = store::snapshot_marks(&conn)
            .and_then(|(optime, generation)| Ok((optime, pool.catalog(&conn, generation)?)));
        let (optime, catalog) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        };
        Ok(Self {
            conn: Some(conn),
            pool,
            catalog,
            optime,
        })
    }

    pub(crate) fn conn(&self) -> &Connection {
        // Only `Drop` takes the connection out.
        self.conn
            .as_ref()
            .expect("ReadView connection present until drop")
    }

    /// The optime of the last commit visible in this view (`None` for an empty oplog).
    pub fn optime(&self) -> Option<Timestamp> {
        self.optime
    }

    /// Every collection in namespace order.
    pub fn collections(&self) -> impl Iterator<Item = &CollectionInfo> {
        self.catalog.values()
    }

    /// One collection's catalog entry.
    pub fn collection(&self, ns: &str) -> Option<&CollectionInfo> {
        self.catalog.get(ns)
    }

    /// The collections of one database.
    pub fn list_collections(&self, db: &str) -> Vec<&CollectionInfo> {
        self.catalog.values().filter(|c| c.db == db).collect()
    }

    /// Databases (those with at least one collection) with their data sizes.
    pub fn list_databases(&self) -> Result<Vec<DatabaseInfo>> {
        list_databases(self.conn(), &self.catalog)
    }

    /// Count and size of one collection (zero for a missing one).
    pub fn stats(&self, ns: &str) -> Result<CollectionStats> {
        self.catalog
            .get(ns)
            .map_or(Ok(CollectionStats::default()), |i| stats(self.conn(), i))
    }

    /// Count and total BSON size of the oplog's entries.
    pub fn oplog_stats(&self) -> Result<CollectionStats> {
        oplog_stats(self.conn())
    }

    /// Bytes of keys in each index of one collection, `_id_` first (empty for a missing
    /// collection).
    pub fn index_sizes(&self, ns: &str) -> Result<Vec<(String, u64)>> {
        self.catalog
            .get(ns)
            .map_or(Ok(Vec::new()), |i| index_sizes(self.conn(), i))
    }

    /// The document with this `_id`.
    pub fn get(&self, ns: &str, id: &Bson) -> Result<Option<RawDocumentBuf>> {
        get(self.conn(), &self.catalog, ns, id)
    }

    /// Calls `f` with the document of each `_id` of `ids` that exists, in `ids` order,
    /// until it returns `false`. Cheaper than [`ReadView::get`] per `_id`: the statement is
    /// looked up once and documents are not copied out of SQLite.
    pub fn get_many(
        &self,
        ns: &str,
        ids: &[Bson],
        mut f: impl FnMut(&RawDocument) -> Result<bool>,
    ) -> Result<()> {
        get_many(self.conn(), &self.catalog, ns, ids, &mut f)
    }

    /// Up to `limit` documents in `_id` order, after `start_after` if given.
    pub fn scan(
        &self,
        ns: &str,
        start_after: Option<&Bson>,
        limit: usize,
    ) -> Result<Vec<RawDocumentBuf>> {
        scan(self.conn(), &self.catalog, ns, start_after, limit)
    }

    /// Streams every document in `_id` order; `f` returns `false` to stop.
    pub fn for_each(
        &self,
        ns: &str,
        mut f: impl FnMut(&RawDocument) -> Result<bool>,
    ) -> Result<()> {
        for_each(self.conn(), &self.catalog, ns, &mut f)
    }

    /// Documents whose index key starts with `values` (equality on the leading fields).
    pub fn find_by_index(
        &self,
        ns: &str,
        index: &str,
        values: &[Bson],
    ) -> Result<Vec<RawDocumentBuf>> {
        find_by_index(self.conn(), &self.catalog, ns, index, values)
    }

    /// Oplog entries with `after < ts <= up_to`, oldest first, at most `limit`.
    pub fn oplog_range(
        &self,
        after: Option<Timestamp>,
        up_to: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<RawDocumentBuf>> {
        oplog_range(self.conn(), after, up_to, limit)
    }
}

impl Drop for ReadView {
    fn drop(&mut self) {
        // A connection whose read transaction cannot be ended is not reused.
        if let Some(conn) = self.conn.take()
            && conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut rollback| rollback.execute([]))
                .is_ok()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
    }
}
