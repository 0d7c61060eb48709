//! Building an engine directory from scratch, fast (for restores).
//!
//! SQLite makes the empty database (schema only) and closes it. Documents then go straight
//! into the pages of the `docs` table's B-tree, written by [`crate::pages`] in key order as
//! they arrive, which a snapshot's documents do (collection by collection, `_id` order). A
//! document out of that order is set aside and inserted through SQLite at the end. Secondary
//! index entries are computed as each document goes by, sorted (spilling sorted runs to disk
//! past a bound) and written the same way at the end, unique indexes checked on the sorted
//! stream. `finish` then reopens the file with SQLite for the catalog rows, switches it to
//! WAL mode, fsyncs it, gives it its final name and fsyncs the directory. No oplog entries.
//!
//! Until `finish` returns the file has a temporary name, so a load that fails, is abandoned
//! or crashes leaves no engine in the directory (opening it would find none), only a partial
//! file and perhaps temporary files (`*.tmp`: sorted runs, documents out of order): build
//! aside, then rename the directory into place. After an insert fails, the loader refuses
//! everything, `finish` included.

mod finish;
mod frame;
mod keys;
mod runs;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use bson::{Binary, Document, RawDocument, Timestamp};
use rusqlite::Connection;

use crate::error::{EngineError, Result};
use crate::index::IndexSpec;
use crate::insert::duplicate_id;
use crate::ns::parse_ns;
use crate::pages::{PageWriter, Record, TreeBuilder};
use crate::store::{self, CollectionInfo, DB_FILE};

use finish::{duplicate, insert_catalog, insert_out_of_order, write_index_entries};
use keys::{KeyPlan, Keys};
use runs::IndexRuns;

/// The database file's name while it is being built.
const LOADING_FILE: &str = "engine.sqlite.loading";

/// Documents that arrived out of key order, until `finish` inserts them.
const OUT_OF_ORDER_FILE: &str = "out-of-order.tmp";

const PAGE_SIZE: usize = 16384;

/// Documents checked and keyed at a time, on a second thread, at most; and their bytes.
const KEYED_BATCH: usize = 16384;
const KEYED_BATCH_BYTES: usize = 1 << 20;

/// Streams namespaces and documents into a new engine directory.
pub struct BulkLoader {
    dir: PathBuf,
    pages: PageWriter,
    docs: TreeBuilder,
    index_root: u32,
    /// `(collection id, key)` of the last document in the `docs` tree.
    last: Option<(i64, Vec<u8>)>,
    out_of_order: Option<BufWriter<File>>,
    collections: BTreeMap<String, CollectionInfo>,
    next_index_id: i64,
    index_entries: IndexRuns,
    /// An insert failed part way: the load is unusable and `finish` refuses it.
    failed: bool,
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
        let path = dir.join(LOADING_FILE);
        let (docs_root, index_root, page_count) = {
            let conn = Connection::open(&path)?;
            conn.pragma_update(None, "page_size", PAGE_SIZE as i64)?;
            conn.pragma_update(None, "auto_vacuum", "NONE")?;
            conn.pragma_update(None, "journal_mode", "OFF")?;
            conn.pragma_update(None, "synchronous", "OFF")?;
            store::init_schema(&conn)?;
            let root = |name: &str| -> Result<u32> {
                Ok(conn.query_row(
                    "SELECT rootpage FROM sqlite_schema WHERE name=?1",
                    [name],
                    |r| r.get(0),
                )?)
            };
            let roots = (root("docs")?, root("idx_entries")?);
            let page_count: u32 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            conn.close().map_err(|(_, e)| EngineError::Storage(e))?;
            (roots.0, roots.1, page_count)
        };
        check_header(&File::open(&path)?)?;
        Ok(Self {
            index_entries: IndexRuns::new(&dir),
            dir,
            pages: PageWriter::new(&path, PAGE_SIZE, page_count)?,
            docs: TreeBuilder::new(docs_root, PAGE_SIZE),
            index_root,
            last: None,
            out_of_order: None,
            collections: BTreeMap::new(),
            next_index_id: 1,
            failed: false,
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
        let mut info = CollectionInfo {
            db: db.into(),
            name: coll.into(),
            uuid: uuid.unwrap_or_else(store::new_uuid),
            options: options.clone(),
            indexes: vec![IndexSpec::id_index()],
            index_ids: vec![self.next_index_id],
            id: self.collections.len() as i64 + 1,
        };
        self.next_index_id += 1;
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
            info.indexes.push(spec);
            info.index_ids.push(self.next_index_id);
            self.next_index_id += 1;
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
    ///
    /// Past one batch, a second thread checks the next batch's documents and encodes their
    /// keys while this one adds the current batch to the tree.
    pub fn insert_all<'d>(
        &mut self,
        ns: &str,
        docs: impl IntoIterator<Item = &'d RawDocument>,
    ) -> Result<u64> {
        if self.failed {
            return Err(abandoned());
        }
        let added = self.insert_all_unchecked(ns, docs);
        self.failed = added.is_err();
        added
    }

    fn insert_all_unchecked<'d>(
        &mut self,
        ns: &str,
        docs: impl IntoIterator<Item = &'d RawDocument>,
    ) -> Result<u64> {
        if !self.collections.contains_key(ns) {
            self.add_collection(ns, None, &Document::new(), &[])?;
        }
        let plan = match self.collections.get(ns) {
            Some(info) => KeyPlan::new(info),
            None => return Err(EngineError::NamespaceNotFound(ns.into())),
        };
        let mut docs = docs.into_iter().peekable();
        let first = next_batch(&mut docs);
        if docs.peek().is_none() {
            let keys = Keys::of(&first, &plan)?;
            return self.add_keyed(ns, &first, keys);
        }
        std::thread::scope(|scope| {
            let (to_key, batches) = sync_channel::<Vec<&RawDocument>>(1);
            let (keyed_batch, keyed) = sync_channel(1);
            let plan = &plan;
            scope.spawn(move || {
                for batch in batches {
                    let keys = Keys::of(&batch, plan);
                    if keyed_batch.send((batch, keys)).is_err() {
                        return;
                    }
                }
            });
            // Returning drops `to_key`, which ends the key thread before the scope joins it.
            to_key.send(first).map_err(|_| keyer_stopped())?;
            let mut count = 0;
            loop {
                let next = next_batch(&mut docs);
                let last_batch = next.is_empty();
                if !last_batch {
                    to_key.send(next).map_err(|_| keyer_stopped())?;
                }
                let (batch, keys) = keyed.recv().map_err(|_| keyer_stopped())?;
                count += self.add_keyed(ns, &batch, keys?)?;
                if last_batch {
                    return Ok(count);
                }
            }
        })
    }

    /// Adds checked documents with their keys.
    fn add_keyed(&mut self, ns: &str, docs: &[&RawDocument], keys: Keys) -> Result<u64> {
        let Self {
            pages,
            docs: tree,
            last,
            out_of_order,
            collections,
            index_entries,
            dir,
            ..
        } = self;
        let Some(info) = collections.get(ns) else {
            return Err(EngineError::NamespaceNotFound(ns.into()));
        };
        for (i, doc) in docs.iter().enumerate() {
            let k = keys.get(i);
            let order = match last {
                None => Ordering::Greater,
                Some((coll, key)) => (info.id, k).cmp(&(*coll, key.as_slice())),
            };
            match order {
                Ordering::Greater => {
                    let record = Record::new(info.id, &[k.len(), doc.as_bytes().len()]);
                    let parts = [record.header(), record.int(), k, doc.as_bytes()];
                    tree.push(pages, &parts)?;
                    match last {
                        Some((coll, key)) => {
                            *coll = info.id;
                            key.clear();
                            key.extend_from_slice(k);
                        }
                        None => *last = Some((info.id, k.to_vec())),
                    }
                }
                Ordering::Equal => return Err(duplicate_id(ns.into(), frame::checked_id(doc)?)),
                Ordering::Less => {
                    let out = match out_of_order {
                        Some(out) => out,
                        None => out_of_order
                            .insert(BufWriter::new(File::create(dir.join(OUT_OF_ORDER_FILE))?)),
                    };
                    out.write_all(&info.id.to_le_bytes())?;
                    out.write_all(doc.as_bytes())?;
                }
            }
        }
        for entry in keys.entries {
            index_entries.push(entry)?;
        }
        Ok(docs.len() as u64)
    }

    /// Builds the indexes, records `optime` as the last optime (new writes get later ones),
    /// commits and makes the directory durable. Open it afterwards with [`crate::Engine::open`].
    pub fn finish(self, optime: Option<Timestamp>) -> Result<()> {
        if self.failed {
            return Err(abandoned());
        }
        let Self {
            dir,
            mut pages,
            docs,
            index_root,
            out_of_order,
            collections,
            index_entries,
            ..
        } = self;
        docs.finish(&mut pages)?;
        let clash = write_index_entries(&mut pages, index_root, &collections, index_entries)?;
        pages.finish()?;

        let loading = dir.join(LOADING_FILE);
        let conn = Connection::open(&loading)?;
        conn.pragma_update(None, "journal_mode", "OFF")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        conn.execute_batch("BEGIN")?;
        insert_catalog(&conn, &collections)?;
        if let Some(out) = out_of_order {
            out.into_inner().map_err(|e| e.into_error())?;
            insert_out_of_order(&conn, &dir, &collections)?;
            std::fs::remove_file(dir.join(OUT_OF_ORDER_FILE))?;
        }
        if let Some((index_id, key, doc_key)) = clash {
            let (info, spec) = collections
                .values()
                .find_map(|info| {
                    info.secondary()
                        .find(|(_, id)| *id == index_id)
                        .map(|(spec, _)| (info, spec))
                })
                .ok_or_else(|| EngineError::BadValue("unknown index in a bulk load".into()))?;
            return Err(duplicate(&conn, info, spec, &key, &doc_key));
        }
        if let Some(ts) = optime {
            store::set_last_ts(&conn, ts)?;
        }
        conn.execute_batch("COMMIT")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.close().map_err(|(_, e)| EngineError::Storage(e))?;
        File::open(&loading)?.sync_all()?;
        std::fs::rename(&loading, dir.join(DB_FILE))?;
        File::open(&dir)?.sync_all()?;
        Ok(())
    }
}

/// The next batch for the key thread: up to [`KEYED_BATCH`] documents or
/// [`KEYED_BATCH_BYTES`] bytes of them.
fn next_batch<'d>(docs: &mut impl Iterator<Item = &'d RawDocument>) -> Vec<&'d RawDocument> {
    let mut bytes = 0;
    let mut batch = Vec::new();
    for doc in docs {
        bytes += doc.as_bytes().len();
        batch.push(doc);
        if batch.len() == KEYED_BATCH || bytes >= KEYED_BATCH_BYTES {
            break;
        }
    }
    batch
}

/// The error of a load used after one of its inserts failed.
fn abandoned() -> EngineError {
    EngineError::BadValue("an earlier insert of this bulk load failed: discard it".into())
}

fn keyer_stopped() -> EngineError {
    EngineError::Io(std::io::Error::other("the bulk load's key thread stopped"))
}

/// Refuses a database file whose layout the page writer does not produce.
fn check_header(file: &File) -> Result<()> {
    let mut header = [0u8; 100];
    file.read_exact_at(&mut header, 0)?;
    let page_size = usize::from(u16::from_be_bytes([header[16], header[17]]));
    let reserved = header[20];
    let auto_vacuum = u32::from_be_bytes([header[52], header[53], header[54], header[55]]);
    if page_size != PAGE_SIZE || reserved != 0 || auto_vacuum != 0 {
        return Err(EngineError::BadValue(format!(
            "unexpected new database layout: page size {page_size}, {reserved} reserved bytes, auto-vacuum root {auto_vacuum}"
        )));
    }
    Ok(())
}
