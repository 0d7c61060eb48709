//! `bulkWrite` (mongod 8.0's client-level bulk write, behind pymongo's
//! `MongoClient.bulk_write` and mongosh's `Mongo.bulkWrite`): inserts, updates and deletes
//! across namespaces in one command and one engine transaction, with a result per
//! operation returned through a cursor and the totals beside it.

use bson::{Document, doc};
use rewind_engine::WriteTxn;
use rewind_wire::CommandRequest;

use super::find::{CursorFlags, first_reply};
use super::{check_writable, delete, to_raw, update, with_id_first};
use crate::Commands;
use crate::error::{CommandError, Result};
use crate::options::{
    as_i64, check_all_fields, check_fields, get_bool, get_doc, get_doc_array, get_non_negative,
};
use crate::reply::{WriteReply, count_value};
use crate::source::Source;

const OP_FIELDS: &[&str] = &[
    "insert",
    "update",
    "delete",
    "document",
    "filter",
    "updateMods",
    "multi",
    "upsert",
    "arrayFilters",
    "hint",
    "collation",
    "constants",
    "sort",
];

/// One operation, its namespace resolved and its statement in the form the `insert`,
/// `update` and `delete` commands parse.
enum Op {
    Insert { ns: String, document: Document },
    Update { ns: String, statement: Document },
    Delete { ns: String, statement: Document },
}

/// What the operations did, for the reply's totals.
#[derive(Default)]
struct Totals {
    errors: u64,
    inserted: u64,
    matched: u64,
    modified: u64,
    upserted: u64,
    deleted: u64,
}

fn parse_op(op: &Document, namespaces: &[String]) -> Result<Op> {
    check_all_fields(op, "bulkWrite.ops", OP_FIELDS)?;
    let (kind, index) = match op.iter().next() {
        Some((kind, index)) if matches!(kind.as_str(), "insert" | "update" | "delete") => {
            (kind.as_str(), index)
        }
        _ => {
            return Err(CommandError::failed_to_parse(
                "Unrecognized bulkWrite operation: an operation starts with insert, update or delete",
            ));
        }
    };
    let ns = as_i64(index)
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| namespaces.get(i))
        .ok_or_else(|| {
            CommandError::bad_value(format!(
                "BulkWrite ops entry refers to an invalid nsInfo index: {index}"
            ))
        })?
        .clone();
    let field = |name: &str| op.get(name).cloned();
    let filter =
        || field("filter").ok_or_else(|| CommandError::new_missing("bulkWrite.ops", "filter"));
    Ok(match kind {
        "insert" => Op::Insert {
            ns,
            document: get_doc(op, "bulkWrite.ops", "document")?
                .cloned()
                .ok_or_else(|| CommandError::new_missing("bulkWrite.ops", "document"))?,
        },
        "update" => {
            let mut statement = doc! {
                "q": filter()?,
                "u": field("updateMods")
                    .ok_or_else(|| CommandError::new_missing("bulkWrite.ops", "updateMods"))?,
            };
            for (from, to) in [
                ("multi", "multi"),
                ("upsert", "upsert"),
                ("arrayFilters", "arrayFilters"),
                ("hint", "hint"),
                ("collation", "collation"),
                ("constants", "c"),
                ("sort", "sort"),
            ] {
                if let Some(value) = field(from) {
                    statement.insert(to, value);
                }
            }
            Op::Update { ns, statement }
        }
        _ => {
            let multi = get_bool(op, "bulkWrite.ops", "multi")?.unwrap_or(false);
            let mut statement = doc! {"q": filter()?, "limit": if multi { 0 } else { 1 }};
            for name in ["hint", "collation"] {
                if let Some(value) = field(name) {
                    statement.insert(name, value);
                }
            }
            Op::Delete { ns, statement }
        }
    })
}

/// Runs one operation: its result entry's fields after `ok` and `idx`.
fn run_op(txn: &mut WriteTxn<'_>, op: &Op, totals: &mut Totals) -> Result<Document> {
    match op {
        Op::Insert { ns, document } => {
            check_writable(ns)?;
            txn.insert(ns, &to_raw(&with_id_first(document.clone())?)?)?;
            totals.inserted += 1;
            Ok(doc! {"n": 1})
        }
        Op::Update { ns, statement } => {
            check_writable(ns)?;
            let mut reply = WriteReply::new(true);
            update::run_statement(txn, ns, 0, &update::parse_statement(statement)?, &mut reply)?;
            let modified = reply.n_modified.unwrap_or(0);
            let mut out = doc! {"n": count_value(reply.n), "nModified": count_value(modified)};
            match reply.upserted.first().and_then(|u| u.get("_id")) {
                Some(id) => {
                    totals.upserted += 1;
                    out.insert("upserted", doc! {"_id": id.clone()});
                }
                None => {
                    totals.matched += reply.n;
                    totals.modified += modified;
                }
            }
            Ok(out)
        }
        Op::Delete { ns, statement } => {
            check_writable(ns)?;
            let n = delete::run_statement(txn, ns, &delete::parse_statement(statement)?)?;
            totals.deleted += n;
            Ok(doc! {"n": count_value(n)})
        }
    }
}

/// `bulkWrite` (admin only).
pub async fn bulk_write(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(
        body,
        "bulkWrite",
        &[
            "ops",
            "nsInfo",
            "ordered",
            "bypassDocumentValidation",
            "errorsOnly",
            "cursor",
            "let",
        ],
    )?;
    if request.db != "admin" {
        return Err(CommandError::unauthorized(
            "The bulkWrite command can only be run against the admin database",
        ));
    }
    if body.contains_key("let") {
        return Err(CommandError::not_implemented(
            "bulkWrite option 'let' is not supported by rewind",
        ));
    }
    let mut namespaces = Vec::new();
    for info in get_doc_array(body, "bulkWrite", "nsInfo")? {
        check_all_fields(&info, "bulkWrite.nsInfo", &["ns"])?;
        let ns = info
            .get_str("ns")
            .map_err(|_| CommandError::new_missing("bulkWrite.nsInfo", "ns"))?
            .to_owned();
        rewind_engine::parse_ns(&ns)?;
        namespaces.push(ns);
    }
    // Every operation is parsed before anything is written, as mongod's parser does.
    let ops = get_doc_array(body, "bulkWrite", "ops")?
        .iter()
        .map(|op| parse_op(op, &namespaces))
        .collect::<Result<Vec<_>>>()?;
    let ordered = get_bool(body, "bulkWrite", "ordered")?.unwrap_or(true);
    let errors_only = get_bool(body, "bulkWrite", "errorsOnly")?.unwrap_or(false);
    let batch_size = match get_doc(body, "bulkWrite", "cursor")? {
        Some(cursor) => get_non_negative(cursor, "bulkWrite.cursor", "batchSize")?,
        None => None,
    };
    let (source, batch, totals) = cmds
        .blocking(move |engine| {
            let (results, totals) = engine
                .write(|txn| {
                    let mut totals = Totals::default();
                    let mut results = Vec::new();
                    for (index, op) in ops.iter().enumerate() {
                        let idx = i32::try_from(index).unwrap_or(i32::MAX);
                        match run_op(txn, op, &mut totals) {
                            Ok(fields) if !errors_only => {
                                let mut entry = doc! {"ok": 1.0, "idx": idx};
                                entry.extend(fields);
                                results.push(entry);
                            }
                            Ok(_) => {}
                            Err(e) => {
                                totals.errors += 1;
                                let mut entry = e.to_reply();
                                entry.insert("idx", idx);
                                results.push(entry);
                                if ordered {
                                    break;
                                }
                            }
                        }
                    }
                    Ok::<_, rewind_engine::EngineError>((results, totals))
                })
                .map_err(CommandError::from)?;
            // The first batch of results, on the same blocking thread.
            let mut source = Source::buffered(results)?;
            let batch = source.next_batch(engine, batch_size)?;
            Ok((source, batch, totals))
        })
        .await?;
    let cursor = first_reply(
        cmds,
        "admin.$cmd.bulkWrite".to_owned(),
        source,
        batch,
        CursorFlags::default(),
    );
    let mut reply = Document::try_from(cursor.as_ref())?;
    reply.remove("ok");
    reply.insert("nErrors", count_value(totals.errors));
    reply.insert("nInserted", count_value(totals.inserted));
    reply.insert("nMatched", count_value(totals.matched));
    reply.insert("nModified", count_value(totals.modified));
    reply.insert("nUpserted", count_value(totals.upserted));
    reply.insert("nDeleted", count_value(totals.deleted));
    reply.insert("ok", 1.0);
    Ok(reply)
}
