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

use bson::raw::cstr;
use bson::{Binary, Bson, DateTime, Document, RawDocument, RawDocumentBuf, Timestamp};

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

/// Serializes an entry; `o` is embedded byte for byte.
pub(crate) fn build_entry(body: &EntryBody<'_>, ts: Timestamp) -> RawDocumentBuf {
    let mut e = RawDocumentBuf::new();
    e.append(cstr!("op"), body.op);
    e.append(cstr!("ns"), body.ns);
    if let Some(ui) = body.ui {
        e.append(cstr!("ui"), ui.as_raw_binary());
    }
    e.append(cstr!("o"), body.o);
    if let Some(o2) = body.o2 {
        e.append(cstr!("o2"), o2);
    }
    e.append(cstr!("ts"), ts);
    e.append(cstr!("t"), TERM);
    e.append(cstr!("v"), 2i64);
    e.append(cstr!("wall"), DateTime::now());
    e
}

/// `{_id: value}` as raw BSON.
pub(crate) fn id_doc(id: &Bson) -> RawDocumentBuf {
    let d = bson::doc! {"_id": id.clone()};
    RawDocumentBuf::try_from(&d).unwrap_or_default()
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
}
