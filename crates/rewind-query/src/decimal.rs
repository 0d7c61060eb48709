//! Exact comparison of Decimal128 values with each other and with the other numbers, as
//! mongod compares them: integers exactly, and a double after rounding it to a 34-digit
//! decimal (`compareDecimalToDouble`), so `9.99` (a double just above 9.99) and
//! `Decimal128("9.99")` differ.

use std::cmp::Ordering;

use bson::Bson;
use rewind_bson::decimal::{DIGITS, Decimal};

fn from_i64(i: i64) -> Decimal {
    Decimal::Finite {
        negative: i < 0,
        coefficient: u128::from(i.unsigned_abs()),
        exponent: 0,
    }
}

/// The double rounded to 34 significant digits (round half to even, on its exact binary
/// value), as mongod converts it for the comparison.
fn from_f64(f: f64) -> Decimal {
    if f.is_nan() {
        return Decimal::NaN;
    }
    if f.is_infinite() {
        return Decimal::Infinite { negative: f < 0.0 };
    }
    if f == 0.0 {
        return from_i64(0);
    }
    // `d.ddd…e±x` with 33 digits after the point.
    let text = format!("{:.33e}", f.abs());
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let coefficient = mantissa.replace('.', "").parse().unwrap_or(0);
    let exponent: i32 = exponent.parse().unwrap_or(0);
    Decimal::Finite {
        negative: f < 0.0,
        coefficient,
        exponent: exponent - 33,
    }
}

fn of(value: &Bson) -> Option<Decimal> {
    match value {
        Bson::Decimal128(d) => Some(Decimal::decode(d)),
        Bson::Int32(i) => Some(from_i64(i64::from(*i))),
        Bson::Int64(i) => Some(from_i64(*i)),
        Bson::Double(f) => Some(from_f64(*f)),
        _ => None,
    }
}

/// Compares two numbers of which at least one is a Decimal128, exactly; NaN equals NaN
/// and sorts below every other number. `None` when either is no number.
pub(crate) fn compare_with_decimal(a: &Bson, b: &Bson) -> Option<Ordering> {
    Some(compare_decs(of(a)?, of(b)?))
}

fn compare_decs(a: Decimal, b: Decimal) -> Ordering {
    // Rank: NaN, -inf, finite, +inf; finite values compare by value.
    let rank = |d: &Decimal| match d {
        Decimal::NaN => 0,
        Decimal::Infinite { negative: true } => 1,
        Decimal::Finite { .. } => 2,
        Decimal::Infinite { negative: false } => 3,
    };
    match (a, b) {
        (
            Decimal::Finite {
                negative: na,
                coefficient: ca,
                exponent: ea,
            },
            Decimal::Finite {
                negative: nb,
                coefficient: cb,
                exponent: eb,
            },
        ) => {
            // Zero has no sign here: -0 == 0.
            let sign = |negative: bool, c: u128| match (c, negative) {
                (0, _) => 0,
                (_, true) => -1,
                (_, false) => 1,
            };
            let (sa, sb) = (sign(na, ca), sign(nb, cb));
            if sa != sb || sa == 0 {
                return sa.cmp(&sb);
            }
            let magnitude = compare_magnitudes(ca, ea, cb, eb);
            if sa < 0 {
                magnitude.reverse()
            } else {
                magnitude
            }
        }
        _ => rank(&a).cmp(&rank(&b)),
    }
}

/// Compares `ca·10^ea` with `cb·10^eb`, both coefficients non-zero and below 10^34.
fn compare_magnitudes(ca: u128, ea: i32, cb: u128, eb: i32) -> Ordering {
    let digits = |c: u128| c.ilog10() + 1;
    let (da, db) = (digits(ca), digits(cb));
    // The position of the leading digit decides, unless it is the same.
    let (lead_a, lead_b) = (ea + da.cast_signed(), eb + db.cast_signed());
    if lead_a != lead_b {
        return lead_a.cmp(&lead_b);
    }
    // Same leading position: scale both to 34 digits (still below 10^34) and compare.
    (ca * 10u128.pow(DIGITS - da)).cmp(&(cb * 10u128.pow(DIGITS - db)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(s.parse().unwrap_or_else(|e| panic!("{s}: {e:?}")))
    }

    fn cmp(a: &Bson, b: &Bson) -> Ordering {
        compare_with_decimal(a, b).unwrap_or_else(|| panic!("{a} vs {b}"))
    }

    #[test]
    fn decimals_compare_exactly() {
        assert_eq!(cmp(&dec("9.99"), &dec("9.990")), Ordering::Equal);
        assert_eq!(cmp(&dec("1.0"), &Bson::Int32(1)), Ordering::Equal);
        assert_eq!(cmp(&dec("-0"), &dec("0E+10")), Ordering::Equal);
        assert_eq!(cmp(&dec("0.1"), &dec("0.09999")), Ordering::Greater);
        assert_eq!(cmp(&dec("-5"), &dec("-4.9")), Ordering::Less);
        assert_eq!(
            cmp(&dec("1.0000000000000000000000000000001"), &Bson::Int32(1)),
            Ordering::Greater
        );
        assert_eq!(
            cmp(
                &dec("9007199254740993"),
                &Bson::Int64(9_007_199_254_740_993)
            ),
            Ordering::Equal
        );
        assert_eq!(
            cmp(&dec("9223372036854775807"), &Bson::Int64(i64::MAX)),
            Ordering::Equal
        );
        assert_eq!(
            cmp(&dec("1E+400"), &Bson::Double(f64::INFINITY)),
            Ordering::Less
        );
        assert_eq!(
            cmp(&dec("Infinity"), &Bson::Double(f64::INFINITY)),
            Ordering::Equal
        );
        assert_eq!(cmp(&dec("NaN"), &Bson::Double(f64::NAN)), Ordering::Equal);
        assert_eq!(cmp(&dec("NaN"), &dec("-Infinity")), Ordering::Less);
    }

    #[test]
    fn doubles_are_rounded_to_34_digits_first() {
        // The double nearest 9.99 is 9.99000000000000021316…: above the decimal.
        assert_eq!(cmp(&Bson::Double(9.99), &dec("9.99")), Ordering::Greater);
        assert_eq!(
            cmp(
                &Bson::Double(9.99),
                &dec("9.990000000000000213162820728030056")
            ),
            Ordering::Equal
        );
        assert_eq!(cmp(&Bson::Double(0.5), &dec("0.5")), Ordering::Equal);
        assert_eq!(cmp(&Bson::Double(0.1), &dec("0.1")), Ordering::Greater);
        assert_eq!(cmp(&Bson::Double(-2.0), &dec("-2")), Ordering::Equal);
    }
}
