//! Array update operators: `$push`, `$addToSet`, `$pull`, `$pullAll`, `$pop`.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::apply::id_desc;
use super::{PullCond, PushSort, PushSpec, Target, paths};
use crate::compare::{compare, values_equal};
use crate::error::{QueryError, QueryResult};
use crate::types::type_alias;

fn field_name<'t>(u: &'t Target<'_>) -> &'t str {
    u.parts.last().map_or("", String::as_str)
}

pub(super) fn push(doc: &mut Document, u: &Target<'_>, spec: &PushSpec) -> QueryResult<()> {
    let desc = id_desc(doc);
    match paths::get_mut(doc, &u.parts) {
        Some(Bson::Array(items)) => {
            apply_push(items, spec);
            Ok(())
        }
        Some(other) => Err(QueryError::bad_value(format!(
            "The field '{}' must be an array but is of type {} in document {desc}",
            field_name(u),
            type_alias(other)
        ))),
        None => {
            paths::check_viable(doc, &u.parts)?;
            let mut items = Vec::new();
            apply_push(&mut items, spec);
            paths::set(doc, &u.parts, Bson::Array(items))
        }
    }
}

/// Inserts at `$position`, then sorts, then slices, as the server orders them.
fn apply_push(items: &mut Vec<Bson>, spec: &PushSpec) {
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let at = match spec.position {
        None => len,
        Some(p) if p >= 0 => p.min(len),
        Some(p) => (len + p).max(0),
    };
    let at = usize::try_from(at).unwrap_or(items.len()).min(items.len());
    items.splice(at..at, spec.each.iter().cloned());
    match &spec.sort {
        Some(PushSort::Whole { descending }) => {
            items.sort_by(|a, b| order(compare(a, b), *descending));
        }
        Some(PushSort::Fields(sort)) => {
            let empty = Document::new();
            let as_doc = |b: &Bson| -> Document {
                match b {
                    Bson::Document(d) => d.clone(),
                    _ => empty.clone(),
                }
            };
            items.sort_by(|a, b| sort.compare(&as_doc(a), &as_doc(b)));
        }
        None => {}
    }
    if let Some(n) = spec.slice {
        let keep = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
        if n >= 0 {
            items.truncate(keep);
        } else if items.len() > keep {
            items.drain(..items.len() - keep);
        }
    }
}

fn order(ord: Ordering, descending: bool) -> Ordering {
    if descending { ord.reverse() } else { ord }
}

pub(super) fn add_to_set(doc: &mut Document, u: &Target<'_>, values: &[Bson]) -> QueryResult<()> {
    let add = |items: &mut Vec<Bson>| {
        for v in values {
            if !items.iter().any(|e| values_equal(e, v)) {
                items.push(v.clone());
            }
        }
    };
    match paths::get_mut(doc, &u.parts) {
        Some(Bson::Array(items)) => {
            add(items);
            Ok(())
        }
        Some(other) => Err(QueryError::bad_value(format!(
            "Cannot apply $addToSet to non-array field. Field named '{}' has non-array type {}",
            field_name(u),
            type_alias(other)
        ))),
        None => {
            paths::check_viable(doc, &u.parts)?;
            let mut items = Vec::new();
            add(&mut items);
            paths::set(doc, &u.parts, Bson::Array(items))
        }
    }
}

pub(super) fn pull_matches(cond: &PullCond, element: &Bson) -> bool {
    match cond {
        PullCond::Equal(v) => values_equal(v, element),
        PullCond::Value(filter) => {
            let mut wrapper = Document::new();
            wrapper.insert("v", element.clone());
            filter.matches(&wrapper)
        }
        PullCond::Query(filter) => matches!(element, Bson::Document(d) if filter.matches(d)),
    }
}

pub(super) fn pull(
    doc: &mut Document,
    u: &Target<'_>,
    remove: impl Fn(&Bson) -> bool,
) -> QueryResult<()> {
    match paths::get_mut(doc, &u.parts) {
        Some(Bson::Array(items)) => {
            items.retain(|e| !remove(e));
            Ok(())
        }
        Some(_) => Err(QueryError::bad_value(
            "Cannot apply $pull to a non-array value",
        )),
        None => Ok(()),
    }
}

pub(super) fn pop(doc: &mut Document, u: &Target<'_>, first: bool) -> QueryResult<()> {
    match paths::get_mut(doc, &u.parts) {
        Some(Bson::Array(items)) => {
            if first {
                if !items.is_empty() {
                    items.remove(0);
                }
            } else {
                items.pop();
            }
            Ok(())
        }
        Some(other) => Err(QueryError::type_mismatch(format!(
            "Path '{}' contains an element of non-array type '{}'",
            u.path,
            type_alias(other)
        ))),
        None => Ok(()),
    }
}
