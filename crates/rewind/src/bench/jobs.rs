//! `rewind bench jobs`: the restore-job read paths with a million jobs in the store, beside the
//! same reads on a store holding a handful, and snapshot claims per second by four workers —
//! on SQLite and, when one answers, PostgreSQL.
//!
//! Reads go through the store trait the API handlers call (`get_restore_job_with_org` for
//! `GET restoreJobs/{id}`, `list_restore_jobs` with its total count for the list), so the
//! figures isolate what the store's indexes decide.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rewind_domain::cluster::Cluster;
use rewind_domain::group::Group;
use rewind_domain::restore_job::{RestoreJob, RestoreJobState};
use rewind_domain::restore_request::DeliveryType;
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_domain::{ClusterName, ObjectId, Timestamp};
use rewind_store::{Lease, MetadataStore, Page, PgStore, RestoreGuard, SqliteStore};

use super::api::cluster;

/// Flags of `rewind bench jobs`.
#[derive(clap::Args, Debug)]
pub struct JobsBenchArgs {
    /// Restore jobs loaded into the store.
    #[arg(long, default_value_t = 1_000_000)]
    pub jobs: usize,
    /// Clusters the jobs are spread over (the measured cluster holds `jobs / clusters`).
    #[arg(long, default_value_t = 100)]
    pub clusters: usize,
    /// Reads per measured operation.
    #[arg(long, default_value_t = 2_000)]
    pub samples: usize,
    /// Queued snapshots claimed by the four workers.
    #[arg(long, default_value_t = 4_000)]
    pub claims: usize,
    /// Measure SQLite only.
    #[arg(long)]
    pub sqlite_only: bool,
    /// PostgreSQL to measure as well (a scratch schema is created and dropped)
    /// [default: postgres://postgres@127.0.0.1:5432/test when it answers].
    #[arg(long, env = "REWIND_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// The target: reads with a million jobs within this factor of the small-store figures.
const TARGET_FACTOR: f64 = 2.0;
/// Concurrent inserters while loading.
const LOADERS: usize = 64;
/// Workers claiming at once.
const CLAIMERS: usize = 4;

/// Runs the measurements on each store.
pub async fn run(args: JobsBenchArgs) -> anyhow::Result<()> {
    let directory = std::env::temp_dir().join(format!("rewind-bench-jobs-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    let sqlite: Arc<dyn MetadataStore> =
        Arc::new(SqliteStore::open(&directory.join("metadata.sqlite")).await?);
    let outcome = measure_store("SQLite", sqlite, &args).await;
    let _ = std::fs::remove_dir_all(&directory);
    outcome?;
    if args.sqlite_only {
        return Ok(());
    }

    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("rewind_bench_{}", ObjectId::generate());
    match PgStore::connect_in_schema(&url, &schema).await {
        Ok(store) => {
            let store = Arc::new(store);
            let outcome = measure_store("PostgreSQL", store.clone(), &args).await;
            store.drop_schema(&schema).await?;
            outcome?;
        }
        Err(error) => println!("PostgreSQL at {url} not measured: {error}"),
    }
    Ok(())
}

/// What the jobs hang off.
struct Fixture {
    group: Group,
    clusters: Vec<Cluster>,
    snapshot: Snapshot,
}

async fn measure_store(
    name: &str,
    store: Arc<dyn MetadataStore>,
    args: &JobsBenchArgs,
) -> anyhow::Result<()> {
    println!("== {name}");
    let fixture = Arc::new(prepare(&store, args.clusters.max(1)).await?);
    // The measured cluster holds the same jobs in both measurements (its share of the full
    // load); the small store holds nothing else, the loaded one the other clusters' jobs too.
    // So each read returns the same rows twice and only the store's size differs.
    let per_cluster = (args.jobs / fixture.clusters.len()).max(200);
    load(&store, &fixture, 0, per_cluster, 0..1).await?;
    let small = read_paths(store.as_ref(), &fixture, args.samples).await?;

    let started = Instant::now();
    let rest = args.jobs.saturating_sub(per_cluster);
    load(&store, &fixture, 0, rest, 1..fixture.clusters.len().max(2)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "loaded {} restore jobs over {} clusters in {elapsed:.1} s ({:.0} inserts/s through the store)",
        args.jobs,
        fixture.clusters.len(),
        rest as f64 / elapsed
    );
    let large = read_paths(store.as_ref(), &fixture, args.samples).await?;

    let (_, in_measured) = store
        .list_restore_jobs(
            fixture.group.id,
            &fixture.clusters[0].name,
            Page {
                offset: 0,
                limit: 1,
            },
        )
        .await?;
    println!(
        "reads on cluster c0 holding {in_measured} jobs: alone in the store (small) vs in a {}-job store (loaded)",
        args.jobs
    );
    println!(
        "{:<28} {:>13} {:>13} {:>15} {:>15} {:>7}",
        "operation", "p50 small ms", "p99 small ms", "p50 loaded ms", "p99 loaded ms", "ratio"
    );
    for ((operation, small), (_, large)) in small.iter().zip(&large) {
        let ratio = large.p50 / small.p50;
        println!(
            "{operation:<28} {:>13.3} {:>13.3} {:>15.3} {:>15.3} {ratio:>6.2}x {}",
            small.p50,
            small.p99,
            large.p50,
            large.p99,
            if ratio <= TARGET_FACTOR {
                "(target ≤ 2x: met)"
            } else {
                "(target ≤ 2x: NOT met)"
            }
        );
    }
    claims(&store, &fixture, args.claims).await
}

async fn prepare(
    shared_store: &Arc<dyn MetadataStore>,
    clusters: usize,
) -> anyhow::Result<Fixture> {
    let store = shared_store.as_ref();
    let now = Timestamp::now();
    let (_, group) = super::org_and_group(store, now).await?;
    let mut created = Vec::with_capacity(clusters);
    for index in 0..clusters {
        let record = cluster(group.id, &format!("c{index}"), now)?;
        store.create_cluster(&record, None).await?;
        created.push(record);
    }
    serve_all(shared_store).await?;
    let source = &created[0];
    let snapshot = Snapshot::on_demand(group.id, source.id, source.name.clone(), None, 7, now);
    store.insert_on_demand_snapshot(&snapshot).await?;
    let lease = Lease {
        owner: "bench".into(),
        until: now.plus_days(1),
    };
    let claimed = store
        .claim_queued_snapshot("bench", "8.0.4", &lease, now)
        .await?
        .context("claiming the bench snapshot")?;
    store
        .finish_snapshot(
            claimed.job.id,
            "bench",
            SnapshotStatus::Completed,
            now,
            1,
            None,
        )
        .await?;
    Ok(Fixture {
        group,
        clusters: created,
        snapshot,
    })
}

/// Inserts jobs `first..first + count`, round-robin over the clusters in `spread`,
/// `LOADERS` at a time.
async fn load(
    store: &Arc<dyn MetadataStore>,
    fixture: &Arc<Fixture>,
    first: usize,
    count: usize,
    spread: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let guard = RestoreGuard {
        target: None,
        download_snapshot: None,
        max_group_downloads: None,
    };
    let mut loaders = tokio::task::JoinSet::new();
    for loader in 0..LOADERS {
        let (store, fixture, guard) = (store.clone(), fixture.clone(), guard.clone());
        let spread = spread.clone();
        loaders.spawn(async move {
            let mut index = first + loader;
            while index < first + count {
                let cluster = &fixture.clusters[spread.start + index % spread.len()];
                let job = RestoreJob {
                    id: ObjectId::generate(),
                    group_id: fixture.group.id,
                    cluster_name: cluster.name.clone(),
                    delivery_type: DeliveryType::Automated,
                    snapshot_id: Some(fixture.snapshot.id),
                    target_group_id: Some(fixture.group.id),
                    target_cluster_name: Some(cluster.name.clone()),
                    pit: None,
                    state: RestoreJobState::Completed,
                    created_at: Timestamp::now(),
                    snapshot_taken_at: fixture.snapshot.created_at,
                    finished_at: Some(Timestamp::now()),
                    expires_at: None,
                    delivery_urls: Vec::new(),
                    failure_reason: None,
                    progress: None,
                };
                store.insert_restore_job(&job, &guard).await?;
                index += LOADERS;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = loaders.join_next().await {
        joined??;
    }
    Ok(())
}

/// p50 and p99 of one read path, in milliseconds.
struct Latency {
    p50: f64,
    p99: f64,
}

fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort_unstable();
    let at = |fraction: f64| {
        let index = ((samples.len() - 1) as f64 * fraction).round() as usize;
        samples[index].as_secs_f64() * 1000.0
    };
    Latency {
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// Measures GET one job, list page 1 and list page 100 (100 per page) on cluster `c0`.
async fn read_paths(
    store: &dyn MetadataStore,
    fixture: &Fixture,
    samples: usize,
) -> anyhow::Result<Vec<(&'static str, Latency)>> {
    let name: &ClusterName = &fixture.clusters[0].name;
    let group_id = fixture.group.id;
    let (recent, _) = store
        .list_restore_jobs(
            group_id,
            name,
            Page {
                offset: 0,
                limit: 100,
            },
        )
        .await?;
    let ids: Vec<ObjectId> = recent.iter().map(|job| job.id).collect();
    anyhow::ensure!(!ids.is_empty(), "the measured cluster has no jobs");
    let mut get = Vec::with_capacity(samples);
    for sample in 0..samples {
        let started = Instant::now();
        let found = store
            .get_restore_job_with_org(group_id, name, ids[sample % ids.len()])
            .await?;
        get.push(started.elapsed());
        anyhow::ensure!(found.is_some(), "a listed job is readable");
    }
    let mut pages = Vec::new();
    for page_number in [1u64, 100] {
        let page = Page {
            offset: (page_number - 1) * 100,
            limit: 100,
        };
        let mut times = Vec::with_capacity(samples / 10);
        for _ in 0..(samples / 10).max(10) {
            let started = Instant::now();
            let (_, total) = store.list_restore_jobs(group_id, name, page).await?;
            times.push(started.elapsed());
            anyhow::ensure!(total > 0, "the list counts its jobs");
        }
        pages.push(times);
    }
    let page_100 = pages.pop().unwrap_or_default();
    let page_1 = pages.pop().unwrap_or_default();
    Ok(vec![
        ("GET restoreJobs/{id}", latency(get)),
        ("list page 1 (+ totalCount)", latency(page_1)),
        ("list page 100 (+ totalCount)", latency(page_100)),
    ])
}

/// Queues `count` on-demand snapshots (one per new cluster, as Atlas allows one unfinished
/// on-demand snapshot per cluster) and has four workers claim and finish them.
async fn claims(
    store: &Arc<dyn MetadataStore>,
    fixture: &Fixture,
    count: usize,
) -> anyhow::Result<()> {
    let now = Timestamp::now();
    for index in 0..count {
        let record = cluster(fixture.group.id, &format!("q{index}"), now)?;
        store.create_cluster(&record, None).await?;
        let snapshot = Snapshot::on_demand(
            record.group_id,
            record.id,
            record.name.clone(),
            None,
            1,
            now,
        );
        store.insert_on_demand_snapshot(&snapshot).await?;
    }
    serve_all(store).await?;
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..CLAIMERS {
        let store = store.clone();
        workers.spawn(async move {
            let owner = format!("bench/{worker}");
            let mut claimed = 0usize;
            loop {
                let now = Timestamp::now();
                let lease = Lease {
                    owner: owner.clone(),
                    until: now.plus_millis(30_000),
                };
                let Some(job) = store
                    .claim_queued_snapshot("bench", "8.0.4", &lease, now)
                    .await?
                else {
                    break;
                };
                store
                    .finish_snapshot(job.job.id, &owner, SnapshotStatus::Completed, now, 1, None)
                    .await?;
                claimed += 1;
            }
            anyhow::Ok(claimed)
        });
    }
    let mut total = 0;
    while let Some(joined) = workers.join_next().await {
        total += joined??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        total >= count,
        "claimed {total} of {count} queued snapshots"
    );
    println!(
        "claims: {CLAIMERS} workers claimed and finished {total} snapshots in {elapsed:.2} s: {:.0} jobs/s",
        total as f64 / elapsed
    );
    Ok(())
}

/// Hosts every cluster as the bench "replica" and marks it served, so its jobs are claimable.
/// Many updates are in flight at once, sharing group commits: the API bench serves hundreds of
/// thousands of targets.
pub async fn serve_all(store: &Arc<dyn MetadataStore>) -> anyhow::Result<()> {
    let unserved = store
        .host_clusters("bench")
        .await?
        .into_iter()
        .filter(|cluster| cluster.address.is_none());
    super::in_flight(unserved, |cluster| {
        let store = store.clone();
        Ok(async move {
            store
                .record_cluster_address(
                    cluster.id,
                    "bench",
                    Some("127.0.0.1:1"),
                    rewind_domain::cluster::ClusterState::Idle,
                )
                .await
        })
    })
    .await
}
