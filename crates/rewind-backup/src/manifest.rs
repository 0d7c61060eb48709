//! The snapshot manifest: what a snapshot holds and where its chunks are, stored as JSON.
//!
//! Collection options and index specs are stored as base64 of their exact BSON bytes, not as
//! extended JSON: extended JSON cannot tell a `{$regex, $options}` query document inside a
//! validator from a BSON regex, and a restore must give back the very same documents.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bson::spec::BinarySubtype;
use bson::{Binary, Document, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::blob::{BlobStore, validate_key};
use crate::error::{BackupError, Result};
use crate::layout;

/// Version of the manifest format written by this crate.
pub const MANIFEST_FORMAT: u32 = 1;

/// Everything needed to restore one snapshot. Written last: a snapshot exists exactly when
/// its manifest does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The snapshot's id (the `<id>` of `snapshots/<id>.json`).
    pub snapshot_id: String,
    /// Optime of the read view the snapshot was taken from (`None`: nothing was ever
    /// written). Oplog replay for a point-in-time restore starts after it.
    #[serde(with = "opt_ts")]
    pub optime: Option<Timestamp>,
    /// Every collection, in namespace order.
    pub namespaces: Vec<NamespaceEntry>,
    /// Sums over all namespaces.
    pub totals: Totals,
}

/// One collection of a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamespaceEntry {
    /// `db.collection`.
    pub ns: String,
    /// The collection UUID (BSON binary subtype 4), as hex.
    #[serde(with = "uuid_hex")]
    pub uuid: Binary,
    /// Creation options exactly as stored.
    #[serde(with = "doc_b64")]
    pub options: Document,
    /// Index specs in `listIndexes` form, `_id_` first.
    #[serde(with = "docs_b64")]
    pub indexes: Vec<Document>,
    /// Number of documents.
    pub documents: u64,
    /// Sum of the documents' BSON sizes.
    pub bytes: u64,
    /// The chunks holding the documents, in `_id` order.
    pub chunks: Vec<ChunkRef>,
}

/// One content-addressed chunk: concatenated raw BSON documents, zstd-compressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// Hex SHA-256 of the uncompressed bytes (the chunk's address).
    pub hash: String,
    /// Uncompressed size in bytes.
    pub size: u64,
    /// Compressed (stored) size in bytes.
    pub stored_size: u64,
    /// Number of documents in the chunk.
    pub docs: u64,
}

/// Totals of a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Number of collections.
    pub namespaces: u64,
    /// Number of documents.
    pub documents: u64,
    /// Sum of the documents' BSON sizes.
    pub logical_bytes: u64,
    /// Number of chunk references.
    pub chunks: u64,
    /// Sum of the referenced chunks' compressed sizes (shared chunks included).
    pub stored_bytes: u64,
}

impl Manifest {
    /// Every chunk hash the snapshot references.
    pub fn chunk_hashes(&self) -> impl Iterator<Item = &str> {
        self.namespaces
            .iter()
            .flat_map(|n| n.chunks.iter().map(|c| c.hash.as_str()))
    }

    /// Checks what serde cannot: the version, and that every hash is a SHA-256 in hex (hashes
    /// become object keys).
    fn validate(&self, key: &str) -> Result<()> {
        if self.format != MANIFEST_FORMAT {
            return Err(BackupError::Format(format!(
                "manifest {key} has unsupported format version {}",
                self.format
            )));
        }
        let bad_hash = self
            .chunk_hashes()
            .any(|h| h.len() != 64 || !h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        if bad_hash {
            return Err(BackupError::Format(format!(
                "manifest {key} lists an invalid chunk hash"
            )));
        }
        Ok(())
    }
}

/// Checks a snapshot id: one valid key component.
pub(crate) fn validate_snapshot_id(id: &str) -> Result<()> {
    if id.contains('/') || validate_key(id).is_err() {
        return Err(BackupError::InvalidTarget(format!(
            "invalid snapshot id {id:?}"
        )));
    }
    Ok(())
}

/// Writes a manifest (the last step of a snapshot).
pub(crate) fn store_manifest(blobs: &dyn BlobStore, prefix: &str, m: &Manifest) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(m)
        .map_err(|e| BackupError::Format(format!("cannot encode manifest: {e}")))?;
    blobs.put(&layout::manifest_key(prefix, &m.snapshot_id), &bytes)?;
    Ok(())
}

/// Loads and validates the manifest of snapshot `id` in the repository at `prefix`.
/// A missing snapshot is [`crate::BlobError::NotFound`] naming the manifest key.
pub fn load_manifest(blobs: &dyn BlobStore, prefix: &str, id: &str) -> Result<Manifest> {
    validate_snapshot_id(id)?;
    let key = layout::manifest_key(prefix, id);
    let bytes = blobs.get(&key)?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| BackupError::Format(format!("manifest {key} cannot be decoded: {e}")))?;
    m.validate(&key)?;
    if m.snapshot_id != id {
        return Err(BackupError::Format(format!(
            "manifest {key} belongs to snapshot {:?}",
            m.snapshot_id
        )));
    }
    Ok(m)
}

/// Ids of the complete snapshots (those with a manifest) under `prefix`, sorted.
pub fn list_snapshots(blobs: &dyn BlobStore, prefix: &str) -> Result<Vec<String>> {
    let dir = layout::snapshots_prefix(prefix);
    Ok(blobs
        .list(&dir)?
        .iter()
        .filter_map(|k| k.strip_prefix(&dir)?.strip_suffix(".json"))
        .filter(|id| !id.contains('/'))
        .map(str::to_string)
        .collect())
}

mod opt_ts {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Ts {
        t: u32,
        i: u32,
    }

    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        ts.map(|ts| Ts {
            t: ts.time,
            i: ts.increment,
        })
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Ok(Option::<Ts>::deserialize(d)?.map(|ts| Timestamp {
            time: ts.t,
            increment: ts.i,
        }))
    }
}

mod uuid_hex {
    use super::*;

    pub fn serialize<S: Serializer>(b: &Binary, s: S) -> Result<S::Ok, S::Error> {
        hex::encode(&b.bytes).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Binary, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        if bytes.len() != 16 {
            return Err(serde::de::Error::custom("a UUID has 16 bytes"));
        }
        Ok(Binary {
            subtype: BinarySubtype::Uuid,
            bytes,
        })
    }
}

fn encode_doc(doc: &Document) -> Result<String, String> {
    Ok(B64.encode(doc.to_vec().map_err(|e| e.to_string())?))
}

fn decode_doc(text: &str) -> Result<Document, String> {
    let bytes = B64.decode(text).map_err(|e| e.to_string())?;
    Document::from_reader(bytes.as_slice()).map_err(|e| e.to_string())
}

mod doc_b64 {
    use super::*;

    pub fn serialize<S: Serializer>(doc: &Document, s: S) -> Result<S::Ok, S::Error> {
        encode_doc(doc)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Document, D::Error> {
        decode_doc(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod docs_b64 {
    use super::*;

    pub fn serialize<S: Serializer>(docs: &[Document], s: S) -> Result<S::Ok, S::Error> {
        docs.iter()
            .map(encode_doc)
            .collect::<Result<Vec<_>, _>>()
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Document>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| decode_doc(t))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }
}
