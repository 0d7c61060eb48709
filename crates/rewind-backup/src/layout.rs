//! Object keys of a backup repository. Under one repository prefix (one replica set):
//!
//! - `<prefix>/chunks/<h[0..2]>/<h>`: a zstd-compressed chunk of documents, `h` = hex SHA-256
//!   of the uncompressed bytes (content addressing: equal chunks are stored once);
//! - `<prefix>/snapshots/<id>.json`: a snapshot manifest, written last;
//! - `<prefix>/oplog/<from>_<to>_n<count>_a<after>.oplog`: a zstd-compressed oplog slice
//!   holding `count` entries with `from <= ts <= to`, captured after optime `after` (or
//!   `none`). Optimes are written `<seconds:010>.<increment:010>` so keys sort in time order.

use bson::Timestamp;

/// `prefix/rest`, or `rest` alone for an empty prefix.
pub(crate) fn join(prefix: &str, rest: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        rest.to_string()
    } else {
        format!("{prefix}/{rest}")
    }
}

/// Key of the chunk whose uncompressed content hashes to `hash` (hex).
pub(crate) fn chunk_key(prefix: &str, hash: &str) -> String {
    let fan = hash.get(..2).unwrap_or("xx");
    join(prefix, &format!("chunks/{fan}/{hash}"))
}

/// Key prefix under which every manifest lives.
pub(crate) fn snapshots_prefix(prefix: &str) -> String {
    join(prefix, "snapshots/")
}

/// Key of the manifest of snapshot `id`.
pub(crate) fn manifest_key(prefix: &str, id: &str) -> String {
    join(prefix, &format!("snapshots/{id}.json"))
}

/// Key prefix under which every oplog slice lives.
pub(crate) fn oplog_prefix(prefix: &str) -> String {
    join(prefix, "oplog/")
}

/// Sortable text form of an optime.
pub(crate) fn ts_name(ts: Timestamp) -> String {
    format!("{:010}.{:010}", ts.time, ts.increment)
}

/// Inverse of [`ts_name`].
pub(crate) fn parse_ts_name(s: &str) -> Option<Timestamp> {
    let (t, i) = s.split_once('.')?;
    if t.len() != 10 || i.len() != 10 {
        return None;
    }
    Some(Timestamp {
        time: t.parse().ok()?,
        increment: i.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_names_sort_like_timestamps_and_round_trip() {
        let a = Timestamp {
            time: 9,
            increment: 4_000_000_000,
        };
        let b = Timestamp {
            time: 10,
            increment: 1,
        };
        assert!(ts_name(a) < ts_name(b));
        assert_eq!(parse_ts_name(&ts_name(a)), Some(a));
        assert_eq!(parse_ts_name("12.3"), None);
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("p/", "x"), "p/x");
        assert_eq!(chunk_key("p", "abcd"), "p/chunks/ab/abcd");
    }
}
