//! The `$unwind` stage.

use bson::{Bson, Document};

use super::stages::{remove, set_overwriting};
use crate::error::{QueryError, QueryResult};
use crate::path;
use crate::types::type_alias;

/// A parsed `$unwind` specification.
#[derive(Debug, Clone)]
pub(super) struct Unwind {
    parts: Vec<String>,
    /// The path of `includeArrayIndex` (a dotted name nests, as for the unwound field).
    include_array_index: Option<Vec<String>>,
    preserve_null_and_empty: bool,
}

fn unwind_path(path: &str) -> QueryResult<Vec<String>> {
    match path.strip_prefix('$') {
        Some(p) if !p.is_empty() => Ok(path::split(p)),
        _ => Err(QueryError::location(
            28818,
            format!("path option to $unwind stage should be prefixed with a '$': {path}"),
        )),
    }
}

pub(super) fn parse_unwind(spec: &Bson) -> QueryResult<Unwind> {
    match spec {
        Bson::String(p) => Ok(Unwind {
            parts: unwind_path(p)?,
            include_array_index: None,
            preserve_null_and_empty: false,
        }),
        Bson::Document(d) => {
            let mut unwind = Unwind {
                parts: Vec::new(),
                include_array_index: None,
                preserve_null_and_empty: false,
            };
            for (key, value) in d {
                match (key.as_str(), value) {
                    ("path", Bson::String(p)) => unwind.parts = unwind_path(p)?,
                    ("path", other) => {
                        return Err(QueryError::location(
                            28808,
                            format!(
                                "expected a string as the path for $unwind stage, got {}",
                                type_alias(other)
                            ),
                        ));
                    }
                    ("includeArrayIndex", Bson::String(name)) if !name.is_empty() => {
                        if name.starts_with('$') {
                            return Err(QueryError::location(
                                28822,
                                format!(
                                    "includeArrayIndex option to $unwind stage should not be \
                                     prefixed with a '$': {name}"
                                ),
                            ));
                        }
                        unwind.include_array_index = Some(path::split(name));
                    }
                    ("includeArrayIndex", _) => {
                        return Err(QueryError::location(
                            28810,
                            "expected a non-empty string for the includeArrayIndex  option to \
                             $unwind stage",
                        ));
                    }
                    ("preserveNullAndEmptyArrays", Bson::Boolean(b)) => {
                        unwind.preserve_null_and_empty = *b;
                    }
                    ("preserveNullAndEmptyArrays", _) => {
                        return Err(QueryError::location(
                            28809,
                            "expected a boolean for the preserveNullAndEmptyArrays option to \
                             $unwind stage",
                        ));
                    }
                    (other, _) => {
                        return Err(QueryError::location(
                            28811,
                            format!("unrecognized option to $unwind stage: {other}"),
                        ));
                    }
                }
            }
            if unwind.parts.is_empty() {
                return Err(QueryError::location(
                    28812,
                    "no path specified to $unwind stage",
                ));
            }
            Ok(unwind)
        }
        other => Err(QueryError::location(
            15981,
            format!(
                "expected either a string or an object as specification for $unwind stage, got {}",
                type_alias(other)
            ),
        )),
    }
}

/// The value `$unwind` addresses: documents only, no implicit array traversal.
fn nested<'a>(doc: &'a Document, parts: &[String]) -> Option<&'a Bson> {
    let (head, rest) = parts.split_first()?;
    let mut current = doc.get(head)?;
    for part in rest {
        current = match current {
            Bson::Document(d) => d.get(part)?,
            _ => return None,
        };
    }
    Some(current)
}

pub(super) fn unwind(doc: Document, spec: &Unwind) -> Vec<Document> {
    let with_index = |mut d: Document, index: Bson| {
        if let Some(index_path) = &spec.include_array_index {
            set_overwriting(&mut d, index_path, index);
        }
        d
    };
    match nested(&doc, &spec.parts).cloned() {
        Some(Bson::Array(items)) if !items.is_empty() => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let mut out = doc.clone();
                set_overwriting(&mut out, &spec.parts, item);
                with_index(out, Bson::Int64(i64::try_from(i).unwrap_or(i64::MAX)))
            })
            .collect(),
        Some(Bson::Array(_)) if spec.preserve_null_and_empty => {
            // An empty array is dropped from the preserved document.
            let mut out = doc;
            remove(&mut out, &spec.parts);
            vec![with_index(out, Bson::Null)]
        }
        None | Some(Bson::Null | Bson::Undefined) if spec.preserve_null_and_empty => {
            vec![with_index(doc, Bson::Null)]
        }
        None | Some(Bson::Null | Bson::Undefined | Bson::Array(_)) => Vec::new(),
        // A non-array value unwinds as a one-element array.
        Some(_) => vec![with_index(doc, Bson::Null)],
    }
}
