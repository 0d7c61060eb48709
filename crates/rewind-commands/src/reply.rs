//! Reply shapes shared by several commands.

use std::io::Write;

use bson::{Bson, Document, RawDocumentBuf, doc};

/// A cursor reply `{cursor: {id, ns, firstBatch|nextBatch}, ok: 1.0}` (`id` 0: exhausted),
/// built from the batch's raw documents without decoding them, written in one pass into a
/// buffer of the reply's size (appending them one by one copies the batch as it grows).
pub fn cursor_reply(id: i64, ns: &str, batch: &[RawDocumentBuf], first: bool) -> RawDocumentBuf {
    let key: &[u8] = if first { b"firstBatch" } else { b"nextBatch" };
    let docs: usize = batch.iter().map(|d| d.as_bytes().len() + 8).sum();
    let mut out = Vec::with_capacity(docs + ns.len() + 64);
    out.extend_from_slice(&[0; 4]);
    out.push(0x03);
    out.extend_from_slice(b"cursor\0");
    let cursor = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(0x12);
    out.extend_from_slice(b"id\0");
    out.extend_from_slice(&id.to_le_bytes());
    out.push(0x02);
    out.extend_from_slice(b"ns\0");
    out.extend_from_slice(&bson_len(ns.len() + 1).to_le_bytes());
    out.extend_from_slice(ns.as_bytes());
    out.push(0);
    out.push(0x04);
    out.extend_from_slice(key);
    out.push(0);
    let array = out.len();
    out.extend_from_slice(&[0; 4]);
    for (index, doc) in batch.iter().enumerate() {
        out.push(0x03);
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{index}\0");
        out.extend_from_slice(doc.as_bytes());
    }
    out.push(0);
    patch_len(&mut out, array);
    out.push(0);
    patch_len(&mut out, cursor);
    out.push(0x01);
    out.extend_from_slice(b"ok\0");
    out.extend_from_slice(&1.0f64.to_le_bytes());
    out.push(0);
    patch_len(&mut out, 0);
    RawDocumentBuf::from_bytes(out).expect("a cursor reply is framed as BSON")
}

/// A length as BSON writes it (batches stay far below `i32::MAX` bytes).
fn bson_len(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// Writes the length of the (sub)document starting at `start` and ending the buffer.
fn patch_len(out: &mut [u8], start: usize) {
    let len = bson_len(out.len() - start).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
}

/// A count as mongod replies it: int32 when it fits, int64 otherwise.
pub fn count_value(n: u64) -> Bson {
    match i32::try_from(n) {
        Ok(n) => Bson::Int32(n),
        Err(_) => Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX)),
    }
}

/// The write-command reply: `{n, [nModified,] [upserted,] [writeErrors,] ok: 1.0}`.
pub struct WriteReply {
    /// Documents inserted, matched (update) or deleted.
    pub n: u64,
    /// Documents changed (update only).
    pub n_modified: Option<u64>,
    /// `{index, _id}` of upserted documents.
    pub upserted: Vec<Document>,
    /// `{index, code, errmsg, ...}` of failed statements.
    pub write_errors: Vec<Document>,
}

impl WriteReply {
    /// An empty result; `updates` adds `nModified`.
    pub fn new(updates: bool) -> Self {
        Self {
            n: 0,
            n_modified: updates.then_some(0),
            upserted: Vec::new(),
            write_errors: Vec::new(),
        }
    }

    /// The reply document.
    pub fn into_document(self) -> Document {
        let mut out = doc! {"n": count_value(self.n)};
        if let Some(m) = self.n_modified {
            out.insert("nModified", count_value(m));
        }
        if !self.upserted.is_empty() {
            out.insert("upserted", self.upserted);
        }
        if !self.write_errors.is_empty() {
            out.insert("writeErrors", self.write_errors);
        }
        out.insert("ok", 1.0);
        out
    }
}

#[cfg(test)]
mod tests {
    use bson::RawArrayBuf;
    use bson::raw::cstr;

    use super::*;

    #[test]
    fn cursor_reply_bytes_are_those_of_appending() {
        let batch: Vec<RawDocumentBuf> = (0..12)
            .map(|i| bson::rawdoc! {"_id": i, "s": "x".repeat(i as usize)})
            .collect();
        for first in [true, false] {
            let mut docs = RawArrayBuf::new();
            for doc in &batch {
                docs.push(doc);
            }
            let mut cursor = RawDocumentBuf::new();
            cursor.append(cstr!("id"), 42i64);
            cursor.append(cstr!("ns"), "db.coll");
            let key = if first {
                cstr!("firstBatch")
            } else {
                cstr!("nextBatch")
            };
            cursor.append(key, docs);
            let mut expected = RawDocumentBuf::new();
            expected.append(cstr!("cursor"), cursor);
            expected.append(cstr!("ok"), 1.0);
            assert_eq!(cursor_reply(42, "db.coll", &batch, first), expected);
        }
    }

    #[test]
    fn cursor_reply_shape() {
        let batch = [bson::rawdoc! {"a": 1}];
        let r = Document::try_from(cursor_reply(0, "d.c", &batch, true)).unwrap_or_default();
        assert_eq!(
            r,
            doc! {"cursor": {"id": 0i64, "ns": "d.c", "firstBatch": [{"a": 1}]}, "ok": 1.0}
        );
        let r = Document::try_from(cursor_reply(7, "d.c", &[], false)).unwrap_or_default();
        assert!(
            r.get_document("cursor")
                .is_ok_and(|c| c.contains_key("nextBatch"))
        );
    }

    #[test]
    fn write_reply_shape() {
        let mut w = WriteReply::new(true);
        w.n = 2;
        w.upserted.push(doc! {"index": 0, "_id": 5});
        assert_eq!(
            w.into_document(),
            doc! {"n": 2, "nModified": 0, "upserted": [{"index": 0, "_id": 5}], "ok": 1.0}
        );
        assert_eq!(
            WriteReply::new(false).into_document(),
            doc! {"n": 0, "ok": 1.0}
        );
        assert_eq!(count_value(u64::MAX), Bson::Int64(i64::MAX));
    }
}
