//! Evaluation of expression operators (`$add`, `$cond`, `$concat`, ...).

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::coerce::coerce_to_string;
use super::expr::{Expr, Op, op_name, truthy};
use crate::arith;
use crate::compare::{Num, compare, whole_i32};
use crate::error::{QueryError, QueryResult};
use crate::types::type_alias;

/// Applies `op` to its (unevaluated) arguments; `None` means "missing".
pub(super) fn apply(op: Op, args: &[Expr], doc: &Document) -> QueryResult<Option<Bson>> {
    let eval =
        |i: usize| -> QueryResult<Bson> { args.get(i).map_or(Ok(Bson::Null), |e| e.evaluate(doc)) };
    let value = match op {
        Op::Add | Op::Multiply => {
            let (name, f, identity): (_, fn(&Bson, &Bson) -> _, _) = if op == Op::Add {
                ("$add", arith::add, Bson::Int32(0))
            } else {
                ("$multiply", arith::multiply, Bson::Int32(1))
            };
            let mut acc = identity;
            let mut date: Option<i64> = None;
            for arg in args {
                match arg.evaluate(doc)? {
                    Bson::Null | Bson::Undefined => return Ok(Some(Bson::Null)),
                    Bson::DateTime(d) if op == Op::Add && date.is_none() => {
                        date = Some(d.timestamp_millis());
                    }
                    v => {
                        acc = arith::widen_on_overflow(f, &acc, &v).map_err(|_| {
                            QueryError::type_mismatch(format!(
                                "{name} only supports numeric{} types, not {}",
                                if op == Op::Add { " or date" } else { "" },
                                type_alias(&v)
                            ))
                        })?
                    }
                }
            }
            match date {
                Some(ms) => {
                    let offset = arith::to_f64(&acc).unwrap_or(0.0).round();
                    // Saturating float→int conversion is the intended clamp.
                    #[allow(clippy::cast_possible_truncation)]
                    let offset = offset as i64;
                    Bson::DateTime(bson::DateTime::from_millis(ms.saturating_add(offset)))
                }
                None => acc,
            }
        }
        Op::Subtract => match (eval(0)?, eval(1)?) {
            (Bson::Null | Bson::Undefined, _) | (_, Bson::Null | Bson::Undefined) => Bson::Null,
            (Bson::DateTime(a), Bson::DateTime(b)) => {
                Bson::Int64(a.timestamp_millis().saturating_sub(b.timestamp_millis()))
            }
            (Bson::DateTime(a), n) if arith::to_f64(&n).is_some() => {
                #[allow(clippy::cast_possible_truncation)]
                let offset = arith::to_f64(&n).unwrap_or(0.0).round() as i64;
                Bson::DateTime(bson::DateTime::from_millis(
                    a.timestamp_millis().saturating_sub(offset),
                ))
            }
            (a, b) => arith::widen_on_overflow(arith::subtract, &a, &b).map_err(|_| {
                QueryError::type_mismatch(format!(
                    "can't $subtract {} from {}",
                    type_alias(&b),
                    type_alias(&a)
                ))
            })?,
        },
        Op::Divide => match (eval(0)?, eval(1)?) {
            (Bson::Null | Bson::Undefined, _) | (_, Bson::Null | Bson::Undefined) => Bson::Null,
            (a, b) => {
                if arith::to_f64(&a).is_some() && arith::is_zero(&b) {
                    return Err(QueryError::location(16608, "can't $divide by zero"));
                }
                arith::divide(&a, &b).map_err(|_| {
                    QueryError::type_mismatch(format!(
                        "$divide only supports numeric types, not {} and {}",
                        type_alias(&a),
                        type_alias(&b)
                    ))
                })?
            }
        },
        Op::Eq | Op::Ne | Op::Gt | Op::Gte | Op::Lt | Op::Lte | Op::Cmp => {
            let operand = |i: usize| args.get(i).map_or(Ok(None), |e| e.evaluate_opt(doc));
            let ord = compare_or_missing(operand(0)?.as_ref(), operand(1)?.as_ref());
            match op {
                Op::Eq => Bson::Boolean(ord == Ordering::Equal),
                Op::Ne => Bson::Boolean(ord != Ordering::Equal),
                Op::Gt => Bson::Boolean(ord == Ordering::Greater),
                Op::Gte => Bson::Boolean(ord != Ordering::Less),
                Op::Lt => Bson::Boolean(ord == Ordering::Less),
                Op::Lte => Bson::Boolean(ord != Ordering::Greater),
                _ => Bson::Int32(match ord {
                    Ordering::Less => -1,
                    Ordering::Equal => 0,
                    Ordering::Greater => 1,
                }),
            }
        }
        Op::And | Op::Or => {
            let want = op == Op::Or;
            for arg in args {
                if truthy(&arg.evaluate(doc)?) == want {
                    return Ok(Some(Bson::Boolean(want)));
                }
            }
            Bson::Boolean(!want)
        }
        Op::Not => Bson::Boolean(!truthy(&eval(0)?)),
        Op::Cond => {
            let branch = if truthy(&eval(0)?) { 1 } else { 2 };
            return args.get(branch).map_or(Ok(None), |e| e.evaluate_opt(doc));
        }
        Op::IfNull => {
            let Some((fallback, candidates)) = args.split_last() else {
                return Ok(Some(Bson::Null));
            };
            for arg in candidates {
                match arg.evaluate_opt(doc)? {
                    None | Some(Bson::Null | Bson::Undefined) => {}
                    Some(v) => return Ok(Some(v)),
                }
            }
            return fallback.evaluate_opt(doc);
        }
        Op::Concat => {
            let mut out = String::new();
            for arg in args {
                match arg.evaluate(doc)? {
                    Bson::Null | Bson::Undefined => return Ok(Some(Bson::Null)),
                    Bson::String(s) => out.push_str(&s),
                    other => {
                        return Err(QueryError::location(
                            16702,
                            format!("$concat only supports strings, not {}", type_alias(&other)),
                        ));
                    }
                }
            }
            Bson::String(out)
        }
        Op::ToLower | Op::ToUpper => {
            let operand = args.first().map_or(Ok(None), |e| e.evaluate_opt(doc))?;
            let text = coerce_to_string(operand)?;
            // The server case-maps ASCII only.
            Bson::String(if op == Op::ToLower {
                text.to_ascii_lowercase()
            } else {
                text.to_ascii_uppercase()
            })
        }
        Op::Size => match eval(0)? {
            Bson::Array(items) => i32::try_from(items.len()).map_or_else(
                |_| Bson::Int64(i64::try_from(items.len()).unwrap_or(i64::MAX)),
                Bson::Int32,
            ),
            other => {
                return Err(QueryError::location(
                    17124,
                    format!(
                        "The argument to $size must be an array. Type of argument: {}",
                        type_alias(&other)
                    ),
                ));
            }
        },
        Op::IsArray => Bson::Boolean(matches!(eval(0)?, Bson::Array(_))),
        Op::In => match eval(1)? {
            Bson::Array(items) => {
                let needle = eval(0)?;
                Bson::Boolean(items.iter().any(|i| compare(i, &needle) == Ordering::Equal))
            }
            other => {
                return Err(QueryError::location(
                    40081,
                    format!(
                        "$in requires an array as a second argument, found: {}",
                        type_alias(&other)
                    ),
                ));
            }
        },
        Op::ArrayElemAt => match (eval(0)?, eval(1)?) {
            (Bson::Null | Bson::Undefined, _) | (_, Bson::Null | Bson::Undefined) => Bson::Null,
            (Bson::Array(items), idx) => {
                let Some(i) = Num::of(&idx).and_then(|n| match n {
                    Num::Int(i) => Some(i),
                    Num::Float(f) if f.fract() == 0.0 =>
                    {
                        #[allow(clippy::cast_possible_truncation)]
                        Some(f as i64)
                    }
                    _ => None,
                }) else {
                    return Err(QueryError::location(
                        28766,
                        format!(
                            "$arrayElemAt's second argument must be a numeric value, but is {}",
                            type_alias(&idx)
                        ),
                    ));
                };
                let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
                let pos = if i < 0 { len + i } else { i };
                return Ok(usize::try_from(pos)
                    .ok()
                    .and_then(|p| items.get(p).cloned()));
            }
            (other, _) => {
                return Err(QueryError::location(
                    28689,
                    format!(
                        "$arrayElemAt's first argument must be an array, but is {}",
                        type_alias(&other)
                    ),
                ));
            }
        },
        Op::DatePart(part) => super::dates::date_part(part, op_name(op), args, doc)?,
        Op::DateToString => return super::dates::date_to_string(args, doc),
        Op::Convert(on_error, on_null) => {
            return super::convert::convert(args, on_error, on_null, doc);
        }
        Op::To(target) => super::convert::shorthand(target, args, doc)?,
        Op::Str(string_op) => super::strings::apply(string_op, op_name(op), args, doc)?,
        Op::Round | Op::Trunc => round_or_trunc(op, args, doc)?,
        Op::Switch => {
            let mut pairs = args.chunks_exact(2);
            for pair in &mut pairs {
                if let [case, then] = pair
                    && truthy(&case.evaluate(doc)?)
                {
                    return then.evaluate_opt(doc);
                }
            }
            return match pairs.remainder() {
                [default] => default.evaluate_opt(doc),
                _ => Err(QueryError::location(
                    40066,
                    "$switch could not find a matching branch for an input, and no default was \
                     specified.",
                )),
            };
        }
        Op::Abs | Op::Ceil | Op::Floor => match eval(0)? {
            Bson::Null | Bson::Undefined => Bson::Null,
            value => {
                let result = match op {
                    Op::Abs => arith::abs(&value),
                    _ => arith::to_integer(&value, op == Op::Ceil),
                };
                result.map_err(|e| match e {
                    arith::ArithError::Overflow => {
                        QueryError::location(28680, "can't take $abs of long long min")
                    }
                    arith::ArithError::NotNumeric => QueryError::location(
                        28765,
                        format!(
                            "{} only supports numeric types, not {}",
                            op_name(op),
                            type_alias(&value)
                        ),
                    ),
                })?
            }
        },
        Op::ConcatArrays => {
            let mut out = Vec::new();
            for arg in args {
                match arg.evaluate(doc)? {
                    Bson::Null | Bson::Undefined => return Ok(Some(Bson::Null)),
                    Bson::Array(items) => out.extend(items),
                    other => {
                        return Err(QueryError::location(
                            28664,
                            format!(
                                "$concatArrays only supports arrays, not {}",
                                type_alias(&other)
                            ),
                        ));
                    }
                }
            }
            Bson::Array(out)
        }
        Op::MergeObjects => {
            let mut out = Document::new();
            for arg in args {
                match arg.evaluate(doc)? {
                    Bson::Null | Bson::Undefined => {}
                    // A field seen before keeps its place and takes the later value.
                    Bson::Document(d) => out.extend(d),
                    other => {
                        return Err(QueryError::location(
                            40400,
                            format!(
                                "$mergeObjects requires object inputs, but input {other} is of type {}",
                                type_alias(&other)
                            ),
                        ));
                    }
                }
            }
            Bson::Document(out)
        }
        Op::Type => match args
            .first()
            .map(|e| e.evaluate_opt(doc))
            .transpose()?
            .flatten()
        {
            None => Bson::String("missing".into()),
            Some(v) => Bson::String(type_alias(&v).into()),
        },
    };
    Ok(Some(value))
}

/// `$round`/`$trunc` in mongod's order: a null number or place gives null, a number that is
/// not one is 51081, a place that is no whole number 51082 or outside [-20, 100] 51083.
fn round_or_trunc(op: Op, args: &[Expr], doc: &Document) -> QueryResult<Bson> {
    let name = op_name(op);
    let number = args.first().map_or(Ok(Bson::Null), |e| e.evaluate(doc))?;
    if matches!(number, Bson::Null | Bson::Undefined) {
        return Ok(Bson::Null);
    }
    if Num::of(&number).is_none() {
        return Err(QueryError::location(
            51081,
            format!(
                "{name} only supports numeric types, not {}",
                type_alias(&number)
            ),
        ));
    }
    let place = match args.get(1) {
        None => 0,
        Some(expr) => {
            let place = expr.evaluate(doc)?;
            if matches!(place, Bson::Null | Bson::Undefined) {
                return Ok(Bson::Null);
            }
            // mongod's order: coerced to a long (16004 for no number, 31109 for NaN or one
            // past a long), then integral only within 32 bits (51082), then the range.
            if Num::of(&place).is_none() {
                return Err(QueryError::location(
                    16004,
                    format!(
                        "can't convert from BSON type {} to long",
                        type_alias(&place)
                    ),
                ));
            }
            if let Bson::Double(f) = place
                && !(f.is_finite() && f.abs() < 9.223_372_036_854_775e18)
            {
                return Err(QueryError::location(
                    31109,
                    format!("Can't coerce out of range value {f} to long"),
                ));
            }
            let place = whole_i32(&place).map(i64::from).ok_or_else(|| {
                QueryError::location(
                    51082,
                    format!("precision argument to  {name} must be a integral value"),
                )
            })?;
            if !(-20..=100).contains(&place) {
                return Err(QueryError::location(
                    51083,
                    format!(
                        "cannot apply {name} with precision value {place} value must be in [-20, 100]"
                    ),
                ));
            }
            place
        }
    };
    arith::round_to_place(&number, place, op == Op::Round).map_err(|_| {
        QueryError::location(
            51080,
            format!("invalid conversion from Decimal128 result in {name} resulting from arguments: [{number}, {place}]"),
        )
    })
}

/// Expression comparison, where a missing value is a value of its own: above MinKey, equal
/// to undefined, below null and everything else (mongod's canonical type order), so
/// `{$eq: ["$missing", null]}` is false.
fn compare_or_missing(a: Option<&Bson>, b: Option<&Bson>) -> Ordering {
    let missing_against = |v: &Bson| match v {
        Bson::MinKey => Ordering::Greater,
        Bson::Undefined => Ordering::Equal,
        _ => Ordering::Less,
    };
    match (a, b) {
        (Some(x), Some(y)) => compare(x, y),
        (None, None) => Ordering::Equal,
        (None, Some(y)) => missing_against(y),
        (Some(x), None) => missing_against(x).reverse(),
    }
}
