//! The end of a bulk load: the index tree, the catalog rows, the documents that came out of
//! key order, and the errors that need the finished file to be described.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use bson::{Bson, RawDocument, RawDocumentBuf};
use rusqlite::{Connection, OptionalExtension, params};

use super::runs::IndexRuns;
use super::{OUT_OF_ORDER_FILE, PAGE_SIZE};
use crate::entries::index_view;
use crate::error::{DuplicateKey, EngineError, Result};
use crate::index::IndexSpec;
use crate::insert::duplicate_id;
use crate::keys::key_bytes;
use crate::pages::{PageWriter, Record, TreeBuilder};
use crate::store::CollectionInfo;

/// Two documents sharing a unique key: index id, key, one document's key.
pub(super) type Clash = (i64, Vec<u8>, Vec<u8>);

/// Writes the sorted index entries as the `idx_entries` tree; returns the first unique key
/// found held by two documents (as `(index id, key, one document's key)`), if any, in which
/// case the tree is left unfinished.
pub(super) fn write_index_entries(
    pages: &mut PageWriter,
    root: u32,
    collections: &BTreeMap<String, CollectionInfo>,
    entries: IndexRuns,
) -> Result<Option<Clash>> {
    let unique: Vec<i64> = collections
        .values()
        .flat_map(|info| {
            info.secondary()
                .filter(|(spec, _)| spec.unique)
                .map(|(_, id)| id)
        })
        .collect();
    let mut tree = TreeBuilder::new(root, PAGE_SIZE);
    // The previous entry written: index id, key + document key, where the key ends.
    let (mut prev_id, mut prev, mut prev_split) = (None, Vec::new(), 0);
    let mut clash = None;
    entries.drain_sorted(|(index_id, bytes, split)| {
        let (key, doc_key) = bytes.split_at(*split);
        if prev_id == Some(*index_id) {
            if prev == *bytes {
                return Ok(true); // the same document's entry twice (an array's repeated value)
            }
            if prev[..prev_split] == *key && unique.contains(index_id) {
                clash = Some((*index_id, key.to_vec(), doc_key.to_vec()));
                return Ok(false);
            }
        }
        let record = Record::new(*index_id, &[key.len(), doc_key.len()]);
        tree.push(pages, &[record.header(), record.int(), key, doc_key])?;
        prev_id = Some(*index_id);
        prev.clear();
        prev.extend_from_slice(bytes);
        prev_split = *split;
        Ok(true)
    })?;
    if clash.is_none() {
        tree.finish(pages)?;
    }
    Ok(clash)
}

/// Records the collections and their index definitions with the ids the load used.
pub(super) fn insert_catalog(
    conn: &Connection,
    collections: &BTreeMap<String, CollectionInfo>,
) -> Result<()> {
    let mut coll = conn.prepare(
        "INSERT INTO collections(id, db, name, uuid, options) VALUES(?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut index =
        conn.prepare("INSERT INTO indexes(id, coll_id, name, spec) VALUES(?1, ?2, ?3, ?4)")?;
    for info in collections.values() {
        coll.execute(params![
            info.id,
            info.db,
            info.name,
            info.uuid.bytes,
            info.options.to_vec()?
        ])?;
        for (spec, id) in info.indexes.iter().zip(&info.index_ids) {
            index.execute(params![id, info.id, spec.name, spec.spec.to_vec()?])?;
        }
    }
    Ok(())
}

/// Inserts the documents that came out of key order; one already present is a duplicate.
pub(super) fn insert_out_of_order(
    conn: &Connection,
    dir: &Path,
    collections: &BTreeMap<String, CollectionInfo>,
) -> Result<()> {
    let by_id: BTreeMap<i64, &CollectionInfo> =
        collections.values().map(|info| (info.id, info)).collect();
    let mut input = BufReader::new(File::open(dir.join(OUT_OF_ORDER_FILE))?);
    let mut stmt = conn
        .prepare("INSERT INTO docs(coll_id, k, doc) VALUES(?1, ?2, ?3) ON CONFLICT DO NOTHING")?;
    let mut head = [0u8; 12];
    loop {
        match input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let coll_id = i64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = i32::from_le_bytes(head[8..].try_into().expect("4 bytes"));
        let len = usize::try_from(len).unwrap_or(0).max(5);
        let mut bytes = head[8..].to_vec();
        bytes.resize(len, 0);
        input.read_exact(&mut bytes[4..])?;
        let doc = RawDocumentBuf::from_bytes(bytes)?;
        let id = doc
            .get("_id")?
            .ok_or_else(|| EngineError::BadValue("document is missing an _id".into()))?;
        let id = Bson::try_from(id)?;
        if stmt.execute(params![coll_id, key_bytes(&id), doc.as_bytes()])? == 0 {
            return Err(duplicate_id(by_id[&coll_id].ns(), id));
        }
    }
}

/// The error for a unique index key held by two documents, one of them `doc_key`'s.
pub(super) fn duplicate(
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
        .optional()
        .ok()
        .flatten()
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
