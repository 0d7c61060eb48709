//! The `$group` stage and its accumulators.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use bson::{Bson, Document};

use super::expr::Expr;
use crate::arith;
use crate::compare::{compare, values_equal};
use crate::error::{QueryError, QueryResult};

/// A parsed `$group` specification.
#[derive(Debug, Clone)]
pub(super) struct Group {
    id: Expr,
    fields: Vec<(String, AccOp, Expr)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccOp {
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    Push,
    AddToSet,
    Count,
    StdDevPop,
    StdDevSamp,
    MergeObjects,
}

/// Running state of one accumulator in one group.
#[derive(Debug, Clone)]
enum AccState {
    Sum(Bson),
    /// The sum is kept as `$sum` keeps it, so that decimals stay exact.
    Avg {
        sum: Bson,
        count: u64,
    },
    Extreme(Option<Bson>),
    First(Option<Bson>),
    Last(Bson),
    List(Vec<Bson>),
    /// Welford's running count, mean and sum of squared differences, in doubles as mongod
    /// keeps them.
    StdDev {
        /// `$stdDevSamp` (divides by n - 1) rather than `$stdDevPop`.
        sample: bool,
        count: u64,
        mean: f64,
        m2: f64,
    },
    Merged(Document),
}

/// A group key ordered by the BSON comparison order, so that `1` and `1.0`
/// land in the same group as on the server.
#[derive(Debug, Clone)]
struct Key(Bson);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        values_equal(&self.0, &other.0)
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0)
    }
}

impl Group {
    pub(super) fn parse(spec: &Bson) -> QueryResult<Group> {
        let Bson::Document(spec) = spec else {
            return Err(QueryError::location(
                15947,
                "a group's fields must be specified in an object",
            ));
        };
        let id = spec.get("_id").ok_or_else(|| {
            QueryError::location(15955, "a group specification must include an _id")
        })?;
        let mut fields = Vec::new();
        for (name, value) in spec {
            if name == "_id" {
                continue;
            }
            if name.starts_with('$') {
                return Err(QueryError::location(
                    40236,
                    format!("The field name '{name}' cannot be an operator name"),
                ));
            }
            if name.contains('.') {
                return Err(QueryError::location(
                    40235,
                    format!("The field name '{name}' cannot contain '.'"),
                ));
            }
            let Bson::Document(acc) = value else {
                return Err(QueryError::location(
                    40234,
                    format!("The field '{name}' must be an accumulator object"),
                ));
            };
            let Some((op_name, arg)) = acc.iter().next().filter(|_| acc.len() == 1) else {
                return Err(QueryError::location(
                    40238,
                    format!("The field '{name}' must specify one accumulator"),
                ));
            };
            if matches!(arg, Bson::Array(_)) && op_name != "$count" {
                return Err(QueryError::location(
                    40237,
                    format!("The {op_name} accumulator is a unary operator"),
                ));
            }
            let op = match op_name.as_str() {
                "$sum" => AccOp::Sum,
                "$avg" => AccOp::Avg,
                "$min" => AccOp::Min,
                "$max" => AccOp::Max,
                "$first" => AccOp::First,
                "$last" => AccOp::Last,
                "$push" => AccOp::Push,
                "$addToSet" => AccOp::AddToSet,
                "$stdDevPop" => AccOp::StdDevPop,
                "$stdDevSamp" => AccOp::StdDevSamp,
                "$mergeObjects" => AccOp::MergeObjects,
                "$count" => {
                    if !matches!(arg, Bson::Document(d) if d.is_empty()) {
                        return Err(QueryError::bad_value(
                            "$count takes no arguments, i.e. $count:{}",
                        ));
                    }
                    AccOp::Count
                }
                other => return Err(super::unsupported::accumulator(other)),
            };
            fields.push((name.clone(), op, Expr::parse(arg)?));
        }
        Ok(Group {
            id: Expr::parse(id)?,
            fields,
        })
    }

    /// Groups `docs`, emitting groups in first-seen order.
    pub(super) fn run(&self, docs: Vec<Document>) -> QueryResult<Vec<Document>> {
        let mut index: BTreeMap<Key, usize> = BTreeMap::new();
        let mut groups: Vec<(Bson, Vec<AccState>)> = Vec::new();
        for doc in &docs {
            let key = self.id.evaluate(doc)?;
            let slot = match index.get(&Key(key.clone())) {
                Some(i) => *i,
                None => {
                    let states = self.fields.iter().map(|(_, op, _)| initial(*op)).collect();
                    groups.push((key.clone(), states));
                    index.insert(Key(key), groups.len() - 1);
                    groups.len() - 1
                }
            };
            let Some((_, states)) = groups.get_mut(slot) else {
                continue;
            };
            for ((_, op, expr), state) in self.fields.iter().zip(states.iter_mut()) {
                let value = if *op == AccOp::Count {
                    Some(Bson::Int32(1))
                } else {
                    expr.evaluate_opt(doc)?
                };
                accumulate(state, *op, value)?;
            }
        }
        Ok(groups
            .into_iter()
            .map(|(key, states)| {
                let mut out = Document::new();
                out.insert("_id", key);
                for ((name, _, _), state) in self.fields.iter().zip(states) {
                    out.insert(name.clone(), finish(state));
                }
                out
            })
            .collect())
    }
}

fn initial(op: AccOp) -> AccState {
    match op {
        AccOp::Sum | AccOp::Count => AccState::Sum(Bson::Int32(0)),
        AccOp::Avg => AccState::Avg {
            sum: Bson::Int32(0),
            count: 0,
        },
        AccOp::Min | AccOp::Max => AccState::Extreme(None),
        AccOp::First => AccState::First(None),
        AccOp::Last => AccState::Last(Bson::Null),
        AccOp::Push | AccOp::AddToSet => AccState::List(Vec::new()),
        AccOp::StdDevPop | AccOp::StdDevSamp => AccState::StdDev {
            sample: op == AccOp::StdDevSamp,
            count: 0,
            mean: 0.0,
            m2: 0.0,
        },
        AccOp::MergeObjects => AccState::Merged(Document::new()),
    }
}

fn accumulate(state: &mut AccState, op: AccOp, value: Option<Bson>) -> QueryResult<()> {
    match state {
        AccState::Sum(total) => {
            // Non-numeric values (arrays included) are ignored by the accumulator.
            if let Some(v) = value
                && let Ok(next) = arith::widen_on_overflow(arith::add, total, &v)
            {
                *total = next;
            }
        }
        AccState::Avg { sum, count } => {
            if let Some(v) = value
                && let Ok(next) = arith::widen_on_overflow(arith::add, sum, &v)
            {
                *sum = next;
                *count += 1;
            }
        }
        AccState::Extreme(best) => {
            let Some(v) = value.filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) else {
                return Ok(());
            };
            let want = if op == AccOp::Min {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            if best.as_ref().is_none_or(|b| compare(&v, b) == want) {
                *best = Some(v);
            }
        }
        AccState::First(first) => {
            if first.is_none() {
                *first = Some(value.unwrap_or(Bson::Null));
            }
        }
        AccState::Last(last) => *last = value.unwrap_or(Bson::Null),
        AccState::List(items) => {
            if let Some(v) = value
                && (op == AccOp::Push || !items.iter().any(|e| values_equal(e, &v)))
            {
                items.push(v);
            }
        }
        // Numbers only (others are ignored); Welford's update.
        AccState::StdDev {
            count, mean, m2, ..
        } => {
            if let Some(x) = value.as_ref().and_then(arith::to_f64) {
                *count += 1;
                // Precision loss only past 2^53 documents.
                #[allow(clippy::cast_precision_loss)]
                let n = *count as f64;
                let delta = x - *mean;
                *mean += delta / n;
                *m2 += delta * (x - *mean);
            }
        }
        AccState::Merged(merged) => match value {
            None | Some(Bson::Null | Bson::Undefined) => {}
            // A field seen before keeps its place and takes the later value.
            Some(Bson::Document(d)) => merged.extend(d),
            Some(other) => {
                return Err(QueryError::location(
                    40400,
                    format!(
                        "$mergeObjects requires object inputs, but input {other} is of type {}",
                        crate::types::type_alias(&other)
                    ),
                ));
            }
        },
    }
    Ok(())
}

fn finish(state: AccState) -> Bson {
    match state {
        AccState::Sum(total) => total,
        AccState::Avg { count: 0, .. } => Bson::Null,
        AccState::Avg { sum, count } => match sum {
            // A decimal sum divides exactly; any other divides as a double.
            Bson::Decimal128(_) => {
                arith::divide(&sum, &Bson::Int64(i64::try_from(count).unwrap_or(i64::MAX)))
                    .unwrap_or(Bson::Null)
            }
            // Precision loss only past 2^53 documents.
            #[allow(clippy::cast_precision_loss)]
            _ => Bson::Double(arith::to_f64(&sum).unwrap_or(f64::NAN) / count as f64),
        },
        AccState::Extreme(best) => best.unwrap_or(Bson::Null),
        AccState::First(first) => first.unwrap_or(Bson::Null),
        AccState::Last(last) => last,
        AccState::List(items) => Bson::Array(items),
        // Precision loss only past 2^53 documents.
        #[allow(clippy::cast_precision_loss)]
        AccState::StdDev {
            sample, count, m2, ..
        } => {
            let divisor = if sample {
                count.saturating_sub(1)
            } else {
                count
            };
            if divisor == 0 {
                Bson::Null
            } else {
                Bson::Double((m2 / divisor as f64).sqrt())
            }
        }
        AccState::Merged(merged) => Bson::Document(merged),
    }
}
