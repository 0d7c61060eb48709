//! [`LocalBlobStore`]: objects as files under a directory, each with a SHA-256 header.
//!
//! File format: the 8-byte magic `RWBLOB1\n`, the 32-byte SHA-256 of the payload, then the
//! payload. Writes go to a temporary file (name starting with `.`, never a valid key) that is
//! fsynced, renamed over the target, and the directory fsynced, so an object is either
//! complete and durable or absent, even across power loss.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::{BlobStore, validate_key};
use crate::error::BlobError;

const MAGIC: &[u8; 8] = b"RWBLOB1\n";
const HEADER_LEN: usize = MAGIC.len() + 32;

/// A [`BlobStore`] in a local directory (or any mounted filesystem).
#[derive(Debug)]
pub struct LocalBlobStore {
    root: PathBuf,
    /// Makes temporary file names unique among concurrent writers of this process.
    tmp_counter: AtomicU64,
}

fn io_err(key: &str, error: io::Error) -> BlobError {
    BlobError::Io {
        key: key.into(),
        error,
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl LocalBlobStore {
    /// Opens the store rooted at `root`, creating the directory if missing.
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        fs::create_dir_all(root).map_err(|e| io_err("(store root)", e))?;
        Ok(Self {
            root: root.to_path_buf(),
            tmp_counter: AtomicU64::new(0),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    /// Creates the missing directories between the root and `key`'s parent, fsyncing each
    /// new directory's parent so the new entry itself survives a crash.
    fn ensure_parent(&self, key: &str) -> io::Result<PathBuf> {
        let mut dir = self.root.clone();
        let mut parts: Vec<&str> = key.split('/').collect();
        parts.pop();
        for part in parts {
            let next = dir.join(part);
            match fs::create_dir(&next) {
                Ok(()) => sync_dir(&dir)?,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            dir = next;
        }
        Ok(dir)
    }

    fn write_atomically(&self, key: &str, path: &Path, data: &[u8]) -> io::Result<()> {
        let dir = self.ensure_parent(key)?;
        let name = key.rsplit('/').next().unwrap_or(key);
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            let mut header = [0u8; HEADER_LEN];
            header[..MAGIC.len()].copy_from_slice(MAGIC);
            header[MAGIC.len()..].copy_from_slice(&Sha256::digest(data));
            f.write_all(&header)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            sync_dir(&dir)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    fn list_dir(&self, dir: &Path, key_prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            // Names that are not valid key components (temporary files, foreign files) are
            // not objects.
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let key = format!("{key_prefix}{name}");
            if validate_key(&key).is_err() {
                continue;
            }
            if entry.file_type()?.is_dir() {
                self.list_dir(&entry.path(), &format!("{key}/"), out)?;
            } else {
                out.push(key);
            }
        }
        Ok(())
    }
}

impl BlobStore for LocalBlobStore {
    fn put(&self, key: &str, data: &[u8]) -> Result<(), BlobError> {
        let path = self.path(key)?;
        self.write_atomically(key, &path, data)
            .map_err(|e| io_err(key, e))
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        let path = self.path(key)?;
        let corrupt = |detail: &str| BlobError::Corrupt {
            key: key.into(),
            detail: detail.into(),
        };
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(BlobError::NotFound { key: key.into() });
            }
            Err(e) => return Err(io_err(key, e)),
        };
        let mut header = [0u8; HEADER_LEN];
        match f.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return Err(corrupt("truncated header"));
            }
            Err(e) => return Err(io_err(key, e)),
        }
        if &header[..MAGIC.len()] != MAGIC {
            return Err(corrupt("bad header"));
        }
        let mut data = Vec::new();
        f.read_to_end(&mut data).map_err(|e| io_err(key, e))?;
        if Sha256::digest(&data).as_slice() != &header[MAGIC.len()..] {
            return Err(corrupt("checksum mismatch"));
        }
        Ok(data)
    }

    fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        let path = self.path(key)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len().saturating_sub(HEADER_LEN as u64))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(key, e)),
        }
    }

    fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(key, e)),
        }
        if let Some(dir) = path.parent() {
            sync_dir(dir).map_err(|e| io_err(key, e))?;
        }
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        // Walk only the deepest directory the prefix names in full.
        let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..=i]);
        if !dir_part.is_empty() {
            validate_key(dir_part.trim_end_matches('/'))?;
        }
        let mut out = Vec::new();
        self.list_dir(&self.root.join(dir_part), dir_part, &mut out)
            .map_err(|e| io_err(prefix, e))?;
        out.retain(|k| k.starts_with(prefix));
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalBlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalBlobStore::open(&dir.path().join("blobs")).unwrap();
        (dir, s)
    }

    #[test]
    fn put_get_size_list_delete() {
        let (_d, s) = store();
        s.put("a/b/c", b"hello").unwrap();
        s.put("a/b/d", b"").unwrap();
        s.put("a/x", b"1").unwrap();
        s.put("ab", b"2").unwrap();
        assert_eq!(s.get("a/b/c").unwrap(), b"hello");
        assert_eq!(s.get("a/b/d").unwrap(), b"");
        assert_eq!(s.size("a/b/c").unwrap(), Some(5));
        assert_eq!(s.size("nope").unwrap(), None);
        assert!(s.exists("ab").unwrap());
        assert_eq!(s.list("a/").unwrap(), ["a/b/c", "a/b/d", "a/x"]);
        assert_eq!(s.list("a").unwrap(), ["a/b/c", "a/b/d", "a/x", "ab"]);
        assert_eq!(s.list("a/b/c").unwrap(), ["a/b/c"]);
        assert_eq!(s.list("").unwrap().len(), 4);
        assert!(s.list("zz/").unwrap().is_empty());
        s.put("a/b/c", b"replaced").unwrap();
        assert_eq!(s.get("a/b/c").unwrap(), b"replaced");
        s.delete("a/b/c").unwrap();
        s.delete("a/b/c").unwrap();
        assert!(matches!(s.get("a/b/c"), Err(BlobError::NotFound { key }) if key == "a/b/c"));
        assert!(matches!(
            s.put("../x", b""),
            Err(BlobError::InvalidKey { .. })
        ));
    }

    #[test]
    fn corruption_is_detected_and_named() {
        let (d, s) = store();
        s.put("k/obj", b"some payload").unwrap();
        let path = d.path().join("blobs/k/obj");
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = s.get("k/obj").unwrap_err();
        assert!(matches!(err, BlobError::Corrupt { ref key, .. } if key == "k/obj"));
        assert_eq!(
            err.to_string(),
            "backup object k/obj is corrupt: checksum mismatch"
        );
        fs::write(&path, b"short").unwrap();
        assert!(matches!(s.get("k/obj"), Err(BlobError::Corrupt { .. })));
        // Leftover temporary files are not objects.
        fs::write(d.path().join("blobs/k/.obj.1.2.tmp"), b"x").unwrap();
        assert_eq!(s.list("k/").unwrap(), ["k/obj"]);
    }
}
