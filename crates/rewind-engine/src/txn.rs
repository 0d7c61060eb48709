//! The write transaction: document writes, DDL, and their oplog entries in one commit.

use bson::{Binary, Bson, Document, RawDocument, RawDocumentBuf, Timestamp, doc};
use rusqlite::{OptionalExtension, Transaction, params};

use crate::entries::{add_entries, build_index, parse_doc, remove_entries};
use crate::error::{EngineError, Result};
use crate::index::IndexSpec;
use crate::keys::key_bytes;
use crate::ns::{parse_ns, validate_db_name};
use crate::oplog::{Clock, EntryBody, build_entry, id_doc, raw};
use crate::read::{self, CollectionStats};
use crate::store::{self, Catalog, CollectionInfo, ts_key};

/// Most indexes a collection may have, `_id_` included (mongod's limit).
const MAX_INDEXES: usize = 64;

/// One atomic write: every change and its oplog entry commit together or not at all.
///
/// Each method is atomic on its own as well (an SQLite savepoint): when one fails, e.g. with
/// a duplicate key, the transaction is as before the call and the caller may go on (as
/// `insert` with `ordered: false` does) or return the error to roll everything back.
pub struct WriteTxn<'a> {
    pub(crate) tx: Transaction<'a>,
    pub(crate) catalog: &'a mut Catalog,
    pub(crate) clock: Clock,
    pub(crate) oplog_added: i64,
    pub(crate) last: Option<Timestamp>,
    /// Off while replaying a captured oplog, whose entries keep their own optimes.
    pub(crate) log_writes: bool,
    catalog_dirty: bool,
}

impl<'a> WriteTxn<'a> {
    pub(crate) fn new(tx: Transaction<'a>, catalog: &'a mut Catalog, clock: Clock) -> Self {
        Self {
            tx,
            catalog,
            clock,
            oplog_added: 0,
            last: None,
            log_writes: true,
            catalog_dirty: false,
        }
    }

    /// Runs `f` inside a savepoint, undoing its storage, catalog and clock effects on error.
    /// Savepoints nest, so the methods may call each other (oplog application does).
    pub(crate) fn atomically<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        // Cached statements: a savepoint is taken for every call, parsing it each time shows.
        self.tx.prepare_cached("SAVEPOINT op")?.execute([])?;
        let (clock, added, last) = (self.clock, self.oplog_added, self.last);
        let dirty_before = self.catalog_dirty;
        self.catalog_dirty = false;
        let outcome = f(self);
        let dirty = self.catalog_dirty;
        self.catalog_dirty = dirty_before || dirty;
        match outcome {
            Ok(v) => {
                self.tx.prepare_cached("RELEASE op")?.execute([])?;
                Ok(v)
            }
            Err(e) => {
                self.tx.execute_batch("ROLLBACK TO op; RELEASE op")?;
                (self.clock, self.oplog_added, self.last) = (clock, added, last);
                if dirty {
                    *self.catalog = store::load_catalog(&self.tx)?;
                }
                Err(e)
            }
        }
    }

    /// Appends one oplog entry stamped with the next optime. Writes to the `local`
    /// database are not logged: mongod never replicates it.
    pub(crate) fn log(
        &mut self,
        op: &str,
        ns: &str,
        ui: Option<&Binary>,
        o: &RawDocument,
        o2: Option<&RawDocument>,
    ) -> Result<()> {
        if !self.log_writes || ns.starts_with("local.") {
            return Ok(());
        }
        let ts = self.clock.next();
        let entry = build_entry(&EntryBody { op, ns, ui, o, o2 }, ts)?;
        let bytes = entry.as_bytes();
        self.tx
            .prepare_cached("INSERT INTO oplog(ts, size, entry) VALUES(?1, ?2, ?3)")?
            .execute(params![ts_key(ts), bytes.len() as i64, bytes])?;
        self.oplog_added += bytes.len() as i64;
        self.last = Some(ts);
        Ok(())
    }

    /// Appends a no-op (`op: "n"`) entry, e.g. a periodic one that advances the optime.
    pub fn noop(&mut self, msg: &Document) -> Result<()> {
        self.atomically(|t| t.log("n", "", None, &raw(msg), None))
    }

    pub(crate) fn info(&self, ns: &str) -> Result<&CollectionInfo> {
        self.catalog
            .get(ns)
            .ok_or_else(|| EngineError::NamespaceNotFound(ns.into()))
    }

    /// Creates `ns` with `options` (recorded and returned as given) and a fresh UUID.
    pub fn create_collection(&mut self, ns: &str, options: &Document) -> Result<()> {
        self.atomically(|t| t.create_inner(ns, options, None))
    }

    pub(crate) fn create_inner(
        &mut self,
        ns: &str,
        options: &Document,
        uuid: Option<Binary>,
    ) -> Result<()> {
        let (db, coll) = parse_ns(ns)?;
        if self.catalog.contains_key(ns) {
            return Err(EngineError::NamespaceExists(ns.into()));
        }
        let uuid = uuid.unwrap_or_else(store::new_uuid);
        let info = store::insert_collection(&self.tx, db, coll, uuid.clone(), options.clone())?;
        self.catalog_dirty = true;
        self.catalog.insert(ns.into(), info);
        // mongod's shape: {create, ...options, idIndex}.
        let mut o = doc! {"create": coll};
        for (k, v) in options {
            if k != "create" && k != "idIndex" {
                o.insert(k.clone(), v.clone());
            }
        }
        o.insert("idIndex", IndexSpec::id_index().spec);
        self.log("c", &format!("{db}.$cmd"), Some(&uuid), &raw(&o), None)
    }

    pub(crate) fn ensure_collection(&mut self, ns: &str) -> Result<()> {
        if !self.catalog.contains_key(ns) {
            self.create_inner(ns, &Document::new(), None)?;
        }
        Ok(())
    }

    /// Replaces the document with this `_id` by `doc` (whose `_id` must be equal).
    /// Returns `false` (and logs nothing) when no such document exists.
    pub fn update(&mut self, ns: &str, id: &Bson, doc: &RawDocument) -> Result<bool> {
        self.atomically(|t| {
            if !t.catalog.contains_key(ns) || t.get(ns, id)?.is_none() {
                return Ok(false);
            }
            let (parsed, _) = parse_doc(doc)?;
            t.update_parsed(ns, id, doc, &parsed)?;
            Ok(true)
        })
    }

    pub(crate) fn update_parsed(
        &mut self,
        ns: &str,
        id: &Bson,
        raw_doc: &RawDocument,
        doc: &Document,
    ) -> Result<()> {
        let info = self.info(ns)?.clone();
        let k = key_bytes(id);
        let new_id = doc.get("_id").map(key_bytes);
        if new_id.as_deref() != Some(k.as_slice()) {
            return Err(EngineError::ImmutableField(format!(
                "After applying the update, the (immutable) field '_id' was found to have been altered to _id: {}",
                doc.get("_id").cloned().unwrap_or(Bson::Null)
            )));
        }
        let old = self.old_doc(&info, &k)?;
        if let Some(old) = &old {
            remove_entries(&self.tx, &info, &k, old)?;
        }
        add_entries(&self.tx, &info, &k, doc)?;
        self.tx
            .prepare_cached("UPDATE docs SET doc=?3 WHERE coll_id=?1 AND k=?2")?
            .execute(params![info.id, k, raw_doc.as_bytes()])?;
        self.log("u", ns, Some(&info.uuid), raw_doc, Some(&id_doc(id)))
    }

    fn old_doc(&self, info: &CollectionInfo, k: &[u8]) -> Result<Option<Document>> {
        let bytes: Option<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT doc FROM docs WHERE coll_id=?1 AND k=?2")?
            .query_row(params![info.id, k], |r| r.get(0))
            .optional()?;
        bytes
            .map(|b| Document::from_reader(b.as_slice()).map_err(EngineError::from))
            .transpose()
    }

    /// Deletes the document with this `_id`; returns whether one existed.
    pub fn delete(&mut self, ns: &str, id: &Bson) -> Result<bool> {
        self.atomically(|t| {
            let Some(info) = t.catalog.get(ns).cloned() else {
                return Ok(false);
            };
            let k = key_bytes(id);
            let Some(old) = t.old_doc(&info, &k)? else {
                return Ok(false);
            };
            remove_entries(&t.tx, &info, &k, &old)?;
            t.tx.prepare_cached("DELETE FROM docs WHERE coll_id=?1 AND k=?2")?
                .execute(params![info.id, k])?;
            // Log the stored `_id` value (type as stored, e.g. 1.0 rather than 1).
            let stored_id = old.get("_id").cloned().unwrap_or_else(|| id.clone());
            t.log("d", ns, Some(&info.uuid), &id_doc(&stored_id), None)?;
            Ok(true)
        })
    }

    /// Drops a collection with its documents and indexes; returns whether it existed.
    pub fn drop_collection(&mut self, ns: &str) -> Result<bool> {
        self.atomically(|t| t.drop_inner(ns))
    }

    pub(crate) fn drop_inner(&mut self, ns: &str) -> Result<bool> {
        let (db, coll) = parse_ns(ns)?;
        let Some(info) = self.catalog.get(ns).cloned() else {
            return Ok(false);
        };
        let count = read::stats(&self.tx, &info)?.count;
        self.delete_collection_rows(&info)?;
        self.catalog_dirty = true;
        self.catalog.remove(ns);
        let o2 = raw(&doc! {"numRecords": count as i64});
        self.log(
            "c",
            &format!("{db}.$cmd"),
            Some(&info.uuid),
            &raw(&doc! {"drop": coll}),
            Some(&o2),
        )?;
        Ok(true)
    }

    fn delete_collection_rows(&self, info: &CollectionInfo) -> Result<()> {
        for id in &info.index_ids {
            self.tx
                .prepare_cached("DELETE FROM idx_entries WHERE index_id=?1")?
                .execute([id])?;
        }
        self.tx
            .prepare_cached("DELETE FROM indexes WHERE coll_id=?1")?
            .execute([info.id])?;
        self.tx
            .prepare_cached("DELETE FROM docs WHERE coll_id=?1")?
            .execute([info.id])?;
        self.tx
            .prepare_cached("DELETE FROM collections WHERE id=?1")?
            .execute([info.id])?;
        Ok(())
    }

    /// Drops every collection of `db` (one `drop` entry each) then logs `dropDatabase`.
    /// Returns whether the database had any collection.
    pub fn drop_database(&mut self, db: &str) -> Result<bool> {
        self.atomically(|t| {
            validate_db_name(db)?;
            let names: Vec<String> = t
                .catalog
                .values()
                .filter(|c| c.db == db)
                .map(CollectionInfo::ns)
                .collect();
            if names.is_empty() {
                return Ok(false);
            }
            for ns in names {
                t.drop_inner(&ns)?;
            }
            t.log(
                "c",
                &format!("{db}.$cmd"),
                None,
                &raw(&doc! {"dropDatabase": 1}),
                None,
            )?;
            Ok(true)
        })
    }

    /// Renames `from` to `to` (possibly across databases), keeping UUID, options, indexes.
    /// With `drop_target` an existing `to` is dropped first, as mongod does.
    pub fn rename_collection(&mut self, from: &str, to: &str, drop_target: bool) -> Result<()> {
        self.atomically(|t| {
            let (from_db, _) = parse_ns(from)?;
            let (to_db, to_coll) = parse_ns(to)?;
            if from == to {
                return Err(EngineError::IllegalOperation(
                    "Can't rename a collection to itself".into(),
                ));
            }
            // `local` is not logged: its documents would enter or leave the oplog's view
            // without an entry.
            if (from_db == "local") != (to_db == "local") {
                return Err(EngineError::IllegalOperation(
                    "Cannot rename collections between a replicated and an unreplicated database"
                        .into(),
                ));
            }
            let info = t.info(from)?.clone();
            let mut dropped = Bson::Boolean(false);
            if let Some(target) = t.catalog.get(to).cloned() {
                if !drop_target {
                    return Err(EngineError::NamespaceExists(to.into()));
                }
                t.delete_collection_rows(&target)?;
                t.catalog_dirty = true;
                t.catalog.remove(to);
                dropped = Bson::Binary(target.uuid);
            }
            t.tx.prepare_cached("UPDATE collections SET db=?2, name=?3 WHERE id=?1")?
                .execute(params![info.id, to_db, to_coll])?;
            t.catalog_dirty = true;
            let mut moved = t.catalog.remove(from).unwrap_or(info.clone());
            moved.db = to_db.into();
            moved.name = to_coll.into();
            t.catalog.insert(to.into(), moved);
            let o =
                doc! {"renameCollection": from, "to": to, "stayTemp": false, "dropTarget": dropped};
            t.log(
                "c",
                &format!("{}.$cmd", info.db),
                Some(&info.uuid),
                &raw(&o),
                None,
            )
        })
    }

    /// Creates indexes from `createIndexes` specs, building them over existing documents.
    /// Identical existing indexes are skipped; returns how many were created. Creates the
    /// collection if missing. A uniqueness violation leaves no trace of any of them.
    pub fn create_indexes(&mut self, ns: &str, specs: &[Document]) -> Result<usize> {
        self.atomically(|t| {
            let parsed = specs
                .iter()
                .map(|spec| IndexSpec::check_new(spec).and_then(|()| IndexSpec::parse(spec)))
                .collect::<Result<Vec<_>>>()?;
            t.ensure_collection(ns)?;
            let mut created = 0;
            for spec in parsed {
                if t.create_index(ns, spec)? {
                    created += 1;
                }
            }
            Ok(created)
        })
    }

    /// Creates one index unless an identical one exists (`false` then).
    pub(crate) fn create_index(&mut self, ns: &str, spec: IndexSpec) -> Result<bool> {
        let info = self.info(ns)?.clone();
        // As mongod's compareIndexOptions: an index of the same name must be the same index
        // (86 otherwise) with the same options (85 otherwise; identical is a no-op); under
        // another name, the same index is refused (85) and a different one may coexist.
        for existing in &info.indexes {
            let same_index = existing.same_index(&spec);
            if existing.name == spec.name {
                if !same_index {
                    return Err(EngineError::IndexKeySpecsConflict(format!(
                        "An existing index has the same name as the requested index but a different key or unique/sparse option. Requested index: {}, existing index: {}",
                        spec.spec, existing.spec
                    )));
                }
                if existing.options() == spec.options() || spec.is_id() {
                    return Ok(false);
                }
                return Err(EngineError::IndexOptionsConflict(format!(
                    "An existing index has the same name as the requested index but different options. Requested index: {}, existing index: {}",
                    spec.spec, existing.spec
                )));
            }
            if same_index {
                return Err(EngineError::IndexOptionsConflict(format!(
                    "Index already exists with a different name: {}",
                    existing.name
                )));
            }
        }
        if info.indexes.len() >= MAX_INDEXES {
            return Err(EngineError::CannotCreateIndex(format!(
                "add index fails, too many indexes for {ns} key:{}",
                spec.key
            )));
        }
        let mut updated = info.clone();
        let index_id = store::insert_index_row(&self.tx, &mut updated, spec.clone())?;
        self.catalog_dirty = true;
        self.catalog.insert(ns.into(), updated.clone());
        build_index(&self.tx, &updated, &spec, index_id)?;
        let mut o = doc! {"createIndexes": &info.name};
        o.extend(spec.spec.clone());
        self.log(
            "c",
            &format!("{}.$cmd", info.db),
            Some(&info.uuid),
            &raw(&o),
            None,
        )?;
        Ok(true)
    }

    /// Drops one index by name (never `_id_`).
    pub fn drop_index(&mut self, ns: &str, name: &str) -> Result<()> {
        self.atomically(|t| {
            let mut info = t.info(ns)?.clone();
            if name == crate::index::ID_INDEX_NAME {
                return Err(EngineError::InvalidOptions("cannot drop _id index".into()));
            }
            let (spec, index_id) = info
                .index(name)
                .ok_or_else(|| EngineError::IndexNotFound(name.into()))?;
            let spec = spec.clone();
            t.tx.prepare_cached("DELETE FROM idx_entries WHERE index_id=?1")?
                .execute([index_id])?;
            t.tx.prepare_cached("DELETE FROM indexes WHERE id=?1")?
                .execute([index_id])?;
            let pos = info
                .index_ids
                .iter()
                .position(|i| *i == index_id)
                .unwrap_or(0);
            info.indexes.remove(pos);
            info.index_ids.remove(pos);
            t.catalog_dirty = true;
            t.catalog.insert(ns.into(), info.clone());
            let o = doc! {"dropIndexes": &info.name, "index": name};
            t.log(
                "c",
                &format!("{}.$cmd", info.db),
                Some(&info.uuid),
                &raw(&o),
                Some(&raw(&spec.spec)),
            )
        })
    }

    // Reads inside the transaction (they see its own uncommitted writes).

    /// One collection's catalog entry.
    pub fn collection(&self, ns: &str) -> Option<&CollectionInfo> {
        self.catalog.get(ns)
    }

    /// Every collection in namespace order.
    pub fn collections(&self) -> impl Iterator<Item = &CollectionInfo> {
        self.catalog.values()
    }

    /// The document with this `_id`.
    pub fn get(&self, ns: &str, id: &Bson) -> Result<Option<RawDocumentBuf>> {
        read::get(&self.tx, self.catalog, ns, id)
    }

    /// Up to `limit` documents in `_id` order, after `start_after` if given.
    pub fn scan(
        &self,
        ns: &str,
        start_after: Option<&Bson>,
        limit: usize,
    ) -> Result<Vec<RawDocumentBuf>> {
        read::scan(&self.tx, self.catalog, ns, start_after, limit)
    }

    /// Documents whose index key starts with `values` (equality on the leading fields).
    pub fn find_by_index(
        &self,
        ns: &str,
        index: &str,
        values: &[Bson],
    ) -> Result<Vec<RawDocumentBuf>> {
        read::find_by_index(&self.tx, self.catalog, ns, index, values)
    }

    /// Count and size of one collection (zero for a missing one).
    pub fn stats(&self, ns: &str) -> Result<CollectionStats> {
        self.catalog
            .get(ns)
            .map_or(Ok(CollectionStats::default()), |i| read::stats(&self.tx, i))
    }

    /// Oplog entries with optimes in `(after, ∞)`, oldest first, up to `limit`, this
    /// transaction's own included.
    pub fn oplog_range(
        &self,
        after: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<RawDocumentBuf>> {
        read::oplog_range(&self.tx, after, None, limit)
    }
}
