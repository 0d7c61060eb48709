//! Evaluation of a parsed filter against a document.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::{CmpOp, InItem, Node, Pred};
use crate::compare::{Num, canonical_type, compare, values_equal};
use crate::error::QueryResult;
use crate::path;

pub(super) fn node_matches(node: &Node, doc: &Document) -> QueryResult<bool> {
    Ok(match node {
        Node::And(children) => {
            for child in children {
                if !node_matches(child, doc)? {
                    return Ok(false);
                }
            }
            true
        }
        Node::Or(children) => {
            for child in children {
                if node_matches(child, doc)? {
                    return Ok(true);
                }
            }
            false
        }
        Node::Nor(children) => {
            for child in children {
                if node_matches(child, doc)? {
                    return Ok(false);
                }
            }
            true
        }
        Node::Path { parts, pred, .. } => {
            let candidates = path::match_candidates(doc, parts);
            pred_matches(pred, &candidates)?
        }
        Node::Expr(expr) => crate::aggregate::expr::truthy(&expr.evaluate(doc)?),
    })
}

/// Whether a predicate holds over the candidate values of one path.
fn pred_matches(pred: &Pred, candidates: &[Option<&Bson>]) -> QueryResult<bool> {
    match pred {
        Pred::And(preds) => {
            for p in preds {
                if !pred_matches(p, candidates)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Pred::Not(inner) => Ok(!pred_matches(inner, candidates)?),
        Pred::ElemMatchQuery(_) | Pred::ElemMatchValue(_) => {
            for candidate in candidates.iter().flatten() {
                if let Bson::Array(items) = candidate
                    && elem_match_position(pred, items)?.is_some()
                {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        leaf => Ok(candidates.iter().any(|c| leaf_matches(leaf, *c))),
    }
}

/// The index of the first array element satisfying an `$elemMatch` predicate.
pub(super) fn elem_match_position(pred: &Pred, items: &[Bson]) -> QueryResult<Option<usize>> {
    for (i, item) in items.iter().enumerate() {
        let hit = match pred {
            // The server matches an embedded array as the document of its indexes
            // (`{"0": ..., "1": ...}`); other values never match the query form.
            Pred::ElemMatchQuery(node) => match item {
                Bson::Document(d) => node_matches(node, d)?,
                Bson::Array(nested) => node_matches(node, &path::array_document(nested))?,
                _ => false,
            },
            Pred::ElemMatchValue(preds) => {
                let single = [Some(item)];
                let mut all = true;
                for p in preds {
                    if !pred_matches(p, &single)? {
                        all = false;
                        break;
                    }
                }
                all
            }
            _ => false,
        };
        if hit {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// A positive leaf predicate against one candidate, expanding arrays into
/// their elements where the server does.
pub(super) fn leaf_matches(pred: &Pred, candidate: Option<&Bson>) -> bool {
    let Some(value) = candidate else {
        return matches_missing(pred);
    };
    let whole_or_element = |f: &dyn Fn(&Bson) -> bool| -> bool {
        f(value) || matches!(value, Bson::Array(items) if items.iter().any(f))
    };
    match pred {
        Pred::Eq(target) => whole_or_element(&|v| equals(v, target)),
        Pred::Cmp(op, target) => whole_or_element(&|v| compare_op(*op, v, target)),
        Pred::Regex(re) => whole_or_element(&|v| re.matches(v)),
        Pred::In(items) => whole_or_element(&|v| items.iter().any(|item| in_item_matches(item, v))),
        Pred::Exists => true,
        Pred::Type(specs) => whole_or_element(&|v| specs.iter().any(|s| s.matches(v))),
        Pred::Size(n) => matches!(value, Bson::Array(items) if items.len() == *n),
        Pred::Mod { divisor, remainder } => {
            whole_or_element(&|v| mod_matches(v, *divisor, *remainder))
        }
        Pred::Never
        | Pred::And(_)
        | Pred::Not(_)
        | Pred::ElemMatchQuery(_)
        | Pred::ElemMatchValue(_) => false,
    }
}

/// Missing fields match `null` equality (also via `$in`) and the inclusive
/// null range bounds, exactly as the server treats them.
fn matches_missing(pred: &Pred) -> bool {
    match pred {
        Pred::Eq(target) => is_nullish(target),
        Pred::Cmp(CmpOp::Gte | CmpOp::Lte, target) => is_nullish(target),
        Pred::In(items) => items
            .iter()
            .any(|item| matches!(item, InItem::Eq(v) if is_nullish(v))),
        _ => false,
    }
}

fn is_nullish(value: &Bson) -> bool {
    matches!(value, Bson::Null | Bson::Undefined)
}

fn equals(value: &Bson, target: &Bson) -> bool {
    canonical_type(value) == canonical_type(target) && values_equal(value, target)
}

fn in_item_matches(item: &InItem, value: &Bson) -> bool {
    match item {
        InItem::Eq(target) => equals(value, target),
        InItem::Regex(re) => re.matches(value),
    }
}

/// Range comparisons are type-bracketed: `{$gt: 5}` only considers numbers,
/// except that MinKey/MaxKey bounds compare against every type.
fn compare_op(op: CmpOp, value: &Bson, target: &Bson) -> bool {
    let unbracketed = matches!(target, Bson::MinKey | Bson::MaxKey);
    if !unbracketed && canonical_type(value) != canonical_type(target) {
        return false;
    }
    // The matcher special-cases NaN: it equals NaN but is neither above nor
    // below any number (unlike the sort order, where it is the smallest).
    let is_nan = |b: &Bson| matches!(Num::of(b), Some(Num::NaN));
    if is_nan(value) || is_nan(target) {
        return matches!(op, CmpOp::Gte | CmpOp::Lte) && is_nan(value) && is_nan(target);
    }
    let ord = compare(value, target);
    match op {
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Gte => ord != Ordering::Less,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Lte => ord != Ordering::Greater,
    }
}

fn mod_matches(value: &Bson, divisor: i64, remainder: i64) -> bool {
    let Some(num) = Num::of(value) else {
        return false;
    };
    let n = match num {
        Num::Int(i) => i,
        Num::Float(f) if f.is_finite() => {
            // Truncation toward zero, as the server does for doubles.
            #[allow(clippy::cast_possible_truncation)]
            let t = f as i64;
            t
        }
        _ => return false,
    };
    n.checked_rem(divisor) == Some(remainder)
}
