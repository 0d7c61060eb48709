//! The bulk loader's check of a document's top level: the framing of every element (type,
//! UTF-8 name, value length within bounds) and its `_id`, in one pass over the bytes. A
//! hand-written walk because `bson`'s element iterator costs several times more per element,
//! and a load sees every element of every document.

use bson::oid::ObjectId;
use bson::{Bson, RawDocument};

use crate::entries::accepted_id;
use crate::error::{EngineError, Result};

/// Where a top-level value lies in its document: type byte, start and length.
#[derive(Clone, Copy, Debug)]
pub(super) struct Field {
    pub(super) kind: u8,
    start: usize,
    len: usize,
}

/// Walks the top level of `doc`; returns its `_id` (the first one).
pub(super) fn checked_id(doc: &RawDocument) -> Result<Bson> {
    walk(doc, &[], &mut [])
}

/// Walks the top level of `doc`; returns its `_id` (the first one, refused when missing or of a
/// type `_id` cannot have, as an insert refuses it) and leaves in `found[i]`
/// where the field named `wanted[i]` is (the last one, as decoding into a document keeps).
pub(super) fn walk(
    doc: &RawDocument,
    wanted: &[&str],
    found: &mut [Option<Field>],
) -> Result<Bson> {
    found.fill(None);
    let bytes = doc.as_bytes();
    let end = bytes.len() - 1; // RawDocument guarantees the length prefix and final NUL
    let mut at = 4;
    let mut id = None;
    while at < end {
        let kind = bytes[at];
        let name_start = at + 1;
        let name_end = rewind_bson::cstring_end(&bytes[..end], name_start)
            .ok_or_else(|| framing("an element name runs past the document"))?;
        let name = &bytes[name_start..name_end];
        let value = name_end + 1;
        let len = value_len(kind, &bytes[value..end])?;
        let field = Field {
            kind,
            start: value,
            len,
        };
        // Spelled out: a slice comparison calls memcmp, once per three-letter name.
        if id.is_none() && name.len() == 3 && name[0] == b'_' && name[1] == b'i' && name[2] == b'd'
        {
            id = Some(field);
        }
        for (w, slot) in wanted.iter().zip(found.iter_mut()) {
            if w.len() == name.len() && w.as_bytes() == name {
                *slot = Some(field);
            }
        }
        at = value + len;
    }
    if at != end {
        return Err(framing("the last element runs past the document"));
    }
    let Some(id) = id else {
        return accepted_id(None);
    };
    let id = match simple_value(doc, id) {
        Some(id) => id,
        None => {
            let id = doc.get("_id")?.ok_or_else(|| framing("_id vanished"))?;
            Bson::try_from(id)?
        }
    };
    accepted_id(Some(id))
}

/// The value of `field` when it is of a type decoded without allocating much (numbers,
/// strings, ObjectIds, dates, booleans, null, timestamps); `None` for the others.
pub(super) fn simple_value(doc: &RawDocument, field: Field) -> Option<Bson> {
    let value = &doc.as_bytes()[field.start..field.start + field.len];
    Some(match field.kind {
        0x01 => Bson::Double(f64::from_le_bytes(array(value))),
        0x02 => {
            // length, bytes, NUL
            let text = value.get(4..value.len().checked_sub(1)?)?;
            (value.last() == Some(&0)).then_some(())?;
            Bson::String(std::str::from_utf8(text).ok()?.to_owned())
        }
        0x07 => Bson::ObjectId(ObjectId::from_bytes(array(value))),
        // A byte other than 0 or 1 is malformed: the general path refuses it.
        0x08 if value[0] <= 1 => Bson::Boolean(value[0] == 1),
        0x09 => Bson::DateTime(bson::DateTime::from_millis(i64::from_le_bytes(array(
            value,
        )))),
        0x0A => Bson::Null,
        0x10 => Bson::Int32(i32::from_le_bytes(array(value))),
        0x11 => {
            let raw = u64::from_le_bytes(array(value));
            Bson::Timestamp(bson::Timestamp {
                time: (raw >> 32) as u32,
                increment: raw as u32,
            })
        }
        0x12 => Bson::Int64(i64::from_le_bytes(array(value))),
        _ => return None,
    })
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

/// How to find the length of a value of one BSON type, from a table rather than a `match`:
/// element types change from one element to the next, and a jump table's indirect branch
/// mispredicted on most of them (a third of the walk's time).
#[derive(Clone, Copy)]
struct Shape {
    /// The value's size, or for a length-prefixed value the bytes beyond the prefixed length.
    size: u8,
    /// An `i32` length (at least `min`) starts the value.
    prefixed: bool,
    min: u8,
    /// A regex or an unknown type: the slow path.
    special: bool,
}

const fn fixed(size: u8) -> Shape {
    Shape {
        size,
        prefixed: false,
        min: 0,
        special: false,
    }
}

const fn prefixed(size: u8, min: u8) -> Shape {
    Shape {
        size,
        prefixed: true,
        min,
        special: false,
    }
}

const SHAPES: [Shape; 256] = {
    let special = Shape {
        size: 0,
        prefixed: false,
        min: 0,
        special: true,
    };
    let mut shapes = [special; 256];
    shapes[0x06] = fixed(0); // undefined
    shapes[0x0A] = fixed(0); // null
    shapes[0x7F] = fixed(0); // maxKey
    shapes[0xFF] = fixed(0); // minKey
    shapes[0x08] = fixed(1); // boolean
    shapes[0x10] = fixed(4); // int32
    shapes[0x01] = fixed(8); // double
    shapes[0x09] = fixed(8); // datetime
    shapes[0x11] = fixed(8); // timestamp
    shapes[0x12] = fixed(8); // int64
    shapes[0x07] = fixed(12); // ObjectId
    shapes[0x13] = fixed(16); // decimal128
    shapes[0x02] = prefixed(4, 1); // string: length, bytes, NUL
    shapes[0x0D] = prefixed(4, 1); // code
    shapes[0x0E] = prefixed(4, 1); // symbol
    shapes[0x03] = prefixed(0, 5); // document (its length counts itself)
    shapes[0x04] = prefixed(0, 5); // array
    shapes[0x0F] = prefixed(0, 5); // code with scope
    shapes[0x05] = prefixed(5, 0); // binary: length, subtype, bytes
    shapes[0x0C] = prefixed(4 + 12, 1); // DBPointer: string, ObjectId
    shapes
};

/// The length of a value of BSON type `kind` at the start of `rest` (which ends before the
/// document's final NUL), checked against it.
fn value_len(kind: u8, rest: &[u8]) -> Result<usize> {
    let shape = SHAPES[usize::from(kind)];
    let len = if shape.special {
        if kind != 0x0B {
            return Err(framing(&format!("unknown element type {kind:#04x}")));
        }
        // regex: pattern and options, two C strings
        let pattern = cstring_len(rest)?;
        pattern + cstring_len(&rest[pattern..])?
    } else if shape.prefixed {
        usize::from(shape.size) + length_prefix(rest, usize::from(shape.min))?
    } else {
        usize::from(shape.size)
    };
    if len > rest.len() {
        return Err(framing("a value runs past the document"));
    }
    Ok(len)
}

/// The little-endian `i32` length at the start of `rest`, at least `min`.
fn length_prefix(rest: &[u8], min: usize) -> Result<usize> {
    let Some(prefix) = rest.get(..4) else {
        return Err(framing("a value runs past the document"));
    };
    usize::try_from(i32::from_le_bytes(array(prefix)))
        .ok()
        .filter(|n| *n >= min)
        .ok_or_else(|| framing("a negative or short length"))
}

/// The length of the NUL-terminated string at the start of `rest`, NUL included.
fn cstring_len(rest: &[u8]) -> Result<usize> {
    rest.iter()
        .position(|b| *b == 0)
        .map(|n| n + 1)
        .ok_or_else(|| framing("a string runs past the document"))
}

fn framing(what: &str) -> EngineError {
    EngineError::BadValue(format!("malformed BSON document: {what}"))
}

#[cfg(test)]
mod tests {
    use bson::{Binary, RawDocumentBuf, doc, spec::BinarySubtype};

    use super::*;

    #[test]
    fn finds_the_id_of_every_kind_past_every_element_type() {
        let oid = ObjectId::new();
        let tail = doc! {
            "d": 1.5, "s": "x", "o": {"a": 1}, "a": [1, "b"], "b": Binary {subtype: BinarySubtype::Generic, bytes: vec![1, 2]},
            "u": Bson::Undefined, "t": true, "dt": bson::DateTime::from_millis(5), "n": Bson::Null,
            "re": bson::Regex { pattern: "a.*".try_into().unwrap(), options: "i".try_into().unwrap() },
            "js": Bson::JavaScriptCode("f()".into()), "ts": bson::Timestamp { time: 1, increment: 2 },
            "l": 7i64, "dec": bson::Decimal128::from_bytes([0; 16]), "min": Bson::MinKey, "max": Bson::MaxKey,
        };
        for id in [
            Bson::Int32(-4),
            Bson::Int64(1 << 40),
            Bson::Double(0.25),
            Bson::ObjectId(oid),
            Bson::String("é".into()),
            Bson::Document(doc! {"x": [1]}),
        ] {
            let mut d = doc! {"first": 1, "_id": id.clone()};
            d.extend(tail.clone());
            d.insert("_id2", 3); // a later name starting the same way
            let raw = RawDocumentBuf::try_from(&d).unwrap();
            assert_eq!(checked_id(&raw).unwrap(), id);
        }
    }

    #[test]
    fn names_of_every_length_and_encoding() {
        for len in 0..20 {
            for name in ["a".repeat(len), "é".repeat(len / 2 + 1)] {
                let raw = RawDocumentBuf::try_from(&doc! {name.clone(): 1, "_id": 2}).unwrap();
                assert_eq!(checked_id(&raw).unwrap(), Bson::Int32(2), "{name}");
            }
        }
        // A name that is not UTF-8: 0xff in place of a letter.
        let raw = RawDocumentBuf::try_from(&doc! {"abcdefghij": 1, "_id": 2}).unwrap();
        for at in [5, 6, 12] {
            let mut bytes = raw.as_bytes().to_vec();
            bytes[at] = 0xff;
            let doc = RawDocument::from_bytes(&bytes).unwrap();
            assert!(checked_id(doc).is_err(), "{at}");
        }
    }

    #[test]
    fn refuses_broken_framing() {
        let raw = RawDocumentBuf::try_from(&doc! {"_id": 1, "s": "abc"}).unwrap();
        let good = raw.as_bytes().to_vec();
        // The string's length prefix pointing past the end, then negative.
        let at = good.len() - 1 - 4 - 4;
        for bad_len in [40i32, -1, 0] {
            let mut bytes = good.clone();
            bytes[at..at + 4].copy_from_slice(&bad_len.to_le_bytes());
            let doc = RawDocument::from_bytes(&bytes).unwrap();
            assert!(checked_id(doc).is_err(), "{bad_len}");
        }
        // An unknown type byte.
        let mut bytes = good.clone();
        bytes[4] = 0x42;
        assert!(checked_id(RawDocument::from_bytes(&bytes).unwrap()).is_err());
        // No _id at all.
        let raw = RawDocumentBuf::try_from(&doc! {"x": 1}).unwrap();
        assert_eq!(checked_id(&raw).unwrap_err().code(), 2);
    }
}
