//! Facts the command layer needs from a filter: the pinned `_id`, equality
//! values by path (index lookups) and the upsert seed document.

use bson::{Bson, Document};

use super::{Filter, InItem, Node, Pred};
use crate::error::{QueryError, QueryResult};

impl Filter {
    /// The value `_id` must equal for a document to match, when the filter
    /// pins it with a top-level (possibly `$and`-nested) equality. The caller
    /// may use it as a primary-key lookup and then still apply [`Filter::matches`].
    ///
    /// Note numeric equality is cross-type (`{_id: 1}` matches `_id: 1.0`).
    pub fn id_equality(&self) -> Option<&Bson> {
        self.equality_value("_id")
    }

    /// The equality value pinned for `path` by a top-level conjunct
    /// (`{path: v}`, `{path: {$eq: v}}` or a one-element `$in`), if any.
    /// A document matches only if some value at `path` equals it, so it is a
    /// sound index-lookup key (arrays: any element, or the whole array).
    pub fn equality_value(&self, path: &str) -> Option<&Bson> {
        self.equalities()
            .into_iter()
            .find_map(|(p, v)| (p == path).then_some(v))
    }

    /// The values of a top-level conjunctive `{path: {$in: [...]}}` made only of equalities
    /// (no regexes): a document matches only if a value at `path` equals one of them, so
    /// each is a sound lookup key.
    pub fn in_values(&self, path: &str) -> Option<Vec<&Bson>> {
        let mut found = None;
        collect_in(&self.root, path, &mut found);
        found
    }

    /// Every top-level conjunctive equality as `(path, value)`, in filter order.
    pub fn equalities(&self) -> Vec<(&str, &Bson)> {
        let mut out = Vec::new();
        collect_equalities(&self.root, &mut out);
        out
    }

    /// The document an upsert starts from when nothing matched: the
    /// equality fields of the filter, with dotted paths expanded into embedded
    /// documents (MongoDB's upsert rules). Fails with code 54 when two
    /// equalities address the same or overlapping paths.
    pub fn upsert_seed(&self) -> QueryResult<Document> {
        seed_from(self.equalities())
    }

    /// The document a replacement upsert starts from: only `_id` comes from the filter
    /// (MongoDB ignores the rest of the query for replacements). A whole-`_id` equality
    /// wins over `_id.<field>` ones; without it those build the `_id` document.
    pub fn replacement_upsert_seed(&self) -> QueryResult<Document> {
        let equalities = self.equalities();
        if let Some(&(_, id)) = equalities.iter().find(|(path, _)| *path == "_id") {
            return Ok(bson::doc! {"_id": id.clone()});
        }
        seed_from(
            equalities
                .into_iter()
                .filter(|(path, _)| path.starts_with("_id."))
                .collect(),
        )
    }
}

/// The equalities as one document, dotted paths expanded; code 54 for overlapping paths.
fn seed_from(equalities: Vec<(&str, &Bson)>) -> QueryResult<Document> {
    let mut seed = Document::new();
    let mut seen: Vec<&str> = Vec::new();
    for (path, value) in equalities {
        for prior in &seen {
            if *prior == path {
                return Err(QueryError::not_single_value_field(format!(
                    "cannot infer query fields to set, path '{path}' is matched twice"
                )));
            }
            if is_prefix(prior, path) || is_prefix(path, prior) {
                return Err(QueryError::not_single_value_field(format!(
                    "cannot infer query fields to set, both paths '{path}' and '{prior}' \
                     are matched"
                )));
            }
        }
        seen.push(path);
        insert_dotted(&mut seed, path, value.clone());
    }
    Ok(seed)
}

fn is_prefix(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with('.'))
}

fn collect_equalities<'a>(node: &'a Node, out: &mut Vec<(&'a str, &'a Bson)>) {
    match node {
        Node::And(children) => {
            for child in children {
                collect_equalities(child, out);
            }
        }
        // A single-clause `$or` is a plain conjunct.
        Node::Or(children) if children.len() == 1 => {
            for child in children {
                collect_equalities(child, out);
            }
        }
        Node::Path { path, pred, .. } => collect_pred(path, pred, out),
        _ => {}
    }
}

fn collect_in<'a>(node: &'a Node, wanted: &str, out: &mut Option<Vec<&'a Bson>>) {
    match node {
        Node::And(children) => {
            for child in children {
                collect_in(child, wanted, out);
            }
        }
        Node::Path {
            path,
            pred: Pred::In(items),
            ..
        } if path == wanted && out.is_none() => {
            let values: Option<Vec<&Bson>> = items
                .iter()
                .map(|item| match item {
                    InItem::Eq(value) => Some(value),
                    _ => None,
                })
                .collect();
            *out = values;
        }
        _ => {}
    }
}

fn collect_pred<'a>(path: &'a str, pred: &'a Pred, out: &mut Vec<(&'a str, &'a Bson)>) {
    match pred {
        Pred::Eq(value) => out.push((path, value)),
        Pred::In(items) if items.len() == 1 => {
            if let Some(InItem::Eq(value)) = items.first() {
                out.push((path, value));
            }
        }
        Pred::And(preds) => {
            // Only one equality per path can seed a document; take the first.
            if let Some(value) = preds.iter().find_map(|p| match p {
                Pred::Eq(v) => Some(v),
                _ => None,
            }) {
                out.push((path, value));
            }
        }
        _ => {}
    }
}

/// Sets `path` in `doc`, creating intermediate documents. Existing
/// non-document intermediates are replaced (callers check for overlap first).
fn insert_dotted(doc: &mut Document, path: &str, value: Bson) {
    match path.split_once('.') {
        None => {
            doc.insert(path, value);
        }
        Some((head, rest)) => {
            let needs_doc = !matches!(doc.get(head), Some(Bson::Document(_)));
            if needs_doc {
                doc.insert(head, Document::new());
            }
            if let Some(Bson::Document(child)) = doc.get_mut(head) {
                insert_dotted(child, rest, value);
            }
        }
    }
}
