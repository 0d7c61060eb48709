//! Throughput figures for the README (not a test): `cargo bench -p rewind-engine`.
//!
//! Prints batched inserts through the engine, point reads by `_id` (one at a time and in
//! batches), and bulk-load MB/s beside a plain file write + fsync of the same BSON bytes,
//! measured in the same run. `-- ops` runs only the inserts and reads, `-- bulk` only the
//! bulk load (`benches/cluster_wire.py` alternates `ops` with the same work through pymongo);
//! `REWIND_BENCH_DOCS` and `REWIND_BENCH_READS` set the counts (1,000,000 and 100,000).

use std::io::Write;
use std::time::Instant;

use bson::{Bson, RawDocumentBuf, doc};
use rewind_engine::{BulkLoader, Engine, EngineOptions};

const BATCH: i64 = 1_000;

fn small_doc(i: i64) -> RawDocumentBuf {
    let d = doc! {"_id": i, "name": format!("user-{i:08}"), "age": (i % 90) as i32, "city": "Amsterdam", "score": i as f64 * 0.5, "tags": ["a", "b"]};
    RawDocumentBuf::try_from(&d).expect("valid document")
}

/// `REWIND_BENCH_<name>` when set, else `default`.
fn setting(name: &str, default: i64) -> i64 {
    std::env::var(format!("REWIND_BENCH_{name}"))
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> rewind_engine::Result<()> {
    let (count, reads) = (setting("DOCS", 1_000_000), setting("READS", 100_000));
    let root = std::env::temp_dir().join(format!("rewind-engine-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let docs: Vec<RawDocumentBuf> = (0..count).map(small_doc).collect();
    let bytes: usize = docs.iter().map(|d| d.as_bytes().len()).sum();
    println!(
        "{count} docs, {:.1} MB of BSON ({} B avg)",
        bytes as f64 / 1e6,
        bytes / docs.len()
    );

    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a == "ops" || a == "bulk")
        .collect();
    let engine = Engine::open(root.join("engine"), EngineOptions::default())?;
    if parts.is_empty() || parts.iter().any(|p| p == "ops") {
        ops(&engine, &docs, reads)?;
    }
    if parts.is_empty() || parts.iter().any(|p| p == "bulk") {
        bulk_load(&engine, &docs, bytes, &root)?;
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// Inserts `docs` in batches, then makes `reads` reads by `_id`: one `get` each, and
/// `get_many` in sorted batches as an `_id` `$in` find makes them.
fn ops(engine: &Engine, docs: &[RawDocumentBuf], reads: i64) -> rewind_engine::Result<()> {
    let count = docs.len() as i64;
    let t = Instant::now();
    for batch in docs.chunks(BATCH as usize) {
        let outcome = engine.write(|txn| txn.insert_many("bench.c", batch, true))?;
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert!(!outcome.one_at_a_time, "the batch path is what is measured");
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "insert (batches of {BATCH}, sync=FULL): {:.0} docs/s ({s:.1} s)",
        count as f64 / s
    );

    let view = engine.read_view()?;
    let t = Instant::now();
    let mut found = 0;
    for i in 0..reads {
        let id = (i * 7_919) % count;
        found += usize::from(view.get("bench.c", &Bson::Int64(id))?.is_some());
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "reads by _id (one read view): {:.0} docs/s ({found} found)",
        reads as f64 / s
    );

    // The same reads a `find` with `_id: {$in: [...]}` makes: sorted batches of ids.
    let t = Instant::now();
    let mut found = 0;
    for first in (0..reads).step_by(BATCH as usize) {
        let last = reads.min(first + BATCH);
        let mut ids: Vec<i64> = (first..last).map(|i| (i * 7_919) % count).collect();
        ids.sort_unstable();
        let ids: Vec<Bson> = ids.into_iter().map(Bson::Int64).collect();
        view.get_many("bench.c", &ids, |_| {
            found += 1;
            Ok(true)
        })?;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "reads by _id, get_many in batches of {BATCH}: {:.0} docs/s ({found} found)",
        reads as f64 / s
    );
    Ok(())
}

/// The bulk-load rate into an empty engine beside a plain write + fsync of the same bytes.
fn bulk_load(
    engine: &Engine,
    docs: &[RawDocumentBuf],
    bytes: usize,
    root: &std::path::Path,
) -> rewind_engine::Result<()> {
    // Bulk load and its ceiling in turn, each output removed before the next: the speed of
    // writing to the page cache swings by several times on this kind of VM (memory the
    // guest never touched before is slow to hand out), so each side gets several tries and
    // medians are compared.
    let samples = usize::try_from(setting("SAMPLES", 5)).unwrap_or(5);
    let load = || -> rewind_engine::Result<(f64, f64)> {
        let dir = root.join("bulk");
        let t = Instant::now();
        let mut loader = BulkLoader::create(&dir)?;
        loader.insert_all("bench.c", docs.iter().map(|d| d.as_ref()))?;
        let streamed = t.elapsed().as_secs_f64();
        loader.finish(engine.latest_optime())?;
        let total = t.elapsed().as_secs_f64();
        std::fs::remove_dir_all(&dir)?;
        Ok((total, streamed))
    };
    let write_plain = || -> std::io::Result<f64> {
        let path = root.join("plain.bin");
        let t = Instant::now();
        let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        for d in docs {
            file.write_all(d.as_bytes())?;
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        let elapsed = t.elapsed().as_secs_f64();
        std::fs::remove_file(&path)?;
        Ok(elapsed)
    };
    let (mut bulk, mut plain) = (Vec::new(), Vec::new());
    for sample in 0..samples {
        // Whichever goes first pays for memory the guest has not touched yet: alternate.
        let ((total, streamed), elapsed) = if sample % 2 == 0 {
            let loaded = load()?;
            (loaded, write_plain()?)
        } else {
            let elapsed = write_plain()?;
            (load()?, elapsed)
        };
        let (bulk_rate, plain_rate) = (bytes as f64 / 1e6 / total, bytes as f64 / 1e6 / elapsed);
        println!(
            "  bulk load {bulk_rate:.0} MB/s ({streamed:.3} s streaming, {:.3} s finishing with fsync); plain write+fsync {plain_rate:.0} MB/s",
            total - streamed,
        );
        bulk.push(bulk_rate);
        plain.push(plain_rate);
    }
    let (bulk, plain) = (median(&mut bulk), median(&mut plain));
    println!(
        "bulk load (median of {samples}): {bulk:.1} MB/s; plain write+fsync: {plain:.1} MB/s; ratio {:.0}%",
        bulk / plain * 100.0
    );
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
