//! Which array element a match went through: what the positional `$`
//! update operator refers to.

use bson::{Bson, Document};

use super::eval::{elem_match_position, leaf_matches, node_matches};
use super::{Filter, Node, Pred};
use crate::path::{self, Candidate};

impl Filter {
    /// For a document this filter matches, the index of the array element
    /// the match went through (the outermost array implicitly traversed, or
    /// the matching element of an array at the end of the path), as used by
    /// the positional `$` update operator. `None` when no array was involved.
    pub fn positional_index(&self, doc: &Document) -> Option<usize> {
        node_index(&self.root, doc)
    }
}

fn node_index(node: &Node, doc: &Document) -> Option<usize> {
    match node {
        Node::And(children) => children.iter().find_map(|c| node_index(c, doc)),
        Node::Or(children) => children
            .iter()
            .find(|c| node_matches(c, doc).unwrap_or(false))
            .and_then(|c| node_index(c, doc)),
        // Negations and `$expr` do not point at an element.
        Node::Nor(_) | Node::Expr(_) => None,
        Node::Path { parts, pred, .. } => path::indexed_candidates(doc, parts)
            .into_iter()
            .find_map(|c| pred_index(pred, c)),
    }
}

fn pred_index(pred: &Pred, candidate: Candidate<'_>) -> Option<usize> {
    match pred {
        Pred::Not(_) | Pred::Never => None,
        Pred::And(preds) => preds.iter().find_map(|p| pred_index(p, candidate)),
        Pred::ElemMatchQuery(_) | Pred::ElemMatchValue(_) => {
            let Some(Bson::Array(items)) = candidate.value else {
                return None;
            };
            let position = elem_match_position(pred, items).ok().flatten()?;
            Some(candidate.array_index.unwrap_or(position))
        }
        leaf => {
            let value = candidate.value?;
            if !leaf_matches(leaf, Some(value)) {
                return None;
            }
            if candidate.array_index.is_some() {
                return candidate.array_index;
            }
            match value {
                Bson::Array(items) => items.iter().position(|e| leaf_matches(leaf, Some(e))),
                _ => None,
            }
        }
    }
}
