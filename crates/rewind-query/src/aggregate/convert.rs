//! Type conversion: `$convert` and its shorthands (`$toBool`, `$toInt`, `$toLong`,
//! `$toDouble`, `$toDecimal`, `$toString`, `$toObjectId`, `$toDate`), with mongod's rules of
//! which conversions exist and when they fail (241 ConversionFailure, or `onError`).

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document};

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
    /// value converts to (a conversion failure, which `onError` answers). An unknown name is
    /// BadValue; a number that is no whole BSON type code, or a value of another type,
    /// FailedToParse, as in mongod.
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
        if let Bson::String(name) = to {
            return match by_name(name) {
                Some(target) => Ok(Some(target)),
                None if ALIASES.iter().any(|(n, _)| n == name) => Ok(None),
                None => Err(QueryError::bad_value(format!("Unknown type name: {name}"))),
            };
        }
        if let Bson::Document(_) = to {
            return Err(QueryError::not_implemented(
                "$convert with 'to' as a document (binData subtypes) is not supported by rewind",
            ));
        }
        let number = match to {
            Bson::Int32(n) => Some(i64::from(*n)),
            Bson::Int64(n) => Some(*n),
            // A whole double names a type number.
            #[allow(clippy::cast_possible_truncation)]
            Bson::Double(f) if f.fract() == 0.0 && f.abs() < 1e9 => Some(*f as i64),
            Bson::Decimal128(d) => Decimal::decode(d).as_i64(),
            Bson::Double(_) => None,
            other => {
                return Err(QueryError::failed_to_parse(format!(
                    "$convert's 'to' argument must be a string or number, but is {}",
                    type_alias(other)
                )));
            }
        };
        let Some(n) = number else {
            return Err(QueryError::failed_to_parse(
                "In $convert, numeric 'to' argument is not an integer",
            ));
        };
        match by_number(n) {
            Some(target) => Ok(Some(target)),
            None if ALIASES.iter().any(|(_, k)| i64::from(*k) == n) => Ok(None),
            None => Err(QueryError::failed_to_parse(format!(
                "In $convert, numeric value for 'to' does not correspond to a BSON type: {n}"
            ))),
        }
    }
}

/// Parses `$convert`'s `{input, to, onError, onNull}` as `[input, to, onError, onNull]`, and
/// whether `onError` and `onNull` were given (either may be `$$REMOVE`, which is not the same
/// as leaving it out).
pub(super) fn parse_convert(arg: &Bson) -> QueryResult<(Vec<Expr>, bool, bool)> {
    let Bson::Document(spec) = arg else {
        return Err(QueryError::failed_to_parse(format!(
            "$convert expects an object of named arguments but found: {}",
            type_alias(arg)
        )));
    };
    if spec.contains_key("format") {
        return Err(QueryError::not_implemented(
            "$convert option 'format' is not supported by rewind",
        ));
    }
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
    Ok((
        vec![
            Expr::parse(required("input")?)?,
            Expr::parse(required("to")?)?,
            optional("onError")?,
            optional("onNull")?,
        ],
        spec.contains_key("onError"),
        spec.contains_key("onNull"),
    ))
}

/// Evaluates `$convert` (`[input, to, onError, onNull]`), in mongod's order: `to` is
/// checked first, then a null input gives `onNull`, then a null `to` gives null.
pub(super) fn convert(
    args: &[Expr],
    on_error: bool,
    on_null: bool,
    doc: &Document,
) -> QueryResult<Option<Bson>> {
    let arg = |i: usize| args.get(i).map_or(Ok(None), |e| e.evaluate_opt(doc));
    let to_value = arg(1)?;
    let input = arg(0)?;
    let target = match &to_value {
        None | Some(Bson::Null | Bson::Undefined) => None,
        Some(to) => Some(Target::of(to)?),
    };
    let input = match input {
        None | Some(Bson::Null | Bson::Undefined) => {
            return if on_null {
                arg(3)
            } else {
                Ok(Some(Bson::Null))
            };
        }
        Some(input) => input,
    };
    let Some(target) = target else {
        return Ok(Some(Bson::Null));
    };
    let converted = match target {
        Some(to) => to_type(input, to),
        None => Err(failure(format!(
            "Unsupported conversion from {} to {} in $convert with no onError value",
            type_alias(&input),
            to_value.unwrap_or(Bson::Null)
        ))),
    };
    match converted {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.code == 241 && on_error => arg(2),
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
        Target::Int => {
            // A double is checked before it is truncated (2147483647.5 overflows), as in mongod.
            let in_range = match &value {
                Bson::Double(f) => f.is_nan() || (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(f) || f.is_infinite(),
                _ => true,
            };
            integer(&value, to)
                .and_then(|n| if in_range { i32::try_from(n).ok() } else { None }.ok_or_else(|| overflow(&value)))
                .map(Bson::Int32)
        }
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
            Bson::Boolean(b) => decimal(&Bson::Int32(i32::from(*b)), to),
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => decimal(&value, to),
            Bson::Decimal128(_) => Ok(value),
            Bson::DateTime(d) => decimal(&Bson::Int64(d.timestamp_millis()), to),
            Bson::String(s) => s.parse::<bson::Decimal128>().map(Bson::Decimal128).map_err(|_| {
                failure(format!(
                    "Failed to parse number '{s}' in $convert with no onError value: Failed to parse string to decimal"
                ))
            }),
            _ => Err(unsupported(&value, to)),
        },
        Target::String => match &value {
            Bson::Boolean(b) => Ok(Bson::String(b.to_string())),
            Bson::Double(f) if f.is_nan() => Ok(Bson::String("NaN".into())),
            Bson::Double(f) if f.is_infinite() => {
                Ok(Bson::String(if *f > 0.0 { "Infinity" } else { "-Infinity" }.into()))
            }
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

/// A number as a Decimal128 (a double at 15 significant digits, as mongod converts it).
fn decimal(value: &Bson, to: Target) -> QueryResult<Bson> {
    arith::to_decimal(value).ok_or_else(|| unsupported(value, to))
}

fn overflow(value: &Bson) -> QueryError {
    failure(format!(
        "Conversion would overflow target type in $convert with no onError value: {value}"
    ))
}

/// A number (or a boolean, a base-10 integer string, or for a long a date's milliseconds)
/// as an i64: fractions truncated toward zero, NaN, infinities and values past i64 refused.
fn integer(value: &Bson, to: Target) -> QueryResult<i64> {
    let overflow = || overflow(value);
    match value {
        Bson::DateTime(d) if to == Target::Long => Ok(d.timestamp_millis()),
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

/// A date string as mongod's date parser reads the usual forms: `YYYY-MM-DD`, then
/// optionally a separator (`T` or a space) and `HH:MM`, `:SS`, `.fraction`, then optionally a
/// zone (`Z`, `±HH`, `±HHMM`, `±HH:MM`, possibly after a space). Without a zone it is UTC.
fn parse_date(s: &str) -> QueryResult<DateTime> {
    parse_iso(s.as_bytes())
        .map(DateTime::from_millis)
        .ok_or_else(|| {
            failure(format!(
                "Error parsing date string '{s}' in $convert with no onError value"
            ))
        })
}

fn parse_iso(b: &[u8]) -> Option<i64> {
    let num = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let expect = |at: usize, c: u8| (b.get(at) == Some(&c)).then_some(());
    let year = i32::try_from(num(0, 4)?).ok()?;
    expect(4, b'-')?;
    let month = time::Month::try_from(u8::try_from(num(5, 2)?).ok()?).ok()?;
    expect(7, b'-')?;
    let day = u8::try_from(num(8, 2)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let mut at = 10;
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    if matches!(b.get(at), Some(b'T' | b' ')) && b.get(at + 3) == Some(&b':') {
        hour = num(at + 1, 2)?;
        minute = num(at + 4, 2)?;
        at += 6;
        if b.get(at) == Some(&b':') {
            second = num(at + 1, 2)?;
            at += 3;
            if b.get(at) == Some(&b'.') {
                let digits = b
                    .get(at + 1..)?
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                if digits == 0 {
                    return None;
                }
                let kept = digits.min(9);
                nanos = num(at + 1, kept)? * 10u32.pow(u32::try_from(9 - kept).ok()?);
                at += 1 + digits;
            }
        }
    }
    let time = time::Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    if b.get(at) == Some(&b' ') && matches!(b.get(at + 1), Some(b'+' | b'-')) {
        at += 1;
    }
    let offset = match b.get(at..)? {
        [] | b"Z" => time::UtcOffset::UTC,
        zone => super::dates::fixed_offset(std::str::from_utf8(zone).ok()?)?,
    };
    let nanos = time::PrimitiveDateTime::new(date, time)
        .assume_offset(offset)
        .unix_timestamp_nanos();
    // Milliseconds toward the past, as mongod truncates fractions (before 1970 too).
    i64::try_from(nanos.div_euclid(1_000_000)).ok()
}
