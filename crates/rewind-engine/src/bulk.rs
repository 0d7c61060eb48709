//! Building an engine directory from scratch, fast (for restores).
//!
//! The load runs in one SQLite transaction with the rollback journal off and no syncing,
//! writes no oplog entries, and builds secondary indexes after all documents are in. `finish`
//! then switches the file to WAL mode and fsyncs the file and the directory once. A load that
//! fails or is abandoned leaves an unusable directory: build aside, then rename into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bson::{Binary, Bson, Document, RawDocument, Timestamp, doc};
use rusqlite::{Connection, params};

use crate::entries::build_index;
use crate::error::{DuplicateKey, EngineError, Result};
use crate::index::IndexSpec;
use crate::keys::{key_bytes, valid_id};
use crate::ns::parse_ns;
use crate::store::{self, CollectionInfo, DB_FILE};

/// Streams namespaces and documents into a new engine directory.
pub struct BulkLoader {
    conn: Connection,
    dir: PathBuf,
    collections: BTreeMap<String, CollectionInfo>,
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
        let conn = Connection::open(dir.join(DB_FILE))?;
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
    /// top level of the document is validated here, for speed.
    pub fn insert(&mut self, ns: &str, doc: &RawDocument) -> Result<()> {
        if !self.collections.contains_key(ns) {
            self.add_collection(ns, None, &Document::new(), &[])?;
        }
        let Some(info) = self.collections.get(ns) else {
            return Err(EngineError::NamespaceNotFound(ns.into()));
        };
        let mut id = None;
        for element in doc.iter() {
            let (key, value) = element?;
            if key == "_id" {
                id = Some(Bson::try_from(value)?);
            }
        }
        let id = id.ok_or_else(|| EngineError::BadValue("document is missing an _id".into()))?;
        if !valid_id(&id) {
            return Err(EngineError::BadValue("invalid _id type".into()));
        }
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO docs(coll_id, k, doc) VALUES(?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?
            .execute(params![info.id, key_bytes(&id), doc.as_bytes()])?;
        if inserted == 0 {
            return Err(EngineError::DuplicateKey(Box::new(DuplicateKey {
                ns: ns.into(),
                index: crate::index::ID_INDEX_NAME.into(),
                key_pattern: doc! {"_id": 1},
                key_value: doc! {"_id": id},
            })));
        }
        Ok(())
    }

    /// Builds the indexes, records `optime` as the last optime (new writes get later ones),
    /// commits and makes the directory durable. Open it afterwards with [`crate::Engine::open`].
    pub fn finish(self, optime: Option<Timestamp>) -> Result<()> {
        for info in self.collections.values() {
            for (spec, index_id) in info.secondary() {
                build_index(&self.conn, info, spec, index_id)?;
            }
        }
        if let Some(ts) = optime {
            store::set_last_ts(&self.conn, ts)?;
        }
        self.conn.execute_batch("COMMIT")?;
        self.conn.pragma_update(None, "locking_mode", "NORMAL")?;
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn
            .close()
            .map_err(|(_, e)| EngineError::Storage(e))?;
        let file = std::fs::File::open(self.dir.join(DB_FILE))?;
        file.sync_all()?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}
