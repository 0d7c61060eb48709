//! Pipeline stages: parsing and execution.

use bson::{Bson, Document};

use super::Foreign;
use super::compose::{Facet, UnionWith, parse_sort_by_count};
use super::expr::Expr;
use super::group::Group;
use super::lookup::Lookup;
use super::unwind::{Unwind, parse_unwind, unwind};
use crate::compare::Num;
use crate::error::{QueryError, QueryResult};
use crate::filter::Filter;
use crate::path;
use crate::projection::Projection;
use crate::sort::SortSpec;
use crate::types::type_alias;

/// One parsed pipeline stage.
#[derive(Debug, Clone)]
pub struct Stage {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Match(Filter),
    Project(Projection),
    AddFields(Vec<(Vec<String>, Expr)>),
    ReplaceRoot(Expr),
    Sort(SortSpec),
    Limit(usize),
    Skip(usize),
    Group(Group),
    Count(String),
    Unwind(Unwind),
    Lookup(Lookup),
    Facet(Facet),
    /// `$sortByCount`: its `$group`, then its `$sort`.
    SortByCount(Group, SortSpec),
    UnionWith(UnionWith),
}

/// Real stages this crate does not implement: rejected as unsupported rather
/// than as unknown names.
const UNSUPPORTED: &[&str] = &[
    "$out",
    "$merge",
    "$bucket",
    "$bucketAuto",
    "$sample",
    "$geoNear",
    "$graphLookup",
    "$indexStats",
    "$redact",
    "$densify",
    "$fill",
    "$setWindowFields",
    "$changeStream",
    "$currentOp",
    "$listSessions",
    "$planCacheStats",
    "$search",
    "$searchMeta",
    "$documents",
];

impl Stage {
    /// Parses one `{$stage: spec}` document.
    pub fn parse(stage: &Document) -> QueryResult<Stage> {
        let mut fields = stage.iter();
        let (Some((name, spec)), None) = (fields.next(), fields.next()) else {
            return Err(QueryError::location(
                40323,
                "A pipeline stage specification object must contain exactly one field.",
            ));
        };
        let kind = match name.as_str() {
            "$match" => match spec {
                Bson::Document(d) => Kind::Match(Filter::parse(d)?),
                _ => {
                    return Err(QueryError::location(
                        15959,
                        "the match filter must be an expression in an object",
                    ));
                }
            },
            "$project" => match spec {
                Bson::Document(d) if d.is_empty() => {
                    return Err(QueryError::location(
                        51272,
                        "Invalid $project :: caused by :: projection specification must have at \
                         least one field",
                    ));
                }
                Bson::Document(d) => Kind::Project(Projection::parse_aggregate(d)?),
                _ => {
                    return Err(QueryError::location(
                        15969,
                        "$project specification must be an object",
                    ));
                }
            },
            "$unset" => Kind::Project(parse_unset(spec)?),
            "$addFields" | "$set" => match spec {
                Bson::Document(d) => {
                    let mut out = Vec::new();
                    flatten_add_fields(d, &[], &mut out)?;
                    Kind::AddFields(out)
                }
                other => {
                    return Err(QueryError::location(
                        40272,
                        format!(
                            "{name} specification stage must be an object, got {}",
                            type_alias(other)
                        ),
                    ));
                }
            },
            "$replaceRoot" => match spec {
                Bson::Document(d) => match d.get("newRoot") {
                    Some(root) if d.len() == 1 => Kind::ReplaceRoot(Expr::parse(root)?),
                    _ => {
                        return Err(QueryError::location(
                            40231,
                            "no newRoot specified for the $replaceRoot stage",
                        ));
                    }
                },
                _ => {
                    return Err(QueryError::location(
                        40229,
                        "expected an object as specification for $replaceRoot stage",
                    ));
                }
            },
            "$replaceWith" => Kind::ReplaceRoot(Expr::parse(spec)?),
            "$sort" => match spec {
                Bson::Document(d) if d.is_empty() => {
                    return Err(QueryError::location(
                        15976,
                        "$sort stage must have at least one sort key",
                    ));
                }
                Bson::Document(d) => Kind::Sort(SortSpec::parse(d)?),
                _ => {
                    return Err(QueryError::location(
                        15973,
                        "the $sort key specification must be an object",
                    ));
                }
            },
            "$limit" => match whole(spec) {
                Some(n) if n > 0 => Kind::Limit(usize::try_from(n).unwrap_or(usize::MAX)),
                Some(_) => return Err(QueryError::location(15958, "the limit must be positive")),
                None => {
                    return Err(QueryError::location(
                        15957,
                        "the limit must be specified as a number",
                    ));
                }
            },
            "$skip" => match whole(spec) {
                Some(n) if n >= 0 => Kind::Skip(usize::try_from(n).unwrap_or(usize::MAX)),
                Some(_) => {
                    return Err(QueryError::location(
                        15956,
                        "Argument to $skip cannot be negative",
                    ));
                }
                None => {
                    return Err(QueryError::location(
                        15972,
                        "Argument to $skip must be a number",
                    ));
                }
            },
            "$group" => Kind::Group(Group::parse(spec)?),
            "$count" => Kind::Count(parse_count(spec)?),
            "$unwind" => Kind::Unwind(parse_unwind(spec)?),
            "$lookup" => Kind::Lookup(Lookup::parse(spec)?),
            "$facet" => Kind::Facet(Facet::parse(spec)?),
            "$sortByCount" => {
                let (group, sort) = parse_sort_by_count(spec)?;
                Kind::SortByCount(group, sort)
            }
            "$unionWith" => Kind::UnionWith(UnionWith::parse(spec)?),
            // The command layer answers a leading one; anywhere else mongod refuses it.
            "$collStats" => {
                return Err(QueryError::location(
                    40602,
                    "$collStats is only valid as the first stage in a pipeline",
                ));
            }
            other if UNSUPPORTED.contains(&other) => {
                return Err(QueryError::not_implemented(format!(
                    "the {other} stage is not supported by this server"
                )));
            }
            other => {
                return Err(QueryError::location(
                    40324,
                    format!("Unrecognized pipeline stage name: '{other}'"),
                ));
            }
        };
        Ok(Stage { kind })
    }

    /// The filter if this is a `$match` stage.
    pub fn as_match(&self) -> Option<&Filter> {
        match &self.kind {
            Kind::Match(f) => Some(f),
            _ => None,
        }
    }

    /// The sort spec if this is a `$sort` stage.
    pub fn as_sort(&self) -> Option<&SortSpec> {
        match &self.kind {
            Kind::Sort(s) => Some(s),
            _ => None,
        }
    }

    /// Runs the stage over its whole input, reading other collections through `foreign`.
    pub fn run_with(
        &self,
        docs: Vec<Document>,
        foreign: &dyn Foreign,
    ) -> QueryResult<Vec<Document>> {
        match &self.kind {
            Kind::Match(filter) => {
                let mut out = Vec::with_capacity(docs.len());
                for doc in docs {
                    if filter.try_matches(&doc)? {
                        out.push(doc);
                    }
                }
                Ok(out)
            }
            Kind::Project(projection) => docs.iter().map(|d| projection.apply(d)).collect(),
            Kind::AddFields(fields) => docs.into_iter().map(|d| add_fields(d, fields)).collect(),
            Kind::ReplaceRoot(expr) => docs
                .iter()
                .map(|d| match expr.evaluate(d)? {
                    Bson::Document(root) => Ok(root),
                    other => Err(QueryError::location(
                        40228,
                        format!(
                            "'replacement document' must evaluate to an object, but resulting \
                             value was: {other}. Type of resulting value: '{}'. Input document: {d}",
                            type_alias(&other)
                        ),
                    )),
                })
                .collect(),
            Kind::Sort(spec) => {
                let mut docs = docs;
                spec.sort(&mut docs);
                Ok(docs)
            }
            Kind::Limit(n) => Ok(docs.into_iter().take(*n).collect()),
            Kind::Skip(n) => Ok(docs.into_iter().skip(*n).collect()),
            Kind::Group(group) => group.run(docs),
            Kind::Count(name) => Ok(if docs.is_empty() {
                Vec::new()
            } else {
                let count = i32::try_from(docs.len())
                    .map_or_else(|_| Bson::Int64(i64::try_from(docs.len()).unwrap_or(i64::MAX)), Bson::Int32);
                let mut out = Document::new();
                out.insert(name.clone(), count);
                vec![out]
            }),
            Kind::Unwind(spec) => Ok(docs.into_iter().flat_map(|d| unwind(d, spec)).collect()),
            Kind::Lookup(lookup) => lookup.run(docs, foreign),
            Kind::Facet(facet) => facet.run(docs, foreign),
            Kind::SortByCount(group, sort) => {
                let mut counted = group.run(docs)?;
                sort.sort(&mut counted);
                Ok(counted)
            }
            Kind::UnionWith(union) => union.run(docs, foreign),
        }
    }
}

fn whole(value: &Bson) -> Option<i64> {
    match Num::of(value)? {
        Num::Int(i) => Some(i),
        // Range-checked integral double.
        #[allow(clippy::cast_possible_truncation)]
        Num::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(f as i64),
        _ => None,
    }
}

fn parse_unset(spec: &Bson) -> QueryResult<Projection> {
    let names: Vec<&Bson> = match spec {
        Bson::Array(items) if !items.is_empty() => items.iter().collect(),
        Bson::String(_) => vec![spec],
        _ => {
            return Err(QueryError::location(
                31002,
                "$unset specification must be a string or an array with at least one field",
            ));
        }
    };
    let mut projection = Document::new();
    for name in names {
        let Bson::String(field) = name else {
            return Err(QueryError::location(
                31120,
                "$unset specification must be a string or an array containing only string values",
            ));
        };
        projection.insert(field.clone(), 0);
    }
    Projection::parse_aggregate(&projection)
}

/// `$addFields: {a: {b: 1}}` sets `a.b`, merging into an existing `a`.
fn flatten_add_fields(
    spec: &Document,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Expr)>,
) -> QueryResult<()> {
    for (key, value) in spec {
        let mut parts = prefix.to_vec();
        parts.extend(path::split(key));
        match value {
            Bson::Document(d) if !d.is_empty() && !d.keys().any(|k| k.starts_with('$')) => {
                flatten_add_fields(d, &parts, out)?;
            }
            other => out.push((parts, Expr::parse(other)?)),
        }
    }
    Ok(())
}

fn add_fields(doc: Document, fields: &[(Vec<String>, Expr)]) -> QueryResult<Document> {
    // Every expression sees the input document, not earlier additions.
    let values = fields
        .iter()
        .map(|(_, e)| e.evaluate_opt(&doc))
        .collect::<QueryResult<Vec<_>>>()?;
    let mut out = doc;
    for ((parts, _), value) in fields.iter().zip(values) {
        set_computed(&mut out, parts, value.as_ref());
    }
    Ok(out)
}

/// Sets (or, for a missing value, removes) a computed dotted path as `$addFields` does:
/// a document on the way gets the field, an array gets it in each of its elements (nested
/// arrays too), and a missing field or any other value becomes a document holding it.
fn set_computed(doc: &mut Document, parts: &[String], value: Option<&Bson>) {
    let Some((head, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        match value {
            Some(v) => doc.insert(head.clone(), v.clone()),
            None => doc.remove(head),
        };
        return;
    }
    match doc.get_mut(head) {
        Some(existing) => set_computed_within(existing, rest, value),
        None => {
            let mut child = Document::new();
            set_computed(&mut child, rest, value);
            doc.insert(head.clone(), child);
        }
    }
}

fn set_computed_within(target: &mut Bson, parts: &[String], value: Option<&Bson>) {
    match target {
        Bson::Document(d) => set_computed(d, parts, value),
        Bson::Array(items) => {
            for item in items {
                set_computed_within(item, parts, value);
            }
        }
        other => {
            let mut d = Document::new();
            set_computed(&mut d, parts, value);
            *other = Bson::Document(d);
        }
    }
}

/// Sets a dotted path, replacing non-document intermediates (arrays too) with documents.
pub(super) fn set_overwriting(doc: &mut Document, parts: &[String], value: Bson) {
    let Some((head, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        doc.insert(head.clone(), value);
        return;
    }
    if !matches!(doc.get(head), Some(Bson::Document(_))) {
        doc.insert(head.clone(), Document::new());
    }
    if let Some(Bson::Document(child)) = doc.get_mut(head) {
        set_overwriting(child, rest, value);
    }
}

pub(super) fn remove(doc: &mut Document, parts: &[String]) {
    match parts.split_first() {
        Some((head, [])) => {
            doc.remove(head);
        }
        Some((head, rest)) => {
            if let Some(Bson::Document(child)) = doc.get_mut(head) {
                remove(child, rest);
            }
        }
        None => {}
    }
}

fn parse_count(spec: &Bson) -> QueryResult<String> {
    match spec {
        Bson::String(name) if !name.is_empty() => {
            if name.starts_with('$') {
                return Err(QueryError::location(
                    40158,
                    "the count field cannot be a $-prefixed path",
                ));
            }
            if name.contains('.') {
                return Err(QueryError::location(
                    40160,
                    "the count field cannot contain '.'",
                ));
            }
            Ok(name.clone())
        }
        _ => Err(QueryError::location(
            40156,
            "the count field must be a non-empty string",
        )),
    }
}
