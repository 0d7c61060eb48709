//! Building an engine directory from scratch, fast (for restores).
//!
//! The load runs in one SQLite transaction with the rollback journal off and no syncing,
//! writes no oplog entries, and writes secondary index entries in sorted runs rather than one
//! by one as documents arrive (a B-tree fills fastest in key order): their keys are computed
//! as each document goes by and buffered. `finish` then switches the file to WAL mode and
//! fsyncs the file, gives it its final name and fsyncs the directory. Until then the file has
//! a temporary name, so a load that fails, is abandoned or crashes leaves no engine in the
//! directory (opening it would find none), only a partial file: build aside, then rename
//! the directory into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bson::{Binary, Bson, Document, RawDocument, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use crate::entries::index_view;
use crate::error::{DuplicateKey, EngineError, Result};
use crate::index::IndexSpec;
use crate::insert::duplicate_id;
use crate::keys::{key_bytes, valid_id};
use crate::ns::parse_ns;
use crate::store::{self, CollectionInfo, DB_FILE};

/// Index entries buffered before a sorted run is written (about 100 MB of memory).
const PENDING_MAX: usize = 1 << 20;

/// The database file's name while it is being built.
const LOADING_FILE: &str = "engine.sqlite.loading";

/// One buffered index entry: index id, then key and document key concatenated, and where
/// the key ends. Keys are prefix-free, so the concatenation sorts as `(key, doc_key)` does.
type Pending = (i64, Vec<u8>, usize);

/// Streams namespaces and documents into a new engine directory.
pub struct BulkLoader {
    conn: Connection,
    dir: PathBuf,
    collections: BTreeMap<String, CollectionInfo>,
    pending: Vec<Pending>,
}

impl BulkLoader {
    /// Starts a load into `dir`, which must not exist yet or be empty.
    pub fn create(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        if std::fs::read_dir(&dir)?.next().is_some() {
            return Err(EngineError::BadValue(
                "bulk load target directory is not empty".into(),
            ));
        }
        let conn = Connection::open(dir.join(LOADING_FILE))?;
        conn.pragma_update(None, "page_size", 16384)?;
        conn.pragma_update(None, "journal_mode", "OFF")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        conn.pragma_update(None, "cache_size", -262144)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        store::init_schema(&conn)?;
        conn.execute_batch("BEGIN")?;
        Ok(Self {
            conn,
            dir,
            collections: BTreeMap::new(),
            pending: Vec::new(),
        })
    }

    /// Declares a collection with its UUID (a fresh one if `None`), creation options and
    /// index specs (`createIndexes` form; `_id_` is implicit and skipped if listed).
    pub fn add_collection(
        &mut self,
        ns: &str,
        uuid: Option<Binary>,
        options: &Document,
        indexes: &[Document],
    ) -> Result<()> {
        let (db, coll) = parse_ns(ns)?;
        if self.collections.contains_key(ns) {
            return Err(EngineError::NamespaceExists(ns.into()));
        }
        let uuid = uuid.unwrap_or_else(store::new_uuid);
        let mut info = store::insert_collection(&self.conn, db, coll, uuid, options.clone())?;
        for spec in indexes {
            let spec = IndexSpec::parse(spec)?;
            if spec.is_id() {
                continue;
            }
            if info.indexes.iter().any(|s| s.name == spec.name) {
                return Err(EngineError::IndexKeySpecsConflict(format!(
                    "duplicate index name {}",
                    spec.name
                )));
            }
            store::insert_index_row(&self.conn, &mut info, spec)?;
        }
        self.collections.insert(ns.into(), info);
        Ok(())
    }

    /// Adds one document (stored byte for byte) to `ns`, declaring it if needed. Only the
    /// framing of the document's top level is validated here, for speed.
    pub fn insert(&mut self, ns: &str, doc: &RawDocument) -> Result<()> {
        self.insert_all(ns, [doc]).map(drop)
    }

    /// Adds documents to `ns` as [`BulkLoader::insert`] does, preparing the work once for
    /// all of them (the fast way to load many); returns how many were added.
    pub fn insert_all<'d>(
        &mut self,
        ns: &str,
        docs: impl IntoIterator<Item = &'d RawDocument>,
    ) -> Result<u64> {
        if !self.collections.contains_key(ns) {
            self.add_collection(ns, None, &Document::new(), &[])?;
        }
        let Some(info) = self.collections.get(ns) else {
            return Err(EngineError::NamespaceNotFound(ns.into()));
        };
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO docs(coll_id, k, doc) VALUES(?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?;
        let mut count = 0;
        for doc in docs {
            // Walks the whole top level: validates its framing, picks the indexed fields.
            let view = index_view(info, doc)?;
            let id = doc
                .get("_id")?
                .ok_or_else(|| EngineError::BadValue("document is missing an _id".into()))?;
            let id = Bson::try_from(id)?;
            if !valid_id(&id) {
                return Err(EngineError::BadValue("invalid _id type".into()));
            }
            let k = key_bytes(&id);
            if stmt.execute(params![info.id, k, doc.as_bytes()])? == 0 {
                return Err(duplicate_id(ns.into(), id));
            }
            for (spec, index_id) in info.secondary() {
                for key in spec.keys_for(&view)? {
                    let split = key.bytes.len();
                    let mut bytes = key.bytes;
                    bytes.extend_from_slice(&k);
                    self.pending.push((index_id, bytes, split));
                }
            }
            count += 1;
        }
        drop(stmt);
        if self.pending.len() >= PENDING_MAX {
            self.flush_index_entries()?;
        }
        Ok(count)
    }

    /// Writes the buffered index entries in key order, enforcing unique indexes.
    fn flush_index_entries(&mut self) -> Result<()> {
        self.pending.sort_unstable();
        let unique: BTreeMap<i64, (&CollectionInfo, &IndexSpec)> = self
            .collections
            .values()
            .flat_map(|info| {
                info.secondary()
                    .filter(|(spec, _)| spec.unique)
                    .map(move |(spec, id)| (id, (info, spec)))
            })
            .collect();
        let mut insert = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO idx_entries(index_id, key, doc_key) VALUES(?1, ?2, ?3)",
        )?;
        let mut clash = self.conn.prepare_cached(
            "SELECT 1 FROM idx_entries WHERE index_id=?1 AND key=?2 AND doc_key<>?3 LIMIT 1",
        )?;
        for (index_id, bytes, split) in &self.pending {
            let (key, doc_key) = bytes.split_at(*split);
            if let Some((info, spec)) = unique.get(index_id) {
                let found: Option<i64> = clash
                    .query_row(params![index_id, key, doc_key], |r| r.get(0))
                    .optional()?;
                if found.is_some() {
                    return Err(duplicate(&self.conn, info, spec, key, doc_key));
                }
            }
            insert.execute(params![index_id, key, doc_key])?;
        }
        drop((insert, clash, unique));
        self.pending.clear();
        Ok(())
    }

    /// Builds the indexes, records `optime` as the last optime (new writes get later ones),
    /// commits and makes the directory durable. Open it afterwards with [`crate::Engine::open`].
    pub fn finish(mut self, optime: Option<Timestamp>) -> Result<()> {
        self.flush_index_entries()?;
        if let Some(ts) = optime {
            store::set_last_ts(&self.conn, ts)?;
        }
        self.conn.execute_batch("COMMIT")?;
        self.conn.pragma_update(None, "locking_mode", "NORMAL")?;
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn
            .close()
            .map_err(|(_, e)| EngineError::Storage(e))?;
        let loading = self.dir.join(LOADING_FILE);
        std::fs::File::open(&loading)?.sync_all()?;
        std::fs::rename(&loading, self.dir.join(DB_FILE))?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

/// The error for a unique index key held by two documents, one of them `doc_key`'s.
fn duplicate(
    conn: &Connection,
    info: &CollectionInfo,
    spec: &IndexSpec,
    key: &[u8],
    doc_key: &[u8],
) -> EngineError {
    // The key's values are not buffered: they come back from the document, on this rare path.
    let values = conn
        .query_row(
            "SELECT doc FROM docs WHERE coll_id=?1 AND k=?2",
            params![info.id, doc_key],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .ok()
        .and_then(|bytes| {
            let view = index_view(info, RawDocument::from_bytes(&bytes).ok()?).ok()?;
            let keys = spec.keys_for(&view).ok()?;
            keys.into_iter().find(|k| k.bytes == key).map(|k| k.values)
        })
        .unwrap_or_default();
    EngineError::DuplicateKey(Box::new(DuplicateKey {
        ns: info.ns(),
        index: spec.name.clone(),
        key_pattern: spec.key.clone(),
        key_value: spec.key_value(&values),
    }))
}
