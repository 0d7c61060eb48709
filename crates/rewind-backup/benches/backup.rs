//! Backup throughput: snapshot, restore and replay over a generated data set, each beside a
//! ceiling measured in the same run. `REWIND_BENCH_MB` sets the data size (default 200),
//! `REWIND_BENCH_OPS` the number of oplog entries replayed (default 100,000),
//! `REWIND_BENCH_SAMPLES` how many times restore and its ceiling are measured (default 5).
//!
//! Run: `cargo bench -p rewind-backup`.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use bson::{RawDocumentBuf, Timestamp, doc};
use rewind_backup::{
    BlobStore, CaptureLimits, LocalBlobStore, capture_oplog_with, restore_into, restore_to_point,
    take_snapshot,
};
use rewind_engine::{BulkLoader, Engine, EngineOptions};

const WORDS: [&str; 16] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa",
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A ~1 KB document: some structure, text from a small vocabulary (compresses ~3×).
fn document(i: u64) -> RawDocumentBuf {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let text: Vec<&str> = (0..120).map(|_| WORDS[(next() % 16) as usize]).collect();
    let d = doc! {
        "_id": i as i64,
        "n": (next() % 1_000_000) as i64,
        "user": {"name": format!("user{}", next() % 100_000), "age": (next() % 90) as i32},
        "tags": [WORDS[(next() % 16) as usize], WORDS[(next() % 16) as usize]],
        "score": (next() % 10_000) as f64 / 7.0,
        "text": text.join(" "),
    };
    RawDocumentBuf::try_from(&d).unwrap_or_default()
}

/// The median of `rates`, which it leaves sorted.
fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn main() {
    let target_mb = env_u64("REWIND_BENCH_MB", 200);
    let ops = env_u64("REWIND_BENCH_OPS", 100_000);
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let never = AtomicBool::new(false);

    // Source data set, bulk loaded (one secondary index, like most collections have).
    let t = Instant::now();
    let mut loader = BulkLoader::create(root.join("source")).expect("loader");
    let (mut docs, mut bytes) = (0u64, 0u64);
    for c in 0..4u64 {
        let ns = format!("bench.c{c}");
        loader
            .add_collection(
                &ns,
                None,
                &doc! {},
                &[doc! {"key": {"n": 1}, "name": "n_1"}],
            )
            .expect("collection");
    }
    while bytes < target_mb * 1_000_000 {
        let d = document(docs);
        loader
            .insert(&format!("bench.c{}", docs % 4), &d)
            .expect("insert");
        bytes += d.as_bytes().len() as u64;
        docs += 1;
    }
    let base_ts = Timestamp {
        time: 1,
        increment: 1,
    };
    loader.finish(Some(base_ts)).expect("finish");
    let engine = Engine::open(root.join("source"), EngineOptions::default()).expect("open");
    println!(
        "data set: {docs} documents, {:.1} MB of BSON in 4 collections (generated in {:.1} s)",
        mb(bytes),
        t.elapsed().as_secs_f64()
    );

    // A live engine has an oplog: its snapshot's optime is an entry capture can start after.
    engine
        .write(|txn| txn.noop(&doc! {"msg": "bench start"}))
        .expect("noop");

    // Snapshot.
    let blobs = LocalBlobStore::open(&root.join("blobs")).expect("blobs");
    let view = engine.read_view().expect("view");
    let t = Instant::now();
    let snap = take_snapshot(&view, &blobs, "rs0", "s1", &never, &mut |_| {}).expect("snapshot");
    let secs = t.elapsed().as_secs_f64();
    drop(view);
    let m = snap.manifest;
    println!(
        "snapshot: {:.0} MB/s ({:.2} s; {} chunks, {:.1} MB stored, ratio {:.2})",
        mb(m.totals.logical_bytes) / secs,
        secs,
        m.totals.chunks,
        mb(snap.stats.stored_bytes),
        m.totals.logical_bytes as f64 / m.totals.stored_bytes as f64
    );

    // Restore, and its ceiling: decompress the same chunks and write the bytes to a plain file.
    // The two are measured in turn several times and their medians compared: the ceiling's
    // write and fsync swing by 2x from one run to the next on this kind of machine.
    let compressed: Vec<(Vec<u8>, u64)> = m
        .namespaces
        .iter()
        .flat_map(|n| &n.chunks)
        .map(|c| {
            let key = format!("rs0/chunks/{}/{}", &c.hash[..2], c.hash);
            (blobs.get(&key).expect("chunk"), c.size)
        })
        .collect();
    let samples = env_u64("REWIND_BENCH_SAMPLES", 5).max(1);
    let (mut restores, mut ceilings, mut documents) = (Vec::new(), Vec::new(), 0);
    for sample in 0..samples {
        let target = root.join(format!("restored{sample}"));
        let t = Instant::now();
        let stats = restore_into(&blobs, "rs0", &m, &target, &never, &mut |_| {}).expect("restore");
        restores.push(mb(stats.bytes) / t.elapsed().as_secs_f64());
        documents = stats.documents;
        std::fs::remove_dir_all(&target).ok();

        let t = Instant::now();
        let plain = root.join("plain.bin");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&plain).expect("file"));
        for (data, size) in &compressed {
            let raw = zstd::bulk::decompress(data, *size as usize).expect("zstd");
            out.write_all(&raw).expect("write");
        }
        let file = out.into_inner().expect("flush");
        file.sync_all().expect("fsync");
        ceilings.push(mb(stats.bytes) / t.elapsed().as_secs_f64());
        std::fs::remove_file(&plain).ok();
    }
    let (restore_rate, ceiling_rate) = (median(&mut restores), median(&mut ceilings));
    println!(
        "restore: median {restore_rate:.0} MB/s of {samples} ({:.0}-{:.0}; {documents} docs); ceiling (zstd decompress + plain write + fsync): median {ceiling_rate:.0} MB/s ({:.0}-{:.0}); ratio {:.0}%",
        restores[0],
        restores[restores.len() - 1],
        ceilings[0],
        ceilings[ceilings.len() - 1],
        100.0 * restore_rate / ceiling_rate
    );

    // Replay: half inserts, half updates, committed 1,000 per transaction on the source.
    let t = Instant::now();
    let mut i = 0u64;
    while i < ops {
        engine
            .write(|txn| {
                for k in i..(i + 1000).min(ops) {
                    let id = if k % 2 == 0 { docs + k } else { k * 7 % docs };
                    txn.apply_oplog_entry(&op_entry(id, k % 2 == 0))?;
                }
                Ok(())
            })
            .expect("write");
        i += 1000;
    }
    println!(
        "oplog: {ops} entries written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut slices = Vec::new();
    let base_ts = m.optime.unwrap_or(base_ts);
    let mut after = Some(base_ts);
    while let Some(s) = capture_oplog_with(&engine, &blobs, "rs0", after, &CaptureLimits::default())
        .expect("capture")
    {
        after = Some(s.to);
        slices.push(s);
    }
    let up_to = after.unwrap_or(base_ts);
    let replay_target = restored_copy(&blobs, &m, &root.join("replay"));
    let t = Instant::now();
    let r = rewind_backup::replay_oplog(
        &replay_target,
        &blobs,
        &slices,
        base_ts,
        up_to,
        &never,
        &mut |_| {},
    )
    .expect("replay");
    let replay_rate = r.applied as f64 / t.elapsed().as_secs_f64();
    let raw_target = restored_copy(&blobs, &m, &root.join("raw"));
    let entries = engine
        .oplog_range(Some(base_ts), None, usize::MAX)
        .expect("oplog");
    let t = Instant::now();
    for batch in entries.chunks(1000) {
        raw_target
            .write(|txn| batch.iter().try_for_each(|e| txn.apply_oplog_entry(e)))
            .expect("apply");
    }
    let raw_rate = entries.len() as f64 / t.elapsed().as_secs_f64();
    println!(
        "replay onto a restored engine: {replay_rate:.0} ops/s ({} entries, {} slices); engine raw apply from memory: {raw_rate:.0} ops/s; ratio {:.0}%",
        r.applied,
        slices.len(),
        100.0 * replay_rate / raw_rate
    );

    // The same point in time as a point-in-time restore builds it: the entries' net effect
    // merged into the snapshot's load. Their cost is what they add to the restore without
    // them: both are measured in turn (which goes first alternates, since the first pays for
    // cold memory), and the median of the per-sample differences is reported.
    let mut added = Vec::new();
    let mut without = Vec::new();
    let mut applied = 0;
    for sample in 0..samples {
        let mut order = [up_to, base_ts];
        if sample % 2 == 1 {
            order.reverse();
        }
        let mut took = [0.0; 2];
        for target in order {
            let dir = root.join(format!("pit{sample}"));
            let t = Instant::now();
            let (restored, stats) = restore_to_point(
                &blobs,
                "rs0",
                &m,
                &slices,
                target,
                &dir,
                &never,
                &mut |_| {},
            )
            .expect("point-in-time restore");
            took[usize::from(target == up_to)] = t.elapsed().as_secs_f64();
            if target == up_to {
                assert_eq!(stats.batches, 0, "the bench's entries merge in one pass");
                assert!(stats.applied > 0, "entries were merged");
                assert_eq!(
                    restored.optime, stats.last_applied,
                    "the restore ends at the last entry"
                );
                applied = stats.applied;
            }
            std::fs::remove_dir_all(&dir).ok();
        }
        added.push(took[1] - took[0]);
        without.push(took[0]);
    }
    let (added, without) = (median(&mut added), median(&mut without));
    if added > 0.0 {
        println!(
            "point-in-time restore: {applied} entries add {added:.3} s to the restore's {without:.3} s (medians of {samples}): {:.0} ops/s",
            applied as f64 / added
        );
    } else {
        println!(
            "point-in-time restore: {applied} entries add no measurable time to the restore's {without:.3} s (median difference {added:.3} s over {samples} samples)"
        );
    }
}

/// An insert (new `_id`) or replacement-update oplog entry as the engine logs them.
fn op_entry(id: u64, insert: bool) -> RawDocumentBuf {
    let o = document(id);
    let ns = format!("bench.c{}", id % 4);
    let d = if insert {
        doc! {"op": "i", "ns": ns, "o": bson::Document::try_from(o.as_ref()).unwrap_or_default(), "o2": {"_id": id as i64}}
    } else {
        doc! {"op": "u", "ns": ns, "o": bson::Document::try_from(o.as_ref()).unwrap_or_default(), "o2": {"_id": id as i64}}
    };
    RawDocumentBuf::try_from(&d).unwrap_or_default()
}

fn restored_copy(blobs: &dyn BlobStore, m: &rewind_backup::Manifest, dir: &Path) -> Engine {
    restore_into(blobs, "rs0", m, dir, &AtomicBool::new(false), &mut |_| {}).expect("restore");
    Engine::open(dir, EngineOptions::default()).expect("open")
}
