//! The same service on a shared PostgreSQL store.

use serde_json::json;

use crate::support::{
    Client, PgSchema, Server, V2023, completed_snapshot, create_cluster, fresh_data_dir,
};

#[tokio::test]
async fn serve_keeps_its_state_in_postgres() {
    let schema = PgSchema::create().await;
    let url = schema.url.clone();

    let data_dir = fresh_data_dir("postgres");
    let server = Server::start_with(&data_dir, 1, &["--database-url", &url]);
    let owner = server.owner();
    let group = server.group_path();
    create_cluster(&owner, &group, "Cluster0", false).await;
    let backup = format!("{group}/clusters/Cluster0/backup");
    let snapshot = completed_snapshot(&owner, &backup).await;
    let body = json!({"deliveryType": "automated", "snapshotId": snapshot, "targetClusterName": "Cluster0", "targetGroupId": server.credentials.group_id});
    let created = owner
        .post(&format!("{backup}/restoreJobs"), V2023, &body)
        .await;
    assert_eq!(created.status.as_u16(), 200, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    owner
        .post(&format!("{backup}/restoreJobs"), V2023, &body)
        .await
        .assert_error(400, "CLUSTER_RESTORE_IN_PROGRESS_CANNOT_UPDATE");
    assert!(
        !data_dir.join("metadata.sqlite").exists(),
        "no SQLite store when PostgreSQL is configured"
    );

    // A second replica on the same database sees everything the first wrote.
    let second_dir = fresh_data_dir("postgres-second");
    std::fs::copy(
        data_dir.join("bootstrap-credentials.json"),
        second_dir.join("bootstrap-credentials.json"),
    )
    .unwrap();
    let second = Server::start_with(&second_dir, 0, &["--database-url", &url]);
    let job = second
        .owner()
        .get(&format!("{backup}/restoreJobs/{id}"), V2023)
        .await;
    assert_eq!(job.status.as_u16(), 200, "{}", job.text);
    assert_eq!(job.json()["snapshotId"], snapshot);

    // Behind a load balancer the challenge and the answer may reach different replicas.
    let jobs = format!("{backup}/restoreJobs");
    let challenge = Client::anonymous(&server.base)
        .get(&jobs, V2023)
        .await
        .header("www-authenticate");
    let mut prompt = digest_auth::parse(&challenge).unwrap();
    let context = digest_auth::AuthContext::new_with_method(
        server.credentials.public_key.as_str(),
        server.credentials.private_key.as_str(),
        jobs.as_str(),
        None::<&[u8]>,
        digest_auth::HttpMethod::from("GET"),
    );
    let authorization = prompt.respond(&context).unwrap().to_header_string();
    let answered = Client::anonymous(&second.base)
        .raw(
            reqwest::Method::GET,
            &jobs,
            V2023,
            None,
            Some(authorization),
        )
        .await;
    assert_eq!(
        answered.status.as_u16(),
        200,
        "a nonce from one replica is good at another: {}",
        answered.text
    );

    // Each replica names itself in its metrics.
    let replica_of = |metrics: String| {
        metrics
            .lines()
            .find(|line| line.starts_with("rewind_replica_info{"))
            .map(str::to_owned)
    };
    let first_replica = replica_of(
        Client::anonymous(&server.base)
            .get("/metrics", "")
            .await
            .text,
    )
    .expect("replica metric");
    let second_replica = replica_of(
        Client::anonymous(&second.base)
            .get("/metrics", "")
            .await
            .text,
    )
    .expect("replica metric");
    assert_ne!(first_replica, second_replica);
    assert!(server.terminate().success());
    drop(second);
    schema.drop_now().await;
}
