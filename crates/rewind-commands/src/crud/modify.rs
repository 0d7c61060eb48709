//! `findAndModify`: find one document (optionally sorted), update or remove it atomically.

use bson::{Bson, Document, doc};
use rewind_query::filter::Filter;
use rewind_query::projection::Projection;
use rewind_query::sort::SortSpec;
use rewind_wire::CommandRequest;

use super::update::{apply_update, parse_update, upsert_document};
use super::{check_writable, stored_form};
use crate::Commands;
use crate::error::{CommandError, Result};
use crate::options::{check_collation, check_fields, command_ns, get_bool, get_doc};
use crate::reader::matching;

const FIELDS: &[&str] = &[
    "query",
    "sort",
    "remove",
    "update",
    "new",
    "fields",
    "upsert",
    "bypassDocumentValidation",
    "collation",
    "arrayFilters",
    "hint",
    "let",
];

/// `findAndModify`.
pub async fn find_and_modify(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    let cmd = "findAndModify";
    check_fields(body, cmd, FIELDS)?;
    check_collation(body, cmd)?;
    if body.contains_key("let") {
        return Err(CommandError::not_implemented(
            "findAndModify option 'let' is not supported by rewind",
        ));
    }
    let ns = command_ns(&request.db, body, cmd)?;
    check_writable(&ns)?;
    let filter = Filter::parse(&get_doc(body, cmd, "query")?.cloned().unwrap_or_default())?;
    let sort = SortSpec::parse(&get_doc(body, cmd, "sort")?.cloned().unwrap_or_default())?;
    let fields = Projection::parse(&get_doc(body, cmd, "fields")?.cloned().unwrap_or_default())?;
    let remove = get_bool(body, cmd, "remove")?.unwrap_or(false);
    let return_new = get_bool(body, cmd, "new")?.unwrap_or(false);
    let upsert = get_bool(body, cmd, "upsert")?.unwrap_or(false);
    let update = match (remove, body.get("update")) {
        (true, Some(_)) => {
            return Err(CommandError::failed_to_parse(
                "Cannot specify both an update and remove=true",
            ));
        }
        (true, None) => {
            if upsert || return_new {
                return Err(CommandError::failed_to_parse(
                    "Cannot specify both upsert=true and remove=true or new=true and remove=true",
                ));
            }
            None
        }
        (false, None) => {
            return Err(CommandError::failed_to_parse(
                "Either an update or remove=true must be specified",
            ));
        }
        (false, u) => Some(parse_update(
            u,
            body.get("arrayFilters"),
            "findAndModify.update",
        )?),
    };
    let (value, last_error) = cmds
        .blocking(move |engine| {
            engine
                .write(|txn| {
                    let mut run = || -> Result<(Option<Document>, Document)> {
                        let limit = if sort.is_empty() { 1 } else { 0 };
                        let mut docs = matching(txn, &ns, &filter, limit)?;
                        sort.sort(&mut docs);
                        let found = docs.into_iter().next();
                        let Some(update) = &update else {
                            let Some(doc) = found else {
                                return Ok((None, doc! {"n": 0}));
                            };
                            let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
                            txn.delete(&ns, &id)?;
                            return Ok((Some(doc), doc! {"n": 1}));
                        };
                        match found {
                            Some(doc) => {
                                let (mut new, changed) = apply_update(update, &filter, &doc)?;
                                if changed {
                                    let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
                                    let raw = stored_form(txn, &mut new, update.is_replacement())?;
                                    txn.update(&ns, &id, &raw)?;
                                }
                                let value = if return_new { new } else { doc };
                                Ok((Some(value), doc! {"n": 1, "updatedExisting": true}))
                            }
                            None if upsert => {
                                let mut new = upsert_document(update, &filter)?;
                                // Filled here, so that the document returned is the one stored.
                                let raw = stored_form(txn, &mut new, true)?;
                                txn.insert(&ns, &raw)?;
                                let id = new.get("_id").cloned().unwrap_or(Bson::Null);
                                let value = return_new.then_some(new);
                                Ok((
                                    value,
                                    doc! {"n": 1, "updatedExisting": false, "upserted": id},
                                ))
                            }
                            None => Ok((None, doc! {"n": 0, "updatedExisting": false})),
                        }
                    };
                    // Command errors abort the transaction: carry them out through the engine.
                    Ok(run())
                })
                .map_err(CommandError::from)?
        })
        .await?;
    let value = match value {
        Some(doc) => Bson::Document(fields.apply(&doc)?),
        None => Bson::Null,
    };
    Ok(doc! {"lastErrorObject": last_error, "value": value, "ok": 1.0})
}
