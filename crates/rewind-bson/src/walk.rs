//! The validating walk of a BSON document, over its bytes.
//!
//! Every element at every depth is framed and parsed as `bson`'s conversion to a
//! `Document` parses it, and refused where that conversion would fail; nesting deeper than
//! [`MAX_DEPTH`] is refused before it is entered; and the walk tells whether the document
//! is canonical (see [`crate::canonical`]). Hand-written because `bson`'s element iterator,
//! which frames each element and then parses it again, took a tenth of the server's time
//! on an insert, twice: the wire walks every document a client sends and the engine every
//! document it stores.

use std::ops::Range;

use bson::RawDocument;

use crate::canonical::{SeenKeys, is_array_index};

/// Deepest document nesting accepted: `mongod`'s BSON validation depth. Above all it bounds
/// the recursion of document decoding, so that a hostile 16 MiB document of nested objects
/// cannot overflow the stack.
pub const MAX_DEPTH: usize = 200;

/// Smallest valid BSON document: a length and a terminating NUL.
const MIN_DOCUMENT_LEN: usize = 5;
/// Smallest code-with-scope value: its length, an empty string, an empty document.
const MIN_CODE_WITH_SCOPE_LEN: usize = 4 + 5 + MIN_DOCUMENT_LEN;
/// The binary subtype whose data starts with its own length again.
const BINARY_OLD: u8 = 0x02;

/// Why a document was refused.
#[derive(Debug, thiserror::Error)]
pub enum BsonError {
    /// Bytes the conversion to a `Document` would refuse.
    #[error("malformed BSON: {0}")]
    Malformed(String),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("document nesting exceeds {MAX_DEPTH} levels")]
    TooDeep,
}

/// What the walk of an accepted document found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Encoding the decoded document gives back the same bytes: no repeated key in any
    /// (sub)document, every array keyed `"0"`, `"1"`, ... in order (regular expression
    /// options, which the conversion sorts, are not looked at).
    pub canonical: bool,
    /// Where the last top-level `_id` element lies in the document, type byte to the end
    /// of its value (the one a decoded document keeps); `None` without one.
    pub id_element: Option<Range<usize>>,
}

/// Walks every element of `doc` at every depth: `Ok` when the conversion to a `Document`
/// would succeed and the nesting is at most [`MAX_DEPTH`] deep.
pub fn check_document(doc: &RawDocument) -> Result<Checked, BsonError> {
    let mut id_element = None;
    // `RawDocument` guarantees the length prefix matches and the last byte is NUL.
    let canonical = walk(
        doc.as_bytes(),
        1,
        false,
        &mut SeenKeys::new(),
        &mut id_element,
    )?;
    Ok(Checked {
        canonical,
        id_element,
    })
}

/// Walks the document `doc` (framing already checked) at nesting level `depth`; at the
/// top level, leaves the last `_id` element's place in `id_element`.
fn walk<'a>(
    doc: &'a [u8],
    depth: usize,
    array: bool,
    keys: &mut SeenKeys<&'a [u8]>,
    id_element: &mut Option<Range<usize>>,
) -> Result<bool, BsonError> {
    if depth > MAX_DEPTH {
        return Err(BsonError::TooDeep);
    }
    // Elements lie between the length prefix and the final NUL.
    let end = doc.len() - 1;
    let mut level = keys.enter();
    let mut canonical = true;
    let mut pos = 4;
    let mut index = 0;
    while pos < end {
        let kind = doc[pos];
        let name_end = cstring_end(&doc[..end], pos + 1)
            .ok_or_else(|| malformed("element name (no NUL, or not UTF-8)"))?;
        let name = &doc[pos + 1..name_end];
        if array {
            canonical &= is_array_index(name, index);
        } else if canonical {
            canonical &= !keys.repeated(&mut level, name);
        }
        let start = name_end + 1;
        let rest = &doc[start..end];
        let len = match kind {
            // double, datetime, timestamp, int64
            0x01 | 0x09 | 0x11 | 0x12 => fixed(rest, 8)?,
            // int32
            0x10 => fixed(rest, 4)?,
            // ObjectId
            0x07 => fixed(rest, 12)?,
            // decimal128
            0x13 => fixed(rest, 16)?,
            // undefined, null, max key, min key
            0x06 | 0x0A | 0x7F | 0xFF => 0,
            0x08 => match rest.first() {
                Some(0 | 1) => 1,
                Some(_) => return Err(malformed("boolean is neither 0 nor 1")),
                None => return Err(malformed("boolean")),
            },
            // string, JavaScript code, symbol
            0x02 | 0x0D | 0x0E => string_len(rest)?,
            0x03 | 0x04 => {
                let len = document_len(rest)?;
                canonical &= walk(&rest[..len], depth + 1, kind == 0x04, keys, &mut None)?;
                len
            }
            0x05 => binary_len(rest)?,
            // regular expression: pattern and options
            0x0B => {
                let pattern = cstring_len(rest)?;
                pattern + cstring_len(&rest[pattern..])?
            }
            // DBPointer: a namespace string and an ObjectId
            0x0C => {
                let len = string_len(rest)? + 12;
                fixed(rest, len)?
            }
            0x0F => {
                let len = fixed(rest, length_prefix(rest)?)?;
                if len < MIN_CODE_WITH_SCOPE_LEN {
                    return Err(malformed("code with scope is too short"));
                }
                let code = 4 + string_len(&rest[4..len])?;
                let scope = &rest[code..len];
                if document_len(scope)? != scope.len() {
                    return Err(malformed("code with scope has bytes after its scope"));
                }
                canonical &= walk(scope, depth + 1, false, keys, &mut None)?;
                len
            }
            other => return Err(malformed(&format!("element type {other:#04x}"))),
        };
        if depth == 1 && name == b"_id" {
            *id_element = Some(pos..start + len);
        }
        pos = start + len;
        index += 1;
    }
    keys.leave(level);
    Ok(canonical)
}

fn malformed(what: &str) -> BsonError {
    BsonError::Malformed(what.into())
}

/// `len` when `rest` holds at least that many bytes.
fn fixed(rest: &[u8], len: usize) -> Result<usize, BsonError> {
    if rest.len() < len {
        return Err(malformed("value runs past its document"));
    }
    Ok(len)
}

/// The non-negative little-endian `i32` at the start of `rest`.
fn length_prefix(rest: &[u8]) -> Result<usize, BsonError> {
    let bytes = rest
        .first_chunk::<4>()
        .ok_or_else(|| malformed("length runs past its document"))?;
    usize::try_from(i32::from_le_bytes(*bytes)).map_err(|_| malformed("negative length"))
}

/// The length, prefix included, of the UTF-8 string (length, bytes, NUL) starting `rest`.
fn string_len(rest: &[u8]) -> Result<usize, BsonError> {
    let declared = length_prefix(rest)?;
    if declared == 0 {
        return Err(malformed("string without its NUL"));
    }
    let len = fixed(rest, 4 + declared)?;
    if rest[len - 1] != 0 {
        return Err(malformed("string is not NUL-terminated"));
    }
    std::str::from_utf8(&rest[4..len - 1]).map_err(|_| malformed("string is not UTF-8"))?;
    Ok(len)
}

/// The length of the embedded document starting `rest`: at least five bytes, all within
/// `rest`, the last a NUL.
fn document_len(rest: &[u8]) -> Result<usize, BsonError> {
    let len = length_prefix(rest)?;
    if len < MIN_DOCUMENT_LEN {
        return Err(malformed("document is too short"));
    }
    fixed(rest, len)?;
    if rest[len - 1] != 0 {
        return Err(malformed("document is not NUL-terminated"));
    }
    Ok(len)
}

/// The length of the binary value (length, subtype, data) starting `rest`.
fn binary_len(rest: &[u8]) -> Result<usize, BsonError> {
    let data = length_prefix(rest)?;
    let len = fixed(rest, data + 5)?;
    if rest[4] == BINARY_OLD {
        // The old subtype repeats the length of the rest of the data at its start.
        let inner = rest[5..len]
            .first_chunk::<4>()
            .map(|b| i64::from(i32::from_le_bytes(*b)));
        if inner.is_none_or(|inner| inner + 4 != i64::try_from(data).unwrap_or(i64::MAX)) {
            return Err(malformed("old binary subtype with a wrong inner length"));
        }
    }
    Ok(len)
}

/// The length, NUL included, of the UTF-8 C string starting `rest`.
fn cstring_len(rest: &[u8]) -> Result<usize, BsonError> {
    cstring_end(rest, 0)
        .map(|end| end + 1)
        .ok_or_else(|| malformed("C string (no NUL, or not UTF-8)"))
}

/// Where the UTF-8 C string (an element name, a regular expression) starting at `from` in
/// `bytes` ends (its NUL); `None` without a NUL or when it is not UTF-8. Eight bytes at a
/// time: most names fit in one word, so the end is found without a branch per byte (whose
/// misprediction at every name's end cost more than the rest of a walk), and a name found
/// ASCII on the way needs no UTF-8 check.
pub fn cstring_end(bytes: &[u8], from: usize) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = from;
    let mut ascii = true;
    while let Some(word) = bytes.get(at..).and_then(|b| b.first_chunk::<8>()) {
        let word = u64::from_le_bytes(*word);
        // The lowest flagged byte is exactly the first zero byte.
        let zeros = word.wrapping_sub(LOW) & !word & HIGH;
        if zeros != 0 {
            let len = zeros.trailing_zeros() as usize / 8;
            let before = (1u64 << (8 * len)) - 1;
            ascii &= word & HIGH & before == 0;
            return checked_utf8(bytes, from, at + len, ascii);
        }
        ascii &= word & HIGH == 0;
        at += 8;
    }
    let len = bytes.get(at..)?.iter().position(|b| *b == 0)?;
    checked_utf8(bytes, from, at + len, false)
}

fn checked_utf8(bytes: &[u8], from: usize, end: usize, ascii: bool) -> Option<usize> {
    (ascii || std::str::from_utf8(&bytes[from..end]).is_ok()).then_some(end)
}

#[cfg(test)]
mod tests {
    use bson::oid::ObjectId;
    use bson::raw::{CString, RawBsonRef};
    use bson::spec::BinarySubtype;
    use bson::{
        Binary, Bson, DateTime, Decimal128, Document, JavaScriptCodeWithScope, Regex, Timestamp,
        doc,
    };
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// The walk this module replaced, over `bson`'s element iterator: the oracle the
    /// hand-written walk must agree with on every input.
    fn oracle<'a>(
        doc: &'a RawDocument,
        depth: usize,
        array: bool,
        keys: &mut SeenKeys<&'a str>,
    ) -> Result<bool, BsonError> {
        if depth > MAX_DEPTH {
            return Err(BsonError::TooDeep);
        }
        let mut level = keys.enter();
        let mut canonical = true;
        for (index, element) in doc.into_iter().enumerate() {
            let (key, value) = element.map_err(|e| BsonError::Malformed(e.to_string()))?;
            let key = key.as_str();
            if array {
                canonical &= is_array_index(key.as_bytes(), index);
            } else if canonical {
                canonical &= !keys.repeated(&mut level, key);
            }
            let (nested, nested_array) = match value {
                RawBsonRef::Document(d) => (d, false),
                RawBsonRef::Array(a) => (
                    RawDocument::from_bytes(a.as_bytes())
                        .map_err(|e| BsonError::Malformed(e.to_string()))?,
                    true,
                ),
                RawBsonRef::JavaScriptCodeWithScope(code) => (code.scope, false),
                _ => continue,
            };
            canonical &= oracle(nested, depth + 1, nested_array, keys)?;
        }
        keys.leave(level);
        Ok(canonical)
    }

    /// Both walks of `bytes` give the same verdict (the same canonical flag, or an error of
    /// the same kind), and what the walk accepts converts to a `Document` and back to the
    /// same bytes exactly when it says canonical (but for regular expressions, whose options
    /// the conversion sorts and neither walk looks at), with the `_id` the walk points at.
    /// Returns the walk's verdict (`None`: not framed as a document).
    fn agree(bytes: &[u8]) -> Option<Result<bool, BsonError>> {
        let raw = RawDocument::from_bytes(bytes).ok()?;
        let checked = check_document(raw);
        if let Ok(checked) = &checked {
            let decoded = Document::try_from(raw).expect("an accepted document decodes");
            // Compared as printed: a NaN inside an `_id` is not equal to itself.
            assert_eq!(
                format!(
                    "{:?}",
                    checked.id_element.clone().map(|at| id_of(&bytes[at]))
                ),
                format!("{:?}", decoded.get("_id")),
                "_id of {bytes:?}"
            );
        }
        let walked = checked.map(|checked| checked.canonical);
        let expected = oracle(raw, 1, false, &mut SeenKeys::new());
        match (&walked, &expected) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "canonical flags differ on {bytes:?}"),
            (Err(BsonError::TooDeep), Err(BsonError::TooDeep))
            | (Err(BsonError::Malformed(_)), Err(BsonError::Malformed(_))) => {}
            _ => panic!("walk {walked:?}, oracle {expected:?} on {bytes:?}"),
        }
        match &walked {
            Ok(canonical) => {
                let decoded = Document::try_from(raw).expect("an accepted document decodes");
                let encoded = decoded.to_vec().expect("a decoded document encodes");
                if !holds_regex(&Bson::Document(decoded)) {
                    assert_eq!(*canonical, encoded == bytes, "canonical flag on {bytes:?}");
                } else if !*canonical {
                    assert_ne!(encoded, bytes, "canonical flag on {bytes:?}");
                }
            }
            Err(BsonError::Malformed(_)) => assert!(Document::try_from(raw).is_err()),
            Err(_) => {}
        }
        Some(walked)
    }

    /// The value of a document made of the one `_id` element `element`.
    fn id_of(element: &[u8]) -> Bson {
        let mut bytes = i32::try_from(element.len() + 5)
            .unwrap_or(0)
            .to_le_bytes()
            .to_vec();
        bytes.extend_from_slice(element);
        bytes.push(0);
        let document = Document::from_reader(&bytes[..]).unwrap_or_else(|e| panic!("{e}"));
        document.get("_id").cloned().unwrap_or(Bson::Null)
    }

    fn holds_regex(value: &Bson) -> bool {
        match value {
            Bson::RegularExpression(_) => true,
            Bson::Document(doc) => doc.values().any(holds_regex),
            Bson::JavaScriptCodeWithScope(code) => code.scope.values().any(holds_regex),
            Bson::Array(items) => items.iter().any(holds_regex),
            _ => false,
        }
    }

    fn cstring(text: String) -> CString {
        CString::try_from(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn leaf() -> impl Strategy<Value = Bson> {
        prop_oneof![
            any::<f64>().prop_map(Bson::Double),
            "[a-z\u{e9}\u{1f600}]{0,4}".prop_map(Bson::String),
            any::<i32>().prop_map(Bson::Int32),
            any::<i64>().prop_map(Bson::Int64),
            any::<bool>().prop_map(Bson::Boolean),
            Just(Bson::Null),
            Just(Bson::Undefined),
            Just(Bson::MinKey),
            Just(Bson::MaxKey),
            any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(ObjectId::from_bytes(b))),
            any::<i64>().prop_map(|m| Bson::DateTime(DateTime::from_millis(m))),
            (any::<u32>(), any::<u32>())
                .prop_map(|(time, increment)| Bson::Timestamp(Timestamp { time, increment })),
            any::<[u8; 16]>().prop_map(|b| Bson::Decimal128(Decimal128::from_bytes(b))),
            (0u8..=0x09, vec(any::<u8>(), 0..6)).prop_map(|(subtype, bytes)| {
                Bson::Binary(Binary {
                    subtype: BinarySubtype::from(subtype),
                    bytes,
                })
            }),
            ("[a-z]{0,3}", "[ims]{0,2}").prop_map(|(pattern, options)| {
                Bson::RegularExpression(Regex {
                    pattern: cstring(pattern),
                    options: cstring(options),
                })
            }),
            "[a-z]{0,4}".prop_map(Bson::JavaScriptCode),
            "[a-z]{0,4}".prop_map(Bson::Symbol),
        ]
    }

    fn value() -> impl Strategy<Value = Bson> {
        leaf().prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                vec(("[a-c0-2]{0,2}", inner.clone()), 0..4)
                    .prop_map(|fields| Bson::Document(fields.into_iter().collect())),
                vec(inner.clone(), 0..4).prop_map(Bson::Array),
                ("[a-z]{0,3}", vec(("[a-c]{1,2}", inner), 0..3)).prop_map(|(code, fields)| {
                    Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                        code,
                        scope: fields.into_iter().collect(),
                    })
                }),
            ]
        })
    }

    /// A change to an encoded document: one byte, or the `i32` at a position moved a little
    /// (lengths are where framing goes wrong).
    #[derive(Clone, Debug)]
    enum Mutation {
        Byte(usize, u8),
        Length(usize, i32),
        Truncate(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let interesting = prop_oneof![
            prop::sample::select(vec![
                0x00u8, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x08, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
                0x13, 0x14, 0x7F, 0xFF, 0x80, 0xC3, 0xFE,
            ]),
            any::<u8>(),
        ];
        prop_oneof![
            3 => (any::<usize>(), interesting).prop_map(|(at, byte)| Mutation::Byte(at, byte)),
            2 => (any::<usize>(), -6i32..=6).prop_map(|(at, by)| Mutation::Length(at, by)),
            1 => any::<usize>().prop_map(Mutation::Truncate),
        ]
    }

    /// Applies `mutation` below the top-level length prefix, which is then set to the new
    /// length: the top-level framing stays valid and the walk sees everything else.
    fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
        let body = bytes.len() - 4;
        match *mutation {
            Mutation::Byte(at, byte) => bytes[4 + at % body] = byte,
            Mutation::Length(at, by) => {
                if body >= 4 {
                    let at = 4 + at % (body - 3);
                    let mut word = [0u8; 4];
                    word.copy_from_slice(&bytes[at..at + 4]);
                    let moved = i32::from_le_bytes(word).wrapping_add(by);
                    bytes[at..at + 4].copy_from_slice(&moved.to_le_bytes());
                }
            }
            Mutation::Truncate(at) => {
                bytes.truncate(4 + at % body);
                bytes.push(0);
            }
        }
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        bytes[..4].copy_from_slice(&len.to_le_bytes());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn the_walk_agrees_with_bson_on_valid_and_damaged_documents(
            fields in vec(("[a-c_]{0,2}|_id", value()), 0..6),
            mutations in vec(mutation(), 0..4),
        ) {
            let document: Document = fields.into_iter().collect();
            let mut bytes = document.to_vec().unwrap_or_else(|e| panic!("{e}"));
            prop_assert_eq!(agree(&bytes).map(|v| v.is_ok()), Some(true));
            for mutation in &mutations {
                mutate(&mut bytes, mutation);
                agree(&bytes);
            }
        }
    }

    /// Encodes `elements` (type byte, name, value bytes) as a document by hand.
    fn hand_made(elements: &[(u8, &[u8], &[u8])]) -> Vec<u8> {
        let mut bytes = vec![0; 4];
        for (kind, name, value) in elements {
            bytes.push(*kind);
            bytes.extend_from_slice(name);
            bytes.push(0);
            bytes.extend_from_slice(value);
        }
        bytes.push(0);
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        bytes[..4].copy_from_slice(&len.to_le_bytes());
        bytes
    }

    fn string(text: &[u8]) -> Vec<u8> {
        let len = i32::try_from(text.len() + 1).unwrap_or(i32::MAX);
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(text);
        bytes.push(0);
        bytes
    }

    #[test]
    fn edge_cases_of_each_type_agree_with_bson() {
        let empty_doc: &[u8] = &[5, 0, 0, 0, 0];
        let mut dbpointer = string(b"db.c");
        dbpointer.extend_from_slice(&[7; 12]);
        let mut code_with_scope = Vec::new();
        let code = string(b"x");
        let total = i32::try_from(4 + code.len() + empty_doc.len()).unwrap_or(0);
        code_with_scope.extend_from_slice(&total.to_le_bytes());
        code_with_scope.extend_from_slice(&code);
        code_with_scope.extend_from_slice(empty_doc);
        let mut scope_with_trailing_byte = code_with_scope.clone();
        scope_with_trailing_byte[0] += 1;
        scope_with_trailing_byte.push(0);
        let old_binary = |inner: i32, data: &[u8]| {
            let mut bytes = i32::try_from(4 + data.len())
                .unwrap_or(0)
                .to_le_bytes()
                .to_vec();
            bytes.push(BINARY_OLD);
            bytes.extend_from_slice(&inner.to_le_bytes());
            bytes.extend_from_slice(data);
            bytes
        };
        let accepted: Vec<Vec<u8>> = vec![
            hand_made(&[(0x0C, b"p", &dbpointer)]),
            hand_made(&[(0x0F, b"c", &code_with_scope)]),
            hand_made(&[(0x05, b"b", &old_binary(2, b"ab"))]),
            hand_made(&[(0x02, b"s", &string(b"a\0b"))]),
            hand_made(&[(0x0B, b"r", b"a.*\0i\0")]),
            hand_made(&[(0x08, b"t", &[1]), (0x0A, b"", &[])]),
            hand_made(&[(0x02, "\u{e9}".as_bytes(), &string("\u{1f600}".as_bytes()))]),
        ];
        for bytes in &accepted {
            assert!(matches!(agree(bytes), Some(Ok(true))), "{bytes:?}");
        }
        let refused: Vec<Vec<u8>> = vec![
            hand_made(&[(0x08, b"t", &[2])]),
            hand_made(&[(0x02, b"s", &[0, 0, 0, 0, 0])]),
            hand_made(&[(0x02, b"s", &[0xff, 0xff, 0xff, 0xff, 0])]),
            hand_made(&[(0x02, b"s", &string(b"\xc3"))]),
            hand_made(&[(0x02, b"\xff", &string(b"a"))]),
            hand_made(&[(0x0B, b"r", b"\xc3\0\0")]),
            hand_made(&[(0x0B, b"r", b"a\0")]),
            hand_made(&[(0x0C, b"p", &dbpointer[..dbpointer.len() - 1])]),
            hand_made(&[(0x0F, b"c", &scope_with_trailing_byte)]),
            hand_made(&[(0x0F, b"c", &[13, 0, 0, 0, 1, 0, 0, 0, 0, 5, 0, 0, 0])]),
            hand_made(&[(0x05, b"b", &old_binary(3, b"ab"))]),
            hand_made(&[(0x05, b"b", &old_binary(-1, b"ab"))]),
            hand_made(&[(0x05, b"b", &[2, 0, 0, 0, BINARY_OLD, 1, 0])]),
            hand_made(&[(0x05, b"b", &[0xff, 0xff, 0xff, 0xff, 0])]),
            hand_made(&[(0x03, b"d", &[4, 0, 0, 0])]),
            hand_made(&[(0x03, b"d", &[6, 0, 0, 0, 0, 1])]),
            hand_made(&[(0x00, b"z", &[])]),
            hand_made(&[(0x14, b"z", &[])]),
            hand_made(&[(0x10, b"i", &[1, 2, 3])]),
            // A name running into the document's final NUL.
            vec![7, 0, 0, 0, 0x0A, b'a', 0],
        ];
        for bytes in &refused {
            assert!(
                matches!(agree(bytes), Some(Err(BsonError::Malformed(_)))),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn repeated_keys_and_renumbered_arrays_are_not_canonical() {
        let int = 1i32.to_le_bytes();
        let repeated = hand_made(&[(0x10, b"a", &int), (0x10, b"a", &int)]);
        assert!(matches!(agree(&repeated), Some(Ok(false))));
        let nested_repeat = hand_made(&[(0x03, b"d", &repeated)]);
        assert!(matches!(agree(&nested_repeat), Some(Ok(false))));
        let array = hand_made(&[(0x10, b"1", &int), (0x10, b"0", &int)]);
        assert!(matches!(
            agree(&hand_made(&[(0x04, b"a", &array)])),
            Some(Ok(false))
        ));
        // The same keys in a document are fine, and so are the same names on two levels.
        assert!(matches!(
            agree(&hand_made(&[(0x03, b"a", &array), (0x10, b"1", &int)])),
            Some(Ok(true))
        ));
        let wide: Vec<(u8, Vec<u8>, &[u8])> = (0..40)
            .map(|i| (0x10, format!("k{}", i % 39).into_bytes(), &int[..]))
            .collect();
        let wide: Vec<(u8, &[u8], &[u8])> = wide.iter().map(|(k, n, v)| (*k, &n[..], *v)).collect();
        assert!(matches!(agree(&hand_made(&wide)), Some(Ok(false))));
        assert_eq!(
            agree(
                &doc! {"a": [1, {"b": [2, 3]}], "c": {"a": 1}}
                    .to_vec()
                    .unwrap_or_default()
            )
            .map(|v| v.is_ok()),
            Some(true)
        );
    }

    #[test]
    fn nesting_is_refused_past_the_limit_by_both_walks() {
        let mut nested = doc! {"leaf": 1};
        for _ in 0..(MAX_DEPTH - 1) {
            nested = doc! {"a": nested};
        }
        let at_limit = nested.to_vec().unwrap_or_default();
        assert!(matches!(agree(&at_limit), Some(Ok(true))));
        // One level more, as a document or as an array.
        for too_deep in [
            doc! {"a": nested.clone()},
            doc! {"a": [nested.get_document("a").cloned().unwrap_or_default()]},
        ] {
            let too_deep = too_deep.to_vec().unwrap_or_default();
            assert!(matches!(agree(&too_deep), Some(Err(BsonError::TooDeep))));
        }
    }
}
