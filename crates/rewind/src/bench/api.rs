//! `rewind bench api`: authenticated (bearer) `GET restoreJobs/{id}` and durable
//! `POST restoreJobs` against a real server on loopback, beside a fixed-JSON axum responder
//! measured in the same run on the same machine, so the ratio is what carries meaning.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::routing::get;
use rewind_api::AppContext;
use rewind_api::auth::secrets::{new_access_token, new_service_account, sha256_hex};
use rewind_domain::cluster::{Cluster, ClusterState, ClusterType};
use rewind_domain::schedule::BackupSchedule;
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_domain::{ClusterName, ObjectId, Timestamp};
use rewind_store::{AccessToken, Lease, MetadataStore, SqliteStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Flags of `rewind bench api`.
#[derive(clap::Args, Debug)]
pub struct ApiBenchArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Target clusters prepared for the POST phase (each accepted automated restore occupies one).
    #[arg(long, default_value_t = 600_000)]
    pub targets: usize,
    /// Which measurements to run (each beside its ceiling).
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    pub only: Scenario,
}

/// The measurements of `rewind bench api`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// GET and POST.
    All,
    /// `GET restoreJobs/{id}` only.
    Get,
    /// `POST restoreJobs` only.
    Post,
}

/// One request template: method, path, body; the bearer token is added per request.
#[derive(Clone)]
struct RequestTemplate {
    method: &'static str,
    path: String,
    body: Option<String>,
}

/// Latencies and outcomes of one measurement.
struct Measurement {
    name: String,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    failures: usize,
}

impl Measurement {
    fn requests_per_second(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, fraction: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * fraction).round() as usize;
        f64::from(self.latencies_us[index]) / 1000.0
    }

    fn print(&self, ceiling: Option<&Measurement>, target: Option<f64>) {
        let ratio =
            ceiling.map(|ceiling| self.requests_per_second() / ceiling.requests_per_second());
        println!(
            "{:<34} {:>10.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  ok {:>7}  failed {:>5}{}",
            self.name,
            self.requests_per_second(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.latencies_us.len(),
            self.failures,
            match (ratio, target) {
                (Some(ratio), Some(target)) => format!(
                    "  ratio {:.1}% of ceiling (target >= {:.0}%: {})",
                    ratio * 100.0,
                    target * 100.0,
                    if ratio >= target { "met" } else { "NOT met" }
                ),
                _ => String::from("  (ceiling)"),
            }
        );
    }
}

/// Runs the API benchmark and prints its figures.
pub async fn run(args: ApiBenchArgs) -> anyhow::Result<()> {
    let data_dir = std::env::temp_dir().join(format!("rewind-bench-{}", std::process::id()));
    std::fs::create_dir_all(&data_dir)?;
    let result = run_in(&args, &data_dir).await;
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

async fn run_in(args: &ApiBenchArgs, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let store: Arc<dyn MetadataStore> =
        Arc::new(SqliteStore::open(&data_dir.join("metadata.sqlite")).await?);
    let mut fixture = Fixture::create(&store, args.targets).await?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = AppContext::new(
        store.clone(),
        &format!("http://{address}"),
        rand::random(),
        ObjectId::generate(),
        data_dir.join("downloads"),
    );
    // The server `rewind serve` runs; the ceiling below stays on plain `axum::serve`.
    tokio::spawn(rewind_api::server::serve(
        listener,
        rewind_api::router(app),
        std::future::pending(),
    ));

    // The job GET reads is created through the API itself; its JSON is the ceiling's body.
    let sample = RequestTemplate {
        method: "POST",
        path: format!("{}/restoreJobs", fixture.backup_path),
        body: Some(fixture.sample_request.clone()),
    };
    let (status, body) = request_once(address, &fixture.token, &sample).await?;
    if status != 200 {
        bail!("creating the sample restore job answered {status}: {body}");
    }
    let created: serde_json::Value = serde_json::from_str(&body)?;
    fixture.sample_job_id = created["id"].as_str().context("sample job id")?.to_owned();
    let fixed_body = body;
    let ceiling_listener = TcpListener::bind("127.0.0.1:0").await?;
    let ceiling_address = ceiling_listener.local_addr()?;
    let ceiling_router = axum::Router::new().route(
        "/fixed",
        get({
            let body = fixed_body.clone();
            move || {
                let body = body.clone();
                async move {
                    (
                        [(
                            "content-type",
                            "application/vnd.atlas.2023-01-01+json;charset=utf-8",
                        )],
                        body,
                    )
                }
            }
        })
        .post({
            let body = fixed_body.clone();
            move || {
                let body = body.clone();
                async move {
                    (
                        [(
                            "content-type",
                            "application/vnd.atlas.2023-01-01+json;charset=utf-8",
                        )],
                        body,
                    )
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(ceiling_listener, ceiling_router).await });

    let duration = Duration::from_secs(args.duration);
    println!(
        "rewind bench api: {} connections, {} s per measurement, SQLite store in {} (synchronous=FULL)",
        args.connections,
        args.duration,
        data_dir.display()
    );
    if args.only != Scenario::Post {
        measure_get(args, &fixture, address, ceiling_address, duration).await?;
    }
    if args.only != Scenario::Get {
        measure_post(args, fixture, address, ceiling_address, duration).await?;
    }
    Ok(())
}

async fn measure_get(
    args: &ApiBenchArgs,
    fixture: &Fixture,
    address: SocketAddr,
    ceiling_address: SocketAddr,
    duration: Duration,
) -> anyhow::Result<()> {
    let fixed_get = RequestTemplate {
        method: "GET",
        path: "/fixed".into(),
        body: None,
    };
    let ceiling_get = measure(
        "ceiling: fixed JSON GET",
        ceiling_address,
        &fixture.token,
        args.connections,
        duration,
        move |_| fixed_get.clone(),
    )
    .await?;
    ceiling_get.print(None, None);

    let job_path = format!(
        "{}/restoreJobs/{}",
        fixture.backup_path, fixture.sample_job_id
    );
    let get_job = RequestTemplate {
        method: "GET",
        path: job_path,
        body: None,
    };
    let get_measurement = measure(
        "GET restoreJobs/{id} (bearer)",
        address,
        &fixture.token,
        args.connections,
        duration,
        move |_| get_job.clone(),
    )
    .await?;
    get_measurement.print(Some(&ceiling_get), Some(0.5));
    Ok(())
}

async fn measure_post(
    args: &ApiBenchArgs,
    fixture: Fixture,
    address: SocketAddr,
    ceiling_address: SocketAddr,
    duration: Duration,
) -> anyhow::Result<()> {
    let fixed_post = RequestTemplate {
        method: "POST",
        path: "/fixed".into(),
        body: Some(fixture.post_body(0)),
    };
    let ceiling_post = measure(
        "ceiling: fixed JSON POST",
        ceiling_address,
        &fixture.token,
        args.connections,
        duration,
        move |_| fixed_post.clone(),
    )
    .await?;
    ceiling_post.print(None, None);

    let jobs_path = format!("{}/restoreJobs", fixture.backup_path);
    let fixture_for_post = Arc::new(fixture);
    let post_measurement = measure(
        "POST restoreJobs (durable, bearer)",
        address,
        &fixture_for_post.token.clone(),
        args.connections,
        duration,
        {
            let fixture = fixture_for_post.clone();
            move |sequence| RequestTemplate {
                method: "POST",
                path: jobs_path.clone(),
                body: Some(fixture.post_body(sequence)),
            }
        },
    )
    .await?;
    post_measurement.print(Some(&ceiling_post), Some(0.2));
    if post_measurement.latencies_us.len() >= fixture_for_post.targets {
        println!(
            "note: every prepared target was used; raise --targets for a full-length POST measurement"
        );
    }
    Ok(())
}

/// The data the benchmark reads and writes.
struct Fixture {
    token: String,
    group_id: ObjectId,
    backup_path: String,
    snapshot_id: ObjectId,
    sample_request: String,
    sample_job_id: String,
    targets: usize,
}

impl Fixture {
    async fn create(shared_store: &Arc<dyn MetadataStore>, targets: usize) -> anyhow::Result<Self> {
        let store = shared_store.as_ref();
        let now = Timestamp::now();
        let (org, group) = super::org_and_group(store, now).await?;
        let (account, _) = new_service_account(
            org.id,
            "bench".into(),
            "bench".into(),
            vec!["ORG_OWNER".into()],
            24,
        );
        store.create_service_account(&account).await?;
        let token = new_access_token();
        store
            .create_access_token(&AccessToken {
                token_sha256: sha256_hex(&token),
                client_id: account.client_id.clone(),
                expires_at: now.plus_days(1),
            })
            .await?;
        let source = cluster(group.id, "Source", now)?;
        store
            .create_cluster(
                &source,
                Some(&BackupSchedule::atlas_default(source.id, now)),
            )
            .await?;
        let started = Instant::now();
        super::in_flight(0..targets, |index| {
            let (store, target) = (
                shared_store.clone(),
                cluster(group.id, &format!("t{index}"), now)?,
            );
            Ok(async move { store.create_cluster(&target, None).await })
        })
        .await?;
        println!(
            "prepared {targets} target clusters in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        super::jobs::serve_all(shared_store).await?;
        let snapshot = Snapshot::on_demand(group.id, source.id, source.name.clone(), None, 7, now);
        store.insert_on_demand_snapshot(&snapshot).await?;
        let claimed = store
            .claim_queued_snapshot(
                "bench",
                "8.0.4",
                &Lease {
                    owner: "bench".into(),
                    until: now.plus_days(1),
                },
                now,
            )
            .await?
            .context("claiming the bench snapshot")?
            .job;
        store
            .finish_snapshot(claimed.id, "bench", SnapshotStatus::Completed, now, 1, None)
            .await?;
        let backup_path = format!("/api/atlas/v2/groups/{}/clusters/Source/backup", group.id);
        let sample_target = cluster(group.id, "Sample", now)?;
        store.create_cluster(&sample_target, None).await?;
        let sample_request = format!(
            "{{\"deliveryType\":\"automated\",\"snapshotId\":\"{}\",\"targetClusterName\":\"Sample\",\"targetGroupId\":\"{}\"}}",
            snapshot.id, group.id
        );
        Ok(Self {
            token,
            group_id: group.id,
            backup_path,
            snapshot_id: snapshot.id,
            sample_request,
            sample_job_id: String::new(),
            targets,
        })
    }

    /// An automated restore into its own target, so every POST is accepted and written.
    fn post_body(&self, sequence: usize) -> String {
        format!(
            "{{\"deliveryType\":\"automated\",\"snapshotId\":\"{}\",\"targetClusterName\":\"t{}\",\"targetGroupId\":\"{}\"}}",
            self.snapshot_id, sequence, self.group_id
        )
    }
}

/// A replica-set cluster record named `name`.
pub fn cluster(group_id: ObjectId, name: &str, now: Timestamp) -> anyhow::Result<Cluster> {
    Ok(Cluster {
        id: ObjectId::generate(),
        group_id,
        name: ClusterName::parse(name).map_err(|error| anyhow::anyhow!("{name}: {error}"))?,
        cluster_type: ClusterType::ReplicaSet,
        backup_enabled: true,
        pit_enabled: false,
        paused: false,
        state: ClusterState::Idle,
        created_at: now,
        spec: serde_json::json!({}),
        address: None,
    })
}

/// Drives `connections` keep-alive connections for `duration`; `next` builds request `n`.
async fn measure(
    name: &str,
    address: SocketAddr,
    token: &str,
    connections: usize,
    duration: Duration,
    next: impl Fn(usize) -> RequestTemplate + Send + Sync + 'static,
) -> anyhow::Result<Measurement> {
    let next = Arc::new(next);
    let sequence = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let next = next.clone();
        let sequence = sequence.clone();
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            let mut buffer = Vec::with_capacity(16 * 1024);
            while Instant::now() < deadline {
                let template = next(sequence.fetch_add(1, Ordering::Relaxed));
                let request = encode(&template, &token);
                let sent = Instant::now();
                stream.write_all(request.as_bytes()).await?;
                let (status, _) = read_response(&mut stream, &mut buffer).await?;
                let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                if status == 200 {
                    latencies.push(micros);
                } else {
                    failures += 1;
                }
            }
            anyhow::Ok((latencies, failures))
        }));
    }
    let mut latencies_us = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (mut latencies, failed) = task.await??;
        latencies_us.append(&mut latencies);
        failures += failed;
    }
    let elapsed = started.elapsed();
    latencies_us.sort_unstable();
    Ok(Measurement {
        name: name.to_owned(),
        elapsed,
        latencies_us,
        failures,
    })
}

fn encode(template: &RequestTemplate, token: &str) -> String {
    let body = template.body.as_deref().unwrap_or("");
    format!(
        "{} {} HTTP/1.1\r\nhost: bench\r\naccept: application/vnd.atlas.2023-01-01+json\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        template.method,
        template.path,
        body.len()
    )
}

/// Sends one request on a fresh connection; returns status and body.
async fn request_once(
    address: SocketAddr,
    token: &str,
    template: &RequestTemplate,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address).await?;
    stream.write_all(encode(template, token).as_bytes()).await?;
    let mut buffer = Vec::new();
    let (status, body_start) = read_response(&mut stream, &mut buffer).await?;
    Ok((
        status,
        String::from_utf8_lossy(&buffer[body_start..]).into_owned(),
    ))
}

/// Reads one response with a `content-length` body into `buffer`; returns its status and
/// where the body starts.
async fn read_response(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> anyhow::Result<(u16, usize)> {
    // `read_buf` appends into spare capacity without zeroing it first: the load generator
    // must cost as little as possible, since it shares the machine with what it measures.
    buffer.clear();
    let header_end = loop {
        if let Some(position) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break position + 4;
        }
        buffer.reserve(16 * 1024);
        if stream.read_buf(buffer).await? == 0 {
            bail!("connection closed mid-response");
        }
    };
    let head = std::str::from_utf8(&buffer[..header_end])?;
    let status: u16 = head.get(9..12).context("status line")?.parse()?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        buffer.reserve(16 * 1024);
        if stream.read_buf(buffer).await? == 0 {
            bail!("connection closed mid-body");
        }
    }
    Ok((status, header_end))
}
