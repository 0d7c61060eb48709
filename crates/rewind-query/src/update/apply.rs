//! Applying a parsed [`Update`] to a document.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::{Target, Update, UpdateContext, UpdateOp, array_ops, paths};
use crate::arith::{self, ArithError};
use crate::compare::{compare, documents_identical, identical};
use crate::error::{QueryError, QueryResult};
use crate::path::get_exact;
use crate::types::type_alias;

pub(super) fn apply(update: &Update, doc: &mut Document, ctx: &UpdateContext) -> QueryResult<bool> {
    let before = doc.clone();
    match update {
        Update::Replacement(replacement) => replace(doc, replacement)?,
        Update::Operators(updates) => {
            // Positional paths are resolved against the document as it was, as the server
            // builds its update tree; only then can two of them be seen to meet.
            let mut targets = Vec::new();
            for u in updates {
                targets.extend(paths::resolve(doc, u, ctx.positional_index)?);
            }
            if updates
                .iter()
                .any(|u| u.parts.iter().any(|p| p == "$" || p == "$[]"))
            {
                check_resolved_conflicts(&targets)?;
            }
            for target in &targets {
                apply_one(target, doc, ctx)?;
            }
            // An upsert's `_id` from the filter is as immutable as a stored one.
            if let Some(old_id) = before.get("_id")
                && !doc
                    .get("_id")
                    .is_some_and(|new_id| identical(old_id, new_id))
            {
                return Err(QueryError::immutable_field(
                    "Performing an update on the path '_id' would modify the immutable field '_id'",
                ));
            }
        }
    }
    if ctx.is_upsert_insert {
        move_id_first(doc);
    }
    if let Some(Bson::Array(_)) = doc.get("_id") {
        return Err(QueryError::new(
            53,
            "InvalidIdField",
            "The '_id' value cannot be of type array",
        ));
    }
    Ok(!documents_identical(&before, doc))
}

/// Two resolved paths that are the same or one inside the other (`a.$` and `a.0` once the
/// query matched element 0) would update one place twice: code 40, as the parse-time check
/// gives for literal paths. In component order a path sorts right before its extensions,
/// so comparing neighbours finds every such pair.
fn check_resolved_conflicts(targets: &[Target<'_>]) -> QueryResult<()> {
    let mut sorted: Vec<&[String]> = targets.iter().map(|t| t.parts.as_slice()).collect();
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        let (shorter, longer) = (pair[0], pair[1]);
        if longer.starts_with(shorter) {
            return Err(QueryError::conflicting_update_operators(format!(
                "Update created a conflict at '{}'",
                shorter.join(".")
            )));
        }
    }
    Ok(())
}

/// Replaces everything but `_id`, which keeps its value and leads the document.
fn replace(doc: &mut Document, replacement: &Document) -> QueryResult<()> {
    let old_id = doc.get("_id").cloned();
    if let (Some(old), Some(new)) = (&old_id, replacement.get("_id"))
        && !identical(old, new)
    {
        return Err(QueryError::immutable_field(format!(
            "After applying the update, the (immutable) field '_id' was found to have been \
             altered to _id: {new}"
        )));
    }
    let mut out = Document::new();
    if let Some(id) = replacement.get("_id").cloned().or(old_id) {
        out.insert("_id", id);
    }
    for (k, v) in replacement {
        if k != "_id" {
            out.insert(k.clone(), v.clone());
        }
    }
    *doc = out;
    Ok(())
}

fn move_id_first(doc: &mut Document) {
    if let Some(id) = doc.remove("_id") {
        let mut out = Document::new();
        out.insert("_id", id);
        out.extend(std::mem::take(doc));
        *doc = out;
    }
}

/// `{_id: <value>}` as the server prints it in error messages.
pub(super) fn id_desc(doc: &Document) -> String {
    match doc.get("_id") {
        Some(id) => format!("{{_id: {id}}}"),
        None => "{}".to_owned(),
    }
}

fn apply_one(u: &Target<'_>, doc: &mut Document, ctx: &UpdateContext) -> QueryResult<()> {
    let parts = &u.parts;
    match &u.op {
        UpdateOp::Set(v) => paths::set(doc, parts, v.clone()),
        UpdateOp::SetOnInsert(v) if ctx.is_upsert_insert => paths::set(doc, parts, v.clone()),
        UpdateOp::SetOnInsert(_) => Ok(()),
        UpdateOp::Unset => {
            paths::unset(doc, parts);
            Ok(())
        }
        UpdateOp::Inc(arg) => arithmetic(u, doc, arg, "$inc", arith::add, arg.clone()),
        UpdateOp::Mul(arg) => {
            arithmetic(u, doc, arg, "$mul", arith::multiply, arith::zero_like(arg))
        }
        UpdateOp::Min(arg) | UpdateOp::Max(arg) => {
            let want = if matches!(u.op, UpdateOp::Min(_)) {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            match get_exact(doc, parts) {
                Some(current) if compare(arg, current) != want => Ok(()),
                _ => paths::set(doc, parts, arg.clone()),
            }
        }
        UpdateOp::CurrentDate { timestamp } => {
            let value = if *timestamp {
                let secs = ctx.now.timestamp_millis().div_euclid(1000);
                Bson::Timestamp(bson::Timestamp {
                    time: u32::try_from(secs).unwrap_or(0),
                    increment: 1,
                })
            } else {
                Bson::DateTime(ctx.now)
            };
            paths::set(doc, parts, value)
        }
        UpdateOp::Rename { to, to_parts } => {
            if paths::crosses_array(doc, parts) {
                return Err(QueryError::bad_value(format!(
                    "The source field cannot be an array element, '{}' in doc with {}",
                    u.path,
                    id_desc(doc)
                )));
            }
            if paths::crosses_array(doc, to_parts) {
                return Err(QueryError::bad_value(format!(
                    "The destination field cannot be an array element, '{to}' in doc with {}",
                    id_desc(doc)
                )));
            }
            if get_exact(doc, parts).is_none() {
                return Ok(());
            }
            paths::check_viable(doc, to_parts)?;
            match paths::unset(doc, parts) {
                Some(value) => paths::set(doc, to_parts, value),
                None => Ok(()),
            }
        }
        UpdateOp::Push(spec) => array_ops::push(doc, u, spec),
        UpdateOp::AddToSet(values) => array_ops::add_to_set(doc, u, values),
        UpdateOp::Pull(cond) => array_ops::pull(doc, u, |e| array_ops::pull_matches(cond, e)),
        UpdateOp::PullAll(values) => array_ops::pull(doc, u, |e| {
            values.iter().any(|v| compare(v, e) == Ordering::Equal)
        }),
        UpdateOp::Pop { first } => array_ops::pop(doc, u, *first),
    }
}

/// `$inc` / `$mul`: numeric fields only; a missing field is set to `missing`.
fn arithmetic(
    u: &Target<'_>,
    doc: &mut Document,
    arg: &Bson,
    op: &str,
    f: fn(&Bson, &Bson) -> Result<Bson, ArithError>,
    missing: Bson,
) -> QueryResult<()> {
    let result = match get_exact(doc, &u.parts) {
        None => missing,
        Some(current) => match f(current, arg) {
            Ok(v) => v,
            Err(ArithError::NotNumeric) => {
                let field = u.parts.last().map_or("", String::as_str);
                return Err(QueryError::type_mismatch(format!(
                    "Cannot apply {op} to a value of non-numeric type. {} has the field '{field}' \
                     of non-numeric type {}",
                    id_desc(doc),
                    type_alias(current)
                )));
            }
            Err(ArithError::Overflow) => {
                return Err(QueryError::bad_value(format!(
                    "Failed to apply {op} operations to current value ({current}) for document {}",
                    id_desc(doc)
                )));
            }
        },
    };
    paths::set(doc, &u.parts, result)
}
