//! The stored form of an object, shared by every [`super::BlobStore`]: the 8-byte magic
//! `RWBLOB1\n`, the 32-byte SHA-256 of the payload, then the payload.
//!
//! Both stores write the same bytes, so a local store's directory copied into a bucket (or
//! back) is a valid store, and verification does not depend on what a particular storage
//! service keeps beside an object.

use sha2::{Digest, Sha256};

use crate::error::BlobError;

pub(super) const MAGIC: &[u8; 8] = b"RWBLOB1\n";
/// Bytes before the payload.
pub(super) const HEADER_LEN: usize = MAGIC.len() + 32;

/// The header stored before `data`.
pub(super) fn header(data: &[u8]) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..MAGIC.len()].copy_from_slice(MAGIC);
    header[MAGIC.len()..].copy_from_slice(&Sha256::digest(data));
    header
}

/// `data` in its stored form.
pub(super) fn encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + data.len());
    out.extend_from_slice(&header(data));
    out.extend_from_slice(data);
    out
}

/// Checks a stored object (its header, then the payload against the recorded SHA-256) and
/// returns the payload; failures are [`BlobError::Corrupt`] naming `key`.
pub(super) fn decode(key: &str, mut stored: Vec<u8>) -> Result<Vec<u8>, BlobError> {
    let corrupt = |detail: &str| BlobError::Corrupt {
        key: key.into(),
        detail: detail.into(),
    };
    if stored.len() < HEADER_LEN {
        return Err(corrupt("truncated header"));
    }
    if &stored[..MAGIC.len()] != MAGIC {
        return Err(corrupt("bad header"));
    }
    if Sha256::digest(&stored[HEADER_LEN..]).as_slice() != &stored[MAGIC.len()..HEADER_LEN] {
        return Err(corrupt("checksum mismatch"));
    }
    stored.drain(..HEADER_LEN);
    Ok(stored)
}

/// The payload size of a stored object of `stored_len` bytes.
pub(super) fn payload_len(stored_len: u64) -> u64 {
    stored_len.saturating_sub(HEADER_LEN as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_failures() {
        for data in [&b""[..], b"x", &[7u8; 1000]] {
            assert_eq!(decode("k", encode(data)).unwrap(), data);
        }
        let mut stored = encode(b"payload");
        *stored.last_mut().unwrap() ^= 1;
        let err = decode("a/b", stored).unwrap_err();
        assert_eq!(
            err.to_string(),
            "backup object a/b is corrupt: checksum mismatch"
        );
        assert!(decode("k", b"short".to_vec()).is_err());
        let mut stored = encode(b"payload");
        stored[0] = b'X';
        let err = decode("k", stored).unwrap_err();
        assert_eq!(err.to_string(), "backup object k is corrupt: bad header");
    }
}
