//! Numeric arithmetic with MongoDB's result typing: int32 widens to int64 on
//! overflow, any double makes a double, any decimal makes a decimal.

use bson::{Bson, Decimal128};

use rewind_bson::decimal::nearest_f64;

use crate::compare::Num;

/// Why an arithmetic operation produced no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithError {
    /// An operand is not a number.
    NotNumeric,
    /// An int64 result overflowed.
    Overflow,
}

/// The widest numeric type among operands, which decides the result type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Width {
    Int32,
    Int64,
    Double,
    Decimal,
}

fn width(value: &Bson) -> Option<Width> {
    match value {
        Bson::Int32(_) => Some(Width::Int32),
        Bson::Int64(_) => Some(Width::Int64),
        Bson::Double(_) => Some(Width::Double),
        Bson::Decimal128(_) => Some(Width::Decimal),
        _ => None,
    }
}

fn as_i64(value: &Bson) -> i64 {
    match value {
        Bson::Int32(i) => i64::from(*i),
        Bson::Int64(i) => *i,
        _ => 0,
    }
}

fn as_f64(value: &Bson) -> f64 {
    match value {
        Bson::Decimal128(d) => nearest_f64(d),
        other => Num::of(other).map_or(f64::NAN, Num::as_f64),
    }
}

/// Converts a double into a Decimal128 through its shortest exact decimal text.
pub(crate) fn f64_to_decimal(f: f64) -> Bson {
    format!("{f:e}")
        .parse::<Decimal128>()
        .map_or(Bson::Double(f), Bson::Decimal128)
}

fn combine(
    a: &Bson,
    b: &Bson,
    int_op: fn(i64, i64) -> Option<i64>,
    float_op: fn(f64, f64) -> f64,
) -> Result<Bson, ArithError> {
    let (Some(wa), Some(wb)) = (width(a), width(b)) else {
        return Err(ArithError::NotNumeric);
    };
    match wa.max(wb) {
        Width::Int32 | Width::Int64 => {
            let r = int_op(as_i64(a), as_i64(b)).ok_or(ArithError::Overflow)?;
            if wa.max(wb) == Width::Int32
                && let Ok(small) = i32::try_from(r)
            {
                return Ok(Bson::Int32(small));
            }
            Ok(Bson::Int64(r))
        }
        Width::Double => Ok(Bson::Double(float_op(as_f64(a), as_f64(b)))),
        Width::Decimal => Ok(f64_to_decimal(float_op(as_f64(a), as_f64(b)))),
    }
}

/// `a + b` with MongoDB typing; int64 overflow is reported to the caller.
pub(crate) fn add(a: &Bson, b: &Bson) -> Result<Bson, ArithError> {
    combine(a, b, i64::checked_add, |x, y| x + y)
}

/// `a * b` with MongoDB typing; int64 overflow is reported to the caller.
pub(crate) fn multiply(a: &Bson, b: &Bson) -> Result<Bson, ArithError> {
    combine(a, b, i64::checked_mul, |x, y| x * y)
}

/// `a - b` with MongoDB typing; int64 overflow is reported to the caller.
pub(crate) fn subtract(a: &Bson, b: &Bson) -> Result<Bson, ArithError> {
    combine(a, b, i64::checked_sub, |x, y| x - y)
}

/// Aggregation-style arithmetic: int64 overflow falls back to a double result.
pub(crate) fn widen_on_overflow(
    op: fn(&Bson, &Bson) -> Result<Bson, ArithError>,
    a: &Bson,
    b: &Bson,
) -> Result<Bson, ArithError> {
    match op(a, b) {
        Err(ArithError::Overflow) => op(&Bson::Double(as_f64(a)), &Bson::Double(as_f64(b))),
        other => other,
    }
}

/// The zero of the same numeric type as `like` (what `$mul` on a missing field sets).
pub(crate) fn zero_like(like: &Bson) -> Bson {
    match like {
        Bson::Int64(_) => Bson::Int64(0),
        Bson::Double(_) => Bson::Double(0.0),
        Bson::Decimal128(_) => f64_to_decimal(0.0),
        _ => Bson::Int32(0),
    }
}

/// The value as a double, for averages and division.
pub(crate) fn to_f64(value: &Bson) -> Option<f64> {
    width(value).map(|_| as_f64(value))
}

/// Whether any operand is a Decimal128 (results then stay decimal).
pub(crate) fn is_decimal(value: &Bson) -> bool {
    matches!(value, Bson::Decimal128(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing() {
        assert_eq!(add(&Bson::Int32(1), &Bson::Int32(2)), Ok(Bson::Int32(3)));
        assert_eq!(
            add(&Bson::Int32(i32::MAX), &Bson::Int32(1)),
            Ok(Bson::Int64(1 << 31))
        );
        assert_eq!(add(&Bson::Int32(1), &Bson::Int64(2)), Ok(Bson::Int64(3)));
        assert_eq!(
            add(&Bson::Int32(1), &Bson::Double(0.5)),
            Ok(Bson::Double(1.5))
        );
        assert_eq!(
            add(&Bson::Int64(i64::MAX), &Bson::Int32(1)),
            Err(ArithError::Overflow)
        );
        assert_eq!(
            widen_on_overflow(add, &Bson::Int64(i64::MAX), &Bson::Int32(1)),
            Ok(Bson::Double(9_223_372_036_854_775_808.0))
        );
        assert_eq!(
            add(&Bson::Int32(1), &Bson::String("x".into())),
            Err(ArithError::NotNumeric)
        );
        let d = add(&Bson::Int32(1), &f64_to_decimal(0.5)).expect("numeric");
        assert_eq!(d.to_string(), "1.5");
        assert_eq!(
            multiply(&Bson::Int32(3), &Bson::Int32(4)),
            Ok(Bson::Int32(12))
        );
    }
}
