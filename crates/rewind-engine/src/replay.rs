//! Replaying a captured oplog onto a restored engine (point-in-time restores), fast.
//!
//! The end state is the one [`WriteTxn::apply_oplog_entry`] reaches for every entry, but the
//! work is what a restore needs and nothing more:
//! - entries are not logged again: the engine takes their own optimes instead, as a
//!   restored snapshot takes the snapshot's (the restored engine continues the timeline it
//!   was restored from, and its oplog starts empty, as after any restore);
//! - inserts, replacement updates and deletes work on the raw bytes: only the top-level
//!   fields an index needs are decoded, the stored document is read at most once, and not at
//!   all when its collection has no secondary index; index entries that do not change are
//!   left alone;
//! - no savepoint per entry (SQLite copies every page a savepoint touches to a statement
//!   journal): a failed replay must abandon its whole transaction.
//!
//! Commands, `$v: 2` diffs and unusual shapes go through the general path (unlogged too).

use bson::raw::RawBsonRef;
use bson::spec::BinarySubtype;
use bson::{Bson, Document, RawDocument, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use crate::entries::{add_entry, keys_of, remove_entry};
use crate::error::{EngineError, Result};
use crate::index::IndexKey;
use crate::keys::{key_bytes, valid_id};
use crate::store::CollectionInfo;
use crate::txn::WriteTxn;

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::BadValue(msg.into())
}

/// The fields of an oplog entry that replaying it reads, found in one pass (first occurrence
/// wins, as with `RawDocument::get`); a field of the wrong type reads as missing.
#[derive(Default)]
pub struct OplogFields<'a> {
    /// `op`: i, u, d, c or n.
    pub op: Option<&'a str>,
    /// `ns`: the namespace.
    pub ns: Option<&'a str>,
    /// `ui`: the collection UUID's bytes (BSON Binary subtype 4).
    pub ui: Option<&'a [u8]>,
    /// `o`: the document, update or command.
    pub o: Option<&'a RawDocument>,
    /// `o2`: the updated document's `_id`.
    pub o2: Option<&'a RawDocument>,
    /// `ts`: the optime.
    pub ts: Option<Timestamp>,
}

impl<'a> OplogFields<'a> {
    /// Reads the fields of `entry`; fails only on malformed BSON.
    pub fn parse(entry: &'a RawDocument) -> Result<Self> {
        let mut f = OplogFields::default();
        for element in entry.iter_elements() {
            let element = element?;
            match element.key().as_str() {
                "op" if f.op.is_none() => f.op = element.value()?.as_str(),
                "ns" if f.ns.is_none() => f.ns = element.value()?.as_str(),
                "ui" if f.ui.is_none() => {
                    if let RawBsonRef::Binary(b) = element.value()?
                        && b.subtype == BinarySubtype::Uuid
                    {
                        f.ui = Some(b.bytes);
                    }
                }
                "o" if f.o.is_none() => f.o = element.value()?.as_document(),
                "o2" if f.o2.is_none() => f.o2 = element.value()?.as_document(),
                "ts" if f.ts.is_none() => f.ts = element.value()?.as_timestamp(),
                _ => {}
            }
        }
        Ok(f)
    }
}

/// What a simple oplog entry does, read from its fields alone: the shapes the fast replay
/// and a restore's merge of net changes both handle without the general path.
#[derive(Debug, PartialEq)]
pub enum SimpleWrite<'a> {
    /// A no-op entry (`op: "n"`).
    Noop,
    /// An insert, or a replacement that keeps the `_id`: the document stored under `key`
    /// becomes `doc`.
    Put {
        /// [`key_bytes`] of the document's `_id`.
        key: Vec<u8>,
        /// The whole new document.
        doc: &'a RawDocument,
    },
    /// A delete of the document stored under `key`.
    Delete {
        /// [`key_bytes`] of the deleted document's `_id`.
        key: Vec<u8>,
    },
}

impl<'a> OplogFields<'a> {
    /// The entry as a [`SimpleWrite`], or `None` when it needs the general path: a command, an
    /// update by operators or by `$v: 2` diff, an `_id` change, a missing `o`, a missing `_id`
    /// or one a stored document cannot have (the general path reports those). Fails only on
    /// malformed BSON.
    pub fn simple_write(&self) -> Result<Option<SimpleWrite<'a>>> {
        Ok(match (self.op, self.o) {
            (Some("n"), _) => Some(SimpleWrite::Noop),
            (Some("i"), Some(doc)) => stored_key(doc)?.map(|key| SimpleWrite::Put { key, doc }),
            (Some("u"), Some(doc)) => {
                // The cheap test first: most updates are by operators or diff.
                let first = doc.iter_elements().next().transpose()?;
                if first.is_none_or(|e| e.key().as_str().starts_with('$')) {
                    return Ok(None);
                }
                let new_key = stored_key(doc)?;
                let old_key = self.o2.map(raw_id_key).transpose()?.flatten();
                match (new_key, old_key) {
                    (Some(key), Some(old)) if key == old => Some(SimpleWrite::Put { key, doc }),
                    _ => None,
                }
            }
            (Some("d"), Some(doc)) => raw_id_key(doc)?.map(|key| SimpleWrite::Delete { key }),
            _ => None,
        })
    }
}

/// A document's (first) `_id`, decoding nothing else; `None` without one.
fn raw_id(doc: &RawDocument) -> Result<Option<Bson>> {
    Ok(doc.get("_id")?.map(Bson::try_from).transpose()?)
}

/// The storage key ([`key_bytes`]) of a document's `_id`; `None` without one.
pub fn raw_id_key(doc: &RawDocument) -> Result<Option<Vec<u8>>> {
    Ok(raw_id(doc)?.map(|id| key_bytes(&id)))
}

/// [`raw_id_key`] of a document about to be stored: `None` also for an `_id` of a type a stored
/// document cannot have.
fn stored_key(doc: &RawDocument) -> Result<Option<Vec<u8>>> {
    Ok(raw_id(doc)?.filter(valid_id).map(|id| key_bytes(&id)))
}

impl WriteTxn<'_> {
    /// Applies one entry of a captured oplog during a point-in-time restore: the same end
    /// state as [`WriteTxn::apply_oplog_entry`], but the entry is not logged again and the
    /// engine's optime moves to the entry's `ts` instead (see the module notes).
    ///
    /// Unlike the other methods this is not atomic on its own: on `Err` the transaction may
    /// hold part of the entry, so the caller must return the error from [`crate::Engine::write`]
    /// (which rolls everything back).
    pub fn replay_oplog_entry(&mut self, entry: &RawDocument) -> Result<()> {
        let f = OplogFields::parse(entry)?;
        let ts = f.ts.ok_or_else(|| bad("oplog entry has no 'ts'"))?;
        let logging = std::mem::replace(&mut self.log_writes, false);
        let outcome = self.replay_fields(entry, &f);
        self.log_writes = logging;
        outcome?;
        if ts > self.clock.last {
            self.clock.last = ts;
        }
        self.last = Some(self.clock.last);
        Ok(())
    }

    fn replay_fields(&mut self, entry: &RawDocument, f: &OplogFields<'_>) -> Result<()> {
        let ns = f.ns.unwrap_or_default();
        match f.simple_write()? {
            Some(SimpleWrite::Noop) => Ok(()),
            Some(SimpleWrite::Put { key, doc }) => {
                self.ensure_target(ns, f.ui)?;
                let info = resolve(self, ns, f.ui)
                    .ok_or_else(|| EngineError::NamespaceNotFound(ns.into()))?;
                upsert(&self.tx, info, &key, doc)
            }
            Some(SimpleWrite::Delete { key }) => match resolve(self, ns, f.ui) {
                Some(info) => delete(&self.tx, info, &key),
                None => Ok(()),
            },
            // Including every malformed entry: the general path reports it as mongod does.
            None => self.apply_oplog_entry(entry),
        }
    }

    /// Creates the collection an entry targets if [`resolve`] finds none, as the general
    /// path does.
    fn ensure_target(&mut self, ns: &str, ui: Option<&[u8]>) -> Result<()> {
        if resolve(self, ns, ui).is_none() {
            let uuid = ui.map(|bytes| bson::Binary {
                subtype: BinarySubtype::Uuid,
                bytes: bytes.to_vec(),
            });
            self.create_inner(ns, &Document::new(), uuid)?;
        }
        Ok(())
    }
}

/// The collection an entry targets: by UUID first, as mongod resolves it, then by name.
fn resolve<'t>(t: &'t WriteTxn<'_>, ns: &str, ui: Option<&[u8]>) -> Option<&'t CollectionInfo> {
    ui.and_then(|u| t.catalog.values().find(|c| c.uuid.bytes == u))
        .or_else(|| t.catalog.get(ns))
}

/// The index keys of the document stored under `k`, if there is one.
fn stored_keys(
    conn: &Connection,
    info: &CollectionInfo,
    k: &[u8],
) -> Result<Option<Vec<Vec<IndexKey>>>> {
    conn.prepare_cached("SELECT doc FROM docs WHERE coll_id=?1 AND k=?2")?
        .query_row(params![info.id, k], |r| {
            Ok(RawDocument::from_bytes(r.get_ref(0)?.as_blob()?)
                .map_err(EngineError::from)
                .and_then(|d| keys_of(info, d, true)))
        })
        .optional()?
        .transpose()
}

/// Stores `doc` under key `k`, replacing any document there, and updates the index entries
/// that change.
fn upsert(conn: &Connection, info: &CollectionInfo, k: &[u8], doc: &RawDocument) -> Result<()> {
    let mut existed = None;
    if info.indexes.len() > 1 {
        let new = keys_of(info, doc, false)?;
        let old = stored_keys(conn, info, k)?;
        existed = Some(old.is_some());
        let none = Vec::new();
        for (n, (spec, index_id)) in info.secondary().enumerate() {
            let old = old.as_ref().map_or(&none, |o| &o[n]);
            let new = &new[n];
            for key in old {
                if !new.iter().any(|x| x.bytes == key.bytes) {
                    remove_entry(conn, index_id, key, k)?;
                }
            }
            for key in new {
                if old.iter().any(|x| x.bytes == key.bytes) {
                    continue;
                }
                add_entry(conn, info, spec, index_id, key, k)?;
            }
        }
    }
    // When the old document was read, whether it exists is known: the plain statement
    // saves the upsert's second lookup.
    let sql = match existed {
        Some(true) => "UPDATE docs SET doc=?3 WHERE coll_id=?1 AND k=?2",
        Some(false) => "INSERT INTO docs(coll_id, k, doc) VALUES(?1, ?2, ?3)",
        None => {
            "INSERT INTO docs(coll_id, k, doc) VALUES(?1, ?2, ?3) \
             ON CONFLICT(coll_id, k) DO UPDATE SET doc=excluded.doc"
        }
    };
    conn.prepare_cached(sql)?
        .execute(params![info.id, k, doc.as_bytes()])?;
    Ok(())
}

/// Removes the document under key `k` (if any) and its index entries.
fn delete(conn: &Connection, info: &CollectionInfo, k: &[u8]) -> Result<()> {
    if info.indexes.len() > 1 {
        let old = stored_keys(conn, info, k)?;
        let Some(old) = old else { return Ok(()) };
        for ((_, index_id), keys) in info.secondary().zip(old) {
            for key in keys {
                remove_entry(conn, index_id, &key, k)?;
            }
        }
    }
    conn.prepare_cached("DELETE FROM docs WHERE coll_id=?1 AND k=?2")?
        .execute(params![info.id, k])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn fields_are_read_in_one_pass() {
        let uuid = bson::Binary {
            subtype: BinarySubtype::Uuid,
            bytes: vec![7; 16],
        };
        let ts = Timestamp {
            time: 5,
            increment: 2,
        };
        let e = bson::RawDocumentBuf::try_from(
            &doc! {"op": "i", "ns": "a.b", "ui": uuid, "o": {"_id": 1}, "o2": {"_id": 1}, "ts": ts},
        )
        .unwrap();
        let f = OplogFields::parse(&e).unwrap();
        assert_eq!(
            (f.op, f.ns, f.ui, f.ts),
            (Some("i"), Some("a.b"), Some(&[7u8; 16][..]), Some(ts))
        );
        assert!(f.o.is_some() && f.o2.is_some());
        let o = f.o.unwrap();
        assert_eq!(stored_key(o).unwrap(), Some(key_bytes(&Bson::Int32(1))));
        assert!(raw_id_key(f.o2.unwrap()).unwrap().is_some());
        let array_id = bson::RawDocumentBuf::try_from(&doc! {"_id": [1]}).unwrap();
        assert!(
            stored_key(&array_id).unwrap().is_none() && raw_id_key(&array_id).unwrap().is_some()
        );
    }

    #[test]
    fn simple_writes_are_inserts_replacements_and_deletes_by_a_valid_id() {
        let entries = [
            (doc! {"op": "n", "o": {"msg": "x"}}, Some("noop")),
            (doc! {"op": "n"}, Some("noop")),
            (doc! {"op": "i", "o": {"_id": 1, "a": 1}}, Some("put")),
            (doc! {"op": "i", "o": {"a": 1}}, None),
            (doc! {"op": "i", "o": {"_id": [1]}}, None),
            (doc! {"op": "i"}, None),
            (
                doc! {"op": "u", "o": {"_id": 1, "a": 2}, "o2": {"_id": 1}},
                Some("put"),
            ),
            (
                doc! {"op": "u", "o": {"a": 2, "_id": 1}, "o2": {"_id": 1}},
                Some("put"),
            ),
            (
                doc! {"op": "u", "o": {"_id": 2, "a": 2}, "o2": {"_id": 1}},
                None,
            ),
            (
                doc! {"op": "u", "o": {"$set": {"a": 2}}, "o2": {"_id": 1}},
                None,
            ),
            (
                doc! {"op": "u", "o": {"$v": 2, "diff": {"u": {"a": 2}}}, "o2": {"_id": 1}},
                None,
            ),
            (doc! {"op": "u", "o": {"_id": 1, "a": 2}}, None),
            (doc! {"op": "u", "o": {"a": 2}, "o2": {"_id": 1}}, None),
            (doc! {"op": "d", "o": {"_id": 1}}, Some("delete")),
            (doc! {"op": "d", "o": {"_id": [1]}}, Some("delete")),
            (doc! {"op": "d", "o": {}}, None),
            (doc! {"op": "c", "o": {"drop": "c"}}, None),
            (doc! {"o": {"_id": 1}}, None),
        ];
        for (entry, expected) in entries {
            let raw = bson::RawDocumentBuf::try_from(&entry).unwrap();
            let fields = OplogFields::parse(&raw).unwrap();
            let kind = fields.simple_write().unwrap().map(|write| match write {
                SimpleWrite::Noop => "noop",
                SimpleWrite::Put { key, doc } => {
                    assert_eq!(key, key_bytes(&Bson::Int32(1)), "{entry}");
                    // The new document, not `o2`.
                    let o = entry.get_document("o").unwrap();
                    assert_eq!(Document::try_from(doc).unwrap(), *o, "{entry}");
                    "put"
                }
                SimpleWrite::Delete { key } => {
                    let id = entry.get_document("o").unwrap().get("_id").unwrap();
                    assert_eq!(key, key_bytes(id), "{entry}");
                    "delete"
                }
            });
            assert_eq!(kind, expected, "{entry}");
        }
    }
}
