//! [`LocalBlobStore`]: objects as files under a directory, each with a SHA-256 header.
//!
//! File format: see [`super::format`] (the 8-byte magic `RWBLOB1\n`, the 32-byte SHA-256 of
//! the payload, then the payload). Writes go to a temporary file (name starting with `.`,
//! never a valid key) that is fsynced, renamed over the target, and the directory fsynced, so
//! an object is either complete and durable or absent, even across power loss.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{BlobStore, format, validate_key};
use crate::error::BlobError;

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
            f.write_all(&format::header(data))?;
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
            // Nothing under a missing path, nor under an object (a file).
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                return Ok(());
            }
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
        match fs::read(&path) {
            Ok(stored) => format::decode(key, stored),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(BlobError::NotFound { key: key.into() })
            }
            Err(e) => Err(io_err(key, e)),
        }
    }

    fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        let path = self.path(key)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(format::payload_len(m.len()))),
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
    use crate::blob::conformance;

    struct Local {
        dir: tempfile::TempDir,
        store: LocalBlobStore,
    }

    impl Local {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = LocalBlobStore::open(&dir.path().join("blobs")).unwrap();
            Self { dir, store }
        }
        fn file(&self, key: &str) -> PathBuf {
            self.dir.path().join("blobs").join(key)
        }
    }

    impl conformance::Harness for Local {
        fn store(&self) -> &dyn BlobStore {
            &self.store
        }
        fn overwrite_raw(&self, key: &str, raw: &[u8]) {
            fs::write(self.file(key), raw).unwrap();
        }
        fn read_raw(&self, key: &str) -> Vec<u8> {
            fs::read(self.file(key)).unwrap()
        }
    }

    #[test]
    fn conformance() {
        conformance::run_all(&Local::new());
    }

    #[test]
    fn temporary_and_foreign_files_are_not_objects() {
        let h = Local::new();
        h.store.put("k/obj", b"x").unwrap();
        fs::write(h.file("k/.obj.1.2.tmp"), b"x").unwrap();
        fs::write(h.file("k/bad name"), b"x").unwrap();
        assert_eq!(h.store.list("k/").unwrap(), ["k/obj"]);
        assert_eq!(h.store.list("").unwrap(), ["k/obj"]);
    }
}
