//! `count` and `distinct`.

use bson::{Bson, Document, doc};
use rewind_query::distinct::Distinct;
use rewind_query::filter::Filter;
use rewind_wire::CommandRequest;

use crate::Commands;
use crate::error::{CommandError, Result};
use crate::hint::Hint;
use crate::options::{
    check_collation, check_fields, command_ns, get_doc, get_i64, get_non_negative, get_str,
};
use crate::reader::{for_each_match, stored_count};
use crate::reply::count_value;

/// `count`.
pub async fn count(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(
        body,
        "count",
        &["query", "limit", "skip", "hint", "collation", "fields"],
    )?;
    check_collation(body, "count")?;
    let ns = command_ns(&request.db, body, "count")?;
    let query = get_doc(body, "count", "query")?
        .cloned()
        .unwrap_or_default();
    let filter = Filter::parse(&query)?;
    let hint = Hint::parse(body)?;
    let skip = get_non_negative(body, "count", "skip")?.unwrap_or(0);
    // mongod treats a negative count limit like its absolute value.
    let limit = get_i64(body, "count", "limit")?
        .filter(|l| *l != 0)
        .map(i64::unsigned_abs);
    let n = cmds
        .blocking(move |engine| {
            let view = engine.read_view()?;
            if let Some(hint) = &hint {
                hint.check(view.collection(&ns))?;
            }
            let total = if filter.is_match_all() {
                stored_count(&view, &ns)?
            } else {
                let mut n = 0u64;
                for_each_match(&view, &ns, &filter, |_| {
                    n += 1;
                    Ok(limit.is_none_or(|l| n < l.saturating_add(skip)))
                })?;
                n
            };
            let after_skip = total.saturating_sub(skip);
            Ok(limit.map_or(after_skip, |l| after_skip.min(l)))
        })
        .await?;
    Ok(doc! {"n": count_value(n), "ok": 1.0})
}

/// `distinct`.
pub async fn distinct(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(body, "distinct", &["key", "query", "collation", "hint"])?;
    check_collation(body, "distinct")?;
    let ns = command_ns(&request.db, body, "distinct")?;
    let key = get_str(body, "distinct", "key")?
        .ok_or_else(|| CommandError::new_missing("distinct", "key"))?
        .to_owned();
    if key.is_empty() {
        return Err(CommandError::failed_to_parse(
            "FieldPath cannot be constructed with empty string",
        ));
    }
    let query = get_doc(body, "distinct", "query")?
        .cloned()
        .unwrap_or_default();
    let filter = Filter::parse(&query)?;
    let hint = Hint::parse(body)?;
    let values = cmds
        .blocking(move |engine| {
            let view = engine.read_view()?;
            if let Some(hint) = &hint {
                hint.check(view.collection(&ns))?;
            }
            let mut distinct = Distinct::new(&key);
            for_each_match(&view, &ns, &filter, |doc| {
                distinct.add(&doc);
                Ok(true)
            })?;
            Ok(distinct.finish())
        })
        .await?;
    Ok(doc! {"values": Bson::Array(values), "ok": 1.0})
}
