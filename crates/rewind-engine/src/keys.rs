//! Order-preserving binary encoding of BSON values under MongoDB's comparison order.
//!
//! `key_bytes(a) < key_bytes(b)` (bytewise) exactly when mongod sorts `a` before `b`, and
//! values mongod considers equal (`1`, `1i64`, `1.0`) encode identically. Every encoding is
//! prefix-free, so compound keys are plain concatenations and a descending component is the
//! bitwise complement of its ascending encoding.
//!
//! Known approximations: strings compare by UTF-8 bytes (the simple collation); a Decimal128
//! that is no whole number within i64 is mapped to the nearest double, so such decimals
//! differing beyond ~15 significant digits collide (lookups then return a superset, which the
//! filter narrows).

use bson::{Bson, Document};
use rewind_bson::decimal::{Decimal, nearest_f64};

/// Type tags in MongoDB's canonical type order.
mod tag {
    pub const MIN_KEY: u8 = 0x01;
    pub const UNDEFINED: u8 = 0x02;
    pub const NULL: u8 = 0x03;
    pub const NUMBER: u8 = 0x10;
    pub const STRING: u8 = 0x20;
    pub const OBJECT: u8 = 0x30;
    pub const ARRAY: u8 = 0x38;
    pub const BINARY: u8 = 0x40;
    pub const OBJECT_ID: u8 = 0x50;
    pub const BOOL: u8 = 0x58;
    pub const DATE: u8 = 0x60;
    pub const TIMESTAMP: u8 = 0x68;
    pub const REGEX: u8 = 0x70;
    pub const DB_POINTER: u8 = 0x74;
    pub const CODE: u8 = 0x78;
    pub const CODE_WITH_SCOPE: u8 = 0x7C;
    pub const MAX_KEY: u8 = 0x7F;
}

/// Encodes one BSON value into its canonical, order-preserving key.
pub fn key_bytes(value: &Bson) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode(value, &mut out);
    out
}

/// Appends the key of `value` to `out`, complemented when `descending`.
pub fn encode_component(value: &Bson, descending: bool, out: &mut Vec<u8>) {
    let start = out.len();
    encode(value, out);
    if descending {
        for b in &mut out[start..] {
            *b = !*b;
        }
    }
}

fn type_tag(value: &Bson) -> u8 {
    match value {
        Bson::MinKey => tag::MIN_KEY,
        Bson::Undefined => tag::UNDEFINED,
        Bson::Null => tag::NULL,
        Bson::Double(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Decimal128(_) => tag::NUMBER,
        Bson::String(_) | Bson::Symbol(_) => tag::STRING,
        Bson::Document(_) => tag::OBJECT,
        Bson::Array(_) => tag::ARRAY,
        Bson::Binary(_) => tag::BINARY,
        Bson::ObjectId(_) => tag::OBJECT_ID,
        Bson::Boolean(_) => tag::BOOL,
        Bson::DateTime(_) => tag::DATE,
        Bson::Timestamp(_) => tag::TIMESTAMP,
        Bson::RegularExpression(_) => tag::REGEX,
        Bson::DbPointer(_) => tag::DB_POINTER,
        Bson::JavaScriptCode(_) => tag::CODE,
        Bson::JavaScriptCodeWithScope(_) => tag::CODE_WITH_SCOPE,
        Bson::MaxKey => tag::MAX_KEY,
    }
}

fn encode(value: &Bson, out: &mut Vec<u8>) {
    out.push(type_tag(value));
    encode_body(value, out);
}

fn encode_body(value: &Bson, out: &mut Vec<u8>) {
    match value {
        Bson::MinKey | Bson::MaxKey | Bson::Null | Bson::Undefined => {}
        Bson::Double(d) => encode_number(*d, 0, out),
        Bson::Int32(i) => encode_number(f64::from(*i), 0, out),
        Bson::Int64(i) => encode_i64(*i, out),
        // A whole decimal keys as the integer it equals (exactly, past 2^53 too), as the
        // query layer compares them; others by their nearest double.
        Bson::Decimal128(d) => match Decimal::decode(d).as_i64() {
            Some(i) => encode_i64(i, out),
            None => encode_number(nearest_f64(d), 0, out),
        },
        Bson::String(s) | Bson::Symbol(s) => encode_str(s, out),
        Bson::Document(doc) => encode_doc(doc, out),
        Bson::Array(items) => {
            for item in items {
                encode(item, out);
            }
            out.push(0);
        }
        Bson::Binary(bin) => {
            // mongod orders binData by length, then subtype, then bytes.
            let len = u32::try_from(bin.bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.push(u8::from(bin.subtype));
            out.extend_from_slice(&bin.bytes);
        }
        Bson::ObjectId(oid) => out.extend_from_slice(&oid.bytes()),
        Bson::Boolean(b) => out.push(u8::from(*b)),
        Bson::DateTime(dt) => out.extend_from_slice(&ordered_i64(dt.timestamp_millis())),
        Bson::Timestamp(ts) => {
            out.extend_from_slice(&ts.time.to_be_bytes());
            out.extend_from_slice(&ts.increment.to_be_bytes());
        }
        Bson::RegularExpression(re) => {
            encode_str(re.pattern.as_str(), out);
            encode_str(re.options.as_str(), out);
        }
        Bson::JavaScriptCode(code) => encode_str(code, out),
        Bson::JavaScriptCodeWithScope(cws) => {
            encode_str(&cws.code, out);
            encode_doc(&cws.scope, out);
        }
        Bson::DbPointer(_) => {
            // Rare and deprecated: order by its serialized bytes, kept prefix-free by a length.
            let bytes = bson::doc! {"": value.clone()}.to_vec().unwrap_or_default();
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&bytes);
        }
    }
}

/// Objects compare element by element: canonical type, then field name, then value.
fn encode_doc(doc: &Document, out: &mut Vec<u8>) {
    for (name, value) in doc {
        out.push(type_tag(value));
        encode_str(name, out);
        encode_body(value, out);
    }
    out.push(0);
}

/// Strings end with `00 00`; an embedded NUL is escaped as `00 FF` so order is kept.
fn encode_str(s: &str, out: &mut Vec<u8>) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

fn ordered_i64(i: i64) -> [u8; 8] {
    ((i as u64) ^ (1 << 63)).to_be_bytes()
}

/// Int64 values beyond 2^53 are the nearest double plus an exact integer remainder, so they
/// stay distinct from each other yet equal to a double of the same value.
fn encode_i64(i: i64, out: &mut Vec<u8>) {
    if i.unsigned_abs() <= 1 << f64::MANTISSA_DIGITS {
        return encode_number(i as f64, 0, out); // exact: the remainder is 0
    }
    let approx = i as f64;
    // The exact difference is small (|i - approx| <= 2^10), computed in i128 to avoid overflow.
    let rem = i128::from(i) - approx as i128;
    encode_number(approx, i16::try_from(rem).unwrap_or(0), out);
}

/// Numbers: an ordered double (NaN below every number, -0 == 0) and a 2-byte remainder.
fn encode_number(d: f64, rem: i16, out: &mut Vec<u8>) {
    let bits = if d.is_nan() {
        0
    } else {
        let d = if d == 0.0 { 0.0 } else { d };
        let b = d.to_bits();
        if b >> 63 == 1 { !b } else { b | (1 << 63) }
    };
    out.extend_from_slice(&bits.to_be_bytes());
    out.extend_from_slice(&((rem as u16) ^ 0x8000).to_be_bytes());
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut succ = prefix.to_vec();
    while let Some(last) = succ.pop() {
        if last != 0xFF {
            succ.push(last + 1);
            return Some(succ);
        }
    }
    None
}

/// Whether a value may be a document's `_id` (mongod refuses arrays, regexes and undefined).
pub fn valid_id(value: &Bson) -> bool {
    !matches!(
        value,
        Bson::Array(_) | Bson::RegularExpression(_) | Bson::Undefined
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::oid::ObjectId;
    use bson::spec::BinarySubtype;
    use bson::{Binary, DateTime, Timestamp, doc};

    fn ordered(values: &[Bson]) {
        for pair in values.windows(2) {
            assert!(
                key_bytes(&pair[0]) < key_bytes(&pair[1]),
                "{:?} < {:?}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn numbers_are_one_type() {
        assert_eq!(key_bytes(&Bson::Int32(1)), key_bytes(&Bson::Int64(1)));
        assert_eq!(key_bytes(&Bson::Int32(1)), key_bytes(&Bson::Double(1.0)));
        assert_eq!(
            key_bytes(&Bson::Double(-0.0)),
            key_bytes(&Bson::Double(0.0))
        );
        let big = (1i64 << 53) + 1;
        assert_ne!(
            key_bytes(&Bson::Int64(big)),
            key_bytes(&Bson::Int64(big - 1))
        );
        ordered(&[
            Bson::Double(f64::NAN),
            Bson::Double(f64::NEG_INFINITY),
            Bson::Int64(i64::MIN),
            Bson::Int32(-5),
            Bson::Double(-0.5),
            Bson::Int32(0),
            Bson::Double(0.5),
            Bson::Int64(1 << 53),
            Bson::Int64((1 << 53) + 1),
            Bson::Int64(i64::MAX),
            Bson::Double(f64::INFINITY),
        ]);
    }

    #[test]
    fn whole_decimals_key_as_their_integers() {
        let dec = |s: &str| Bson::Decimal128(s.parse().unwrap());
        let big = (1i64 << 53) + 1;
        assert_eq!(
            key_bytes(&dec("9007199254740993")),
            key_bytes(&Bson::Int64(big))
        );
        assert_ne!(
            key_bytes(&dec("9007199254740993")),
            key_bytes(&Bson::Int64(big - 1))
        );
        assert_eq!(key_bytes(&dec("1.20E+3")), key_bytes(&Bson::Int32(1200)));
        assert_eq!(key_bytes(&dec("-7.000")), key_bytes(&Bson::Int32(-7)));
        assert_eq!(key_bytes(&dec("-0")), key_bytes(&Bson::Int32(0)));
        assert_eq!(key_bytes(&dec("2.5")), key_bytes(&Bson::Double(2.5)));
        assert_eq!(
            key_bytes(&dec("-9223372036854775808")),
            key_bytes(&Bson::Int64(i64::MIN))
        );
    }

    #[test]
    fn canonical_type_order() {
        ordered(&[
            Bson::MinKey,
            Bson::Null,
            Bson::Int32(100),
            Bson::String(String::new()),
            Bson::String("a".into()),
            Bson::String("a\0".into()),
            Bson::String("ab".into()),
            Bson::String("b".into()),
            Bson::Document(doc! {}),
            Bson::Document(doc! {"a": 1}),
            Bson::Document(doc! {"a": 1, "b": 1}),
            // Canonical type first, then the field name: a number under "b" sorts before a
            // string under "a".
            Bson::Document(doc! {"b": 0}),
            Bson::Document(doc! {"a": "x"}),
            Bson::Array(vec![]),
            Bson::Array(vec![Bson::Int32(1)]),
            Bson::Array(vec![Bson::Int32(1), Bson::Int32(0)]),
            Bson::Array(vec![Bson::Int32(2)]),
            Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: vec![9, 9],
            }),
            Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: vec![0, 0, 0],
            }),
            Bson::ObjectId(ObjectId::from_bytes([0; 12])),
            Bson::ObjectId(ObjectId::from_bytes([1; 12])),
            Bson::Boolean(false),
            Bson::Boolean(true),
            Bson::DateTime(DateTime::from_millis(-1)),
            Bson::DateTime(DateTime::from_millis(1)),
            Bson::Timestamp(Timestamp {
                time: 1,
                increment: 9,
            }),
            Bson::Timestamp(Timestamp {
                time: 2,
                increment: 0,
            }),
            Bson::RegularExpression(bson::Regex {
                pattern: "a".to_string().try_into().unwrap(),
                options: String::new().try_into().unwrap(),
            }),
            Bson::MaxKey,
        ]);
    }

    #[test]
    fn descending_reverses_and_prefix_successor() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        encode_component(&Bson::String("a".into()), true, &mut a);
        encode_component(&Bson::String("ab".into()), true, &mut b);
        assert!(a > b);
        assert_eq!(prefix_successor(&[1, 2, 0xFF]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[0xFF]), None);
    }
}
