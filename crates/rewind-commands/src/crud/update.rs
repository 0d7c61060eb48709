//! `update`: replacement and operator updates, upsert and multi, in one engine transaction.

use bson::{Bson, DateTime, Document};
use rewind_engine::WriteTxn;
use rewind_query::filter::Filter;
use rewind_query::update::{Update, UpdateContext};
use rewind_wire::CommandRequest;

use super::{check_writable, stored_form, to_raw, with_id_first, write_statements};
use crate::Commands;
use crate::error::{CommandError, Result};
use crate::options::{
    check_all_fields, check_collation, check_fields, check_required, command_ns, get_bool,
    get_doc_array,
};
use crate::reader::matching;
use crate::reply::WriteReply;

/// Parses an update (`u`/`update`), refusing `arrayFilters` which rewind does not support.
pub fn parse_update(u: Option<&Bson>, array_filters: Option<&Bson>, field: &str) -> Result<Update> {
    match array_filters {
        None | Some(Bson::Null) => {}
        Some(Bson::Array(a)) if a.is_empty() => {}
        Some(_) => {
            return Err(CommandError::not_implemented(
                "arrayFilters are not supported by rewind",
            ));
        }
    }
    match u {
        Some(u) => Ok(Update::parse(u)?),
        None => Err(CommandError::failed_to_parse(format!(
            "BSON field '{field}' is missing but a required field"
        ))),
    }
}

/// Applies `update` to a matched document: the new document and whether it changed.
pub fn apply_update(update: &Update, filter: &Filter, doc: &Document) -> Result<(Document, bool)> {
    let ctx = UpdateContext {
        is_upsert_insert: false,
        now: DateTime::now(),
        positional_index: filter.positional_index(doc),
    };
    let mut new = doc.clone();
    let changed = update.apply(&mut new, &ctx)?;
    Ok((new, changed))
}

/// The document an upsert inserts when nothing matched: the filter's equality fields (only
/// `_id` for a replacement) with the update applied (`$setOnInsert` included), `_id` first
/// and generated when missing. An `_id` the filter gave cannot be changed (code 66).
pub fn upsert_document(update: &Update, filter: &Filter) -> Result<Document> {
    let mut seed = match update {
        Update::Replacement(_) => filter.replacement_upsert_seed()?,
        Update::Operators(_) => filter.upsert_seed()?,
    };
    let ctx = UpdateContext {
        is_upsert_insert: true,
        now: DateTime::now(),
        positional_index: None,
    };
    update.apply(&mut seed, &ctx)?;
    with_id_first(seed)
}

/// One parsed update statement.
pub(crate) struct Statement {
    filter: Filter,
    update: Update,
    upsert: bool,
    multi: bool,
}

const STATEMENT_FIELDS: &[&str] = &[
    "q",
    "u",
    "upsert",
    "multi",
    "arrayFilters",
    "collation",
    "hint",
    "c",
    "sort",
    "upsertSupplied",
];

pub(crate) fn parse_statement(stmt: &Document) -> Result<Statement> {
    check_all_fields(stmt, "update.updates", STATEMENT_FIELDS)?;
    check_collation(stmt, "update.updates")?;
    for option in ["c", "sort"] {
        if stmt.contains_key(option) {
            return Err(CommandError::not_implemented(format!(
                "update option '{option}' is not supported by rewind"
            )));
        }
    }
    let q = match stmt.get("q") {
        Some(Bson::Document(q)) => q,
        _ => return Err(CommandError::new_missing("update.updates", "q")),
    };
    let update = parse_update(stmt.get("u"), stmt.get("arrayFilters"), "update.updates.u")?;
    let multi = get_bool(stmt, "update.updates", "multi")?.unwrap_or(false);
    if multi && update.is_replacement() {
        return Err(CommandError::failed_to_parse(
            "multi update is not supported for replacement-style update",
        ));
    }
    Ok(Statement {
        filter: Filter::parse(q)?,
        update,
        upsert: get_bool(stmt, "update.updates", "upsert")?.unwrap_or(false),
        multi,
    })
}

/// Runs one statement, adding its counts to `reply`.
pub(crate) fn run_statement(
    txn: &mut WriteTxn<'_>,
    ns: &str,
    index: usize,
    stmt: &Statement,
    reply: &mut WriteReply,
) -> Result<()> {
    let docs = matching(txn, ns, &stmt.filter, if stmt.multi { 0 } else { 1 })?;
    if docs.is_empty() {
        if stmt.upsert {
            let doc = upsert_document(&stmt.update, &stmt.filter)?;
            txn.insert(ns, &to_raw(&doc)?)?;
            reply.n += 1;
            let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
            reply
                .upserted
                .push(bson::doc! {"index": index as i32, "_id": id});
        }
        return Ok(());
    }
    for doc in docs {
        let (mut new, changed) = apply_update(&stmt.update, &stmt.filter, &doc)?;
        reply.n += 1;
        if changed {
            let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
            let raw = stored_form(txn, &mut new, stmt.update.is_replacement())?;
            txn.update(ns, &id, &raw)?;
            if let Some(m) = &mut reply.n_modified {
                *m += 1;
            }
        }
    }
    Ok(())
}

/// `update`.
pub async fn update(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(
        body,
        "update",
        &["updates", "ordered", "bypassDocumentValidation", "let"],
    )?;
    if body.contains_key("let") {
        return Err(CommandError::not_implemented(
            "update option 'let' is not supported by rewind",
        ));
    }
    let ns = command_ns(&request.db, body, "update")?;
    check_writable(&ns)?;
    let stmts = get_doc_array(body, "update", "updates")?;
    // mongod's parser reads every statement's fields with the command: an unknown or a
    // missing one fails the whole command before anything is written.
    for stmt in &stmts {
        check_all_fields(stmt, "update.updates", STATEMENT_FIELDS)?;
        check_required(stmt, "update.updates", &["q", "u"])?;
    }
    let ordered = get_bool(body, "update", "ordered")?.unwrap_or(true);
    let reply = WriteReply::new(true);
    write_statements(
        cmds,
        stmts,
        ordered,
        reply,
        move |txn, index, stmt, reply| {
            run_statement(txn, &ns, index, &parse_statement(stmt)?, reply)
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn statements_parse_and_refuse() {
        let code = |d: Document| parse_statement(&d).err().map(|e| e.code());
        assert_eq!(
            code(doc! {"q": {}, "u": {"$set": {"a": 1}}, "multi": true}),
            None
        );
        assert_eq!(code(doc! {"q": {}, "u": {"a": 1}, "multi": true}), Some(9));
        assert_eq!(
            code(doc! {"q": {}, "u": {"$set": {"a.$[x]": 1}}, "arrayFilters": [{"x": 1}]}),
            Some(238)
        );
        assert!(code(doc! {"q": {}, "u": {"$bogus": {"a": 1}}}).is_some());
    }

    #[test]
    fn upsert_builds_from_filter_and_update() {
        let filter =
            Filter::parse(&doc! {"a": 1, "b": {"$gt": 3}}).unwrap_or_else(|e| panic!("{e}"));
        let update = Update::parse_document(&doc! {"$set": {"c": 2}, "$setOnInsert": {"d": 4}})
            .unwrap_or_else(|e| panic!("{e}"));
        let doc = upsert_document(&update, &filter).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(doc.keys().next().map(String::as_str), Some("_id"));
        assert_eq!(doc.get_i32("a").ok(), Some(1));
        assert_eq!(doc.get_i32("c").ok(), Some(2));
        assert_eq!(doc.get_i32("d").ok(), Some(4));
        assert!(!doc.contains_key("b"));
    }

    #[test]
    fn an_upsert_keeps_the_filters_id() {
        let upsert = |filter: Document, update: Document| {
            let filter = Filter::parse(&filter).unwrap_or_else(|e| panic!("{e}"));
            let update = Update::parse_document(&update).unwrap_or_else(|e| panic!("{e}"));
            upsert_document(&update, &filter).map_err(|e| e.code())
        };
        // The filter's `_id`, whole or in part, cannot be changed by the update (66).
        assert_eq!(
            upsert(doc! {"_id": 12}, doc! {"$set": {"_id": 13}}),
            Err(66)
        );
        assert_eq!(
            upsert(doc! {"_id": 14}, doc! {"$setOnInsert": {"_id": 15}}),
            Err(66)
        );
        assert_eq!(upsert(doc! {"_id": 10}, doc! {"_id": 11, "b": 3}), Err(66));
        assert_eq!(
            upsert(doc! {"_id.a": 4}, doc! {"$setOnInsert": {"_id.b": 1}}),
            Err(66)
        );
        assert_eq!(
            upsert(doc! {"_id": 12}, doc! {"$set": {"_id": 12, "x": 1}}),
            Ok(doc! {"_id": 12, "x": 1})
        );
        // Without one in the filter, the update may set it.
        assert_eq!(
            upsert(doc! {"a": 1}, doc! {"$set": {"_id": 5}}),
            Ok(doc! {"_id": 5, "a": 1})
        );
        // A replacement takes only `_id` from the filter, so overlapping paths elsewhere are
        // no conflict; a whole `_id` wins over its subfields.
        assert_eq!(
            upsert(
                doc! {"r": {"a": 1, "b": 1}, "r.a": 1, "_id": 3},
                doc! {"y": 1}
            ),
            Ok(doc! {"_id": 3, "y": 1})
        );
        assert_eq!(
            upsert(doc! {"_id": {"a": 1, "b": 1}, "_id.a": 1}, doc! {"y": 1}),
            Ok(doc! {"_id": {"a": 1, "b": 1}, "y": 1})
        );
        assert_eq!(
            upsert(doc! {"_id.a": 1, "z": 2}, doc! {"y": 1}),
            Ok(doc! {"_id": {"a": 1}, "y": 1})
        );
    }
}
