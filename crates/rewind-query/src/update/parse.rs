//! Update document → [`Update`].

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::{FieldUpdate, PullCond, PushSort, PushSpec, Update, UpdateOp};
use crate::compare::Num;
use crate::error::{QueryError, QueryResult};
use crate::filter::{Filter, starts_with_value_operator};
use crate::path::{self, array_index};
use crate::sort::SortSpec;
use crate::types::type_alias;

pub(super) fn parse(update: &Bson) -> QueryResult<Update> {
    match update {
        Bson::Document(d) => parse_document(d),
        Bson::Array(_) => Err(QueryError::not_implemented(
            "pipeline-style updates are not supported by this server",
        )),
        _ => Err(QueryError::failed_to_parse(
            "Update argument must be either an object or an array",
        )),
    }
}

pub(super) fn parse_document(update: &Document) -> QueryResult<Update> {
    let is_operators = update.keys().next().is_some_and(|k| k.starts_with('$'));
    if !is_operators {
        if let Some(bad) = update.keys().find(|k| k.starts_with('$')) {
            return Err(QueryError::new(
                52,
                "DollarPrefixedFieldName",
                format!(
                    "The dollar ($) prefixed field '{bad}' in '{bad}' is not allowed in the \
                     context of an update's replacement document. Consider using an aggregation \
                     pipeline with $replaceWith."
                ),
            ));
        }
        return Ok(Update::Replacement(update.clone()));
    }
    let mut updates = Vec::new();
    for (op, arg) in update {
        let Bson::Document(fields) = arg else {
            return Err(QueryError::failed_to_parse(format!(
                "Modifiers operate on fields but we found type {} instead. For example: {{$mod: \
                 {{<field>: ...}}}} not {{{op}: {arg}}}",
                type_alias(arg)
            )));
        };
        // Since 5.0 an empty operand (`{$set: {}}`) is a no-op, not an error.
        for (field, value) in fields {
            let parts = validate_path(field)?;
            let op = parse_op(op, field, value)?;
            updates.push(FieldUpdate {
                path: field.clone(),
                parts,
                op,
            });
        }
    }
    check_conflicts(&updates)?;
    // Since 5.0 the server applies updates in lexicographic path order
    // (numeric components numerically), which fixes where new fields land.
    updates.sort_by(|a, b| compare_paths(&a.parts, &b.parts));
    Ok(Update::Operators(updates))
}

fn validate_path(field: &str) -> QueryResult<Vec<String>> {
    let parts = path::split(field);
    if parts.iter().any(String::is_empty) {
        return Err(QueryError::new(
            56,
            "EmptyFieldName",
            format!(
                "The update path '{field}' contains an empty field name, which is not allowed."
            ),
        ));
    }
    if parts.first().is_some_and(|p| p.starts_with('$')) {
        return Err(QueryError::bad_value(format!(
            "Cannot have positional (i.e. '$') element in the first position in path '{field}'"
        )));
    }
    if parts.iter().filter(|p| *p == "$").count() > 1 {
        return Err(QueryError::bad_value(format!(
            "Too many positional (i.e. '$') elements found in path '{field}'"
        )));
    }
    if let Some(other) = parts
        .iter()
        .find(|p| p.starts_with('$') && *p != "$" && *p != "$[]")
    {
        return Err(QueryError::not_implemented(format!(
            "'{other}' in update path '{field}' is not supported by this server (array filters \
             and $-prefixed field names)"
        )));
    }
    Ok(parts)
}

fn compare_paths(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ord = match (array_index(x), array_index(y)) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

/// Two operators may not touch the same path or a path and its prefix.
fn check_conflicts(updates: &[FieldUpdate]) -> QueryResult<()> {
    let mut touched: Vec<(&str, &[String])> = Vec::new();
    for u in updates {
        touched.push((&u.path, &u.parts));
        if let UpdateOp::Rename { to, to_parts } = &u.op {
            touched.push((to, to_parts));
        }
    }
    for (i, (path_a, parts_a)) in touched.iter().enumerate() {
        for (path_b, parts_b) in &touched[..i] {
            let shared = parts_a.len().min(parts_b.len());
            if parts_a[..shared] == parts_b[..shared] {
                let conflict = if parts_a.len() <= parts_b.len() {
                    path_a
                } else {
                    path_b
                };
                return Err(QueryError::conflicting_update_operators(format!(
                    "Updating the path '{path_a}' would create a conflict at '{conflict}'"
                )));
            }
        }
    }
    Ok(())
}

fn parse_op(op: &str, field: &str, value: &Bson) -> QueryResult<UpdateOp> {
    Ok(match op {
        "$set" => UpdateOp::Set(value.clone()),
        "$setOnInsert" => UpdateOp::SetOnInsert(value.clone()),
        "$unset" => UpdateOp::Unset,
        "$inc" | "$mul" => {
            if Num::of(value).is_none() {
                let verb = if op == "$inc" {
                    "increment"
                } else {
                    "multiply"
                };
                return Err(QueryError::type_mismatch(format!(
                    "Cannot {verb} with non-numeric argument: {{{field}: {value}}}"
                )));
            }
            if op == "$inc" {
                UpdateOp::Inc(value.clone())
            } else {
                UpdateOp::Mul(value.clone())
            }
        }
        "$min" => UpdateOp::Min(value.clone()),
        "$max" => UpdateOp::Max(value.clone()),
        "$currentDate" => parse_current_date(value)?,
        "$rename" => parse_rename(field, value)?,
        "$push" => UpdateOp::Push(parse_push(value)?),
        "$addToSet" => UpdateOp::AddToSet(parse_add_to_set(value)?),
        "$pull" => UpdateOp::Pull(parse_pull(value)?),
        "$pullAll" => match value {
            Bson::Array(items) => UpdateOp::PullAll(items.clone()),
            other => {
                return Err(QueryError::bad_value(format!(
                    "$pullAll requires an array argument but was given a {}",
                    type_alias(other)
                )));
            }
        },
        "$pop" => match Num::of(value).map(Num::as_f64) {
            Some(1.0) => UpdateOp::Pop { first: false },
            Some(-1.0) => UpdateOp::Pop { first: true },
            _ => {
                return Err(QueryError::failed_to_parse(format!(
                    "$pop expects 1 or -1, found: {value}"
                )));
            }
        },
        "$bit" => {
            return Err(QueryError::not_implemented(
                "$bit is not supported by this server",
            ));
        }
        _ => {
            return Err(QueryError::failed_to_parse(format!(
                "Unknown modifier: {op}. Expected a valid update modifier or pipeline-style \
                 update specified as an array"
            )));
        }
    })
}

fn parse_current_date(value: &Bson) -> QueryResult<UpdateOp> {
    match value {
        Bson::Boolean(_) => Ok(UpdateOp::CurrentDate { timestamp: false }),
        Bson::Document(spec) => match (spec.len(), spec.get("$type")) {
            (1, Some(Bson::String(t))) if t == "date" => {
                Ok(UpdateOp::CurrentDate { timestamp: false })
            }
            (1, Some(Bson::String(t))) if t == "timestamp" => {
                Ok(UpdateOp::CurrentDate { timestamp: true })
            }
            _ => Err(QueryError::bad_value(
                "The '$type' string field is required to be 'date' or 'timestamp': \
                 {$currentDate: {field : {$type: 'date'}}}",
            )),
        },
        other => Err(QueryError::bad_value(format!(
            "{} is not valid type for $currentDate. Please use a boolean ('true') or a $type \
             expression ({{$type: 'timestamp/date'}}).",
            type_alias(other)
        ))),
    }
}

fn parse_rename(field: &str, value: &Bson) -> QueryResult<UpdateOp> {
    let Bson::String(to) = value else {
        return Err(QueryError::bad_value(format!(
            "The 'to' field for $rename must be a string: {field}: {value}"
        )));
    };
    let to_parts = validate_path(to)?;
    if field
        .split('.')
        .chain(to_parts.iter().map(String::as_str))
        .any(|p| p.starts_with('$'))
    {
        return Err(QueryError::bad_value(format!(
            "The source and target field for $rename may not be dynamic: {field}: \"{to}\""
        )));
    }
    if to == field {
        return Err(QueryError::bad_value(format!(
            "The source and target field for $rename must differ: {field}: \"{to}\""
        )));
    }
    let from_parts = path::split(field);
    let shared = from_parts.len().min(to_parts.len());
    if from_parts[..shared] == to_parts[..shared] {
        return Err(QueryError::bad_value(format!(
            "The source and target field for $rename must not be on the same path: {field}: \"{to}\""
        )));
    }
    Ok(UpdateOp::Rename {
        to: to.clone(),
        to_parts,
    })
}

fn whole_number(value: &Bson) -> Option<i64> {
    match Num::of(value)? {
        Num::Int(i) => Some(i),
        // Range-checked: the value is integral and within i64.
        #[allow(clippy::cast_possible_truncation)]
        Num::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(f as i64),
        _ => None,
    }
}

fn parse_push(value: &Bson) -> QueryResult<PushSpec> {
    let mods = match value {
        Bson::Document(d) if d.contains_key("$each") => d,
        other => {
            return Ok(PushSpec {
                each: vec![other.clone()],
                position: None,
                slice: None,
                sort: None,
            });
        }
    };
    let mut spec = PushSpec {
        each: Vec::new(),
        position: None,
        slice: None,
        sort: None,
    };
    for (key, arg) in mods {
        match key.as_str() {
            "$each" => match arg {
                Bson::Array(items) => spec.each.clone_from(items),
                other => {
                    return Err(QueryError::bad_value(format!(
                        "The argument to $each in $push must be an array but it was of type: {}",
                        type_alias(other)
                    )));
                }
            },
            "$slice" => {
                spec.slice = Some(whole_number(arg).ok_or_else(|| {
                    QueryError::bad_value(format!(
                        "The value for $slice must be an integer value but was given type: {}",
                        type_alias(arg)
                    ))
                })?);
            }
            "$position" => {
                spec.position = Some(whole_number(arg).ok_or_else(|| {
                    QueryError::bad_value(format!(
                        "The value for $position must be an integer value, not of type: {}",
                        type_alias(arg)
                    ))
                })?);
            }
            "$sort" => spec.sort = Some(parse_push_sort(arg)?),
            other => {
                return Err(QueryError::bad_value(format!(
                    "Unrecognized clause in $push: {other}"
                )));
            }
        }
    }
    Ok(spec)
}

fn parse_push_sort(arg: &Bson) -> QueryResult<PushSort> {
    let invalid = || {
        QueryError::bad_value(
            "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort \
             embedded fields",
        )
    };
    match arg {
        Bson::Document(spec) => {
            if spec.is_empty() {
                return Err(invalid());
            }
            SortSpec::parse(spec)
                .map(PushSort::Fields)
                .map_err(|_| invalid())
        }
        other => match Num::of(other).map(Num::as_f64) {
            Some(1.0) => Ok(PushSort::Whole { descending: false }),
            Some(-1.0) => Ok(PushSort::Whole { descending: true }),
            _ => Err(invalid()),
        },
    }
}

fn parse_add_to_set(value: &Bson) -> QueryResult<Vec<Bson>> {
    match value {
        Bson::Document(d) if d.contains_key("$each") => {
            if d.len() != 1 {
                return Err(QueryError::bad_value(
                    "Found unexpected fields after $each in $addToSet",
                ));
            }
            match d.get("$each") {
                Some(Bson::Array(items)) => Ok(items.clone()),
                Some(other) => Err(QueryError::type_mismatch(format!(
                    "The argument to $each in $addToSet must be an array but it was of type {}",
                    type_alias(other)
                ))),
                None => Ok(Vec::new()),
            }
        }
        other => Ok(vec![other.clone()]),
    }
}

fn parse_pull(value: &Bson) -> QueryResult<PullCond> {
    // Operators on the element itself (`{$gte: 6}`) select the value form; a query, which
    // may start with a logical operator (`{$or: [...]}`), is matched against each
    // document element.
    match value {
        Bson::Document(d) if starts_with_value_operator(d) => {
            let mut wrapped = Document::new();
            wrapped.insert("v", value.clone());
            Ok(PullCond::Value(Box::new(Filter::parse(&wrapped)?)))
        }
        Bson::Document(d) => Ok(PullCond::Query(Box::new(Filter::parse(d)?))),
        Bson::RegularExpression(_) => {
            let mut wrapped = Document::new();
            wrapped.insert("v", value.clone());
            Ok(PullCond::Value(Box::new(Filter::parse(&wrapped)?)))
        }
        other => Ok(PullCond::Equal(other.clone())),
    }
}
