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
                let mut all = true;
                for p in preds {
                    if !element_matches(p, item)? {
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

/// A predicate of `$elemMatch`'s value form against one array element: the element itself,
/// never the elements of an array it is (the server does not traverse it).
fn element_matches(pred: &Pred, item: &Bson) -> QueryResult<bool> {
    Ok(match pred {
        Pred::And(preds) => {
            for p in preds {
                if !element_matches(p, item)? {
                    return Ok(false);
                }
            }
            true
        }
        Pred::Not(inner) => !element_matches(inner, item)?,
        Pred::ElemMatchQuery(_) | Pred::ElemMatchValue(_) => match item {
            Bson::Array(items) => elem_match_position(pred, items)?.is_some(),
            _ => false,
        },
        Pred::Eq(target) => equals(item, target),
        Pred::Cmp(op, target) => compare_op(*op, item, target),
        Pred::Regex(re) => re.matches(item),
        Pred::In(items) => items.iter().any(|i| in_item_matches(i, item)),
        Pred::Type(specs) => specs.iter().any(|s| s.matches(item)),
        Pred::Mod { divisor, remainder } => mod_matches(item, *divisor, *remainder),
        // `$all` holds when each of its parts does; `$size` and `$exists` look at the
        // element as a whole anyway.
        Pred::Exists | Pred::Size(_) | Pred::Never => leaf_matches(pred, Some(item)),
    })
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
/// null range bounds, exactly as the server treats them; and every document is above
/// MinKey and below MaxKey, whether it has the field or not.
fn matches_missing(pred: &Pred) -> bool {
    match pred {
        Pred::Eq(target) => is_nullish(target),
        Pred::Cmp(CmpOp::Gte | CmpOp::Lte, target) if is_nullish(target) => true,
        Pred::Cmp(CmpOp::Gt | CmpOp::Gte, Bson::MinKey) => true,
        Pred::Cmp(CmpOp::Lt | CmpOp::Lte, Bson::MaxKey) => true,
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
        // Truncation toward zero, as the server does for doubles; one no 64-bit integer
        // holds never matches.
        Num::Float(f) => match float_to_i64(f) {
            Some(t) => t,
            None => return false,
        },
        Num::NaN => return false,
    };
    // The server's safe modulo: `i64::MIN % -1` is 0, not an overflow.
    n.wrapping_rem(divisor) == remainder
}

/// `f` truncated toward zero, when a 64-bit integer holds the result.
pub(super) fn float_to_i64(f: f64) -> Option<i64> {
    // -2^63 is exact as a double; 2^63 is the first value past the range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    #[allow(clippy::cast_possible_truncation)]
    (-LIMIT..LIMIT).contains(&f).then_some(f as i64)
}
