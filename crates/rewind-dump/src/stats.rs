//! What a write produced, and the sink wrapper that measures it.

use std::io::{self, Write};

use sha2::{Digest as _, Sha256};

use crate::gofmt::hex;

/// What a write produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpStats {
    /// Namespaces written (views and the oplog included).
    pub namespaces: u64,
    /// Documents written, over all namespaces.
    pub documents: u64,
    /// Bytes of BSON documents written, before any compression.
    pub data_bytes: u64,
    /// Regular files in a tarball, `SHA256SUMS` included; 0 for an archive.
    pub files: u64,
    /// Exact length of the output, as the writer received it.
    pub bytes: u64,
    /// SHA-256 of the output.
    pub sha256: [u8; 32],
}

impl DumpStats {
    /// The output's SHA-256 in lowercase hex (e.g. for an `ETag`).
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

/// Counts, hashes and passes on everything written to it.
pub(crate) struct Measured<W> {
    inner: W,
    bytes: u64,
    hasher: Sha256,
}

impl<W: Write> Measured<W> {
    pub(crate) fn new(inner: W) -> Self {
        Measured {
            inner,
            bytes: 0,
            hasher: Sha256::new(),
        }
    }

    /// Flushes the inner writer and returns the length and digest.
    pub(crate) fn finish(mut self) -> io::Result<(u64, [u8; 32])> {
        self.inner.flush()?;
        Ok((self.bytes, self.hasher.finalize().into()))
    }
}

impl<W: Write> Write for Measured<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or(buf);
        self.hasher.update(written);
        self.bytes += written.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Running totals over the documents of a write.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) namespaces: u64,
    pub(crate) documents: u64,
    pub(crate) data_bytes: u64,
    pub(crate) files: u64,
}

impl Totals {
    pub(crate) fn into_stats(self, (bytes, sha256): (u64, [u8; 32])) -> DumpStats {
        DumpStats {
            namespaces: self.namespaces,
            documents: self.documents,
            data_bytes: self.data_bytes,
            files: self.files,
            bytes,
            sha256,
        }
    }
}
