//! Decimal128 values as numbers: the BID encoding (IEEE 754-2008) decoded into sign,
//! coefficient and exponent, for the engine's index keys and the query layer's exact
//! comparisons.

use bson::Decimal128;

/// The double nearest a Decimal128 (through its canonical text, which Rust's parser reads
/// whole, `NaN` and `Infinity` included).
pub fn nearest_f64(d: &Decimal128) -> f64 {
    d.to_string().parse().unwrap_or(f64::NAN)
}

/// Most significant digits of a Decimal128 coefficient.
pub const DIGITS: u32 = 34;

/// A Decimal128 (or another number converted to one) as sign, coefficient and exponent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decimal {
    /// Not a number.
    NaN,
    /// An infinity.
    Infinite {
        /// Below zero.
        negative: bool,
    },
    /// `±coefficient · 10^exponent`, the coefficient below `10^34`.
    Finite {
        /// Below zero (a zero may carry a sign; it compares as zero).
        negative: bool,
        /// The digits.
        coefficient: u128,
        /// The power of ten they are scaled by.
        exponent: i32,
    },
}

impl Decimal {
    /// Decodes the BID encoding: sign bit, then either a 14-bit exponent and a 113-bit
    /// coefficient, or the `11` form whose coefficients exceed 34 digits (non-canonical,
    /// read as zero) and the infinities and NaNs.
    pub fn decode(d: &Decimal128) -> Decimal {
        let bits = u128::from_le_bytes(d.bytes());
        let negative = bits >> 127 == 1;
        let combination = (bits >> 122) & 0x1F;
        if combination == 0x1F {
            return Decimal::NaN;
        }
        if combination == 0x1E {
            return Decimal::Infinite { negative };
        }
        let (exponent, coefficient) = if (bits >> 125) & 0b11 == 0b11 {
            ((bits >> 111) & 0x3FFF, 0)
        } else {
            let coefficient = bits & ((1 << 113) - 1);
            let canonical = coefficient < 10u128.pow(DIGITS);
            (
                (bits >> 113) & 0x3FFF,
                if canonical { coefficient } else { 0 },
            )
        };
        Decimal::Finite {
            negative,
            coefficient,
            // 14 bits, biased by 6176.
            exponent: i32::try_from(exponent).unwrap_or(0) - 6176,
        }
    }

    /// The value when it is a whole number within i64.
    pub fn as_i64(self) -> Option<i64> {
        let Decimal::Finite {
            negative,
            mut coefficient,
            exponent,
        } = self
        else {
            return None;
        };
        if exponent < 0 {
            // Whole only if the dropped digits are zeros.
            let divisor = 10u128
                .checked_pow(exponent.unsigned_abs())
                .unwrap_or(u128::MAX);
            if coefficient % divisor != 0 {
                return None;
            }
            coefficient /= divisor;
        } else if coefficient != 0 {
            coefficient = coefficient.checked_mul(10u128.checked_pow(exponent.unsigned_abs())?)?;
        }
        let magnitude = i128::try_from(coefficient).ok()?;
        i64::try_from(if negative { -magnitude } else { magnitude }).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Decimal {
        Decimal::decode(&s.parse().unwrap_or_else(|e| panic!("{s}: {e:?}")))
    }

    #[test]
    fn decodes_sign_coefficient_and_exponent() {
        assert_eq!(
            decode("-1.20E+3"),
            Decimal::Finite {
                negative: true,
                coefficient: 120,
                exponent: 1
            }
        );
        assert_eq!(decode("NaN"), Decimal::NaN);
        assert_eq!(decode("-Infinity"), Decimal::Infinite { negative: true });
    }

    #[test]
    fn nearest_doubles() {
        let near = |s: &str| nearest_f64(&s.parse().unwrap_or_else(|e| panic!("{s}: {e:?}")));
        assert_eq!(near("2.5"), 2.5);
        assert_eq!(near("-1.20E+3"), -1200.0);
        assert_eq!(near("Infinity"), f64::INFINITY);
        assert_eq!(near("-Infinity"), f64::NEG_INFINITY);
        assert!(near("NaN").is_nan());
    }

    #[test]
    fn whole_values_within_i64() {
        assert_eq!(decode("9007199254740993").as_i64(), Some((1 << 53) + 1));
        assert_eq!(decode("1.20E+3").as_i64(), Some(1200));
        assert_eq!(decode("-7.000").as_i64(), Some(-7));
        assert_eq!(decode("-0").as_i64(), Some(0));
        assert_eq!(decode("0E-40").as_i64(), Some(0));
        assert_eq!(decode("-9223372036854775808").as_i64(), Some(i64::MIN));
        assert_eq!(decode("9223372036854775808").as_i64(), None);
        assert_eq!(decode("1E+40").as_i64(), None);
        assert_eq!(decode("0.001").as_i64(), None);
        assert_eq!(decode("2.5").as_i64(), None);
        assert_eq!(decode("NaN").as_i64(), None);
    }
}
