//! Oplog capture, point-in-time replay onto a restored snapshot, gaps and pruning.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bson::{Bson, Timestamp, doc};
use rewind_backup::{
    BackupError, CaptureLimits, PitTarget, capture_oplog, capture_oplog_with, check_oplog_gap,
    covers, list_oplog_slices, prune_oplog_slices, replay_oplog, restore_into, restore_to_point,
};
use rewind_engine::{Engine, EngineOptions, Sync};

use crate::common::{Fixture, State, dump, open, raw, snapshot};

fn wait_for_next_second(engine: &Engine) {
    let last = engine.latest_optime().map_or(0, |t| t.time);
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if now > u64::from(last) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn insert_range(engine: &Engine, ns: &str, ids: std::ops::Range<i32>) {
    engine
        .write(|t| {
            for i in ids {
                t.insert(ns, &raw(&doc! {"_id": i, "v": i, "pad": "p".repeat(50)}))?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn replay_reaches_each_recorded_point() {
    let fx = Fixture::new();
    let e = &fx.engine;
    e.write(|t| {
        t.create_indexes("app.users", &[doc! {"key": {"v": 1}, "name": "v_1"}])
            .map(drop)
    })
    .unwrap();
    insert_range(e, "app.users", 0..200);
    insert_range(e, "app.old", 0..20);
    let base = snapshot(e, &fx.blobs, "base").manifest;
    let o0 = base.optime.unwrap();
    let mut targets: Vec<(PitTarget, State)> = Vec::new();

    // Phase 1, in a second of its own: CRUD, an index build, an implicit create.
    wait_for_next_second(e);
    insert_range(e, "app.users", 200..300);
    e.write(|t| {
        for i in 0..10 {
            t.update(
                "app.users",
                &Bson::Int32(i),
                &raw(&doc! {"_id": i, "v": -i, "changed": true}),
            )?;
        }
        for i in 10..15 {
            t.delete("app.users", &Bson::Int32(i))?;
        }
        Ok(())
    })
    .unwrap();
    targets.push((PitTarget::Oplog(e.latest_optime().unwrap()), dump(e)));
    e.write(|t| {
        t.create_indexes(
            "app.users",
            &[doc! {"key": {"changed": 1}, "name": "changed_1", "sparse": true}],
        )
        .map(drop)
    })
    .unwrap();
    insert_range(e, "app.fresh", 0..50);
    targets.push((
        PitTarget::UtcSeconds(e.latest_optime().unwrap().time),
        dump(e),
    ));

    // Phase 2, in a later second: renames, drops, and more than one replay batch of entries.
    wait_for_next_second(e);
    e.write(|t| t.rename_collection("app.old", "app.renamed", false))
        .unwrap();
    e.write(|t| t.drop_index("app.users", "changed_1")).unwrap();
    insert_range(e, "app.bulk", 0..700);
    insert_range(e, "app.bulk", 700..1400);
    // A single-entry commit: the target at its exact optime must include it.
    insert_range(e, "app.users", 5000..5001);
    targets.push((PitTarget::Oplog(e.latest_optime().unwrap()), dump(e)));
    e.write(|t| t.drop_collection("app.fresh").map(drop))
        .unwrap();
    e.write(|t| t.delete("app.bulk", &Bson::Int32(3)).map(drop))
        .unwrap();
    targets.push((
        PitTarget::UtcSeconds(e.latest_optime().unwrap().time),
        dump(e),
    ));

    // A later entry closes the last second (as mongod's periodic no-ops do).
    wait_for_next_second(e);
    e.write(|t| t.noop(&doc! {"msg": "periodic noop"})).unwrap();

    let limits = CaptureLimits {
        max_entries: 300,
        ..CaptureLimits::default()
    };
    let mut captured = Vec::new();
    let mut after = Some(o0);
    while let Some(slice) = capture_oplog_with(e, &fx.blobs, "rs0", after, &limits).unwrap() {
        assert_eq!(slice.after, after);
        assert!(slice.count <= 300);
        after = Some(slice.to);
        captured.push(slice);
    }
    assert!(captured.len() >= 6, "{} slices", captured.len());
    assert_eq!(after, e.latest_optime());
    assert_eq!(list_oplog_slices(&fx.blobs, "rs0").unwrap(), captured);
    assert!(covers(&captured, o0, e.latest_optime().unwrap()));

    for (n, (target, expected)) in targets.iter().enumerate() {
        let dir = fx.target(&format!("pit{n}"));
        restore_into(
            &fx.blobs,
            "rs0",
            &base,
            &dir,
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap();
        let restored = open(&dir);
        let mut batches = 0;
        let stats = replay_oplog(
            &restored,
            &fx.blobs,
            &captured,
            o0,
            target.bound(),
            &AtomicBool::new(false),
            &mut |_| batches += 1,
        )
        .unwrap();
        assert!(stats.last_applied.unwrap() <= target.bound());
        assert_eq!(stats.batches, batches);
        assert_eq!(&dump(&restored), expected, "target {n}: {target:?}");
    }

    // Past the end of what was captured: a gap, nothing applied.
    let beyond = Timestamp {
        time: e.latest_optime().unwrap().time + 5,
        increment: 0,
    };
    let dir = fx.target("beyond");
    restore_into(
        &fx.blobs,
        "rs0",
        &base,
        &dir,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    let restored = open(&dir);
    let err = replay_oplog(
        &restored,
        &fx.blobs,
        &captured,
        o0,
        beyond,
        &AtomicBool::new(false),
        &mut |_| {},
    );
    assert!(matches!(err, Err(BackupError::Gap { .. })), "{err:?}");
    assert_eq!(restored.latest_optime(), Some(o0));

    // Cancellation stops between batches.
    let cancel = AtomicBool::new(false);
    let err = replay_oplog(
        &restored,
        &fx.blobs,
        &captured,
        o0,
        targets[3].0.bound(),
        &cancel,
        &mut |_| cancel.store(true, Ordering::Relaxed),
    );
    assert!(matches!(err, Err(BackupError::Cancelled)), "{err:?}");

    // Retention: slices entirely before a point go.
    let cut = captured[2].from;
    assert_eq!(prune_oplog_slices(&fx.blobs, "rs0", cut).unwrap(), 2);
    assert_eq!(list_oplog_slices(&fx.blobs, "rs0").unwrap(), captured[2..]);
}

#[test]
fn truncation_past_the_last_capture_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EngineOptions {
        sync: Sync::Normal,
        oplog_max_bytes: 20_000,
        ..EngineOptions::default()
    };
    let e = Engine::open(dir.path().join("e"), opts).unwrap();
    let blobs = rewind_backup::LocalBlobStore::open(&dir.path().join("blobs")).unwrap();
    insert_range(&e, "a.b", 0..10);
    let first = capture_oplog(&e, &blobs, "rs0", None).unwrap().unwrap();
    assert_eq!((first.after, first.count), (None, 11));
    assert_eq!(check_oplog_gap(&e, Some(first.to)).unwrap(), None);
    assert_eq!(
        capture_oplog(&e, &blobs, "rs0", Some(first.to)).unwrap(),
        None
    );

    for i in 10..400 {
        insert_range(&e, "a.b", i..i + 1);
    }
    let oldest = e.oldest_optime().unwrap().unwrap();
    assert!(oldest > first.to);
    let gap = check_oplog_gap(&e, Some(first.to)).unwrap().unwrap();
    assert_eq!((gap.from, gap.to), (first.to, oldest));
    let err = capture_oplog(&e, &blobs, "rs0", Some(first.to)).unwrap_err();
    assert!(
        matches!(err, BackupError::Gap { from, to } if from == first.to && to == oldest),
        "{err:?}"
    );
    assert!(err.to_string().contains("gap"), "{err}");
    assert_eq!(
        list_oplog_slices(&blobs, "rs0").unwrap(),
        std::slice::from_ref(&first),
        "nothing stored across a gap"
    );

    // A new timeline starts from the oldest entry still there.
    let second = capture_oplog(&e, &blobs, "rs0", None).unwrap().unwrap();
    assert_eq!(second.from, oldest);
    let slices = list_oplog_slices(&blobs, "rs0").unwrap();
    assert!(!covers(&slices, first.to, second.to));
    let err = replay_oplog(
        &e,
        &blobs,
        &slices,
        first.to,
        second.to,
        &AtomicBool::new(false),
        &mut |_| {},
    );
    assert!(matches!(err, Err(BackupError::Gap { .. })));
}

/// Restores `base` to `target` both ways: in one pass ([`restore_to_point`]) and as the
/// snapshot followed by [`replay_oplog`]; returns both states, the one-pass stats, and each
/// engine's index entries for `index` of `app.users`.
fn both_ways(
    fx: &Fixture,
    base: &rewind_backup::Manifest,
    slices: &[rewind_backup::OplogSlice],
    target: Timestamp,
    tag: &str,
) -> (State, State, rewind_backup::ReplayStats, [Vec<Vec<u8>>; 2]) {
    let never = AtomicBool::new(false);
    let one_pass = fx.target(&format!("{tag}-one-pass"));
    let (_, stats) = restore_to_point(
        &fx.blobs,
        "rs0",
        base,
        slices,
        target,
        &one_pass,
        &never,
        &mut |_| {},
    )
    .unwrap();
    let replayed = fx.target(&format!("{tag}-replayed"));
    restore_into(&fx.blobs, "rs0", base, &replayed, &never, &mut |_| {}).unwrap();
    let general = open(&replayed);
    let after = base.optime.unwrap();
    let r = replay_oplog(
        &general,
        &fx.blobs,
        slices,
        after,
        target,
        &never,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.applied, stats.applied, "{tag}");
    assert_eq!(r.last_applied, stats.last_applied, "{tag}");
    let merged = open(&one_pass);
    assert_eq!(merged.latest_optime(), general.latest_optime(), "{tag}");
    let entries = |e: &Engine| {
        let view = e.read_view().unwrap();
        ["v_1", "u_1"].map(|index| {
            view.find_by_index("app.users", index, &[])
                .unwrap()
                .into_iter()
                .map(|d| d.into_bytes())
                .collect::<Vec<_>>()
        })
    };
    let (a, b) = (entries(&merged), entries(&general));
    assert_eq!(a, b, "{tag}: index order differs");
    (
        dump(&merged),
        dump(&general),
        stats,
        [a[0].clone(), a[1].clone()],
    )
}

#[test]
fn one_pass_point_in_time_restores_equal_replays() {
    let fx = Fixture::new();
    let e = &fx.engine;
    e.write(|t| {
        t.create_indexes(
            "app.users",
            &[
                doc! {"key": {"v": 1}, "name": "v_1"},
                doc! {"key": {"u": 1}, "name": "u_1", "unique": true, "sparse": true},
            ],
        )
        .map(drop)
    })
    .unwrap();
    insert_range(e, "app.users", 0..300);
    insert_range(e, "app.other", 0..20);
    let base = snapshot(e, &fx.blobs, "base").manifest;
    let mut targets = Vec::new();

    // Inserts before the first key, between keys (250.5 sorts between 250 and 251) and after
    // the last; replacements, some of one document several times; deletes, a delete then a
    // re-insert, an insert then a delete; another collection; a delete where no collection is.
    e.write(|t| {
        for i in [-5, -1] {
            t.insert("app.users", &raw(&doc! {"_id": i, "v": i}))?;
        }
        t.insert("app.users", &raw(&doc! {"_id": 250.5, "v": 1, "u": "a"}))?;
        for i in 1000..1010 {
            t.insert("app.users", &raw(&doc! {"_id": i, "v": i % 3}))?;
        }
        for round in 0..3 {
            for i in (0..300).step_by(7) {
                let d = doc! {"_id": i, "v": -i - round, "round": round};
                t.update("app.users", &Bson::Int32(i), &raw(&d))?;
            }
        }
        Ok(())
    })
    .unwrap();
    targets.push(e.latest_optime().unwrap());
    e.write(|t| {
        for i in (1..300).step_by(11) {
            t.delete("app.users", &Bson::Int32(i))?;
        }
        t.delete("app.users", &Bson::Int32(12))?;
        t.insert(
            "app.users",
            &raw(&doc! {"_id": 12, "v": 12, "back": true, "u": "b"}),
        )?;
        t.insert("app.users", &raw(&doc! {"_id": 5000, "v": 0}))?;
        t.delete("app.users", &Bson::Int32(5000))?;
        t.delete("app.users", &Bson::Int32(299))?;
        t.update(
            "app.other",
            &Bson::Int32(3),
            &raw(&doc! {"_id": 3, "moved": 1}),
        )?;
        t.insert("app.other", &raw(&doc! {"_id": 100}))?;
        t.noop(&doc! {"msg": "between"})
    })
    .unwrap();
    targets.push(e.latest_optime().unwrap());
    e.write(|t| t.delete("app.other", &Bson::Int32(0)).map(drop))
        .unwrap();
    let mid = e.latest_optime().unwrap();
    // A command: restores past it take the general path.
    e.write(|t| {
        t.create_indexes("app.other", &[doc! {"key": {"v": -1}, "name": "v_-1"}])
            .map(drop)
    })
    .unwrap();
    e.write(|t| {
        t.insert("app.other", &raw(&doc! {"_id": 101, "v": 3}))
            .map(drop)
    })
    .unwrap();
    let last = e.latest_optime().unwrap();

    let mut slices = Vec::new();
    let mut after = base.optime;
    let limits = CaptureLimits {
        max_entries: 40,
        ..CaptureLimits::default()
    };
    while let Some(slice) = capture_oplog_with(e, &fx.blobs, "rs0", after, &limits).unwrap() {
        after = Some(slice.to);
        slices.push(slice);
    }

    let mut up_to_mid = 0;
    for (n, target) in targets.iter().chain([&mid]).enumerate() {
        let (merged, general, stats, _) = both_ways(&fx, &base, &slices, *target, &format!("t{n}"));
        assert_eq!(stats.batches, 0, "target {n} is merged in one pass");
        assert!(stats.applied > 0);
        assert_eq!(merged, general, "target {n}");
        up_to_mid = stats.applied;
    }
    // Past the command: the entries up to it are merged (as many as for `mid`, the last
    // target merged whole above), the rest replayed; the final state is the source's.
    let (merged, _, stats, [v, u]) = both_ways(&fx, &base, &slices, last, "last");
    assert!(stats.batches > 0, "a command needs the replay");
    assert_eq!(stats.merged, up_to_mid);
    assert_eq!(merged, dump(e));
    assert!(v.len() > 250 && u.len() == 2, "{} {}", v.len(), u.len());
    // Nothing after the snapshot: the snapshot itself, at its optime.
    let (merged, _, stats, _) = both_ways(&fx, &base, &slices, base.optime.unwrap(), "none");
    assert_eq!((stats.applied, stats.batches), (0, 0));
    assert_eq!(merged.get("app.users").unwrap().3.len(), 300);
}
