//! Chunks: runs of raw BSON documents of one collection, concatenated, addressed by the
//! SHA-256 of those bytes and stored zstd-compressed.
//!
//! Chunk boundaries are content-defined: after the minimum size, a chunk ends after a
//! document whose fingerprint selects it (probability proportional to its size), or at the
//! maximum size. Inserting or changing a document therefore changes only the chunks around
//! it, and the following boundaries fall where they did, so those chunks dedup.

use bson::RawDocument;
use sha2::{Digest, Sha256};

use crate::blob::BlobStore;
use crate::error::{BackupError, BlobError, Result};
use crate::layout;
use crate::manifest::ChunkRef;

/// Largest uncompressed chunk a manifest may claim (a chunk holds at most one document over
/// the maximum chunk size, and a BSON document is at most 16 MiB), to bound allocations.
const MAX_CHUNK_BYTES: u64 = 1 << 30;

/// How chunks are cut and compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkingOptions {
    /// No boundary before this many bytes (unless the collection ends).
    pub min_bytes: usize,
    /// Average chunk size aimed at (must exceed `min_bytes`).
    pub target_bytes: usize,
    /// A boundary at the first document end past this many bytes.
    pub max_bytes: usize,
    /// zstd compression level.
    pub zstd_level: i32,
}

impl Default for ChunkingOptions {
    fn default() -> Self {
        Self {
            min_bytes: 2 << 20,
            target_bytes: 4 << 20,
            max_bytes: 8 << 20,
            zstd_level: 1,
        }
    }
}

impl ChunkingOptions {
    /// Whether a chunk of `len` bytes that just received `doc` ends here.
    pub(crate) fn ends_after(&self, len: usize, doc: &[u8]) -> bool {
        if len >= self.max_bytes {
            return true;
        }
        if len < self.min_bytes {
            return false;
        }
        // Each document ends the chunk with probability ~ doc.len() / (target - min), so
        // the expected size past the minimum is (target - min) whatever the document sizes.
        let span = self.target_bytes.saturating_sub(self.min_bytes).max(1) as u64;
        fingerprint(doc) % span < doc.len() as u64
    }
}

/// A well-mixed 64-bit hash of a document's bytes (stable across versions: it decides
/// chunk boundaries and so what dedups against older snapshots).
fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h = 0x9E37_79B9_7F4A_7C15u64 ^ bytes.len() as u64;
    for word in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..word.len()].copy_from_slice(word);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 32;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

/// Hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// zstd-compresses `data`.
pub(crate) fn compress(data: &[u8], level: i32) -> Result<Vec<u8>> {
    zstd::bulk::compress(data, level)
        .map_err(|e| BackupError::Format(format!("compression failed: {e}")))
}

/// Decompresses a stored object of unknown size, appending to `out` (whose memory is reused);
/// failure is reported as corruption of `key`.
pub(crate) fn decompress_into(key: &str, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    zstd::stream::copy_decode(data, out).map_err(|_| corrupt(key, "cannot be decompressed"))
}

fn corrupt(key: &str, detail: &str) -> BackupError {
    BlobError::Corrupt {
        key: key.into(),
        detail: detail.into(),
    }
    .into()
}

/// Fetches one chunk, verified twice: the store's checksum of the stored bytes, then the
/// SHA-256 of the decompressed bytes against the chunk's address.
pub fn read_chunk(blobs: &dyn BlobStore, prefix: &str, chunk: &ChunkRef) -> Result<Vec<u8>> {
    let key = layout::chunk_key(prefix, &chunk.hash);
    if chunk.size > MAX_CHUNK_BYTES {
        return Err(BackupError::Format(format!(
            "chunk {key} claims an implausible size"
        )));
    }
    let stored = blobs.get(&key)?;
    let capacity = usize::try_from(chunk.size).unwrap_or(usize::MAX);
    let data = zstd::bulk::decompress(&stored, capacity)
        .map_err(|_| corrupt(&key, "cannot be decompressed"))?;
    if data.len() as u64 != chunk.size || sha256_hex(&data) != chunk.hash {
        return Err(corrupt(&key, "content does not match its address"));
    }
    Ok(data)
}

/// The documents of a chunk (or oplog slice): consecutive raw BSON documents.
pub struct Documents<'a> {
    rest: &'a [u8],
    key: &'a str,
}

/// Iterates the raw documents packed in `bytes`; `key` names the object in errors.
pub fn documents<'a>(bytes: &'a [u8], key: &'a str) -> Documents<'a> {
    Documents { rest: bytes, key }
}

impl<'a> Iterator for Documents<'a> {
    type Item = Result<&'a RawDocument>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let len = self
            .rest
            .get(..4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n >= 5 && n <= self.rest.len());
        let parsed = len.and_then(|n| {
            let (doc, rest) = self.rest.split_at(n);
            RawDocument::from_bytes(doc).ok().map(|d| (d, rest))
        });
        match parsed {
            Some((doc, rest)) => {
                self.rest = rest;
                Some(Ok(doc))
            }
            None => {
                // Stop after reporting: the rest cannot be framed.
                self.rest = &[];
                Some(Err(BackupError::Format(format!(
                    "backup object {} holds a malformed document",
                    self.key
                ))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{RawDocumentBuf, doc};

    #[test]
    fn documents_are_framed_and_garbage_is_reported() {
        let a = RawDocumentBuf::try_from(&doc! {"_id": 1}).unwrap();
        let b = RawDocumentBuf::try_from(&doc! {"_id": 2, "x": "y"}).unwrap();
        let mut bytes = a.as_bytes().to_vec();
        bytes.extend_from_slice(b.as_bytes());
        let docs: Vec<_> = documents(&bytes, "k")
            .map(|d| d.unwrap().to_owned())
            .collect();
        assert_eq!(docs, [a.clone(), b]);
        bytes.extend_from_slice(&[9, 0, 0]);
        let last = documents(&bytes, "k").last().unwrap();
        assert!(last.unwrap_err().to_string().contains("backup object k"));
        assert_eq!(documents(&[], "k").count(), 0);
    }

    #[test]
    fn boundaries_depend_on_content_and_respect_bounds() {
        let o = ChunkingOptions {
            min_bytes: 100,
            target_bytes: 200,
            max_bytes: 400,
            zstd_level: 1,
        };
        assert!(!o.ends_after(99, &[0; 50]));
        assert!(o.ends_after(400, &[0; 1]));
        let hits = (0u32..1000)
            .filter(|i| o.ends_after(150, &i.to_le_bytes().repeat(5)))
            .count();
        // Probability 20/100 per document.
        assert!((120..280).contains(&hits), "{hits}");
    }
}
