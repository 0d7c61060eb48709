//! What the workers share to back clusters up and restore them: the blob store and the
//! running clusters, plus the repository layout and the mongodump view of a snapshot.
//!
//! Each replica set of each cluster has its own repository in the blob store, at
//! `clusters/<cluster id>/<replica set>`: its content-addressed chunks, its snapshots'
//! manifests (named by the Atlas snapshot id) and its captured oplog slices.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use bson::RawDocument;
use rewind_backup::{BlobStore, Manifest, documents, read_chunk};
use rewind_domain::ObjectId;
use rewind_dump::{DumpNamespace, DumpSource};

use crate::hosting::Clusters;

/// The blob store and the clusters running here.
#[derive(Clone)]
pub struct Backups {
    /// Where snapshots and oplog slices live.
    pub blobs: Arc<dyn BlobStore>,
    /// The clusters this replica hosts.
    pub clusters: Clusters,
}

/// The repository of one replica set of a cluster.
pub fn repository(cluster: ObjectId, set_name: &str) -> String {
    format!("{}{set_name}", cluster_prefix(cluster))
}

/// The blob prefix under which every backup of a cluster lives.
pub fn cluster_prefix(cluster: ObjectId) -> String {
    format!("clusters/{cluster}/")
}

/// A snapshot as mongodump would have written it: each namespace's documents come from its
/// chunks, every chunk checked against its checksum as it is read.
pub struct SnapshotDump<'a> {
    /// The blob store.
    pub blobs: &'a dyn BlobStore,
    /// The replica set's repository.
    pub prefix: &'a str,
    /// The snapshot.
    pub manifest: &'a Manifest,
    /// Set to stop between chunks.
    pub cancel: &'a AtomicBool,
}

impl DumpSource for SnapshotDump<'_> {
    fn namespaces(&self) -> std::io::Result<Vec<DumpNamespace>> {
        self.manifest
            .namespaces
            .iter()
            .map(|entry| {
                let (db, collection) = entry.ns.split_once('.').ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("namespace {} has no database", entry.ns),
                    )
                })?;
                let mut namespace = DumpNamespace::collection(db, collection);
                namespace.options = entry.options.clone();
                namespace.indexes = entry.indexes.clone();
                namespace.uuid = entry.uuid.bytes.as_slice().try_into().ok();
                Ok(namespace)
            })
            .collect()
    }

    fn for_each_document(
        &self,
        namespace: &DumpNamespace,
        f: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let ns = format!("{}.{}", namespace.db, namespace.collection);
        let Some(entry) = self.manifest.namespaces.iter().find(|entry| entry.ns == ns) else {
            return Ok(());
        };
        for chunk in &entry.chunks {
            if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "cancelled",
                ));
            }
            let bytes =
                read_chunk(self.blobs, self.prefix, chunk).map_err(std::io::Error::other)?;
            for document in documents(&bytes, &chunk.hash) {
                let document: &RawDocument = document.map_err(std::io::Error::other)?;
                f(document.as_bytes())?;
            }
        }
        Ok(())
    }

    fn data_size(&self, namespace: &DumpNamespace) -> std::io::Result<u64> {
        let ns = format!("{}.{}", namespace.db, namespace.collection);
        Ok(self
            .manifest
            .namespaces
            .iter()
            .find(|entry| entry.ns == ns)
            .map_or(0, |entry| entry.bytes))
    }
}
