//! Type conversion: `$convert` and its shorthands (`$toBool`, `$toInt`, `$toLong`,
//! `$toDouble`, `$toDecimal`, `$toString`, `$toObjectId`, `$toDate`), with mongod's rules of
//! which conversions exist and when they fail (241 ConversionFailure, or `onError`).

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::coerce::coerce_to_string;
use super::expr::Expr;
use crate::arith;
use crate::error::{QueryError, QueryResult};
use crate::types::{ALIASES, type_alias};
use rewind_bson::decimal::{Decimal, nearest_f64};

/// A target type of a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `"bool"` (8)
    Bool,
    /// `"int"` (16)
    Int,
    /// `"long"` (18)
    Long,
    /// `"double"` (1)
    Double,
    /// `"decimal"` (19)
    Decimal,
    /// `"string"` (2)
    String,
    /// `"objectId"` (7)
    ObjectId,
    /// `"date"` (9)
    Date,
}

impl Target {
    /// A `to` value: a type name or its BSON type number. `Ok(None)` for a real type no
    /// value converts to (a conversion failure, which `onError` answers).
    fn of(to: &Bson) -> QueryResult<Option<Target>> {
        let by_name = |name: &str| match name {
            "bool" => Some(Target::Bool),
            "int" => Some(Target::Int),
            "long" => Some(Target::Long),
            "double" => Some(Target::Double),
            "decimal" => Some(Target::Decimal),
            "string" => Some(Target::String),
            "objectId" => Some(Target::ObjectId),
            "date" => Some(Target::Date),
            _ => None,
        };
        let by_number = |n: i64| match n {
            8 => Some(Target::Bool),
            16 => Some(Target::Int),
            18 => Some(Target::Long),
            1 => Some(Target::Double),
            19 => Some(Target::Decimal),
            2 => Some(Target::String),
            7 => Some(Target::ObjectId),
            9 => Some(Target::Date),
            _ => None,
        };
        let number = match to {
            Bson::Int32(n) => Some(i64::from(*n)),
            Bson::Int64(n) => Some(*n),
            // A whole double names a type number.
            #[allow(clippy::cast_possible_truncation)]
            Bson::Double(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        };
        let (target, exists) = match (to, number) {
            (Bson::String(name), _) => (by_name(name), ALIASES.iter().any(|(n, _)| n == name)),
            (_, Some(n)) => (
                by_number(n),
                ALIASES.iter().any(|(_, k)| i64::from(*k) == n),
            ),
            _ => (None, false),
        };
        match (target, exists) {
            (Some(target), _) => Ok(Some(target)),
            (None, true) => Ok(None),
            (None, false) => Err(QueryError::bad_value(format!("Unknown type name: {to}"))),
        }
    }
}

/// Parses `$convert`'s `{input, to, onError, onNull}` as `[input, to, onError, onNull]`,
/// `$$REMOVE` standing for an absent `onError`/`onNull`.
pub(super) fn parse_convert(arg: &Bson) -> QueryResult<Vec<Expr>> {
    let Bson::Document(spec) = arg else {
        return Err(QueryError::failed_to_parse(format!(
            "$convert expects an object of named arguments but found: {}",
            type_alias(arg)
        )));
    };
    if let Some(other) = spec
        .keys()
        .find(|k| !matches!(k.as_str(), "input" | "to" | "onError" | "onNull"))
    {
        return Err(QueryError::failed_to_parse(format!(
            "$convert found an unknown argument: {other}"
        )));
    }
    let required = |name: &str| {
        spec.get(name).ok_or_else(|| {
            QueryError::failed_to_parse(format!("Missing '{name}' parameter to $convert"))
        })
    };
    let optional = |name: &str| spec.get(name).map_or(Ok(Expr::Remove), Expr::parse);
    Ok(vec![
        Expr::parse(required("input")?)?,
        Expr::parse(required("to")?)?,
        optional("onError")?,
        optional("onNull")?,
    ])
}

/// Evaluates `$convert` (`[input, to, onError, onNull]`).
pub(super) fn convert(args: &[Expr], doc: &Document) -> QueryResult<Option<Bson>> {
    let arg = |i: usize| args.get(i).map_or(Ok(None), |e| e.evaluate_opt(doc));
    let has = |i: usize| args.get(i).is_some_and(|e| !matches!(e, Expr::Remove));
    let input = arg(0)?;
    if matches!(input, None | Some(Bson::Null | Bson::Undefined)) {
        return if has(3) { arg(3) } else { Ok(Some(Bson::Null)) };
    }
    let (to_value, to) = match arg(1)? {
        None | Some(Bson::Null | Bson::Undefined) => return Ok(Some(Bson::Null)),
        Some(to) => {
            let target = Target::of(&to)?;
            (to, target)
        }
    };
    let input = input.unwrap_or(Bson::Null);
    let converted = match to {
        Some(to) => to_type(input, to),
        None => Err(failure(format!(
            "Unsupported conversion from {} to {to_value} in $convert with no onError value",
            type_alias(&input)
        ))),
    };
    match converted {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.code == 241 && has(2) => arg(2),
        Err(e) => Err(e),
    }
}

/// Evaluates a shorthand (`$toInt` ...): null and missing give null.
pub(super) fn shorthand(to: Target, args: &[Expr], doc: &Document) -> QueryResult<Bson> {
    match args.first().map_or(Ok(None), |e| e.evaluate_opt(doc))? {
        None | Some(Bson::Null | Bson::Undefined) => Ok(Bson::Null),
        Some(value) => to_type(value, to),
    }
}

fn failure(message: String) -> QueryError {
    QueryError::new(241, "ConversionFailure", message)
}

fn unsupported(value: &Bson, to: Target) -> QueryError {
    let name = match to {
        Target::Bool => "bool",
        Target::Int => "int",
        Target::Long => "long",
        Target::Double => "double",
        Target::Decimal => "decimal",
        Target::String => "string",
        Target::ObjectId => "objectId",
        Target::Date => "date",
    };
    failure(format!(
        "Unsupported conversion from {} to {name} in $convert with no onError value",
        type_alias(value)
    ))
}

/// Converts a non-null value.
fn to_type(value: Bson, to: Target) -> QueryResult<Bson> {
    match to {
        // Numbers are true when not zero; every other value (mongod 7.0 on) is true.
        Target::Bool => match &value {
            Bson::Boolean(_) => Ok(value),
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
                Ok(Bson::Boolean(!arith::is_zero(&value)))
            }
            _ => Ok(Bson::Boolean(true)),
        },
        Target::Int => integer(&value, to).and_then(|n| {
            i32::try_from(n).map(Bson::Int32).map_err(|_| {
                failure(format!(
                    "Conversion would overflow target type in $convert with no onError value: {value}"
                ))
            })
        }),
        Target::Long => integer(&value, to).map(Bson::Int64),
        Target::Double => match &value {
            Bson::Boolean(b) => Ok(Bson::Double(if *b { 1.0 } else { 0.0 })),
            Bson::Int32(i) => Ok(Bson::Double(f64::from(*i))),
            // Doubles hold integers up to 2^53 exactly; past that the nearest one is right.
            #[allow(clippy::cast_precision_loss)]
            Bson::Int64(i) => Ok(Bson::Double(*i as f64)),
            Bson::Double(_) => Ok(value),
            Bson::Decimal128(d) => Ok(Bson::Double(nearest_f64(d))),
            #[allow(clippy::cast_precision_loss)]
            Bson::DateTime(d) => Ok(Bson::Double(d.timestamp_millis() as f64)),
            Bson::String(s) => s.parse::<f64>().map(Bson::Double).map_err(|_| {
                failure(format!(
                    "Failed to parse number '{s}' in $convert with no onError value: Did not consume whole string."
                ))
            }),
            _ => Err(unsupported(&value, to)),
        },
        Target::Decimal => match &value {
            Bson::Boolean(b) => arith::add(&Bson::Decimal128(zero()), &Bson::Int32(i32::from(*b)))
                .map_err(|_| unsupported(&value, to)),
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => {
                arith::add(&Bson::Decimal128(zero()), &value).map_err(|_| unsupported(&value, to))
            }
            Bson::Decimal128(_) => Ok(value),
            Bson::DateTime(d) => arith::add(&Bson::Decimal128(zero()), &Bson::Int64(d.timestamp_millis()))
                .map_err(|_| unsupported(&value, to)),
            Bson::String(s) => s.parse::<bson::Decimal128>().map(Bson::Decimal128).map_err(|_| {
                failure(format!(
                    "Failed to parse number '{s}' in $convert with no onError value: Failed to parse string to decimal"
                ))
            }),
            _ => Err(unsupported(&value, to)),
        },
        Target::String => match &value {
            Bson::Boolean(b) => Ok(Bson::String(b.to_string())),
            Bson::ObjectId(oid) => Ok(Bson::String(oid.to_hex())),
            Bson::String(_) => Ok(value),
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) | Bson::DateTime(_) => {
                coerce_to_string(Some(value)).map(Bson::String)
            }
            _ => Err(unsupported(&value, to)),
        },
        Target::ObjectId => match &value {
            Bson::ObjectId(_) => Ok(value),
            Bson::String(s) => ObjectId::parse_str(s).map(Bson::ObjectId).map_err(|_| {
                failure(format!(
                    "Failed to parse objectId '{s}' in $convert with no onError value: Invalid string length for parsing to OID, expected 24 but found {}",
                    s.len()
                ))
            }),
            _ => Err(unsupported(&value, to)),
        },
        Target::Date => match &value {
            Bson::DateTime(_) => Ok(value),
            Bson::Int64(ms) => Ok(Bson::DateTime(DateTime::from_millis(*ms))),
            Bson::Double(_) | Bson::Decimal128(_) => integer(&value, to).map(|ms| Bson::DateTime(DateTime::from_millis(ms))),
            Bson::ObjectId(oid) => Ok(Bson::DateTime(oid.timestamp())),
            Bson::Timestamp(t) => Ok(Bson::DateTime(DateTime::from_millis(i64::from(t.time) * 1000))),
            Bson::String(s) => parse_date(s).map(Bson::DateTime),
            _ => Err(unsupported(&value, to)),
        },
    }
}

fn zero() -> bson::Decimal128 {
    bson::Decimal128::from_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x30])
}

/// A number (or a boolean, or a base-10 integer string) as an i64: fractions truncated
/// toward zero, NaN, infinities and values past i64 refused.
fn integer(value: &Bson, to: Target) -> QueryResult<i64> {
    let overflow = || {
        failure(format!(
            "Conversion would overflow target type in $convert with no onError value: {value}"
        ))
    };
    match value {
        Bson::Boolean(b) => Ok(i64::from(*b)),
        Bson::Int32(i) => Ok(i64::from(*i)),
        Bson::Int64(i) => Ok(*i),
        Bson::Double(f) if f.is_nan() || f.is_infinite() => Err(failure(format!(
            "Attempt to convert {} value to integer type in $convert with no onError value",
            if f.is_nan() { "NaN" } else { "infinity" }
        ))),
        Bson::Double(f) => {
            let whole = f.trunc();
            // Exactly representable bounds: -2^63 is, 2^63 is the first double past i64.
            if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&whole) {
                #[allow(clippy::cast_possible_truncation)]
                Ok(whole as i64)
            } else {
                Err(overflow())
            }
        }
        Bson::Decimal128(d) => {
            // Toward zero: up (ceiling) below zero, down (floor) above.
            let negative = matches!(
                Decimal::decode(d),
                Decimal::Finite { negative: true, .. } | Decimal::Infinite { negative: true }
            );
            match arith::to_integer(value, negative) {
                Ok(Bson::Decimal128(whole)) => Decimal::decode(&whole).as_i64().ok_or_else(overflow),
                _ => Err(overflow()),
            }
        }
        Bson::String(s) if to != Target::Date => s.parse::<i64>().map_err(|_| {
            failure(format!(
                "Failed to parse number '{s}' in $convert with no onError value: Did not consume whole string."
            ))
        }),
        _ => Err(unsupported(value, to)),
    }
}

/// An ISO 8601 date string: a date, or a date and time with `Z` or an offset.
fn parse_date(s: &str) -> QueryResult<DateTime> {
    let parsed = OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .or_else(|| OffsetDateTime::parse(&format!("{s}T00:00:00Z"), &Rfc3339).ok())
        .or_else(|| OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339).ok());
    let millis = parsed.map(|t| t.unix_timestamp_nanos() / 1_000_000);
    millis
        .and_then(|ms| i64::try_from(ms).ok())
        .map(DateTime::from_millis)
        .ok_or_else(|| {
            failure(format!(
                "Error parsing date string '{s}' in $convert with no onError value"
            ))
        })
}
