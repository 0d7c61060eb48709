//! Both output formats, read back with independent readers: the `tar` and
//! `flate2` crates for the tarball, a from-the-spec parser for the archive,
//! and pymongo (when present) for the BSON and Extended JSON.

mod support;

use std::collections::BTreeMap;
use std::io::{self, Read};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use rewind_dump::{
    DumpError, DumpNamespace, DumpOptions, DumpSource, file_stem, measure_archive, measure_tar_gz,
    metadata_json, write_archive, write_tar_gz,
};
use support::archive_reader::{go_crc64_ecma, read_archive};
use support::{MemSource, fixture, long_name, python};

fn options() -> DumpOptions {
    DumpOptions {
        mtime: 1_700_000_000,
        ..DumpOptions::new("7.0.16")
    }
}

struct Member {
    path: String,
    is_dir: bool,
    mode: u32,
    data: Vec<u8>,
}

fn untar(tar_gz: &[u8]) -> Vec<Member> {
    let mut archive = tar::Archive::new(GzDecoder::new(tar_gz));
    let mut members = Vec::new();
    for entry in archive.entries().expect("tar reads") {
        let mut entry = entry.expect("entry reads");
        let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8 path");
        let header = entry.header();
        let is_dir = header.entry_type().is_dir();
        let mode = header.mode().expect("mode");
        assert_eq!(header.mtime().expect("mtime"), 1_700_000_000, "{path}");
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("data reads");
        members.push(Member {
            path,
            is_dir,
            mode,
            data,
        });
    }
    members
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn expected_paths() -> Vec<String> {
    let long = file_stem(&long_name());
    [
        "prelude.json",
        "shop/",
        "shop/orders.metadata.json",
        "shop/orders.bson",
        "shop/empty.metadata.json",
        "shop/empty.bson",
        "shop/big_orders.metadata.json",
        "metrics/",
        "metrics/weather.metadata.json",
        "metrics/system.buckets.weather.bson",
        "metrics/we+ird%2Fname%24.metadata.json",
        "metrics/we+ird%2Fname%24.bson",
        &format!("metrics/{long}.metadata.json"),
        &format!("metrics/{long}.bson"),
        "oplog.bson",
        "SHA256SUMS",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn tar_gz_holds_exactly_the_dump() {
    let source = fixture();
    let mut out = Vec::new();
    let stats = write_tar_gz(&source, &mut out, &options()).expect("writes");
    let members = untar(&out);

    let paths: Vec<_> = members.iter().map(|m| m.path.clone()).collect();
    assert_eq!(paths, expected_paths());
    let by_path: BTreeMap<_, _> = members.iter().map(|m| (m.path.as_str(), m)).collect();
    for m in &members {
        assert_eq!(m.mode, if m.is_dir { 0o755 } else { 0o644 }, "{}", m.path);
    }

    // Each .bson is the source's documents, byte for byte.
    let long = file_stem(&long_name());
    for (path, db, coll) in [
        "shop/orders.bson|shop|orders",
        "shop/empty.bson|shop|empty",
        "metrics/system.buckets.weather.bson|metrics|weather",
        "metrics/we+ird%2Fname%24.bson|metrics|we ird/name$",
        "oplog.bson||oplog",
    ]
    .map(|s| {
        let parts: Vec<_> = s.split('|').collect();
        (parts[0].to_owned(), parts[1], parts[2])
    })
    .into_iter()
    .chain([(format!("metrics/{long}.bson"), "metrics", "")])
    {
        let coll = if coll.is_empty() {
            long_name()
        } else {
            coll.to_owned()
        };
        assert_eq!(
            by_path[path.as_str()].data,
            source.documents(db, &coll).concat(),
            "{path}"
        );
    }
    assert!(by_path["shop/empty.bson"].data.is_empty());

    // Metadata is mongodump's text, and parses as JSON with what it carries.
    for (ns, _) in &source.namespaces {
        if !ns.kind.has_metadata() {
            continue;
        }
        let path = format!("{}/{}.metadata.json", ns.db, file_stem(&ns.collection));
        let text = std::str::from_utf8(&by_path[path.as_str()].data).expect("utf-8");
        assert_eq!(text, metadata_json(ns).unwrap(), "{path}");
        let json: serde_json::Value = serde_json::from_str(text).expect("metadata is JSON");
        assert_eq!(json["collectionName"], ns.collection.as_str());
        assert_eq!(json["type"], ns.kind.type_name());
        assert_eq!(
            json["indexes"].as_array().expect("indexes").len(),
            ns.indexes.len()
        );
        assert_eq!(
            json.get("options").is_some(),
            !ns.options.is_empty(),
            "{path}"
        );
        let uuid = ns
            .uuid
            .map(|u| u.iter().map(|b| format!("{b:02x}")).collect::<String>());
        assert_eq!(
            json.get("uuid").and_then(|u| u.as_str()).map(str::to_owned),
            uuid
        );
    }
    let orders: serde_json::Value =
        serde_json::from_slice(&by_path["shop/orders.metadata.json"].data).unwrap();
    let keys: Vec<_> = orders.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        ["options", "indexes", "uuid", "collectionName", "type"]
    );
    assert_eq!(orders["uuid"], "0123456789abcdef0123456789abcdef");
    assert_eq!(orders["indexes"][1]["unique"], true);
    assert_eq!(
        orders["indexes"][2]["expireAfterSeconds"]["$numberLong"],
        "3600"
    );
    assert_eq!(
        orders["indexes"][2]["collation"]["strength"]["$numberInt"],
        "2"
    );
    assert_eq!(orders["options"]["validationLevel"], "moderate");

    assert_eq!(
        std::str::from_utf8(&by_path["prelude.json"].data).unwrap(),
        r#"{"ServerVersion":"7.0.16","ToolVersion":"0.1.0"}"#
    );

    // SHA256SUMS lists every other file, in `sha256sum` format.
    let sums = std::str::from_utf8(&by_path["SHA256SUMS"].data).unwrap();
    let files: Vec<_> = members
        .iter()
        .filter(|m| !m.is_dir && m.path != "SHA256SUMS")
        .collect();
    let lines: Vec<_> = sums.lines().collect();
    assert_eq!(lines.len(), files.len());
    for (line, m) in lines.iter().zip(&files) {
        assert_eq!(*line, format!("{}  {}", sha256_hex(&m.data), m.path));
    }
    assert!(sums.ends_with('\n'));

    // Stats describe the output.
    assert_eq!(stats.bytes, out.len() as u64);
    assert_eq!(stats.sha256_hex(), sha256_hex(&out));
    assert_eq!(stats.files, files.len() as u64 + 1);
    assert_eq!(stats.namespaces, 7);
    let all_docs: Vec<_> = source.namespaces.iter().flat_map(|(_, d)| d).collect();
    assert_eq!(stats.documents, all_docs.len() as u64);
    assert_eq!(
        stats.data_bytes,
        all_docs.iter().map(|d| d.len() as u64).sum::<u64>()
    );
}

#[test]
fn tar_gz_is_deterministic_and_measurable() {
    let source = fixture();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let stats = write_tar_gz(&source, &mut a, &options()).unwrap();
    write_tar_gz(&source, &mut b, &options()).unwrap();
    assert_eq!(a, b);
    assert_eq!(measure_tar_gz(&source, &options()).unwrap(), stats);
}

fn archive_bytes(source: &MemSource, gzip: bool) -> (Vec<u8>, rewind_dump::DumpStats) {
    let mut out = Vec::new();
    let stats = write_archive(source, &mut out, gzip, &options()).expect("writes");
    (out, stats)
}

fn gunzip_single_member(bytes: &[u8]) -> Vec<u8> {
    let mut decoder = GzDecoder::new(bytes);
    let mut plain = Vec::new();
    decoder.read_to_end(&mut plain).expect("gzip decodes");
    let mut rest = Vec::new();
    decoder.into_inner().read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "the archive is one gzip member");
    plain
}

#[test]
fn archive_reads_back_per_the_spec() {
    let source = fixture();
    for gzip in [false, true] {
        let (out, stats) = archive_bytes(&source, gzip);
        assert_eq!(stats.bytes, out.len() as u64);
        assert_eq!(stats.sha256_hex(), sha256_hex(&out));
        assert_eq!(measure_archive(&source, gzip, &options()).unwrap(), stats);
        let plain = if gzip {
            gunzip_single_member(&out)
        } else {
            out
        };
        let archive = read_archive(&plain).expect("archive parses");

        let h = &archive.header;
        let keys: Vec<_> = h.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "concurrent_collections",
                "version",
                "server_version",
                "tool_version"
            ]
        );
        assert_eq!(h.get_i32("concurrent_collections").unwrap(), 1);
        assert_eq!(h.get_str("version").unwrap(), "0.1");
        assert_eq!(h.get_str("server_version").unwrap(), "7.0.16");

        // The prelude lists every namespace, the oplog last with no metadata.
        let mut in_order: Vec<&DumpNamespace> =
            source.namespaces.iter().map(|(ns, _)| ns).skip(1).collect();
        in_order.push(&source.namespaces[0].0);
        assert_eq!(archive.prelude.len(), in_order.len());
        for (meta, ns) in archive.prelude.iter().zip(&in_order) {
            let keys: Vec<_> = meta.keys().map(String::as_str).collect();
            assert_eq!(keys, ["db", "collection", "metadata", "size", "type"]);
            assert_eq!(meta.get_str("db").unwrap(), ns.db);
            assert_eq!(meta.get_str("collection").unwrap(), ns.collection);
            assert_eq!(meta.get_str("type").unwrap(), ns.kind.type_name());
            let want = if ns.kind.has_metadata() {
                metadata_json(ns).unwrap()
            } else {
                String::new()
            };
            assert_eq!(meta.get_str("metadata").unwrap(), want);
            let size: u64 = source
                .documents(&ns.db, &ns.collection)
                .iter()
                .map(|d| d.len() as u64)
                .sum();
            assert_eq!(
                meta.get_i32("size").unwrap() as u64,
                size,
                "{}",
                ns.display_name()
            );
        }

        // Data: one segment per namespace with data, in prelude order,
        // the documents unchanged; the view has no blocks.
        let data_ns: Vec<(String, String)> = in_order
            .iter()
            .filter(|ns| ns.kind.has_data())
            .map(|ns| (ns.db.clone(), ns.data_collection()))
            .collect();
        assert_eq!(archive.order, data_ns);
        assert!(archive.segments.values().all(|&n| n == 1));
        for ns in in_order.iter().filter(|ns| ns.kind.has_data()) {
            let key = (ns.db.clone(), ns.data_collection());
            assert_eq!(
                archive.data[&key],
                source.documents(&ns.db, &ns.collection),
                "{key:?}"
            );
        }
        assert!(archive.data[&("shop".to_owned(), "empty".to_owned())].is_empty());
        assert_eq!(
            archive.order.last().unwrap(),
            &(String::new(), "oplog".to_owned())
        );
    }
}

#[test]
fn test_crc_is_go_crc64_ecma() {
    // The check value of CRC-64/XZ, which is what Go's ECMA table computes.
    assert_eq!(go_crc64_ecma(b"123456789"), 0x995D_C9BB_DF19_39FA);
    assert_eq!(
        rewind_dump::NAMESPACE_CRC.checksum(b"any bytes at all"),
        go_crc64_ecma(b"any bytes at all")
    );
}

#[test]
fn empty_source_gives_minimal_outputs() {
    let source = MemSource {
        namespaces: Vec::new(),
    };
    let mut out = Vec::new();
    write_tar_gz(&source, &mut out, &options()).unwrap();
    let paths: Vec<_> = untar(&out).into_iter().map(|m| m.path).collect();
    assert_eq!(paths, ["prelude.json", "SHA256SUMS"]);
    let (out, stats) = archive_bytes(&source, false);
    let archive = read_archive(&out).unwrap();
    assert!(archive.prelude.is_empty() && archive.data.is_empty());
    assert_eq!(stats.documents, 0);
}

/// A source whose announced sizes are off by `delta` bytes.
struct Lying {
    inner: MemSource,
    delta: i64,
}

impl DumpSource for Lying {
    fn namespaces(&self) -> io::Result<Vec<DumpNamespace>> {
        self.inner.namespaces()
    }
    fn for_each_document(
        &self,
        ns: &DumpNamespace,
        f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.inner.for_each_document(ns, f)
    }
    fn data_size(&self, ns: &DumpNamespace) -> io::Result<u64> {
        Ok(self.inner.data_size(ns)?.saturating_add_signed(self.delta))
    }
}

fn dump_error(err: &io::Error) -> &DumpError {
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    err.get_ref()
        .and_then(|e| e.downcast_ref::<DumpError>())
        .expect("a DumpError")
}

#[test]
fn a_source_that_changes_between_passes_fails() {
    for delta in [-1, 1] {
        let source = Lying {
            inner: fixture(),
            delta,
        };
        let err = write_tar_gz(&source, io::sink(), &options()).unwrap_err();
        assert!(
            matches!(dump_error(&err), DumpError::SizeChanged { .. }),
            "{err}"
        );
        let err = write_archive(&source, io::sink(), false, &options()).unwrap_err();
        assert!(
            matches!(dump_error(&err), DumpError::SizeChanged { .. }),
            "{err}"
        );
    }
}

#[test]
fn bad_input_is_refused_before_output() {
    let mut source = fixture();
    source.namespaces[1].1.push(vec![9, 0, 0, 0, 0]);
    let err = write_tar_gz(&source, io::sink(), &options()).unwrap_err();
    assert!(
        matches!(dump_error(&err), DumpError::InvalidDocument { .. }),
        "{err}"
    );
    let err = write_archive(&source, io::sink(), true, &options()).unwrap_err();
    assert!(
        matches!(dump_error(&err), DumpError::InvalidDocument { .. }),
        "{err}"
    );

    let source = fixture();
    let mut out = Vec::new();
    let err = write_archive(&source, &mut out, false, &DumpOptions::new("unknown")).unwrap_err();
    assert!(matches!(
        dump_error(&err),
        DumpError::InvalidServerVersion(_)
    ));
    assert!(out.is_empty());
}

#[test]
fn pymongo_reads_the_bson_and_the_metadata() {
    let Some(python) = python::python() else {
        // CI always has the test venv; a missing one there is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "no Python with pymongo (set REWIND_DUMP_PYTHON)"
        );
        eprintln!("skipped: no Python with pymongo (set REWIND_DUMP_PYTHON)");
        return;
    };
    let source = fixture();
    let mut out = Vec::new();
    write_tar_gz(&source, &mut out, &options()).unwrap();
    let members = untar(&out);
    for m in members.iter().filter(|m| m.path.ends_with(".bson")) {
        let reencoded = python::decode_all_reencoded(&python, &m.data);
        assert_eq!(
            reencoded.concat(),
            m.data,
            "pymongo round trip of {}",
            m.path
        );
    }
    for (ns, _) in &source.namespaces {
        if !ns.kind.has_metadata() {
            continue;
        }
        let mut parsed =
            python::metadata_reencoded(&python, &metadata_json(ns).unwrap()).into_iter();
        assert_eq!(
            parsed.next().unwrap(),
            ns.options.to_vec().unwrap(),
            "options of {}",
            ns.display_name()
        );
        let indexes: Vec<_> = ns.indexes.iter().map(|ix| ix.to_vec().unwrap()).collect();
        assert_eq!(
            parsed.collect::<Vec<_>>(),
            indexes,
            "indexes of {}",
            ns.display_name()
        );
    }
}
