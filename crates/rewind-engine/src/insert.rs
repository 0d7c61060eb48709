//! Inserts: one document at a time, or a whole batch without a savepoint per document.

use bson::raw::{RawBsonRef, RawElement};
use bson::spec::ElementType;
use bson::{Bson, RawDocument, RawDocumentBuf, doc};
use rusqlite::params;

use crate::entries::{add_entries, check_unique, checked_id, index_view, insert_entry, parse_doc};
use crate::error::{DuplicateKey, EngineError, Result};
use crate::index::IndexKey;
use crate::keys::key_bytes;
use crate::ns::parse_ns;
use crate::oplog::id_doc;
use crate::store::CollectionInfo;
use crate::txn::WriteTxn;

const INSERT_DOC: &str =
    "INSERT INTO docs(coll_id, k, doc) VALUES(?1, ?2, ?3) ON CONFLICT DO NOTHING";

/// What [`WriteTxn::insert_many`] did with a batch.
#[derive(Debug, Default)]
pub struct InsertMany {
    /// How many documents were inserted.
    pub inserted: usize,
    /// The documents refused, by position in the batch, with the reason; each left no
    /// trace. An ordered batch stops at its first.
    pub errors: Vec<(usize, EngineError)>,
    /// Whether a failure other than a refused document undid the batch, which was then
    /// inserted one document at a time (the slow path).
    pub one_at_a_time: bool,
}

impl InsertMany {
    /// Counts document `index`'s outcome; whether the batch goes on (an ordered batch stops
    /// at its first refusal).
    fn record(&mut self, index: usize, outcome: Result<()>, ordered: bool) -> bool {
        match outcome {
            Ok(()) => {
                self.inserted += 1;
                true
            }
            Err(refused) => {
                self.errors.push((index, refused));
                !ordered
            }
        }
    }
}

impl WriteTxn<'_> {
    /// Inserts a document; creates the collection if missing. The document must carry an
    /// `_id` (the command layer generates ObjectIds). It is stored byte for byte, except that
    /// a top-level empty timestamp (`Timestamp(0, 0)`) other than `_id` becomes the next
    /// optime, as mongod fills it on insert.
    pub fn insert(&mut self, ns: &str, doc: &RawDocument) -> Result<()> {
        self.atomically(|t| match t.fill_empty_timestamps(doc)? {
            Some(filled) => t.insert_inner(ns, &filled, false),
            None => t.insert_inner(ns, doc, false),
        })
    }

    /// `doc` with its top-level empty timestamps but `_id`'s set to fresh optimes, or `None`
    /// when it has none (the common case, which costs one pass over its top-level fields).
    /// Inserts apply it themselves; a replacement update asks for it, as mongod fills the
    /// replacement document's too.
    pub fn fill_empty_timestamps(&mut self, doc: &RawDocument) -> Result<Option<RawDocumentBuf>> {
        let empty = |element: &RawElement<'_>| {
            element.element_type() == ElementType::Timestamp
                && element.key().as_str() != "_id"
                && matches!(element.value(), Ok(RawBsonRef::Timestamp(t)) if t.time == 0 && t.increment == 0)
        };
        let mut elements = doc.iter_elements();
        if !elements.any(|e| e.as_ref().is_ok_and(empty)) {
            return Ok(None);
        }
        let mut filled = RawDocumentBuf::new();
        for element in doc.iter_elements() {
            let element = element.map_err(|e| EngineError::InvalidBson(e.to_string()))?;
            if empty(&element) {
                filled.append(element.key(), self.clock.next());
            } else {
                let value = element
                    .value()
                    .map_err(|e| EngineError::InvalidBson(e.to_string()))?;
                filled.append(element.key(), value);
            }
        }
        Ok(Some(filled))
    }

    /// Inserts `docs` in order as [`WriteTxn::insert`] does each, with one oplog entry per
    /// document, and reports the refused ones (invalid document, duplicate key) instead of
    /// failing: `ordered` stops at the first, otherwise every document is tried. The result
    /// is the one of calling [`WriteTxn::insert`] for each document, only cheaper: the batch
    /// takes one savepoint instead of one per document, and validates documents without
    /// decoding them.
    pub fn insert_many<D: AsRef<RawDocument>>(
        &mut self,
        ns: &str,
        docs: &[D],
        ordered: bool,
    ) -> Result<InsertMany> {
        let failure = match self.atomically(|t| t.insert_batch(ns, docs, ordered)) {
            Ok(outcome) => return Ok(outcome),
            Err(failure) => failure,
        };
        // A failure that is not a refused document (storage, the namespace) undid the batch:
        // the document-at-a-time path reports it against each document it hits, as before.
        tracing::debug!(%ns, error = %failure, "batch insert undone; inserting one document at a time");
        let mut outcome = InsertMany {
            one_at_a_time: true,
            ..InsertMany::default()
        };
        for (index, doc) in docs.iter().enumerate() {
            let inserted = self.insert(ns, doc.as_ref());
            if !outcome.record(index, inserted, ordered) {
                break;
            }
        }
        Ok(outcome)
    }

    fn insert_batch<D: AsRef<RawDocument>>(
        &mut self,
        ns: &str,
        docs: &[D],
        ordered: bool,
    ) -> Result<InsertMany> {
        parse_ns(ns)?;
        // Inserts change no catalog entry: one copy serves the whole batch. A missing
        // collection is created by the first document that passes its checks, as one at a
        // time does: a batch refused whole creates nothing.
        let mut info = self.catalog.get(ns).cloned();
        let mut outcome = InsertMany::default();
        for (index, doc) in docs.iter().enumerate() {
            let filled = self.fill_empty_timestamps(doc.as_ref())?;
            let raw_doc = filled.as_deref().unwrap_or(doc.as_ref());
            let checked = match checked_id(raw_doc) {
                Ok((id, id_doc)) => {
                    let info = match &mut info {
                        Some(info) => info,
                        None => {
                            self.ensure_collection(ns)?;
                            info.insert(self.info(ns)?.clone())
                        }
                    };
                    self.insert_checked(info, ns, raw_doc, id, &id_doc)?
                }
                Err(refused) => Err(refused),
            };
            if !outcome.record(index, checked, ordered) {
                break;
            }
        }
        Ok(outcome)
    }

    /// Inserts one document of a batch that passed [`checked_id`]. The inner error refuses
    /// the document, which then wrote nothing; the outer one is a storage failure, which
    /// leaves the batch to undo. Refusals come in the order [`WriteTxn::insert`] finds them:
    /// the document itself, its `_id`, then each secondary index in turn.
    fn insert_checked(
        &mut self,
        info: &CollectionInfo,
        ns: &str,
        raw_doc: &RawDocument,
        id: Bson,
        id_doc: &RawDocument,
    ) -> Result<Result<()>> {
        let k = key_bytes(&id);
        let inserted =
            self.tx
                .prepare_cached(INSERT_DOC)?
                .execute(params![info.id, k, raw_doc.as_bytes()])?;
        if inserted == 0 {
            return Ok(Err(duplicate_id(ns.into(), id)));
        }
        if info.secondary().next().is_some() {
            match self.index_entries(info, &k, raw_doc)? {
                Ok(entries) => {
                    for (index_id, key) in &entries {
                        insert_entry(&self.tx, *index_id, key, &k)?;
                    }
                }
                Err(refused) => {
                    // Only the document row was written: taking it back leaves no trace.
                    self.tx
                        .prepare_cached("DELETE FROM docs WHERE coll_id=?1 AND k=?2")?
                        .execute(params![info.id, k])?;
                    return Ok(Err(refused));
                }
            }
        }
        self.log("i", ns, Some(&info.uuid), raw_doc, Some(id_doc))?;
        Ok(Ok(()))
    }

    /// The secondary index entries of a document, every unique one checked first (a clash
    /// refuses it, as does a document its indexes cannot key).
    fn index_entries(
        &self,
        info: &CollectionInfo,
        k: &[u8],
        raw_doc: &RawDocument,
    ) -> Result<Result<Vec<(i64, IndexKey)>>> {
        let view = index_view(info, raw_doc)?;
        let mut entries = Vec::new();
        for (spec, index_id) in info.secondary() {
            let keys = match spec.keys_for(&view) {
                Ok(keys) => keys,
                Err(refused) => return Ok(Err(refused)),
            };
            for key in keys {
                match check_unique(&self.tx, info, spec, index_id, &key, k) {
                    Ok(()) => entries.push((index_id, key)),
                    Err(refused @ EngineError::DuplicateKey(_)) => return Ok(Err(refused)),
                    Err(storage) => return Err(storage),
                }
            }
        }
        Ok(Ok(entries))
    }

    /// Inserts, or with `upsert` replaces the document of the same `_id`.
    pub(crate) fn insert_inner(
        &mut self,
        ns: &str,
        raw_doc: &RawDocument,
        upsert: bool,
    ) -> Result<()> {
        parse_ns(ns)?;
        let (doc, id) = parse_doc(raw_doc)?;
        if upsert && self.catalog.contains_key(ns) && self.get(ns, &id)?.is_some() {
            return self.update_parsed(ns, &id, raw_doc, &doc);
        }
        self.ensure_collection(ns)?;
        let info = self.info(ns)?.clone();
        let k = key_bytes(&id);
        let inserted =
            self.tx
                .prepare_cached(INSERT_DOC)?
                .execute(params![info.id, k, raw_doc.as_bytes()])?;
        if inserted == 0 {
            return Err(duplicate_id(ns.into(), id));
        }
        add_entries(&self.tx, &info, &k, &doc)?;
        self.log("i", ns, Some(&info.uuid), raw_doc, Some(&id_doc(&id)))
    }
}

/// The 11000 refusal of an `_id` the collection already holds.
pub(crate) fn duplicate_id(ns: String, id: Bson) -> EngineError {
    EngineError::DuplicateKey(Box::new(DuplicateKey {
        ns,
        index: crate::index::ID_INDEX_NAME.into(),
        key_pattern: doc! {"_id": 1},
        key_value: doc! {"_id": id},
    }))
}
