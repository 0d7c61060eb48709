//! MongoDB's total order over BSON values (the order used by sort, `$min`,
//! `$max`, range predicates and index keys).

use std::cmp::Ordering;

use bson::{Bson, Document};
use rewind_bson::decimal::nearest_f64;

use crate::decimal;

/// Canonical type class of a value: values of different classes compare by
/// class alone; numbers of every width share one class, as do String and Symbol.
///
/// Undefined is folded into the Null class (it is deprecated and drivers treat it
/// as null), and DBPointer/JavaScript sit after RegularExpression as on the server.
pub fn canonical_type(value: &Bson) -> u8 {
    match value {
        Bson::MinKey => 0,
        Bson::Null | Bson::Undefined => 5,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 10,
        Bson::String(_) | Bson::Symbol(_) => 15,
        Bson::Document(_) => 20,
        Bson::Array(_) => 25,
        Bson::Binary(_) => 30,
        Bson::ObjectId(_) => 35,
        Bson::Boolean(_) => 40,
        Bson::DateTime(_) => 45,
        Bson::Timestamp(_) => 47,
        Bson::RegularExpression(_) => 50,
        Bson::DbPointer(_) => 55,
        Bson::JavaScriptCode(_) => 60,
        Bson::JavaScriptCodeWithScope(_) => 65,
        Bson::MaxKey => 127,
    }
}

/// A number widened for arithmetic and for comparisons without a Decimal128.
///
/// Integers stay exact; Decimal128 is rounded to the nearest double, which only
/// whole-number and truth tests use (comparisons with a Decimal128 are exact, see
/// [`crate::decimal`]; so is decimal arithmetic, see `crate::arith`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    NaN,
    Int(i64),
    Float(f64),
}

/// A number that is a whole value within 32 bits (a double or a decimal exactly), as mongod's
/// `integral()` tests arguments such as positions, limits and precisions.
pub(crate) fn whole_i32(value: &Bson) -> Option<i32> {
    match value {
        Bson::Int32(n) => Some(*n),
        Bson::Int64(n) => i32::try_from(*n).ok(),
        // A whole double within range.
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(f)
            if f.fract() == 0.0 && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(f) =>
        {
            Some(*f as i32)
        }
        Bson::Decimal128(d) => rewind_bson::decimal::Decimal::decode(d)
            .as_i64()
            .and_then(|n| i32::try_from(n).ok()),
        _ => None,
    }
}

impl Num {
    /// The numeric view of `value`, or `None` when it is not a number.
    pub(crate) fn of(value: &Bson) -> Option<Num> {
        match value {
            Bson::Int32(i) => Some(Num::Int(i64::from(*i))),
            Bson::Int64(i) => Some(Num::Int(*i)),
            Bson::Double(f) => Some(Num::from_f64(*f)),
            Bson::Decimal128(d) => Some(Num::from_f64(nearest_f64(d))),
            _ => None,
        }
    }

    fn from_f64(f: f64) -> Num {
        if f.is_nan() { Num::NaN } else { Num::Float(f) }
    }

    /// The value as a double (lossy for very large integers).
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::NaN => f64::NAN,
            // Precision loss above 2^53 is inherent to converting to double.
            #[allow(clippy::cast_precision_loss)]
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// Compares two numbers exactly; NaN equals NaN and sorts below every other number.
pub(crate) fn compare_numbers(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::NaN, Num::NaN) => Ordering::Equal,
        (Num::NaN, _) => Ordering::Less,
        (_, Num::NaN) => Ordering::Greater,
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Num::Int(x), Num::Float(y)) => compare_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => compare_int_float(y, x).reverse(),
    }
}

/// Exact comparison of an i64 with a non-NaN double, avoiding the rounding a
/// plain `as f64` conversion would introduce above 2^53.
fn compare_int_float(i: i64, f: f64) -> Ordering {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_63 {
        return Ordering::Less;
    }
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    let truncated = f.trunc();
    // In range [-2^63, 2^63) and integral, so the conversion is exact.
    #[allow(clippy::cast_possible_truncation)]
    let whole = truncated as i64;
    match i.cmp(&whole) {
        Ordering::Equal => truncated.partial_cmp(&f).unwrap_or(Ordering::Equal),
        other => other,
    }
}

/// MongoDB's comparison of two BSON values.
///
/// MinKey < Null/Undefined < numbers < String/Symbol < Object < Array < BinData
/// < ObjectId < Boolean < Date < Timestamp < RegularExpression < DBPointer <
/// JavaScript < JavaScript-with-scope < MaxKey.
pub fn compare(a: &Bson, b: &Bson) -> Ordering {
    let by_type = canonical_type(a).cmp(&canonical_type(b));
    if by_type != Ordering::Equal {
        return by_type;
    }
    match (a, b) {
        (Bson::String(x) | Bson::Symbol(x), Bson::String(y) | Bson::Symbol(y)) => {
            x.as_bytes().cmp(y.as_bytes())
        }
        (Bson::Document(x), Bson::Document(y)) => compare_documents(x, y),
        (Bson::Array(x), Bson::Array(y)) => compare_arrays(x, y),
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then_with(|| u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then_with(|| x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => x
            .pattern
            .as_str()
            .cmp(y.pattern.as_str())
            .then_with(|| x.options.as_str().cmp(y.options.as_str())),
        // DBPointer's fields are private in the bson crate; its debug form
        // (namespace, then id) gives a deterministic order for this deprecated type.
        (Bson::DbPointer(x), Bson::DbPointer(y)) => format!("{x:?}").cmp(&format!("{y:?}")),
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.cmp(y),
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => x
            .code
            .cmp(&y.code)
            .then_with(|| compare_documents(&x.scope, &y.scope)),
        // A Decimal128 on either side is compared exactly, not through a double.
        (Bson::Decimal128(_), _) | (_, Bson::Decimal128(_)) => {
            decimal::compare_with_decimal(a, b).unwrap_or(Ordering::Equal)
        }
        _ => match (Num::of(a), Num::of(b)) {
            (Some(x), Some(y)) => compare_numbers(x, y),
            // Same class and not a number: MinKey, MaxKey or Null/Undefined.
            _ => Ordering::Equal,
        },
    }
}

/// Field-by-field document comparison: type class, then name, then value;
/// a document that is a prefix of another sorts first.
pub fn compare_documents(a: &Document, b: &Document) -> Ordering {
    for ((ka, va), (kb, vb)) in a.iter().zip(b.iter()) {
        let ord = canonical_type(va)
            .cmp(&canonical_type(vb))
            .then_with(|| ka.as_bytes().cmp(kb.as_bytes()))
            .then_with(|| compare(va, vb));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

fn compare_arrays(a: &[Bson], b: &[Bson]) -> Ordering {
    for (x, y) in a.iter().zip(b.iter()) {
        let ord = compare(x, y);
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

/// Equality consistent with [`compare`]: `1 == 1.0 == 1i64`, `null == undefined`,
/// documents equal field-by-field in order.
pub fn values_equal(a: &Bson, b: &Bson) -> bool {
    compare(a, b) == Ordering::Equal
}

/// Byte-level identity: same types, same field order, same bits. Used to decide
/// whether an update modified a document (mongod's `nModified`).
pub fn identical(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => documents_identical(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| identical(p, q))
        }
        (Bson::Double(x), Bson::Double(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// [`identical`] for documents.
pub fn documents_identical(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && identical(va, vb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{Decimal128, bson, oid::ObjectId};

    #[test]
    fn type_order() {
        let ordered = [
            Bson::MinKey,
            Bson::Null,
            Bson::Double(f64::NAN),
            Bson::Int32(-5),
            Bson::Int64(3),
            Bson::String("a".into()),
            bson!({"a": 1}),
            bson!([1]),
            Bson::Binary(bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes: vec![1],
            }),
            Bson::ObjectId(ObjectId::from_bytes([0; 12])),
            Bson::Boolean(false),
            Bson::Boolean(true),
            Bson::DateTime(bson::DateTime::from_millis(-1)),
            Bson::Timestamp(bson::Timestamp {
                time: 1,
                increment: 0,
            }),
            Bson::MaxKey,
        ];
        for w in ordered.windows(2) {
            assert_eq!(
                compare(&w[0], &w[1]),
                Ordering::Less,
                "{:?} < {:?}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn numbers_cross_type() {
        assert!(values_equal(&Bson::Int32(1), &Bson::Double(1.0)));
        assert!(values_equal(&Bson::Int64(1), &Bson::Double(1.0)));
        let d: Decimal128 = "1.0".parse().expect("decimal");
        assert!(values_equal(&Bson::Decimal128(d), &Bson::Int32(1)));
        assert!(values_equal(
            &Bson::Double(f64::NAN),
            &Bson::Double(f64::NAN)
        ));
        assert!(values_equal(&Bson::Double(-0.0), &Bson::Int32(0)));
        assert_eq!(
            compare(
                &Bson::Int64(i64::MAX),
                &Bson::Double(9_223_372_036_854_775_808.0)
            ),
            Ordering::Less
        );
        assert_eq!(
            compare(
                &Bson::Int64((1 << 53) + 1),
                &Bson::Double((1u64 << 53) as f64)
            ),
            Ordering::Greater
        );
        assert_eq!(compare(&Bson::Int32(2), &Bson::Double(2.5)), Ordering::Less);
        assert_eq!(
            compare(&Bson::Int32(-2), &Bson::Double(-2.5)),
            Ordering::Greater
        );
        assert_eq!(
            compare(&Bson::Double(f64::NEG_INFINITY), &Bson::Int64(i64::MIN)),
            Ordering::Less
        );
    }

    #[test]
    fn null_undefined_and_strings() {
        assert!(values_equal(&Bson::Null, &Bson::Undefined));
        assert!(values_equal(
            &Bson::String("x".into()),
            &Bson::Symbol("x".into())
        ));
        assert_eq!(compare(&bson!("B"), &bson!("a")), Ordering::Less);
    }

    #[test]
    fn documents_and_arrays() {
        assert_eq!(
            compare(&bson!({"a": 1}), &bson!({"a": 1, "b": 1})),
            Ordering::Less
        );
        assert_eq!(compare(&bson!({"a": 2}), &bson!({"b": 1})), Ordering::Less);
        // Type class of the value is compared before the field name.
        assert_eq!(
            compare(&bson!({"b": 1}), &bson!({"a": "x"})),
            Ordering::Less
        );
        assert_eq!(compare(&bson!([1, 2]), &bson!([1, 3])), Ordering::Less);
        assert_eq!(compare(&bson!([]), &bson!([0])), Ordering::Less);
        assert!(!identical(
            &bson!({"a": 1, "b": 2}),
            &bson!({"b": 2, "a": 1})
        ));
        assert!(values_equal(&bson!({"a": 1}), &bson!({"a": 1.0})));
        assert!(!identical(&bson!({"a": 1}), &bson!({"a": 1.0})));
    }

    #[test]
    fn binary_orders_by_length_first() {
        let bin = |subtype: u8, bytes: Vec<u8>| {
            Bson::Binary(bson::Binary {
                subtype: subtype.into(),
                bytes,
            })
        };
        assert_eq!(
            compare(&bin(0, vec![9]), &bin(0, vec![0, 0])),
            Ordering::Less
        );
        assert_eq!(
            compare(&bin(5, vec![0]), &bin(0, vec![9])),
            Ordering::Greater
        );
    }
}
