//! The conformance suite every [`BlobStore`] passes, run against [`super::LocalBlobStore`]
//! (local.rs) and [`super::S3BlobStore`] on a moto server (s3.rs, `s3_conformance`).

use super::BlobStore;
use crate::error::BlobError;

/// A store under test and a way around it.
pub(super) trait Harness {
    fn store(&self) -> &dyn BlobStore;
    /// Replaces the stored bytes of `key` with `raw` behind the store's back (no header, no
    /// checksum), as a bit flip on the disk or a foreign writer would.
    fn overwrite_raw(&self, key: &str, raw: &[u8]);
    /// The raw bytes the store keeps for `key`, header included.
    fn read_raw(&self, key: &str) -> Vec<u8>;
}

/// A named test case.
type Case = (&'static str, fn(&dyn Harness));

/// Runs every case, in order, on an empty store.
pub(super) fn run_all(h: &dyn Harness) {
    let cases: &[Case] = &[
        ("put_get_overwrite_delete", put_get_overwrite_delete),
        ("missing_objects", missing_objects),
        ("list_by_prefix", list_by_prefix),
        ("list_paginates", list_paginates),
        ("invalid_keys", invalid_keys),
        (
            "corruption_is_detected_and_named",
            corruption_is_detected_and_named,
        ),
        ("concurrent_use", concurrent_use),
    ];
    for (name, case) in cases {
        eprintln!("blob store conformance: {name}");
        case(h);
        // Each case cleans up after itself, so the next one starts empty.
        assert!(
            h.store().list("").unwrap().is_empty(),
            "{name} left objects behind"
        );
    }
}

fn clear(s: &dyn BlobStore, prefix: &str) {
    for key in s.list(prefix).unwrap() {
        s.delete(&key).unwrap();
    }
}

fn put_get_overwrite_delete(h: &dyn Harness) {
    let s = h.store();
    s.put("a/b/c", b"hello").unwrap();
    s.put("a/b/d", b"").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    s.put("big", &big).unwrap();
    assert_eq!(s.get("a/b/c").unwrap(), b"hello");
    assert_eq!(s.get("a/b/d").unwrap(), b"");
    assert_eq!(s.get("big").unwrap(), big);
    assert_eq!(s.size("a/b/c").unwrap(), Some(5));
    assert_eq!(s.size("a/b/d").unwrap(), Some(0));
    assert_eq!(s.size("big").unwrap(), Some(big.len() as u64));
    assert!(s.exists("a/b/c").unwrap());
    // Every object carries the SHA-256 of its bytes.
    let raw = h.read_raw("a/b/c");
    assert_eq!(raw.len(), super::format::HEADER_LEN + 5);
    assert!(raw.ends_with(b"hello"));

    s.put("a/b/c", b"replaced, longer").unwrap();
    assert_eq!(s.get("a/b/c").unwrap(), b"replaced, longer");
    assert_eq!(s.size("a/b/c").unwrap(), Some(16));

    s.delete("a/b/c").unwrap();
    s.delete("a/b/c").unwrap(); // deleting a missing object succeeds
    assert!(!s.exists("a/b/c").unwrap());
    assert_eq!(s.get("a/b/d").unwrap(), b"", "siblings stay");
    clear(s, "");
}

fn missing_objects(h: &dyn Harness) {
    let s = h.store();
    let err = s.get("no/such/object").unwrap_err();
    assert!(
        matches!(err, BlobError::NotFound { ref key } if key == "no/such/object"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "backup object no/such/object is missing");
    assert_eq!(s.size("no/such/object").unwrap(), None);
    assert!(!s.exists("no/such/object").unwrap());
    assert!(s.list("no/").unwrap().is_empty());
}

fn list_by_prefix(h: &dyn Harness) {
    let s = h.store();
    for key in ["a/b/c", "a/b/d", "a/x", "ab", "a/bb/e", "b/1"] {
        s.put(key, key.as_bytes()).unwrap();
    }
    assert_eq!(s.list("a/").unwrap(), ["a/b/c", "a/b/d", "a/bb/e", "a/x"]);
    assert_eq!(
        s.list("a").unwrap(),
        ["a/b/c", "a/b/d", "a/bb/e", "a/x", "ab"]
    );
    // A plain string prefix, not only whole components.
    assert_eq!(s.list("a/b").unwrap(), ["a/b/c", "a/b/d", "a/bb/e"]);
    assert_eq!(s.list("a/b/").unwrap(), ["a/b/c", "a/b/d"]);
    assert_eq!(s.list("a/b/c").unwrap(), ["a/b/c"]);
    assert_eq!(
        s.list("").unwrap(),
        ["a/b/c", "a/b/d", "a/bb/e", "a/x", "ab", "b/1"]
    );
    assert!(s.list("zz/").unwrap().is_empty());
    assert!(s.list("a/b/c/").unwrap().is_empty());
    clear(s, "");
}

/// More keys than one S3 listing page (1000) holds, written from several threads.
fn list_paginates(h: &dyn Harness) {
    let s = h.store();
    const N: usize = 1234;
    let keys: Vec<String> = (0..N)
        .map(|i| format!("many/{:02}/k{i:05}", i % 17))
        .collect();
    std::thread::scope(|scope| {
        for part in keys.chunks(N.div_ceil(4)) {
            scope.spawn(move || {
                for key in part {
                    s.put(key, key.as_bytes()).unwrap();
                }
            });
        }
    });
    s.put("many-sibling", b"x").unwrap();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(s.list("many/").unwrap(), expected);
    let under_03: Vec<String> = expected
        .iter()
        .filter(|k| k.starts_with("many/03/"))
        .cloned()
        .collect();
    assert_eq!(s.list("many/03/").unwrap(), under_03);
    assert_eq!(s.list("many").unwrap().len(), N + 1);
    assert_eq!(s.get("many/05/k00005").unwrap(), b"many/05/k00005");
    clear(s, "");
}

fn invalid_keys(h: &dyn Harness) {
    let s = h.store();
    for bad in ["", "/a", "a/", "a//b", "../a", "a/.tmp", "a b", "é"] {
        assert!(
            matches!(s.put(bad, b""), Err(BlobError::InvalidKey { .. })),
            "put {bad:?}"
        );
        assert!(
            matches!(s.get(bad), Err(BlobError::InvalidKey { .. })),
            "get {bad:?}"
        );
        assert!(s.delete(bad).is_err(), "delete {bad:?}");
    }
    assert!(s.list("").unwrap().is_empty());
}

fn corruption_is_detected_and_named(h: &dyn Harness) {
    let s = h.store();
    s.put("k/obj", b"some payload").unwrap();
    s.put("k/other", b"intact").unwrap();

    // One flipped bit in the payload.
    let mut raw = h.read_raw("k/obj");
    *raw.last_mut().unwrap() ^= 1;
    h.overwrite_raw("k/obj", &raw);
    let err = s.get("k/obj").unwrap_err();
    assert!(
        matches!(err, BlobError::Corrupt { ref key, .. } if key == "k/obj"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "backup object k/obj is corrupt: checksum mismatch"
    );
    // Truncated below the header, and a foreign object of the right length without one.
    h.overwrite_raw("k/obj", b"short");
    assert!(matches!(s.get("k/obj"), Err(BlobError::Corrupt { ref key, .. }) if key == "k/obj"));
    h.overwrite_raw("k/obj", &[b'x'; 100]);
    let err = s.get("k/obj").unwrap_err();
    assert_eq!(
        err.to_string(),
        "backup object k/obj is corrupt: bad header"
    );
    // Other objects are unaffected, and a rewrite heals the object.
    assert_eq!(s.get("k/other").unwrap(), b"intact");
    s.put("k/obj", b"healed").unwrap();
    assert_eq!(s.get("k/obj").unwrap(), b"healed");
    clear(s, "");
}

fn concurrent_use(h: &dyn Harness) {
    let s = h.store();
    std::thread::scope(|scope| {
        for t in 0..4 {
            scope.spawn(move || {
                for round in 0..20 {
                    let key = format!("c/shared{}", round % 3);
                    let data = format!("{t}:{round}").repeat(100);
                    s.put(&key, data.as_bytes()).unwrap();
                    // Whatever writer won, the object is whole and verified.
                    let got = s.get(&key).unwrap();
                    assert_eq!(got.len() % 100, 0);
                }
            });
        }
    });
    assert_eq!(
        s.list("c/").unwrap(),
        ["c/shared0", "c/shared1", "c/shared2"]
    );
    clear(s, "");
}
