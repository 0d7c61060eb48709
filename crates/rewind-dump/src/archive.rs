//! `mongodump --archive [--gzip]`, per mongo-tools' `common/archive`:
//!
//! ```text
//! magic 0x8199E26D (LE)
//! header   {concurrent_collections: int32, version: "0.1", server_version, tool_version}
//! metadata {db, collection, metadata: <.metadata.json text>, size: int, type}  one per namespace
//! 0xFFFFFFFF
//! per namespace with data, one after the other:
//!   {db, collection, EOF: false, CRC: 0}  documents…  0xFFFFFFFF
//!   {db, collection, EOF: true,  CRC: <CRC-64 of the documents>}  0xFFFFFFFF
//! ```
//!
//! Namespaces are not interleaved (mongodump interleaves only because it
//! dumps several collections at once), so each has exactly one data segment,
//! empty collections included, as mongodump's flush of an empty buffer gives.
//! With `gzip` the whole stream is one gzip member, as mongodump writes it.
//!
//! The CRC is Go's `crc64.New(crc64.MakeTable(crc64.ECMA))`: the reflected
//! ECMA-182 polynomial `0xC96C5795D7870F42`, initial value and final xor all
//! ones, i.e. the catalogued CRC-64/XZ (check value `0x995DC9BBDF1939FA`), not
//! the unreflected, zero-initialised CRC-64/ECMA-182.

use std::io::{self, BufWriter, Write};

use bson::{Bson, doc};
use crc::{CRC_64_XZ, Crc};
use flate2::{Compression, GzBuilder};

use crate::error::DumpError;
use crate::metadata::metadata_json;
use crate::options::DumpOptions;
use crate::source::{self, DumpNamespace, DumpSource, MAX_BSON_SIZE};
use crate::stats::{DumpStats, Measured, Totals};

/// The archive's first four bytes, little-endian.
pub const MAGIC: u32 = 0x8199_E26D;
/// Ends the prelude and every block.
pub const TERMINATOR: u32 = 0xFFFF_FFFF;
/// Version of the archive format mongo-tools writes.
const FORMAT_VERSION: &str = "0.1";

/// The CRC mongo-tools computes over a namespace's documents.
pub const NAMESPACE_CRC: Crc<u64> = Crc::<u64>::new(&CRC_64_XZ);

/// Writes `source` to `writer` as a mongodump archive, gzipped as a whole
/// when `gzip`, and returns what was written. The output depends only on
/// the source and `options`, so [`measure_archive`] predicts it exactly.
pub fn write_archive<S, W>(
    source: &S,
    writer: W,
    gzip: bool,
    options: &DumpOptions,
) -> io::Result<DumpStats>
where
    S: DumpSource + ?Sized,
    W: Write,
{
    let namespaces = source::prepare(source.namespaces()?)?;
    options.check(&namespaces)?;
    // Sizes go in the prelude, before any data: this is the first pass.
    let mut sizes = Vec::with_capacity(namespaces.len());
    for ns in &namespaces {
        sizes.push(if ns.kind.has_data() {
            source.data_size(ns)?
        } else {
            0
        });
    }

    let mut sink = BufWriter::with_capacity(64 * 1024, Measured::new(writer));
    let totals = if gzip {
        let mut gz = GzBuilder::new().write(&mut sink, Compression::default());
        let totals = write_body(source, &namespaces, &sizes, options, &mut gz)?;
        gz.finish()?;
        totals
    } else {
        write_body(source, &namespaces, &sizes, options, &mut sink)?
    };
    let measured = sink.into_inner().map_err(io::IntoInnerError::into_error)?;
    Ok(totals.into_stats(measured.finish()?))
}

/// The [`DumpStats`] that [`write_archive`] would return, found by writing
/// to nowhere: its `bytes` is the `Content-Length`, its `sha256` a strong
/// `ETag`. Reads every document; cache it per snapshot.
pub fn measure_archive<S: DumpSource + ?Sized>(
    source: &S,
    gzip: bool,
    options: &DumpOptions,
) -> io::Result<DumpStats> {
    write_archive(source, io::sink(), gzip, options)
}

fn write_body<S: DumpSource + ?Sized>(
    source: &S,
    namespaces: &[DumpNamespace],
    sizes: &[u64],
    options: &DumpOptions,
    out: &mut dyn Write,
) -> io::Result<Totals> {
    out.write_all(&MAGIC.to_le_bytes())?;
    write_doc(
        out,
        &doc! {
            "concurrent_collections": Bson::Int32(options.concurrent_collections),
            "version": FORMAT_VERSION,
            "server_version": options.server_version.as_str(),
            "tool_version": options.tool_version.as_str(),
        },
    )?;
    for (ns, &size) in namespaces.iter().zip(sizes) {
        let metadata = if ns.kind.has_metadata() {
            metadata_json(ns)?
        } else {
            String::new()
        };
        write_doc(
            out,
            &doc! {
                "db": ns.db.as_str(),
                "collection": ns.collection.as_str(),
                "metadata": metadata,
                "size": go_int(size),
                "type": ns.kind.type_name(),
            },
        )?;
    }
    out.write_all(&TERMINATOR.to_le_bytes())?;

    let mut totals = Totals {
        namespaces: namespaces.len() as u64,
        ..Totals::default()
    };
    for (ns, &size) in namespaces.iter().zip(sizes) {
        if ns.kind.has_data() {
            write_namespace(source, ns, size, out, &mut totals)?;
        }
    }
    Ok(totals)
}

/// One data segment and the EOF block of `ns`.
fn write_namespace<S: DumpSource + ?Sized>(
    source: &S,
    ns: &DumpNamespace,
    size: u64,
    out: &mut dyn Write,
    totals: &mut Totals,
) -> io::Result<()> {
    let collection = ns.data_collection();
    write_doc(out, &namespace_header(&ns.db, &collection, false, 0))?;
    let mut crc = NAMESPACE_CRC.digest();
    let (mut written, mut documents) = (0u64, 0u64);
    source.for_each_document(ns, &mut |doc| {
        source::check_document(ns, doc, MAX_BSON_SIZE)?;
        out.write_all(doc)?;
        crc.update(doc);
        written += doc.len() as u64;
        documents += 1;
        Ok(())
    })?;
    // The prelude already announced `size`; keep it truthful.
    if written != size {
        return Err(DumpError::SizeChanged {
            namespace: ns.display_name(),
            expected: size,
            actual: written,
        }
        .into());
    }
    out.write_all(&TERMINATOR.to_le_bytes())?;
    // mongo-tools stores the uint64 CRC's bit pattern in an int64.
    let crc = crc.finalize() as i64;
    write_doc(out, &namespace_header(&ns.db, &collection, true, crc))?;
    out.write_all(&TERMINATOR.to_le_bytes())?;
    totals.documents += documents;
    totals.data_bytes += written;
    Ok(())
}

/// mongo-tools' `NamespaceHeader`: exactly these four fields, in this order;
/// its decoder rejects any other.
fn namespace_header(db: &str, collection: &str, eof: bool, crc: i64) -> bson::Document {
    doc! { "db": db, "collection": collection, "EOF": eof, "CRC": Bson::Int64(crc) }
}

/// How the Go driver encodes an `int`: int32 when it fits, int64 otherwise.
fn go_int(n: u64) -> Bson {
    match i32::try_from(n) {
        Ok(small) => Bson::Int32(small),
        Err(_) => Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX)),
    }
}

fn write_doc(out: &mut dyn Write, doc: &bson::Document) -> io::Result<()> {
    let bytes = doc
        .to_vec()
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
    out.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_go_crc64_ecma() {
        // Go: crc64.Checksum([]byte("123456789"), crc64.MakeTable(crc64.ECMA))
        assert_eq!(NAMESPACE_CRC.checksum(b"123456789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(NAMESPACE_CRC.checksum(b""), 0);
    }

    #[test]
    fn sizes_encode_like_go_ints() {
        assert_eq!(go_int(7), Bson::Int32(7));
        assert_eq!(go_int(1 << 31), Bson::Int64(1 << 31));
    }

    #[test]
    fn header_fields_are_in_mongo_tools_order() {
        let keys: Vec<_> = namespace_header("d", "c", true, -1)
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["db", "collection", "EOF", "CRC"]);
    }
}
