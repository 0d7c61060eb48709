//! Durable jobs across replicas: a killed replica's job resumes when it restarts, and jobs
//! enqueued through two replicas run exactly once each. A cluster's data lives with the
//! replica hosting it, so its snapshots run there; a restarted replica (same data directory,
//! same replica id) is a new process holding new leases. The execution log is the replicas'
//! own JSON log: every run of a job logs `snapshot started`, every recorded completion
//! `snapshot completed`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Client, PgSchema, Server, V2023, create_cluster, fresh_data_dir};

/// Starts a replica on the shared schema with JSON info logs, in a data directory of its own.
/// Only the first replica on a schema bootstraps credentials; later ones are handed a copy.
fn replica(schema: &PgSchema, name: &str, workers: usize, extra: &[&str], delay_ms: u64) -> Server {
    let data_dir = fresh_data_dir(name);
    if let Some(first) = schema.credentials_file() {
        std::fs::copy(first, data_dir.join("bootstrap-credentials.json")).unwrap();
    }
    replica_in(schema, &data_dir, workers, extra, delay_ms)
}

/// Starts (or restarts) the replica whose data directory is `data_dir`.
fn replica_in(
    schema: &PgSchema,
    data_dir: &std::path::Path,
    workers: usize,
    extra: &[&str],
    delay_ms: u64,
) -> Server {
    let mut flags = vec!["--database-url", &schema.url, "--log-format", "json"];
    flags.extend_from_slice(extra);
    let delay = delay_ms.to_string();
    let server = Server::start_with_env(
        data_dir,
        workers,
        &flags,
        &[
            ("RUST_LOG", "info"),
            ("REWIND_FAULT_SNAPSHOT_DELAY_MS", delay.as_str()),
        ],
    );
    schema.remember_credentials(&data_dir.join("bootstrap-credentials.json"));
    server
}

/// Takes an on-demand snapshot of `cluster`; returns its id.
async fn take_snapshot(client: &Client, group: &str, cluster: &str) -> String {
    let reply = client
        .post(
            &format!("{group}/clusters/{cluster}/backup/snapshots"),
            V2023,
            &json!({"description": "jobs test", "retentionInDays": 1}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    reply.json()["id"].as_str().unwrap().to_owned()
}

async fn snapshot_status(client: &Client, group: &str, cluster: &str, id: &str) -> Value {
    client
        .get(
            &format!("{group}/clusters/{cluster}/backup/snapshots/{id}"),
            V2023,
        )
        .await
        .json()
}

/// Waits until every `(cluster, snapshot)` is completed or failed; returns the statuses.
async fn wait_terminal(
    client: &Client,
    group: &str,
    jobs: &[(String, String)],
    within: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let mut statuses = Vec::new();
        for (cluster, id) in jobs {
            let snapshot = snapshot_status(client, group, cluster, id).await;
            statuses.push(snapshot["status"].as_str().unwrap_or("?").to_owned());
        }
        if statuses.iter().all(|s| s == "completed" || s == "failed") {
            return statuses;
        }
        assert!(
            Instant::now() < deadline,
            "jobs did not finish in {within:?}: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Counts the events with `message` per snapshot id across replicas.
fn per_snapshot(replicas: &[&Server], message: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for replica in replicas {
        for event in replica.events(message) {
            let id = event["snapshot.id"].as_str().unwrap_or_default().to_owned();
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test]
async fn a_killed_replicas_job_completes_once_after_restart() {
    let schema = PgSchema::create().await;
    // Each snapshot step takes 4 s on the first replica, so it is killed mid-step.
    let first = replica(&schema, "crash-a", 1, &["--lease-seconds", "2"], 4_000);
    let (owner, group) = (first.owner(), first.group_path());
    let mut jobs = Vec::new();
    for index in 0..3 {
        let cluster = create_cluster(&owner, &group, &format!("Crash{index}"), false).await;
        let id = take_snapshot(&owner, &group, &cluster).await;
        jobs.push((cluster, id));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let running = loop {
        let mut running = None;
        for (cluster, id) in &jobs {
            if snapshot_status(&owner, &group, cluster, id).await["status"] == "inProgress" {
                running = Some(id.clone());
            }
        }
        if let Some(id) = running {
            break id;
        }
        assert!(Instant::now() < deadline, "no snapshot started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let started_on_first = per_snapshot(&[&first], "snapshot started");
    assert_eq!(started_on_first.get(&running), Some(&1));
    let data_dir = first.data_dir.clone();
    let first_log = data_dir.join("server.log.killed");
    first.kill();
    std::fs::rename(data_dir.join("server.log"), &first_log).unwrap();

    let second = replica_in(&schema, &data_dir, 1, &["--lease-seconds", "2"], 0);
    let statuses = wait_terminal(&second.owner(), &group, &jobs, Duration::from_secs(40)).await;
    assert!(
        statuses.iter().all(|status| status == "completed"),
        "every job completed: {statuses:?}"
    );
    let completed_by_first: usize = std::fs::read_to_string(&first_log)
        .unwrap()
        .lines()
        .filter(|line| line.contains("\"snapshot completed\""))
        .count();
    assert_eq!(completed_by_first, 0, "the killed process finished nothing");
    let completed = per_snapshot(&[&second], "snapshot completed");
    for (_, id) in &jobs {
        assert_eq!(completed.get(id), Some(&1), "{id} completed exactly once");
    }
    assert!(
        !second
            .events("reclaimed snapshots whose worker stopped before finishing")
            .is_empty(),
        "the killed process's lease was reaped"
    );
    drop(second);
    schema.drop_now().await;
}

#[tokio::test]
async fn two_replicas_run_each_of_200_jobs_exactly_once() {
    const JOBS: usize = 200;
    let schema = PgSchema::create().await;
    let first = replica(&schema, "pair-a", 2, &[], 20);
    let second = replica(&schema, "pair-b", 2, &[], 20);
    let group = first.group_path();
    let clients = [first.owner(), second.owner()];
    // A cluster has at most one unfinished on-demand snapshot, so each job gets a cluster.
    for index in 0..JOBS {
        create_cluster(&clients[index % 2], &group, &format!("Pair{index}"), false).await;
    }
    let mut requests = tokio::task::JoinSet::new();
    for index in 0..JOBS {
        let (client, group) = (clients[index % 2].clone(), group.clone());
        requests.spawn(async move {
            let cluster = format!("Pair{index}");
            let id = take_snapshot(&client, &group, &cluster).await;
            (cluster, id)
        });
    }
    let enqueued = requests.join_all().await;

    let statuses = wait_terminal(&clients[0], &group, &enqueued, Duration::from_secs(120)).await;
    assert!(
        statuses.iter().all(|status| status == "completed"),
        "every job completed: {statuses:?}"
    );
    let started = per_snapshot(&[&first, &second], "snapshot started");
    let completed = per_snapshot(&[&first, &second], "snapshot completed");
    for (_, id) in &enqueued {
        assert_eq!(started.get(id), Some(&1), "{id} ran exactly once");
        assert_eq!(completed.get(id), Some(&1), "{id} completed exactly once");
    }
    assert_eq!(started.len(), JOBS, "no run of an unknown job");
    for replica in [&first, &second] {
        assert!(
            !replica.events("snapshot completed").is_empty(),
            "both replicas took work"
        );
    }
    drop((first, second));
    schema.drop_now().await;
}

#[tokio::test]
async fn sigterm_hands_a_running_job_back_at_its_checkpoint() {
    let schema = PgSchema::create().await;
    let first = replica(&schema, "drain-a", 1, &["--lease-seconds", "30"], 60_000);
    let (owner, group) = (first.owner(), first.group_path());
    let cluster = create_cluster(&owner, &group, "Drain", false).await;
    let id = take_snapshot(&owner, &group, &cluster).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while snapshot_status(&owner, &group, &cluster, &id).await["status"] != "inProgress" {
        assert!(Instant::now() < deadline, "the snapshot never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    let data_dir = first.data_dir.clone();
    let first_log = data_dir.join("server.log.stopped");
    let status = first.terminate();
    std::fs::rename(data_dir.join("server.log"), &first_log).unwrap();
    assert!(
        status.success(),
        "clean exit on SIGTERM, not {status}: {}",
        std::fs::read_to_string(&first_log).unwrap_or_default()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown did not wait for the 60 s step"
    );
    assert!(
        std::fs::read_to_string(&first_log)
            .unwrap()
            .contains("snapshot handed back for shutdown")
    );
    // Released, not lapsed: the restarted replica takes it at once, without waiting 30 s.
    let second = replica_in(&schema, &data_dir, 1, &[], 0);
    let statuses = wait_terminal(
        &second.owner(),
        &group,
        &[(cluster, id)],
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(statuses, ["completed"]);
    drop(second);
    schema.drop_now().await;
}

#[tokio::test]
async fn a_schedule_slot_is_snapshotted_once_by_two_replicas() {
    let schema = PgSchema::create().await;
    let first = replica(&schema, "sched-a", 2, &[], 0);
    let second = replica(&schema, "sched-b", 2, &[], 0);
    let (owner, group) = (first.owner(), first.group_path());
    create_cluster(&owner, &group, "Scheduled", false).await;
    let backup = format!("{group}/clusters/Scheduled/backup");
    let schedule = owner.get(&format!("{backup}/schedule"), V2023).await.json();
    // An hourly item due at the start of the next minute.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let minute = (now / 60 + 1) % 60;
    let policy = schedule["policies"][0]["id"].clone();
    let patched = owner
        .patch(
            &format!("{backup}/schedule"),
            V2023,
            &json!({
                "referenceMinuteOfHour": minute,
                "restoreWindowDays": 1,
                "policies": [{"id": policy, "policyItems": [
                    {"frequencyType": "hourly", "frequencyInterval": 1, "retentionUnit": "days", "retentionValue": 1}
                ]}]
            }),
        )
        .await;
    assert_eq!(patched.status.as_u16(), 200, "{}", patched.text);
    let deadline = Instant::now() + Duration::from_secs(100);
    let scheduled = loop {
        let list = owner
            .get(&format!("{backup}/snapshots"), V2023)
            .await
            .json();
        let scheduled: Vec<Value> = list["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|snapshot| snapshot["snapshotType"] == "scheduled")
            .cloned()
            .collect();
        if scheduled
            .iter()
            .any(|snapshot| snapshot["status"] == "completed")
        {
            break scheduled;
        }
        assert!(Instant::now() < deadline, "no scheduled snapshot: {list}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Both replicas sweep every 5 s with two workers each: still one snapshot for the slot.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let list = owner
        .get(&format!("{backup}/snapshots"), V2023)
        .await
        .json();
    let count = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|snapshot| snapshot["snapshotType"] == "scheduled")
        .count();
    assert_eq!(count, 1, "one snapshot for the slot: {list}");
    assert_eq!(scheduled[0]["frequencyType"], "hourly");
    drop((first, second));
    schema.drop_now().await;
}

/// Waits until a cluster is IDLE with a connection string; returns it.
async fn served_uri(client: &Client, group: &str, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let cluster = client
            .get(
                &format!("{group}/clusters/{name}"),
                crate::support::V_CLUSTER,
            )
            .await
            .json();
        if let Some(uri) = cluster["connectionStrings"]["standard"].as_str()
            && cluster["stateName"] == "IDLE"
        {
            return uri.to_owned();
        }
        assert!(Instant::now() < deadline, "never served: {cluster}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_dead_replicas_cluster_and_jobs_move_to_a_live_replica() {
    use crate::wire_client::WireClient;
    use bson::doc;

    let schema = PgSchema::create().await;
    let blobs = fresh_data_dir("shared-blobs");
    let blob_store = blobs.to_string_lossy().into_owned();
    let flags = ["--lease-seconds", "2", "--blob-store", blob_store.as_str()];
    let first = replica(&schema, "move-a", 1, &flags, 3_000);
    let (owner, group) = (first.owner(), first.group_path());
    create_cluster(&owner, &group, "Moving", true).await;
    let old_uri = served_uri(&owner, &group, "Moving").await;
    let mut mongo = WireClient::connect(&old_uri).await.unwrap();
    mongo
        .insert(
            "app",
            "items",
            (0..50).map(|i| doc! {"_id": i, "v": i}).collect(),
        )
        .await;
    let base = take_snapshot(&owner, &group, "Moving").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while snapshot_status(&owner, &group, "Moving", &base).await["status"] != "completed" {
        assert!(
            Instant::now() < deadline,
            "the base snapshot never completed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Written after the snapshot: comes back through the captured oplog.
    mongo
        .insert(
            "app",
            "items",
            (50..60).map(|i| doc! {"_id": i, "v": i}).collect(),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A long job in progress when the replica dies.
    let long = take_snapshot(&owner, &group, "Moving").await;
    while snapshot_status(&owner, &group, "Moving", &long).await["status"] != "inProgress" {
        assert!(Instant::now() < deadline, "the long snapshot never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first_log = first.data_dir.join("server.log");
    first.kill();

    let second = replica(&schema, "move-b", 1, &flags, 0);
    let client = second.owner();
    let takeover = "took over a cluster whose replica stopped; rebuilding it from its backups";
    let deadline = Instant::now() + Duration::from_secs(30);
    while second.events(takeover).is_empty() {
        assert!(Instant::now() < deadline, "no takeover: {}", second.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Served again once rebuilt (on whatever port is free there: here, often the same).
    let new_uri = served_uri(&client, &group, "Moving").await;
    let mut moved = WireClient::connect(&new_uri).await.unwrap();
    let items = moved.find_all("app", "items").await;
    assert_eq!(
        items,
        (0..60).map(|i| doc! {"_id": i, "v": i}).collect::<Vec<_>>(),
        "the snapshot and the oplog captured since"
    );
    let statuses = wait_terminal(
        &client,
        &group,
        &[("Moving".to_owned(), long.clone())],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        statuses,
        ["completed"],
        "the dead replica's job ran on the live one"
    );
    let completed_by_first = std::fs::read_to_string(&first_log)
        .unwrap()
        .lines()
        .filter(|line| line.contains("\"snapshot completed\"") && line.contains(&long))
        .count();
    assert_eq!(completed_by_first, 0);
    assert_eq!(
        per_snapshot(&[&second], "snapshot completed").get(&long),
        Some(&1),
        "completed exactly once"
    );
    drop(second);
    schema.drop_now().await;
}
