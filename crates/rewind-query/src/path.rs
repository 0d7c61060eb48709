//! Dotted-path traversal with MongoDB's implicit array semantics.

use bson::{Bson, Document};

/// Parses an array-index path component: ASCII digits only, as the server
/// requires (so `"01"`-style components still index, `"+1"` or `"-1"` do not).
pub(crate) fn array_index(component: &str) -> Option<usize> {
    if component.is_empty() || !component.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    component.parse().ok()
}

/// An array as the server sees it where it wants a document: its elements keyed by index.
pub(crate) fn array_document(items: &[Bson]) -> Document {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| (i.to_string(), item.clone()))
        .collect()
}

/// Splits a dotted path into components.
pub(crate) fn split(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

/// Collects the values a query predicate on `path` must consider, `None`
/// standing for "missing" (which `null` equality and `$exists` care about).
///
/// Arrays met before the last component are traversed implicitly: a numeric
/// component indexes the array, and every embedded document is searched with
/// the remaining path (other elements contribute nothing: since MongoDB 8.0,
/// `{"a.b": null}` does not match `{a: [1, 2]}`). Arrays at the leaf are returned
/// whole; predicates expand them into their elements themselves.
pub(crate) fn match_candidates<'a>(doc: &'a Document, parts: &[String]) -> Vec<Option<&'a Bson>> {
    indexed_candidates(doc, parts)
        .into_iter()
        .map(|c| c.value)
        .collect()
}

/// [`match_candidates`] as sort keys see the path: there an element that is no document
/// is a missing value (it sorts as null).
pub(crate) fn sort_candidates<'a>(doc: &'a Document, parts: &[String]) -> Vec<Option<&'a Bson>> {
    candidates(doc, parts, true)
        .into_iter()
        .map(|c| c.value)
        .collect()
}

/// A candidate value together with the index of the element of the first
/// array implicitly traversed to reach it (what the positional `$` refers to).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate<'a> {
    /// The value, `None` when missing.
    pub(crate) value: Option<&'a Bson>,
    /// Index into the outermost implicitly traversed array, if any.
    pub(crate) array_index: Option<usize>,
}

/// [`match_candidates`] with the positional information of each candidate.
pub(crate) fn indexed_candidates<'a>(doc: &'a Document, parts: &[String]) -> Vec<Candidate<'a>> {
    candidates(doc, parts, false)
}

/// The walk behind both: `elements_missing` makes array elements that are no documents
/// contribute a missing value.
fn candidates<'a>(
    doc: &'a Document,
    parts: &[String],
    elements_missing: bool,
) -> Vec<Candidate<'a>> {
    let mut out = Vec::new();
    match parts.split_first() {
        Some((head, rest)) => match doc.get(head) {
            Some(value) => walk(value, rest, None, elements_missing, &mut out),
            None => out.push(Candidate {
                value: None,
                array_index: None,
            }),
        },
        None => out.push(Candidate {
            value: None,
            array_index: None,
        }),
    }
    out
}

fn walk<'a>(
    value: &'a Bson,
    rest: &[String],
    array_index_so_far: Option<usize>,
    elements_missing: bool,
    out: &mut Vec<Candidate<'a>>,
) {
    let push = |out: &mut Vec<Candidate<'a>>, value: Option<&'a Bson>, index: Option<usize>| {
        out.push(Candidate {
            value,
            array_index: index,
        });
    };
    let Some((head, tail)) = rest.split_first() else {
        push(out, Some(value), array_index_so_far);
        return;
    };
    match value {
        Bson::Document(d) => match d.get(head) {
            Some(v) => walk(v, tail, array_index_so_far, elements_missing, out),
            None => push(out, None, array_index_so_far),
        },
        Bson::Array(items) => {
            let index = array_index(head);
            if let Some(i) = index {
                // Explicit positions are not implicit traversal: no index recorded.
                match items.get(i) {
                    Some(item) => walk(item, tail, array_index_so_far, elements_missing, out),
                    None => push(out, None, array_index_so_far),
                }
            }
            for (i, item) in items.iter().enumerate() {
                let position = array_index_so_far.or(Some(i));
                match item {
                    // With a numeric component, only documents that really have
                    // such a field contribute; the others are not "missing" it.
                    Bson::Document(d) if index.is_some() && !d.contains_key(head) => {}
                    Bson::Document(_) => walk(item, rest, position, elements_missing, out),
                    _ if elements_missing && index.is_none() => push(out, None, position),
                    _ => {}
                }
            }
        }
        _ => push(out, None, array_index_so_far),
    }
}

/// Every value found at `path`, with arrays at the leaf flattened one level
/// (the values `distinct` and multikey sort keys see). Missing paths yield nothing.
pub(crate) fn leaf_values<'a>(doc: &'a Document, parts: &[String]) -> Vec<&'a Bson> {
    let mut out = Vec::new();
    for candidate in match_candidates(doc, parts).into_iter().flatten() {
        match candidate {
            Bson::Array(items) => out.extend(items.iter()),
            other => out.push(other),
        }
    }
    out
}

/// Follows `path` through documents and numeric array indexes only (no implicit
/// traversal): the single value an update or projection addresses.
pub(crate) fn get_exact<'a>(doc: &'a Document, parts: &[String]) -> Option<&'a Bson> {
    let (head, rest) = parts.split_first()?;
    let mut current = doc.get(head)?;
    for part in rest {
        current = match current {
            Bson::Document(d) => d.get(part)?,
            Bson::Array(items) => items.get(array_index(part)?)?,
            _ => return None,
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{bson, doc};

    fn parts(p: &str) -> Vec<String> {
        split(p)
    }

    #[test]
    fn traverses_arrays_of_documents() {
        let d = doc! {"a": [{"b": 1}, {"b": [2, 3]}, 4]};
        let got = match_candidates(&d, &parts("a.b"));
        assert_eq!(got, vec![Some(&bson!(1)), Some(&bson!([2, 3]))]);
        let got = sort_candidates(&d, &parts("a.b"));
        assert_eq!(got, vec![Some(&bson!(1)), Some(&bson!([2, 3])), None]);
        assert_eq!(
            leaf_values(&d, &parts("a.b")),
            vec![&bson!(1), &bson!(2), &bson!(3)]
        );
    }

    #[test]
    fn numeric_components_index_arrays() {
        let d = doc! {"a": [{"b": 1}, {"b": 2}]};
        assert_eq!(match_candidates(&d, &parts("a.1.b")), vec![Some(&bson!(2))]);
        assert_eq!(get_exact(&d, &parts("a.0.b")), Some(&bson!(1)));
        assert_eq!(get_exact(&d, &parts("a.b")), None);
        let d = doc! {"a": [{"1": "x"}, 7]};
        assert_eq!(
            match_candidates(&d, &parts("a.1")),
            vec![Some(&bson!(7)), Some(&bson!("x"))]
        );
        assert_eq!(array_index("-1"), None);
    }
}
