//! Object storage for backups: a small trait, its local-directory implementation and its S3
//! implementation. Both store every object with the SHA-256 of its bytes (see [`format`]) and
//! verify it on every read.

#[cfg(test)]
mod conformance;
mod format;
mod local;
mod s3;

use std::path::Path;
use std::sync::Arc;

pub use local::LocalBlobStore;
pub use s3::S3BlobStore;

use crate::error::BlobError;

/// A flat key → bytes store (the shape of S3 and friends). Keys are `/`-separated paths made
/// of `[A-Za-z0-9._=-]` components that do not start with `.` (see [`validate_key`]).
///
/// Implementations must make `put` atomic (a reader sees the old object, the new one or
/// nothing, never a prefix) and must verify the integrity of what `get` returns, reporting
/// [`BlobError::Corrupt`] or [`BlobError::NotFound`] with the key.
pub trait BlobStore: Send + Sync {
    /// Stores `data` under `key`, replacing any previous object, durably once it returns.
    fn put(&self, key: &str, data: &[u8]) -> Result<(), BlobError>;
    /// The object's bytes, verified against the checksum recorded at `put`.
    fn get(&self, key: &str) -> Result<Vec<u8>, BlobError>;
    /// The object's size in bytes (as given to `put`), `None` if it does not exist.
    fn size(&self, key: &str) -> Result<Option<u64>, BlobError>;
    /// Whether the object exists.
    fn exists(&self, key: &str) -> Result<bool, BlobError> {
        Ok(self.size(key)?.is_some())
    }
    /// Removes the object; removing a missing object succeeds.
    fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Every key starting with `prefix` (a plain string prefix), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError>;
}

/// Checks that `key` is a valid object key: non-empty `/`-separated components of ASCII
/// letters, digits and `._=-`, none starting with `.` (so no `..`, and temporary files, which
/// start with `.`, can never collide with an object).
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.split('/').all(|c| {
            !c.is_empty()
                && !c.starts_with('.')
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'=' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(BlobError::InvalidKey { key: key.into() })
    }
}

/// Opens the store at `location`: a local directory given as a path or a `file://` URL
/// (created if missing), or `s3://bucket/prefix` for S3 or an S3-compatible service, configured
/// by the standard `AWS_*` environment variables (see [`S3BlobStore`]); the bucket must exist
/// and answer. Other schemes are reported as unsupported.
pub fn open_blob_store(location: &str) -> Result<Arc<dyn BlobStore>, BlobError> {
    let unsupported = |reason: &str| BlobError::Unsupported {
        location: location.into(),
        reason: reason.into(),
    };
    let path = if let Some(rest) = location.strip_prefix("file://") {
        // file:///abs/path; `file://host/path` forms are not meaningful here.
        if !rest.starts_with('/') {
            return Err(unsupported("a file:// URL must hold an absolute path"));
        }
        rest
    } else if location.starts_with("s3://") {
        return Ok(Arc::new(S3BlobStore::open(location)?));
    } else if location.contains("://") {
        return Err(unsupported(
            "only local paths, file:// URLs and s3:// URLs are supported",
        ));
    } else {
        location
    };
    if path.is_empty() {
        return Err(unsupported("empty path"));
    }
    Ok(Arc::new(LocalBlobStore::open(Path::new(path))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        for good in ["a", "a/b.c", "p/chunks/ab/0123", "x=1_y-2"] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in ["", "/a", "a/", "a//b", "../a", "a/.tmp", "a b", "a\\b", "é"] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn locations_are_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("store");
        let url = format!("file://{}", p.display());
        let store = open_blob_store(&url).unwrap();
        store.put("k", b"v").unwrap();
        let store2 = open_blob_store(p.to_str().unwrap()).unwrap();
        assert_eq!(store2.get("k").unwrap(), b"v");
        // Malformed S3 URLs are refused before any request is made.
        let err = open_blob_store("s3://Bad_Bucket/prefix").err().unwrap();
        assert!(matches!(err, BlobError::Unsupported { .. }));
        assert!(err.to_string().contains("bucket"), "{err}");
        assert!(open_blob_store("s3://bucket/a//b").is_err());
        assert!(open_blob_store("http://x").is_err());
        assert!(open_blob_store("file://relative").is_err());
    }
}
