//! Reply shapes shared by several commands.

use bson::raw::cstr;
use bson::{Bson, Document, RawArrayBuf, RawDocumentBuf, doc};

/// A cursor reply `{cursor: {id, ns, firstBatch|nextBatch}, ok: 1.0}` (`id` 0: exhausted),
/// built from the batch's raw documents without decoding them.
pub fn cursor_reply(id: i64, ns: &str, batch: &[RawDocumentBuf], first: bool) -> RawDocumentBuf {
    let key = if first {
        cstr!("firstBatch")
    } else {
        cstr!("nextBatch")
    };
    let mut docs = RawArrayBuf::new();
    for doc in batch {
        docs.push(doc);
    }
    let mut cursor = RawDocumentBuf::new();
    cursor.append(cstr!("id"), id);
    cursor.append(cstr!("ns"), ns);
    cursor.append(key, docs);
    let mut reply = RawDocumentBuf::new();
    reply.append(cstr!("cursor"), cursor);
    reply.append(cstr!("ok"), 1.0);
    reply
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
    use super::*;

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
