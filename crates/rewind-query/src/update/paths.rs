//! Path navigation for updates: exact addressing (no implicit array
//! traversal), creating intermediate documents, padding arrays with nulls.

use bson::{Bson, Document};

use super::{FieldUpdate, Target};
use crate::error::{QueryError, QueryResult};
use crate::path::{array_index, get_exact};

/// The most nulls the server will pad an array with when setting `a.<n>`.
const MAX_BACKFILL: usize = 1_500_000;

/// Sets `parts` in `doc` to `value`, creating missing intermediate documents.
pub(crate) fn set(doc: &mut Document, parts: &[String], value: Bson) -> QueryResult<()> {
    let Some((head, rest)) = parts.split_first() else {
        return Ok(());
    };
    if rest.is_empty() {
        doc.insert(head.clone(), value);
        return Ok(());
    }
    if !doc.contains_key(head) {
        doc.insert(head.clone(), Document::new());
    }
    match doc.get_mut(head) {
        Some(child) => set_in(child, head, rest, value),
        None => Ok(()),
    }
}

fn set_in(current: &mut Bson, name: &str, parts: &[String], value: Bson) -> QueryResult<()> {
    let Some((head, rest)) = parts.split_first() else {
        *current = value;
        return Ok(());
    };
    match current {
        Bson::Document(d) => set(d, parts, value),
        Bson::Array(items) => {
            let Some(index) = array_index(head) else {
                return Err(not_viable(head, name, current));
            };
            if index >= items.len() {
                if index - items.len() > MAX_BACKFILL {
                    return Err(QueryError::bad_value(format!(
                        "can't backfill array to larger than {MAX_BACKFILL} elements"
                    )));
                }
                items.resize(index, Bson::Null);
                items.push(if rest.is_empty() {
                    Bson::Null
                } else {
                    Bson::Document(Document::new())
                });
            }
            match items.get_mut(index) {
                Some(slot) => set_in(slot, head, rest, value),
                None => Ok(()),
            }
        }
        _ => Err(not_viable(head, name, current)),
    }
}

fn not_viable(field: &str, parent_name: &str, parent: &Bson) -> QueryError {
    QueryError::path_not_viable(format!(
        "Cannot create field '{field}' in element {{{parent_name}: {parent}}}"
    ))
}

/// Checks that `parts` could be created in `doc` without changing it: the
/// first existing non-container along the path makes the path non-viable.
pub(super) fn check_viable(doc: &Document, parts: &[String]) -> QueryResult<()> {
    let Some((head, rest)) = parts.split_first() else {
        return Ok(());
    };
    let mut name = head.as_str();
    let Some(mut current) = doc.get(head) else {
        return Ok(());
    };
    for part in rest {
        current = match current {
            Bson::Document(d) => match d.get(part) {
                Some(v) => v,
                None => return Ok(()),
            },
            Bson::Array(items) => match array_index(part) {
                Some(i) => match items.get(i) {
                    Some(v) => v,
                    None => return Ok(()),
                },
                None => return Err(not_viable(part, name, current)),
            },
            _ => return Err(not_viable(part, name, current)),
        };
        name = part;
    }
    Ok(())
}

/// Removes the value at `parts`: a document field is deleted, an array
/// element becomes null (array positions never shift under `$unset`).
pub(super) fn unset(doc: &mut Document, parts: &[String]) -> Option<Bson> {
    let (head, rest) = parts.split_first()?;
    if rest.is_empty() {
        return doc.remove(head);
    }
    unset_in(doc.get_mut(head)?, rest)
}

fn unset_in(current: &mut Bson, parts: &[String]) -> Option<Bson> {
    let (head, rest) = parts.split_first()?;
    match current {
        Bson::Document(d) => unset(d, parts),
        Bson::Array(items) => {
            let slot = items.get_mut(array_index(head)?)?;
            if rest.is_empty() {
                Some(std::mem::replace(slot, Bson::Null))
            } else {
                unset_in(slot, rest)
            }
        }
        _ => None,
    }
}

/// Mutable access to the value at `parts`, if it exists.
pub(super) fn get_mut<'a>(doc: &'a mut Document, parts: &[String]) -> Option<&'a mut Bson> {
    let (head, rest) = parts.split_first()?;
    let mut current = doc.get_mut(head)?;
    for part in rest {
        current = match current {
            Bson::Document(d) => d.get_mut(part)?,
            Bson::Array(items) => items.get_mut(array_index(part)?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Whether the path passes through an array (which `$rename` rejects).
pub(super) fn crosses_array(doc: &Document, parts: &[String]) -> bool {
    let Some((head, rest)) = parts.split_first() else {
        return false;
    };
    let mut current = doc.get(head);
    for part in rest {
        current = match current {
            Some(Bson::Document(d)) => d.get(part),
            Some(Bson::Array(_)) => return true,
            _ => return false,
        };
    }
    false
}

/// Resolves the positional components of `u`'s path against `doc`: `$`
/// becomes `positional`, `$[]` fans out to every element of the array there.
pub(super) fn resolve<'a>(
    doc: &Document,
    u: &'a FieldUpdate,
    positional: Option<usize>,
) -> QueryResult<Vec<Target<'a>>> {
    let mut resolved: Vec<Vec<String>> = vec![Vec::with_capacity(u.parts.len())];
    for part in &u.parts {
        match part.as_str() {
            "$" => {
                let index = positional.ok_or_else(|| {
                    QueryError::bad_value(
                        "The positional operator did not find the match needed from the query.",
                    )
                })?;
                for r in &mut resolved {
                    r.push(index.to_string());
                }
            }
            "$[]" => {
                let mut next = Vec::new();
                for r in resolved {
                    let Some(Bson::Array(items)) = get_exact(doc, &r) else {
                        return Err(QueryError::bad_value(format!(
                            "The path '{}' must exist in the document in order to apply array \
                             updates.",
                            r.join(".")
                        )));
                    };
                    for i in 0..items.len() {
                        let mut concrete = r.clone();
                        concrete.push(i.to_string());
                        next.push(concrete);
                    }
                }
                resolved = next;
            }
            other => {
                for r in &mut resolved {
                    r.push(other.to_owned());
                }
            }
        }
    }
    Ok(resolved
        .into_iter()
        .map(|parts| Target {
            path: parts.join("."),
            parts,
            op: &u.op,
        })
        .collect())
}
