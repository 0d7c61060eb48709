//! Numeric arithmetic with MongoDB's result typing: int32 widens to int64 on
//! overflow, any double makes a double, any decimal makes a decimal.
//!
//! Decimal results are computed as mongod computes them: IEEE 754-2008 decimal128 (34
//! digits, round half to even, the exponent the standard prefers, so `1.0 + 1.0` is `2.0`),
//! with a double operand first rounded to 15 significant digits (`Decimal128(double,
//! kRoundTo15Digits)`, so `0.1` joins as `0.100000000000000`) and integers exactly. The
//! arithmetic itself is decNumber's, through the `dec` crate.

use bson::{Bson, Decimal128};

use rewind_bson::decimal::{Decimal, nearest_f64};

use crate::compare::Num;

/// decNumber's context for 128-bit decimals (34 digits, round half to even).
type Context = dec::Context<dec::Decimal128>;

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

/// A decimal operation on decNumber's 128-bit context.
type DecimalOp = fn(&mut Context, dec::Decimal128, dec::Decimal128) -> dec::Decimal128;

/// A number as a decNumber decimal128: integers exactly, doubles rounded to 15 significant
/// digits (as mongod converts them for decimal arithmetic), decimals as they are.
fn to_dec(value: &Bson) -> dec::Decimal128 {
    let mut context = Context::default();
    let text = match value {
        Bson::Int32(i) => return dec::Decimal128::from(*i),
        Bson::Int64(i) => return dec::Decimal128::from(*i),
        Bson::Double(f) if f.is_nan() => return dec::Decimal128::NAN,
        Bson::Double(f) if f.is_infinite() || *f == 0.0 => format!("{f}"),
        Bson::Double(f) => format!("{f:.14e}"),
        Bson::Decimal128(d) => match Decimal::decode(d) {
            Decimal::NaN => return dec::Decimal128::NAN,
            Decimal::Infinite { negative } => format!("{}Infinity", sign(negative)),
            Decimal::Finite {
                negative,
                coefficient,
                exponent,
            } => format!("{}{coefficient}E{exponent}", sign(negative)),
        },
        _ => return dec::Decimal128::NAN,
    };
    // Every text above is a valid number within decimal128's range.
    context.parse(text).unwrap_or(dec::Decimal128::NAN)
}

fn sign(negative: bool) -> &'static str {
    if negative { "-" } else { "" }
}

/// A decNumber decimal128 in BSON's encoding (BID: sign, 14-bit biased exponent, binary
/// coefficient), which differs from decNumber's own (densely packed decimal).
fn from_dec(d: dec::Decimal128) -> Bson {
    let negative = u128::from(d.is_negative()) << 127;
    let bits = if d.is_nan() {
        0x7C00 << 112
    } else if d.is_infinite() {
        negative | 0x7800 << 112
    } else {
        // decimal128's exponents are -6176..=6111 and its coefficients below 10^34 < 2^113.
        let biased = u128::try_from(d.exponent() + 6176).unwrap_or(0);
        negative | biased << 113 | d.coefficient().unsigned_abs()
    };
    Bson::Decimal128(Decimal128::from_bytes(bits.to_le_bytes()))
}

fn decimal_op(a: &Bson, b: &Bson, op: DecimalOp) -> Bson {
    from_dec(op(&mut Context::default(), to_dec(a), to_dec(b)))
}

fn combine(
    a: &Bson,
    b: &Bson,
    int_op: fn(i64, i64) -> Option<i64>,
    float_op: fn(f64, f64) -> f64,
    decimal: DecimalOp,
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
        Width::Decimal => Ok(decimal_op(a, b, decimal)),
    }
}

/// `a + b` with MongoDB typing; int64 overflow is reported to the caller.
pub(crate) fn add(a: &Bson, b: &Bson) -> Result<Bson, ArithError> {
    combine(a, b, i64::checked_add, |x, y| x + y, Context::add)
}

/// `a * b` with MongoDB typing; int64 overflow is reported to the caller.
pub(crate) fn multiply(a: &Bson, b: &Bson) -> Result<Bson, ArithError> {
    combine(a, b, i64::checked_mul, |x, y| x * y, Context::mul)
}

/// `a - b` with MongoDB typing; int64 overflow is reported to the caller.
pub(crate) fn subtract(a: &Bson, b: &Bson) -> Result<Bson, ArithError> {
    combine(a, b, i64::checked_sub, |x, y| x - y, Context::sub)
}

/// `a / b`: a decimal when either is one, a double otherwise (integers too); the caller
/// refuses a zero divisor first.
pub(crate) fn divide(a: &Bson, b: &Bson) -> Result<Bson, ArithError> {
    let (Some(wa), Some(wb)) = (width(a), width(b)) else {
        return Err(ArithError::NotNumeric);
    };
    Ok(if wa.max(wb) == Width::Decimal {
        decimal_op(a, b, Context::div)
    } else {
        Bson::Double(as_f64(a) / as_f64(b))
    })
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

/// The zero of the same numeric type as `like` (what `$mul` on a missing field sets; a
/// decimal zero keeps the multiplier's exponent, as `0 × 1.50` is `0.00`).
pub(crate) fn zero_like(like: &Bson) -> Bson {
    match like {
        Bson::Int64(_) => Bson::Int64(0),
        Bson::Double(_) => Bson::Double(0.0),
        Bson::Decimal128(_) => decimal_op(&Bson::Int32(0), like, Context::mul),
        _ => Bson::Int32(0),
    }
}

/// A number as a Decimal128, as mongod converts it: integers exactly, a double rounded to 15
/// significant digits; `None` for what is no number.
pub(crate) fn to_decimal(value: &Bson) -> Option<Bson> {
    width(value).map(|_| from_dec(to_dec(value)))
}

/// `$abs`: the type is kept, but the least int32 widens to int64 and the least int64
/// overflows.
pub(crate) fn abs(value: &Bson) -> Result<Bson, ArithError> {
    match value {
        Bson::Int32(i) => Ok(i
            .checked_abs()
            .map_or(Bson::Int64(-i64::from(*i)), Bson::Int32)),
        Bson::Int64(i) => i.checked_abs().map(Bson::Int64).ok_or(ArithError::Overflow),
        Bson::Double(f) => Ok(Bson::Double(f.abs())),
        Bson::Decimal128(_) => Ok(from_dec(Context::default().abs(to_dec(value)))),
        _ => Err(ArithError::NotNumeric),
    }
}

/// `$ceil` (`up`) or `$floor`: integers are already whole; a decimal keeps the exponent
/// IEEE's round-to-integral gives (`2.50` → `3`).
pub(crate) fn to_integer(value: &Bson, up: bool) -> Result<Bson, ArithError> {
    match value {
        Bson::Int32(_) | Bson::Int64(_) => Ok(value.clone()),
        Bson::Double(f) => Ok(Bson::Double(if up { f.ceil() } else { f.floor() })),
        Bson::Decimal128(_) => {
            let mut context = Context::default();
            context.set_rounding(if up {
                dec::Rounding::Ceiling
            } else {
                dec::Rounding::Floor
            });
            let whole = context.round(to_dec(value));
            // mongod quantizes to exponent 0: `1E+5` is `100000` (when it fits 34 digits).
            let quantized = context.quantize(whole, dec::Decimal128::from(0));
            Ok(from_dec(if quantized.is_nan() { whole } else { quantized }))
        }
        _ => Err(ArithError::NotNumeric),
    }
}

/// `$round` (`half_even`) or `$trunc` (toward zero) to `place` decimal places (negative:
/// tens, hundreds ...), as mongod does it: a decimal is quantized to `10^-place`; a double
/// joins at 34 digits, is quantized and converted back; an integer changes only for a
/// negative place, and becomes a long past int32 (a result past int64 is an overflow).
/// Infinities are returned as they are; a result needing more than 34 digits is NaN.
pub(crate) fn round_to_place(
    value: &Bson,
    place: i64,
    half_even: bool,
) -> Result<Bson, ArithError> {
    let mut context = Context::default();
    context.set_rounding(if half_even {
        dec::Rounding::HalfEven
    } else {
        dec::Rounding::Down
    });
    let quantum = context
        .parse(format!("1E{}", -place))
        .map_err(|_| ArithError::Overflow)?;
    match value {
        Bson::Decimal128(_) | Bson::Double(_) => {
            let exact = match value {
                Bson::Double(f) if f.is_finite() => context
                    .parse(format!("{f:.33e}"))
                    .map_err(|_| ArithError::NotNumeric)?,
                _ => to_dec(value),
            };
            if exact.is_infinite() {
                return Ok(value.clone());
            }
            let rounded = from_dec(context.quantize(exact, quantum));
            Ok(match (value, &rounded) {
                (Bson::Double(_), Bson::Decimal128(d)) => Bson::Double(nearest_f64(d)),
                _ => rounded,
            })
        }
        Bson::Int32(_) | Bson::Int64(_) if place >= 0 => Ok(value.clone()),
        Bson::Int32(_) | Bson::Int64(_) => {
            let rounded = context.quantize(to_dec(value), quantum);
            let Bson::Decimal128(d) = from_dec(rounded) else {
                return Err(ArithError::Overflow);
            };
            let whole = Decimal::decode(&d).as_i64().ok_or(ArithError::Overflow)?;
            Ok(match value {
                // mongod widens an int only past INT_MAX; below INT_MIN its int cast wraps.
                #[allow(clippy::cast_possible_truncation)]
                Bson::Int32(_) if whole <= i64::from(i32::MAX) => Bson::Int32(whole as i32),
                _ => Bson::Int64(whole),
            })
        }
        _ => Err(ArithError::NotNumeric),
    }
}

/// Whether a number is zero, a decimal exactly (`1E-400` is not, though its double is).
pub(crate) fn is_zero(value: &Bson) -> bool {
    match value {
        Bson::Decimal128(d) => matches!(Decimal::decode(d), Decimal::Finite { coefficient: 0, .. }),
        other => to_f64(other) == Some(0.0),
    }
}

/// The value as a double, for averages and division.
pub(crate) fn to_f64(value: &Bson) -> Option<f64> {
    width(value).map(|_| as_f64(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimal(text: &str) -> Bson {
        Bson::Decimal128(text.parse().unwrap_or_else(|e| panic!("{text}: {e:?}")))
    }

    /// The decimal results mongod gives (its IEEE 754 decimal128 library), compared by their
    /// text, which shows the exponent as well as the value.
    #[test]
    fn decimal_arithmetic_is_exact_and_keeps_the_exponent() {
        let text = |result: Result<Bson, ArithError>| match result {
            Ok(Bson::Decimal128(d)) => d.to_string(),
            other => panic!("not a decimal: {other:?}"),
        };
        assert_eq!(text(add(&decimal("0.1"), &decimal("0.2"))), "0.3");
        assert_eq!(text(add(&decimal("1.0"), &decimal("1.0"))), "2.0");
        assert_eq!(text(add(&decimal("19.99"), &Bson::Int32(1))), "20.99");
        assert_eq!(text(subtract(&decimal("1.00"), &decimal("0.01"))), "0.99");
        assert_eq!(text(subtract(&decimal("0.5"), &decimal("0.5"))), "0.0");
        assert_eq!(text(multiply(&decimal("1.10"), &decimal("3"))), "3.30");
        assert_eq!(text(multiply(&decimal("-2.5"), &Bson::Int64(4))), "-10.0");
        assert_eq!(
            text(divide(&decimal("1"), &Bson::Int32(3))),
            "0.3333333333333333333333333333333333"
        );
        assert_eq!(text(divide(&decimal("10"), &decimal("4"))), "2.5");
        assert_eq!(text(divide(&decimal("1"), &decimal("0"))), "Infinity");
        // Past a double's 15–17 digits.
        assert_eq!(
            text(add(
                &decimal("1234567890123456789012345678901234"),
                &Bson::Int32(1)
            )),
            "1234567890123456789012345678901235"
        );
        // Rounded half to even at 34 digits.
        assert_eq!(
            text(add(
                &decimal("9999999999999999999999999999999999"),
                &decimal("0.5")
            )),
            "1.000000000000000000000000000000000E+34"
        );
        // A double joins rounded to 15 significant digits.
        assert_eq!(
            text(add(&decimal("0"), &Bson::Double(0.1))),
            "0.100000000000000"
        );
        assert_eq!(
            text(add(&decimal("1"), &Bson::Double(2.5))),
            "3.50000000000000"
        );
        assert_eq!(text(add(&decimal("1"), &Bson::Double(-0.0))), "1");
        assert_eq!(
            text(add(&decimal("1"), &Bson::Double(f64::INFINITY))),
            "Infinity"
        );
        assert_eq!(text(add(&decimal("-Infinity"), &decimal("1"))), "-Infinity");
        assert_eq!(text(add(&decimal("NaN"), &decimal("1"))), "NaN");
        assert_eq!(
            text(multiply(&decimal("1E-6176"), &decimal("1E-10"))),
            "0E-6176"
        );
        assert_eq!(text(Ok(zero_like(&decimal("1.50")))), "0.00");
        assert_eq!(abs(&Bson::Int32(i32::MIN)), Ok(Bson::Int64(1 << 31)));
        assert_eq!(abs(&Bson::Int64(i64::MIN)), Err(ArithError::Overflow));
        assert_eq!(text(abs(&decimal("-2.50"))), "2.50");
        assert_eq!(text(to_integer(&decimal("2.50"), true)), "3");
        assert_eq!(text(to_integer(&decimal("-2.5"), false)), "-3");
        assert_eq!(text(to_integer(&decimal("1E+5"), true)), "100000");
        assert_eq!(
            to_integer(&Bson::Double(-2.5), true),
            Ok(Bson::Double(-2.0))
        );
        assert!(is_zero(&decimal("-0E+3")) && is_zero(&Bson::Double(-0.0)));
        // $round is half to even; $trunc toward zero; doubles go through 34 digits.
        assert_eq!(text(round_to_place(&decimal("2.345"), 2, true)), "2.34");
        assert_eq!(text(round_to_place(&decimal("-2.349"), 2, false)), "-2.34");
        assert_eq!(
            round_to_place(&Bson::Double(2.675), 2, true),
            Ok(Bson::Double(2.67))
        );
        assert_eq!(
            round_to_place(&Bson::Double(0.125), 2, true),
            Ok(Bson::Double(0.12))
        );
        assert_eq!(
            round_to_place(&Bson::Int32(1250), -2, true),
            Ok(Bson::Int32(1200))
        );
        assert_eq!(
            round_to_place(&Bson::Int32(1350), -2, true),
            Ok(Bson::Int32(1400))
        );
        assert_eq!(
            round_to_place(&Bson::Int32(i32::MAX), -1, true),
            Ok(Bson::Int64(2_147_483_650))
        );
        assert_eq!(round_to_place(&Bson::Int64(7), 3, true), Ok(Bson::Int64(7)));
        assert_eq!(
            round_to_place(&Bson::Int32(i32::MIN), -1, true),
            Ok(Bson::Int32(2_147_483_646)),
            "wraps as mongod's int cast does"
        );
        assert_eq!(
            round_to_place(&Bson::Double(f64::INFINITY), 1, true),
            Ok(Bson::Double(f64::INFINITY))
        );
        assert!(!is_zero(&decimal("1E-400")) && !is_zero(&decimal("NaN")));
        assert_eq!(text(divide(&decimal("1E-400"), &decimal("1E-400"))), "1");
        // Integers and doubles divide as doubles.
        assert_eq!(
            divide(&Bson::Int32(1), &Bson::Int32(4)),
            Ok(Bson::Double(0.25))
        );
    }

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
        assert_eq!(add(&Bson::Int32(1), &decimal("0.5")), Ok(decimal("1.5")));
        assert_eq!(
            multiply(&Bson::Int32(3), &Bson::Int32(4)),
            Ok(Bson::Int32(12))
        );
    }
}
