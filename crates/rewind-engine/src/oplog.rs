//! Oplog entries in mongod's format and the optime clock.
//!
//! Entries are written with mongod's field order: `op, ns, ui, o, o2, ts, t, v, wall`.
//! `t` is the term (always 1: a rewind replica set never holds elections) as int64 and `v` is
//! the oplog version 2 as int64, which is what mongod writes (`oplog_entry.idl`: `v` is a
//! safeInt64, shown by mongosh as `Long('2')`).
//!
//! Updates are logged in replacement form: `o` = the full post-image, `o2` = `{_id}`. It is
//! valid for every mongod version's `applyOps` and makes replay idempotent without diffing.

use std::time::{SystemTime, UNIX_EPOCH};

use bson::spec::ElementType;
use bson::{Binary, Bson, DateTime, Document, RawDocument, RawDocumentBuf, Timestamp};

use crate::error::Result;

/// The election term written in every entry.
pub(crate) const TERM: i64 = 1;

/// Hands out strictly increasing optimes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub last: Timestamp,
}

impl Clock {
    /// Next optime after `last` for a wall clock reading of `now_secs`. If the clock went
    /// backwards (or stands still) the seconds are kept and the increment bumped.
    pub fn next_at(&mut self, now_secs: u32) -> Timestamp {
        let last = self.last;
        let ts = if now_secs > last.time {
            Timestamp {
                time: now_secs,
                increment: 1,
            }
        } else if last.increment == u32::MAX {
            Timestamp {
                time: last.time.saturating_add(1),
                increment: 1,
            }
        } else {
            Timestamp {
                time: last.time,
                increment: last.increment + 1,
            }
        };
        self.last = ts;
        ts
    }

    /// Next optime using the system clock.
    pub fn next(&mut self) -> Timestamp {
        self.next_at(now_secs())
    }
}

/// Current Unix time in seconds, saturated into `u32`.
pub(crate) fn now_secs() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// The body of one entry, before `ts`/`wall` are stamped.
pub(crate) struct EntryBody<'a> {
    pub op: &'a str,
    pub ns: &'a str,
    pub ui: Option<&'a Binary>,
    pub o: &'a RawDocument,
    pub o2: Option<&'a RawDocument>,
}

/// Serializes an entry; `o` is embedded byte for byte. Encoded by hand into one buffer of
/// the right size: appending field by field regrew the buffer and checked each name, and
/// an insert logs one entry per document (this was a seventh of an insert's time).
pub(crate) fn build_entry(body: &EntryBody<'_>, ts: Timestamp) -> Result<RawDocumentBuf> {
    let o2_len = body.o2.map_or(0, |o2| 4 + o2.as_bytes().len());
    let ui_len = body.ui.map_or(0, |ui| 9 + ui.bytes.len());
    let capacity = 96 + body.op.len() + body.ns.len() + ui_len + body.o.as_bytes().len() + o2_len;
    let mut bytes = Vec::with_capacity(capacity);
    bytes.extend_from_slice(&[0; 4]);
    string_element(&mut bytes, b"op", body.op);
    string_element(&mut bytes, b"ns", body.ns);
    if let Some(ui) = body.ui {
        element_head(&mut bytes, ElementType::Binary, b"ui");
        bytes.extend_from_slice(&length_prefix(ui.bytes.len()));
        bytes.push(u8::from(ui.subtype));
        bytes.extend_from_slice(&ui.bytes);
    }
    element_head(&mut bytes, ElementType::EmbeddedDocument, b"o");
    bytes.extend_from_slice(body.o.as_bytes());
    if let Some(o2) = body.o2 {
        element_head(&mut bytes, ElementType::EmbeddedDocument, b"o2");
        bytes.extend_from_slice(o2.as_bytes());
    }
    element_head(&mut bytes, ElementType::Timestamp, b"ts");
    bytes.extend_from_slice(&ts.increment.to_le_bytes());
    bytes.extend_from_slice(&ts.time.to_le_bytes());
    element_head(&mut bytes, ElementType::Int64, b"t");
    bytes.extend_from_slice(&TERM.to_le_bytes());
    element_head(&mut bytes, ElementType::Int64, b"v");
    bytes.extend_from_slice(&2i64.to_le_bytes());
    element_head(&mut bytes, ElementType::DateTime, b"wall");
    bytes.extend_from_slice(&DateTime::now().timestamp_millis().to_le_bytes());
    bytes.push(0);
    let total = length_prefix(bytes.len());
    bytes[..4].copy_from_slice(&total);
    // Checks the length prefix and the final NUL only: an entry past 2 GiB fails here.
    Ok(RawDocumentBuf::from_bytes(bytes)?)
}

fn element_head(bytes: &mut Vec<u8>, kind: ElementType, name: &[u8]) {
    bytes.push(kind as u8);
    bytes.extend_from_slice(name);
    bytes.push(0);
}

fn string_element(bytes: &mut Vec<u8>, name: &[u8], value: &str) {
    element_head(bytes, ElementType::String, name);
    bytes.extend_from_slice(&length_prefix(value.len() + 1));
    bytes.extend_from_slice(value.as_bytes());
    bytes.push(0);
}

/// A BSON length (one past `i32::MAX` fails the entry's final check).
fn length_prefix(len: usize) -> [u8; 4] {
    i32::try_from(len).unwrap_or(i32::MAX).to_le_bytes()
}

/// `{_id: value}` as raw BSON.
pub(crate) fn id_doc(id: &Bson) -> RawDocumentBuf {
    let d = bson::doc! {"_id": id.clone()};
    RawDocumentBuf::try_from(&d).unwrap_or_default()
}

/// `{_id: value}` as raw BSON, from the bytes of a document's `_id` element (type byte to the
/// end of its value), as [`rewind_bson::Checked::id_element`] finds them.
pub(crate) fn id_doc_from_element(element: &[u8]) -> Result<RawDocumentBuf> {
    let mut bytes = Vec::with_capacity(element.len() + 5);
    bytes.extend_from_slice(&length_prefix(element.len() + 5));
    bytes.extend_from_slice(element);
    bytes.push(0);
    Ok(RawDocumentBuf::from_bytes(bytes)?)
}

/// Raw form of a small command document built by the engine.
pub(crate) fn raw(doc: &Document) -> RawDocumentBuf {
    RawDocumentBuf::try_from(doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_strictly_increasing_even_backwards() {
        let mut c = Clock {
            last: Timestamp {
                time: 100,
                increment: 7,
            },
        };
        assert_eq!(
            c.next_at(100),
            Timestamp {
                time: 100,
                increment: 8
            }
        );
        assert_eq!(
            c.next_at(50),
            Timestamp {
                time: 100,
                increment: 9
            }
        );
        assert_eq!(
            c.next_at(101),
            Timestamp {
                time: 101,
                increment: 1
            }
        );
        c.last = Timestamp {
            time: 5,
            increment: u32::MAX,
        };
        assert_eq!(
            c.next_at(5),
            Timestamp {
                time: 6,
                increment: 1
            }
        );
    }

    #[test]
    fn entries_encode_as_bson_encodes_the_same_document() {
        let o = raw(&bson::doc! {"_id": 7, "name": "é", "nested": {"a": [1, 2]}});
        let o2 = raw(&bson::doc! {"_id": 7});
        let ui = Binary {
            subtype: bson::spec::BinarySubtype::Uuid,
            bytes: (0u8..16).collect(),
        };
        let ts = Timestamp {
            time: 1_700_000_000,
            increment: 42,
        };
        for (ui, o2) in [(Some(&ui), Some(o2.as_ref())), (None, None)] {
            let body = EntryBody {
                op: "u",
                ns: "app.users",
                ui,
                o: &o,
                o2,
            };
            let entry = build_entry(&body, ts).unwrap_or_else(|e| panic!("{e}"));
            let wall = entry.get_datetime("wall").unwrap_or_else(|e| panic!("{e}"));
            let mut expected = bson::doc! {"op": "u", "ns": "app.users"};
            if let Some(ui) = ui {
                expected.insert("ui", ui.clone());
            }
            expected.insert("o", Document::try_from(o.as_ref()).unwrap_or_default());
            if o2.is_some() {
                expected.insert("o2", bson::doc! {"_id": 7});
            }
            expected.insert("ts", ts);
            expected.insert("t", TERM);
            expected.insert("v", 2i64);
            expected.insert("wall", wall);
            assert_eq!(entry.as_bytes(), raw(&expected).as_bytes());
        }
    }
}
