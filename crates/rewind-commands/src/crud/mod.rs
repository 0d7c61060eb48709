//! The CRUD commands: find/getMore/killCursors, insert, update, delete, findAndModify,
//! count/distinct and aggregate.

pub mod aggregate;
pub mod bulk_write;
pub mod count;
pub mod delete;
pub mod find;
pub mod insert;
pub mod modify;
pub mod update;

use bson::{Bson, Document, RawDocumentBuf, oid::ObjectId};
use rewind_engine::WriteTxn;

use crate::Commands;
use crate::error::{CommandError, Result};
use crate::reply::WriteReply;

/// Runs the statements of an update or delete in one engine transaction: a statement that
/// fails is reported as a write error at its index, and an ordered command stops there.
pub(crate) async fn write_statements(
    cmds: &Commands,
    statements: Vec<Document>,
    ordered: bool,
    mut reply: WriteReply,
    run: impl Fn(&mut WriteTxn<'_>, usize, &Document, &mut WriteReply) -> Result<()> + Send + 'static,
) -> Result<Document> {
    cmds.blocking(move |engine| {
        engine
            .write(|txn| {
                for (index, statement) in statements.iter().enumerate() {
                    let counts = (reply.n, reply.n_modified, reply.upserted.len());
                    if let Err(e) = run(txn, index, statement, &mut reply) {
                        // A failed statement counts for nothing in mongod's reply, even
                        // when a multi-update changed documents before it failed.
                        (reply.n, reply.n_modified) = (counts.0, counts.1);
                        reply.upserted.truncate(counts.2);
                        reply.write_errors.push(e.to_write_error(index));
                        if ordered {
                            break;
                        }
                    }
                }
                Ok::<_, rewind_engine::EngineError>(reply)
            })
            .map_err(CommandError::from)
    })
    .await
    .map(WriteReply::into_document)
}

/// The document with `_id` first, generating an ObjectId when it has none (as mongod does
/// on insert and upsert).
pub fn with_id_first(doc: Document) -> Result<Document> {
    let id = match doc.get("_id") {
        Some(id) => {
            crate::raw::check_id(id)?;
            id.clone()
        }
        None => Bson::ObjectId(ObjectId::new()),
    };
    if doc.keys().next().is_some_and(|k| k == "_id") {
        return Ok(doc);
    }
    let mut out = Document::new();
    out.insert("_id", id);
    for (k, v) in doc {
        if k != "_id" {
            out.insert(k, v);
        }
    }
    Ok(out)
}

/// The form a written document is stored in: with `fill`, its top-level empty timestamps
/// are filled as mongod fills an insert's or a replacement's (not an operator update's).
/// `doc` is updated to the stored form, for callers that return it.
pub(crate) fn stored_form(
    txn: &mut WriteTxn<'_>,
    doc: &mut Document,
    fill: bool,
) -> Result<RawDocumentBuf> {
    let raw = to_raw(doc)?;
    if !fill {
        return Ok(raw);
    }
    match txn.fill_empty_timestamps(&raw)? {
        Some(filled) => {
            *doc = Document::try_from(filled.as_ref())?;
            Ok(filled)
        }
        None => Ok(raw),
    }
}

/// Serializes a document for the engine.
pub fn to_raw(doc: &Document) -> Result<RawDocumentBuf> {
    Ok(RawDocumentBuf::try_from(doc)?)
}

/// Whether `ns` is a system collection (`<db>.system.*`), which mongod reserves.
pub fn is_system(ns: &str) -> bool {
    ns.split_once('.')
        .is_some_and(|(_, coll)| coll.starts_with("system."))
}

/// Refuses user writes to the oplog and system collections, which mongod reserves.
pub fn check_writable(ns: &str) -> Result<()> {
    if ns == crate::oplog::OPLOG_NS || is_system(ns) {
        return Err(CommandError::invalid_namespace(format!(
            "cannot write to '{ns}'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn id_is_generated_and_moved_first() {
        let d = with_id_first(doc! {"a": 1}).unwrap_or_default();
        assert!(matches!(d.iter().next(), Some((k, Bson::ObjectId(_))) if k == "_id"));
        let d = with_id_first(doc! {"a": 1, "_id": 2}).unwrap_or_default();
        assert_eq!(d, doc! {"_id": 2, "a": 1});
        assert_eq!(d.keys().next().map(String::as_str), Some("_id"));
        assert!(with_id_first(doc! {"_id": [1]}).is_err());
    }

    #[test]
    fn oplog_and_system_collections_are_read_only() {
        assert!(check_writable("local.oplog.rs").is_err());
        assert!(check_writable("d.system.views").is_err());
        assert!(check_writable("d.c").is_ok());
    }
}
