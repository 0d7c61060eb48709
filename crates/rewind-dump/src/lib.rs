//! Writers of mongodump's output formats, so that a snapshot can be handed
//! to a real `mongorestore`:
//!
//! - [`write_tar_gz`]: a directory dump (`<db>/<coll>.bson`,
//!   `<db>/<coll>.metadata.json`, `prelude.json`, `SHA256SUMS`) as one
//!   `.tar.gz`;
//! - [`write_archive`]: the `mongodump --archive [--gzip]` stream.
//!
//! Both read a [`DumpSource`] (namespaces plus raw BSON documents), stream
//! without holding a collection in memory, and are deterministic: the same
//! source and [`DumpOptions`] give the same bytes, so [`measure_tar_gz`] and
//! [`measure_archive`] give the `Content-Length` and an `ETag` beforehand.
//! Everything is synchronous and does no I/O beyond the given writer.
//!
//! ```
//! use std::io;
//! use rewind_dump::{DumpNamespace, DumpOptions, DumpSource, write_archive};
//!
//! struct One(Vec<u8>);
//! impl DumpSource for One {
//!     fn namespaces(&self) -> io::Result<Vec<DumpNamespace>> {
//!         Ok(vec![DumpNamespace::collection("shop", "orders")])
//!     }
//!     fn for_each_document(
//!         &self,
//!         _ns: &DumpNamespace,
//!         f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
//!     ) -> io::Result<()> {
//!         f(&self.0)
//!     }
//! }
//!
//! let doc = bson::doc! { "_id": 1 }.to_vec().unwrap();
//! let mut out = Vec::new();
//! let stats = write_archive(&One(doc), &mut out, true, &DumpOptions::new("8.0.4")).unwrap();
//! assert_eq!(stats.bytes, out.len() as u64);
//! assert_eq!(stats.documents, 1);
//! ```

mod archive;
mod error;
mod extjson;
mod gofmt;
mod metadata;
mod options;
mod source;
mod stats;
mod tar_gz;

pub use archive::{MAGIC, NAMESPACE_CRC, TERMINATOR, measure_archive, write_archive};
pub use error::DumpError;
pub use metadata::{file_stem, metadata_json};
pub use options::DumpOptions;
pub use source::{DumpNamespace, DumpSource, NamespaceKind};
pub use stats::DumpStats;
pub use tar_gz::{measure_tar_gz, write_tar_gz};
