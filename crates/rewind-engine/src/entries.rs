//! Secondary-index entry maintenance shared by writes, index builds and bulk loads.

use bson::{Bson, Document, RawDocument, RawDocumentBuf};
use rusqlite::{OptionalExtension, params};

use crate::error::{DuplicateKey, EngineError, Result};
use crate::index::{IndexKey, IndexSpec};
use crate::keys::valid_id;
use crate::oplog::id_doc_from_element;
use crate::store::CollectionInfo;

/// Validates the whole document and extracts its `_id`. The walk first: it refuses what the
/// conversion would, and nesting past [`rewind_bson::MAX_DEPTH`] before the (recursive)
/// conversion meets it, as [`checked_id`] does for batches.
pub(crate) fn parse_doc(raw_doc: &RawDocument) -> Result<(Document, Bson)> {
    rewind_bson::check_document(raw_doc)?;
    let doc = Document::try_from(raw_doc)?;
    let id = accepted_id(doc.get("_id").cloned())?;
    Ok((doc, id))
}

/// A document's `_id` as a stored document may hold it: present, and a valid type.
pub(crate) fn accepted_id(id: Option<Bson>) -> Result<Bson> {
    let id = id.ok_or_else(|| EngineError::BadValue("document is missing an _id".into()))?;
    if !valid_id(&id) {
        return Err(EngineError::BadValue(format!(
            "can't use a value of type {:?} for _id",
            id.element_type()
        )));
    }
    Ok(id)
}

/// Validates the whole document as [`parse_doc`] does, in one walk over its bytes without
/// building a [`Document`] ([`rewind_bson::check_document`]), and returns its `_id` (the
/// last one, as decoding keeps) as a value and as the document `{_id: <that value>}`, the
/// `o2` of the document's oplog entry.
pub(crate) fn checked_id(raw_doc: &RawDocument) -> Result<(Bson, RawDocumentBuf)> {
    let at = rewind_bson::check_document(raw_doc)?
        .id_element
        .ok_or_else(|| EngineError::BadValue("document is missing an _id".into()))?;
    let id_doc = id_doc_from_element(&raw_doc.as_bytes()[at])?;
    let id = id_doc.get("_id")?.map(Bson::try_from).transpose()?;
    Ok((accepted_id(id)?, id_doc))
}

/// The part of a stored document its collection's secondary indexes look at: the top-level
/// fields their key paths start with, decoded (the rest of the document is skipped, which
/// matters for large documents indexed on a small field).
pub(crate) fn index_view(info: &CollectionInfo, raw_doc: &RawDocument) -> Result<Document> {
    let wanted: Vec<&str> = info
        .secondary()
        .flat_map(|(spec, _)| spec.fields.iter())
        .map(|(path, _)| path.split('.').next().unwrap_or(path))
        .collect();
    let mut view = Document::new();
    for element in raw_doc.iter_elements() {
        let element = element?;
        let key = element.key().as_str();
        if wanted.contains(&key) {
            view.insert(key, Bson::try_from(element.value()?)?);
        }
    }
    Ok(view)
}

/// The secondary index keys of a stored or incoming document, per index in
/// [`CollectionInfo::secondary`] order. `lenient`: an index whose keys cannot be computed
/// gets none (a stored document always produced valid keys; if not, there is nothing to
/// remove) instead of failing.
pub(crate) fn keys_of(
    info: &CollectionInfo,
    doc: &RawDocument,
    lenient: bool,
) -> Result<Vec<Vec<IndexKey>>> {
    let view = index_view(info, doc)?;
    info.secondary()
        .map(|(spec, _)| match spec.keys_for(&view) {
            Err(_) if lenient => Ok(Vec::new()),
            other => other,
        })
        .collect()
}

/// Adds the secondary index entries of one document, enforcing unique indexes.
pub(crate) fn add_entries(
    conn: &rusqlite::Connection,
    info: &CollectionInfo,
    k: &[u8],
    doc: &Document,
) -> Result<()> {
    for (spec, index_id) in info.secondary() {
        for key in spec.keys_for(doc)? {
            add_entry(conn, info, spec, index_id, &key, k)?;
        }
    }
    Ok(())
}

/// Adds one index entry of the document keyed `k`; a unique index refuses a key another
/// document holds (11000).
pub(crate) fn add_entry(
    conn: &rusqlite::Connection,
    info: &CollectionInfo,
    spec: &IndexSpec,
    index_id: i64,
    key: &IndexKey,
    k: &[u8],
) -> Result<()> {
    check_unique(conn, info, spec, index_id, key, k)?;
    insert_entry(conn, index_id, key, k)
}

/// Refuses `key` in a unique index when a document other than the one keyed `k` holds it.
pub(crate) fn check_unique(
    conn: &rusqlite::Connection,
    info: &CollectionInfo,
    spec: &IndexSpec,
    index_id: i64,
    key: &IndexKey,
    k: &[u8],
) -> Result<()> {
    if !spec.unique {
        return Ok(());
    }
    let clash: Option<i64> = conn
        .prepare_cached(
            "SELECT 1 FROM idx_entries WHERE index_id=?1 AND key=?2 AND doc_key<>?3 LIMIT 1",
        )?
        .query_row(params![index_id, key.bytes, k], |r| r.get(0))
        .optional()?;
    match clash {
        Some(_) => Err(EngineError::DuplicateKey(Box::new(DuplicateKey {
            ns: info.ns(),
            index: spec.name.clone(),
            key_pattern: spec.key.clone(),
            key_value: spec.key_value(&key.values),
        }))),
        None => Ok(()),
    }
}

/// Stores one index entry (a repeat of the same key for the same document is kept once).
pub(crate) fn insert_entry(
    conn: &rusqlite::Connection,
    index_id: i64,
    key: &IndexKey,
    k: &[u8],
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO idx_entries(index_id, key, doc_key) VALUES(?1, ?2, ?3)",
    )?
    .execute(params![index_id, key.bytes, k])?;
    Ok(())
}

/// Removes one index entry of the document keyed `k`.
pub(crate) fn remove_entry(
    conn: &rusqlite::Connection,
    index_id: i64,
    key: &IndexKey,
    k: &[u8],
) -> Result<()> {
    conn.prepare_cached("DELETE FROM idx_entries WHERE index_id=?1 AND key=?2 AND doc_key=?3")?
        .execute(params![index_id, key.bytes, k])?;
    Ok(())
}

/// Removes every index entry of the document keyed `k`, stored as `doc`.
pub(crate) fn remove_entries(
    conn: &rusqlite::Connection,
    info: &CollectionInfo,
    k: &[u8],
    doc: &Document,
) -> Result<()> {
    for (spec, index_id) in info.secondary() {
        // A stored document always produced valid keys; if not, there is nothing to remove.
        for key in spec.keys_for(doc).unwrap_or_default() {
            remove_entry(conn, index_id, &key, k)?;
        }
    }
    Ok(())
}

/// Fills one index from every stored document of the collection.
pub(crate) fn build_index(
    conn: &rusqlite::Connection,
    info: &CollectionInfo,
    spec: &IndexSpec,
    index_id: i64,
) -> Result<()> {
    let only = CollectionInfo {
        indexes: vec![spec.clone()],
        index_ids: vec![index_id],
        ..info.clone()
    };
    let mut stmt = conn.prepare("SELECT k, doc FROM docs WHERE coll_id=?1")?;
    let mut rows = stmt.query([info.id])?;
    while let Some(r) = rows.next()? {
        let k = r.get_ref(0)?.as_blob()?;
        let doc = index_view(&only, RawDocument::from_bytes(r.get_ref(1)?.as_blob()?)?)?;
        add_entries(conn, &only, k, &doc)?;
    }
    Ok(())
}
