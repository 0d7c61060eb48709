//! Raw BSON on the hot paths: received and stored documents pass through as bytes whenever
//! decoding them into a [`Document`] and encoding them again would give the same bytes, so
//! inserts and cursor batches skip a decode and an encode per document.

use std::borrow::Cow;

use bson::oid::ObjectId;
use bson::raw::{RawBsonRef, RawDocument, cstr};
use bson::{Bson, Document, RawDocumentBuf};

use rewind_bson::canonical::{SeenKeys, is_array_index};

use crate::crud::{to_raw, with_id_first};
use crate::error::{CommandError, Result};

/// Nesting beyond this is left to the decoding path (which refuses what it must).
const MAX_WALK_DEPTH: usize = 200;

/// Whether `doc` survives a decode into [`Document`] and an encode unchanged: no key repeats
/// within any (sub)document, and every array's keys are `"0"`, `"1"`, ... in order. (A
/// [`Document`] keeps one value per key and arrays are re-keyed when encoded.) Bytes that
/// do not walk cleanly also answer `false`, leaving them to the decoding path and its errors.
pub fn is_canonical(doc: &RawDocument) -> Result<bool> {
    Ok(walk(doc.as_bytes(), false, 1, &mut SeenKeys::new()) == Some(true))
}

/// Walks the elements of one encoded document by their type's size, without parsing values
/// (stored documents were validated when written): `None` for bytes that do not walk.
fn walk<'a>(
    bytes: &'a [u8],
    array: bool,
    depth: usize,
    keys: &mut SeenKeys<&'a [u8]>,
) -> Option<bool> {
    if depth > MAX_WALK_DEPTH {
        return None;
    }
    let end = bytes.len().checked_sub(1)?;
    let mut level = keys.enter();
    let mut pos = 4;
    let mut index = 0;
    while pos < end {
        let kind = bytes[pos];
        let key_len = bytes.get(pos + 1..end)?.iter().position(|&b| b == 0)?;
        let key = &bytes[pos + 1..pos + 1 + key_len];
        pos += 2 + key_len;
        let canonical_key = if array {
            is_array_index(key, index)
        } else {
            !keys.repeated(&mut level, key)
        };
        if !canonical_key {
            return Some(false);
        }
        index += 1;
        let len_at = |at: usize| -> Option<usize> {
            let b = bytes.get(at..at + 4)?;
            usize::try_from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
        };
        let size = match kind {
            0x01 | 0x09 | 0x11 | 0x12 => 8,
            0x10 => 4,
            0x07 => 12,
            0x08 => 1,
            0x06 | 0x0A | 0x7F | 0xFF => 0,
            0x13 => 16,
            0x02 | 0x0D | 0x0E => 4 + len_at(pos)?,
            0x05 => 5 + len_at(pos)?,
            0x0C => 4 + len_at(pos)? + 12,
            0x0B => {
                let rest = bytes.get(pos..end)?;
                let pattern = rest.iter().position(|&b| b == 0)?;
                let options = rest.get(pattern + 1..)?.iter().position(|&b| b == 0)?;
                pattern + options + 2
            }
            0x03 | 0x04 => {
                let len = len_at(pos)?;
                let nested = bytes.get(pos..pos.checked_add(len)?)?;
                if !walk(nested, kind == 0x04, depth + 1, keys)? {
                    return Some(false);
                }
                len
            }
            0x0F => {
                // int32 total, string (int32 length + bytes), scope document.
                let total = len_at(pos)?;
                let code = len_at(pos + 4)?;
                let scope_at = pos.checked_add(8)?.checked_add(code)?;
                let scope = bytes.get(scope_at..pos.checked_add(total)?)?;
                if !walk(scope, false, depth + 1, keys)? {
                    return Some(false);
                }
                total
            }
            _ => return None,
        };
        pos = pos.checked_add(size)?;
    }
    if pos != end || bytes[end] != 0 {
        return None;
    }
    keys.leave(level);
    Some(true)
}

/// The refusal of an `_id` value mongod does not store.
pub fn check_id(id: &Bson) -> Result<()> {
    let what = match id {
        Bson::Array(_) => "an array",
        Bson::RegularExpression(_) => "a regex",
        Bson::Undefined => "undefined",
        _ => return Ok(()),
    };
    Err(CommandError::bad_value(format!("can't use {what} for _id")))
}

/// A received document in the form it is stored: `_id` first, an ObjectId generated when it
/// has none. Byte for byte what `to_raw(&with_id_first(Document::try_from(doc)?)?)` gives,
/// borrowed when that is `doc` itself (the usual case: drivers put `_id` first). `canonical`:
/// the caller knows `doc` is canonical (see [`is_canonical`]), as the wire's document
/// sequences are.
pub fn insert_form(doc: &RawDocument, canonical: bool) -> Result<Cow<'_, RawDocument>> {
    if !canonical && !is_canonical(doc)? {
        let normalized = with_id_first(Document::try_from(doc)?)?;
        return Ok(Cow::Owned(to_raw(&normalized)?));
    }
    let mut found = None;
    for (index, element) in doc.iter().enumerate() {
        let (key, value) = element?;
        if key.as_str() == "_id" {
            found = Some((index, value));
            break;
        }
    }
    let mut out = RawDocumentBuf::new();
    match found {
        Some((index, id)) => {
            if matches!(
                id,
                RawBsonRef::Array(_) | RawBsonRef::RegularExpression(_) | RawBsonRef::Undefined
            ) {
                check_id(&Bson::try_from(id)?)?;
            }
            if index == 0 {
                return Ok(Cow::Borrowed(doc));
            }
            out.append(cstr!("_id"), id);
        }
        None => out.append(cstr!("_id"), ObjectId::new()),
    }
    for element in doc {
        let (key, value) = element?;
        if key.as_str() != "_id" {
            out.append(key, value);
        }
    }
    Ok(Cow::Owned(out))
}

/// The top-level fields a filter reads, or `None` when it may read anything (a top-level
/// operator such as `$expr` or `$or`). Matching a document reduced to these fields gives
/// the same answer as matching the whole document.
pub fn filter_fields(filter: &Document) -> Option<Vec<String>> {
    let mut fields: Vec<String> = Vec::new();
    for key in filter.keys() {
        if key.starts_with('$') {
            return None;
        }
        let top = key.split('.').next().unwrap_or(key);
        if !fields.iter().any(|f| f == top) {
            fields.push(top.to_owned());
        }
    }
    Some(fields)
}

/// Whether `filter` is exactly `{_id: {$in: [...]}}`: a document then matches when its
/// `_id` compares equal to one of the values (see [`id_among`]).
pub fn is_id_in(filter: &Document) -> bool {
    match filter.iter().next() {
        Some((key, Bson::Document(op))) if filter.len() == 1 && key == "_id" => {
            op.len() == 1 && matches!(op.get("$in"), Some(Bson::Array(_)))
        }
        _ => false,
    }
}

/// Whether the `_id` of `doc` compares equal to one of `ids` (sorted by
/// [`rewind_query::compare`]). Equal under `compare` means the same canonical type and an
/// equal value, which is how `$in` matches; `false` only means "not shown equal".
pub fn id_among(doc: &RawDocument, ids: &[Bson]) -> Result<bool> {
    let Some(id) = doc.get("_id")? else {
        return Ok(false);
    };
    let id = Bson::try_from(id)?;
    Ok(ids
        .binary_search_by(|probe| rewind_query::compare(probe, &id))
        .is_ok())
}

/// Whether `doc`, which the engine found by the storage key of one of `ids`, has an `_id`
/// equal to that one. Equal keys are equal values except for Decimal128, which keys only
/// approximate: without one on either side the answer is yes, otherwise [`id_among`] decides.
/// `decimals`: whether `ids` holds a Decimal128.
pub fn fetched_among(doc: &RawDocument, ids: &[Bson], decimals: bool) -> Result<bool> {
    match doc.get("_id")? {
        Some(id) if !decimals && !matches!(id, RawBsonRef::Decimal128(_)) => Ok(true),
        _ => id_among(doc, ids),
    }
}

/// `doc` reduced to `fields` (decoding only those values), for matching.
pub fn reduced(doc: &RawDocument, fields: &[String]) -> Result<Document> {
    let mut out = Document::new();
    if fields.is_empty() {
        return Ok(out);
    }
    for element in doc.iter_elements() {
        let element = element?;
        let key = element.key().as_str();
        if fields.iter().any(|f| f == key) {
            out.insert(key, Bson::try_from(element.value()?)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use bson::{doc, rawdoc};

    use super::*;

    fn old_form(doc: &RawDocument) -> Result<RawDocumentBuf> {
        to_raw(&with_id_first(Document::try_from(doc)?)?)
    }

    /// Builds a document from raw elements, repeats and odd array keys allowed.
    fn raw_with(elements: &[(&str, Bson)]) -> RawDocumentBuf {
        let mut out = RawDocumentBuf::new();
        for (key, value) in elements {
            let key: &bson::raw::CStr = (*key).try_into().unwrap_or_else(|e| panic!("{e}"));
            let value = bson::RawBson::try_from(value.clone()).unwrap_or_else(|e| panic!("{e}"));
            out.append(key, value);
        }
        out
    }

    #[test]
    fn canonical_documents_pass_through_borrowed() {
        let raw = rawdoc! {"_id": 1, "a": [1, {"b": [2, 3]}], "c": {"d": "x"}};
        assert!(is_canonical(&raw).unwrap());
        assert!(matches!(
            insert_form(&raw, false).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn the_walk_knows_every_type() {
        let scope = doc! {"x": 1};
        let every = doc! {
            "_id": bson::oid::ObjectId::new(), "d": 1.5, "s": "x", "o": {"a": [1, "b"]},
            "bin": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2] },
            "u": Bson::Undefined, "t": true, "dt": bson::DateTime::now(), "n": Bson::Null,
            "re": bson::Regex { pattern: "a+".try_into().unwrap(), options: "i".try_into().unwrap() },
            "js": Bson::JavaScriptCode("f()".into()), "sym": Bson::Symbol("s".into()),
            "jsws": Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope { code: "g()".into(), scope }),
            "i": 1, "ts": bson::Timestamp { time: 1, increment: 2 }, "l": 2i64,
            "dec": bson::Decimal128::from_bytes([0; 16]), "min": Bson::MinKey, "max": Bson::MaxKey,
            "arr": (0..12).collect::<Vec<i32>>(),
        };
        let raw = to_raw(&every).unwrap();
        assert!(is_canonical(&raw).unwrap());
        let wide: Document = (0..40).map(|i| (format!("k{i}"), Bson::Int32(i))).collect();
        assert!(is_canonical(&to_raw(&wide).unwrap()).unwrap());
        let mut repeated_wide = to_raw(&wide).unwrap();
        repeated_wide.append(cstr!("k7"), 1);
        assert!(!is_canonical(&repeated_wide).unwrap());
        // A repeat inside a code-with-scope scope.
        let mut scope = RawDocumentBuf::new();
        scope.append(cstr!("x"), 1);
        scope.append(cstr!("x"), 2);
        let mut holder = RawDocumentBuf::new();
        holder.append(
            cstr!("f"),
            bson::RawBsonRef::JavaScriptCodeWithScope(bson::raw::RawJavaScriptCodeWithScopeRef {
                code: "h()",
                scope: &scope,
            }),
        );
        assert!(!is_canonical(&holder).unwrap());
    }

    #[test]
    fn repeats_and_odd_array_keys_are_normalized_as_before() {
        let repeated = raw_with(&[
            ("a", Bson::Int32(1)),
            ("_id", Bson::Int32(2)),
            ("a", Bson::Int32(3)),
        ]);
        // {_id: 1, a: [1]} with the array element keyed "5" instead of "0".
        let mut holder = rawdoc! {"_id": 1, "a": [1]}.into_bytes();
        let at = holder.len() - 1 - 1 - 4 - 2;
        assert_eq!(holder[at], b'0');
        holder[at] = b'5';
        let holder = RawDocumentBuf::from_bytes(holder).unwrap();
        let nested = raw_with(&[
            ("_id", Bson::Int32(1)),
            ("n", Bson::Document(doc! {"x": 1})),
        ]);
        for raw in [repeated, holder, nested] {
            let new = insert_form(&raw, false).unwrap().into_owned();
            assert_eq!(new, old_form(&raw).unwrap());
        }
    }

    #[test]
    fn id_is_moved_first_or_generated_and_bad_ids_refused() {
        let unordered = rawdoc! {"a": 1, "_id": "k", "b": 2};
        let moved = insert_form(&unordered, true).unwrap();
        assert_eq!(
            Document::try_from(moved.as_ref()).unwrap(),
            doc! {"_id": "k", "a": 1, "b": 2}
        );
        let without_id = rawdoc! {"a": 1};
        let generated = insert_form(&without_id, true).unwrap();
        let generated = Document::try_from(generated.as_ref()).unwrap();
        assert!(matches!(generated.iter().next(), Some((k, Bson::ObjectId(_))) if k == "_id"));
        assert_eq!(generated.get("a"), Some(&Bson::Int32(1)));
        for bad in [
            rawdoc! {"_id": [1]},
            rawdoc! {"x": 1, "_id": bson::Regex { pattern: "a".try_into().unwrap(), options: "".try_into().unwrap() }},
        ] {
            let err = insert_form(&bad, false).err().map(|e| e.to_string());
            assert_eq!(err, old_form(&bad).err().map(|e| e.to_string()));
            assert!(err.is_some());
        }
    }

    #[test]
    fn filters_read_their_top_level_fields() {
        assert_eq!(
            filter_fields(&doc! {"_id": {"$in": [1]}, "a.b": 1, "a": 2}),
            Some(vec!["_id".to_owned(), "a".to_owned()])
        );
        assert_eq!(filter_fields(&doc! {"$or": [{"a": 1}]}), None);
        assert!(is_id_in(&doc! {"_id": {"$in": [1, 2]}}));
        assert!(!is_id_in(&doc! {"_id": {"$in": [1, 2]}, "a": 1}));
        assert!(!is_id_in(&doc! {"_id": {"$in": [1], "$ne": 2}}));
        let ids = [Bson::Int32(1), Bson::Int64(5), Bson::String("k".into())];
        assert!(id_among(&rawdoc! {"_id": 5.0}, &ids).unwrap());
        assert!(id_among(&rawdoc! {"_id": "k"}, &ids).unwrap());
        assert!(!id_among(&rawdoc! {"_id": 2}, &ids).unwrap());
        let raw = rawdoc! {"_id": 1, "a": {"b": 1}, "c": 3};
        assert_eq!(
            reduced(&raw, &["a".to_owned()]).unwrap(),
            doc! {"a": {"b": 1}}
        );
    }
}
