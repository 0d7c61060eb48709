//! A mongodump directory dump, delivered as one gzipped tarball.
//!
//! Layout (paths relative to the dump root, i.e. what `mongorestore <dir>`
//! is pointed at after extraction):
//!
//! ```text
//! prelude.json                      {"ServerVersion":…,"ToolVersion":…}
//! <db>/                             one directory entry per database
//! <db>/<stem>.metadata.json         every namespace but the oplog
//! <db>/<stem>.bson                  collections; system.buckets.<name> for time series
//! oplog.bson                        only when the source has an oplog namespace
//! SHA256SUMS                        `sha256sum` lines for every file above
//! ```
//!
//! A tar header carries its member's size before the data, and documents
//! are never buffered, so each `.bson` member is read from the source twice:
//! once through [`DumpSource::data_size`] for the header, once to stream it.
//! A source whose second pass disagrees with the first fails the write.

use std::collections::HashSet;
use std::io::{self, BufWriter, Write};

use flate2::{Compression, GzBuilder};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use crate::error::DumpError;
use crate::gofmt::hex;
use crate::metadata::{file_stem, metadata_json, prelude_json};
use crate::options::DumpOptions;
use crate::source::{
    self, DumpNamespace, DumpSource, MAX_BSON_SIZE, MAX_OPLOG_ENTRY_SIZE, NamespaceKind,
};
use crate::stats::{DumpStats, Measured, Totals};

const BLOCK: usize = 512;
/// The longest path a GNU header holds; longer ones get a `././@LongLink`
/// entry first, which GNU tar, bsdtar, Go and Python all read.
const NAME_FIELD: usize = 100;

/// Writes the directory dump of `source` to `writer` as a `.tar.gz` and
/// returns what was written. The output depends only on the source and
/// `options`, so [`measure_tar_gz`] predicts it exactly.
pub fn write_tar_gz<S, W>(source: &S, writer: W, options: &DumpOptions) -> io::Result<DumpStats>
where
    S: DumpSource + ?Sized,
    W: Write,
{
    let namespaces = source::prepare(source.namespaces()?)?;
    options.check(&namespaces)?;

    let sink = BufWriter::with_capacity(64 * 1024, Measured::new(writer));
    // mongodump's --gzip uses Go's default level, which is also zlib's.
    let gz = GzBuilder::new().write(sink, Compression::default());
    let mut tar = TarStream {
        out: gz,
        mtime: options.mtime,
        sums: Vec::new(),
        totals: Totals::default(),
    };

    tar.small_file(
        "prelude.json",
        prelude_json(&options.server_version, &options.tool_version).as_bytes(),
    )?;
    let mut dirs = HashSet::new();
    for ns in &namespaces {
        tar.totals.namespaces += 1;
        if ns.kind == NamespaceKind::Oplog {
            tar.collection_file(source, ns, "oplog.bson", MAX_OPLOG_ENTRY_SIZE)?;
            continue;
        }
        if dirs.insert(ns.db.as_str()) {
            tar.directory(&format!("{}/", ns.db))?;
        }
        let metadata = metadata_json(ns)?;
        let path = format!("{}/{}.metadata.json", ns.db, file_stem(&ns.collection));
        tar.small_file(&path, metadata.as_bytes())?;
        if ns.kind.has_data() {
            let path = format!("{}/{}.bson", ns.db, file_stem(&ns.data_collection()));
            tar.collection_file(source, ns, &path, MAX_BSON_SIZE)?;
        }
    }

    let sums: String = tar
        .sums
        .iter()
        .map(|(path, digest)| format!("{}  {path}\n", hex(digest)))
        .collect();
    tar.small_file("SHA256SUMS", sums.as_bytes())?;

    let totals = std::mem::take(&mut tar.totals);
    let sink = tar.finish()?.finish()?;
    let measured = sink.into_inner().map_err(io::IntoInnerError::into_error)?;
    Ok(totals.into_stats(measured.finish()?))
}

/// The [`DumpStats`] that [`write_tar_gz`] would return, found by writing
/// to nowhere: its `bytes` is the `Content-Length`, its `sha256` a strong
/// `ETag`. Costs a full compression pass; cache it per snapshot.
pub fn measure_tar_gz<S: DumpSource + ?Sized>(
    source: &S,
    options: &DumpOptions,
) -> io::Result<DumpStats> {
    write_tar_gz(source, io::sink(), options)
}

/// Tar members written straight to a stream.
struct TarStream<W> {
    out: W,
    mtime: u64,
    /// `(path, sha256)` of every regular file, for `SHA256SUMS`.
    sums: Vec<(String, [u8; 32])>,
    totals: Totals,
}

impl<W: Write> TarStream<W> {
    fn directory(&mut self, path: &str) -> io::Result<()> {
        self.header(path, EntryType::Directory, 0)
    }

    fn small_file(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.header(path, EntryType::Regular, data.len() as u64)?;
        self.out.write_all(data)?;
        self.pad(data.len() as u64)?;
        self.sums
            .push((path.to_owned(), Sha256::digest(data).into()));
        self.totals.files += 1;
        Ok(())
    }

    /// Streams `ns`'s documents as one member, its size announced first.
    fn collection_file<S: DumpSource + ?Sized>(
        &mut self,
        source: &S,
        ns: &DumpNamespace,
        path: &str,
        max_document: usize,
    ) -> io::Result<()> {
        let size = source.data_size(ns)?;
        self.header(path, EntryType::Regular, size)?;
        let mut hasher = Sha256::new();
        let (mut written, mut documents) = (0u64, 0u64);
        let out = &mut self.out;
        source.for_each_document(ns, &mut |doc| {
            source::check_document(ns, doc, max_document)?;
            let after = written + doc.len() as u64;
            // Past the announced size the bytes would land in the next
            // header's place: stop before writing them.
            if after > size {
                return Err(size_changed(ns, size, after).into());
            }
            out.write_all(doc)?;
            hasher.update(doc);
            written = after;
            documents += 1;
            Ok(())
        })?;
        if written != size {
            return Err(size_changed(ns, size, written).into());
        }
        self.pad(size)?;
        self.sums.push((path.to_owned(), hasher.finalize().into()));
        self.totals.files += 1;
        self.totals.documents += documents;
        self.totals.data_bytes += written;
        Ok(())
    }

    fn header(&mut self, path: &str, entry: EntryType, size: u64) -> io::Result<()> {
        let name = path.as_bytes();
        if name.len() > NAME_FIELD {
            let mut long = self.gnu_header(EntryType::GNULongName, name.len() as u64 + 1);
            set_name(&mut long, b"././@LongLink");
            self.out.write_all(long.as_bytes())?;
            self.out.write_all(name)?;
            self.out.write_all(&[0])?;
            self.pad(name.len() as u64 + 1)?;
        }
        let mut header = self.gnu_header(entry, size);
        set_name(&mut header, name);
        self.out.write_all(header.as_bytes())
    }

    fn gnu_header(&self, entry: EntryType, size: u64) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(entry);
        header.set_mode(if entry == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.mtime);
        header.set_size(size);
        header
    }

    /// Zeros up to the next 512-byte boundary after `len` bytes of data.
    fn pad(&mut self, len: u64) -> io::Result<()> {
        let partial = (len % BLOCK as u64) as usize;
        if partial != 0 {
            self.out.write_all(&[0; BLOCK][partial..])?;
        }
        Ok(())
    }

    /// The end-of-archive marker: two zero blocks.
    fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0; 2 * BLOCK])?;
        Ok(self.out)
    }
}

/// Puts `name` (cut to the field) in the header's name field and seals the
/// header. Names are built here from checked database names and escaped
/// collection names, so they need none of `set_path`'s normalisation.
fn set_name(header: &mut Header, name: &[u8]) {
    let field = &mut header.as_old_mut().name;
    let n = name.len().min(field.len());
    field[..n].copy_from_slice(&name[..n]);
    header.set_cksum();
}

fn size_changed(ns: &DumpNamespace, expected: u64, actual: u64) -> DumpError {
    DumpError::SizeChanged {
        namespace: ns.display_name(),
        expected,
        actual,
    }
}
