//! Atlas conventions: dated media types, envelopes, pretty printing, pagination, unknown paths,
//! the flex fallback, and the operational endpoints.

use serde_json::json;

use crate::support::{
    Client, Server, V_CLUSTER, V2023, completed_snapshot, create_cluster, download_job,
};

#[tokio::test]
async fn versions_are_negotiated_per_operation() {
    let server = Server::start("versions");
    let owner = server.owner();
    let group = server.group_path();
    create_cluster(&owner, &group, "Cluster0", false).await;
    let jobs = format!("{group}/clusters/Cluster0/backup/restoreJobs");

    let missing = owner
        .get(&jobs, "")
        .await
        .assert_error(406, "INVALID_VERSION_DATE");
    assert_eq!(
        missing,
        json!({"detail": "Invalid accept header or version date.", "error": 406, "errorCode": "INVALID_VERSION_DATE", "parameters": [], "reason": "Not Acceptable"})
    );
    owner
        .get(&jobs, "application/json")
        .await
        .assert_error(406, "INVALID_VERSION_DATE");
    owner
        .get(&jobs, "application/vnd.atlas.2024-08-05+json")
        .await
        .assert_error(406, "INVALID_VERSION_DATE");
    owner
        .get(&format!("{group}/clusters/Cluster0"), V2023)
        .await
        .assert_error(406, "INVALID_VERSION_DATE");
    let ok = owner
        .get(
            &jobs,
            "application/json, application/vnd.atlas.2023-01-01+json;q=0.9",
        )
        .await;
    assert_eq!(ok.status.as_u16(), 200);
    assert_eq!(
        ok.header("content-type"),
        "application/vnd.atlas.2023-01-01+json;charset=utf-8"
    );
    let cluster = owner
        .get(&format!("{group}/clusters/Cluster0"), V_CLUSTER)
        .await;
    assert_eq!(
        cluster.header("content-type"),
        "application/vnd.atlas.2024-08-05+json;charset=utf-8"
    );
    let schedule_2024 = owner
        .get(
            &format!("{group}/clusters/Cluster0/backup/schedule"),
            V_CLUSTER,
        )
        .await
        .json();
    let schedule_2023 = owner
        .get(&format!("{group}/clusters/Cluster0/backup/schedule"), V2023)
        .await
        .json();
    assert_eq!(schedule_2024["autoCopySettingsEnabled"], false);
    assert!(
        schedule_2023.get("autoCopySettingsEnabled").is_none(),
        "the 2023 shape has no autoCopySettingsEnabled"
    );
}

#[tokio::test]
async fn envelope_pretty_and_pagination() {
    let server = Server::start("pages");
    let owner = server.owner();
    let group = server.group_path();
    create_cluster(&owner, &group, "Cluster0", false).await;
    let backup = format!("{group}/clusters/Cluster0/backup");
    let snapshot = completed_snapshot(&owner, &backup).await;
    for _ in 0..3 {
        let reply = owner
            .post(
                &format!("{backup}/restoreJobs"),
                V2023,
                &json!({"deliveryType": "download", "snapshotId": snapshot}),
            )
            .await;
        let id = reply.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(
            owner
                .delete(&format!("{backup}/restoreJobs/{id}"), V2023)
                .await
                .status
                .as_u16(),
            204
        );
    }
    let jobs = format!("{backup}/restoreJobs");
    let page = owner
        .get(&format!("{jobs}?itemsPerPage=2&pageNum=2"), V2023)
        .await
        .json();
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
    assert_eq!(page["totalCount"], 3);
    let rels: Vec<_> = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|link| link["rel"].clone())
        .collect();
    assert_eq!(rels, [json!("self"), json!("previous")]);
    assert_eq!(
        page["links"][0]["href"],
        format!(
            "{}{jobs}?includeCount=true&pageNum=2&itemsPerPage=2",
            server.base
        )
    );
    let first = owner
        .get(&format!("{jobs}?itemsPerPage=2&includeCount=false"), V2023)
        .await
        .json();
    assert!(first.get("totalCount").is_none());
    assert_eq!(first["links"][1]["rel"], "next");
    let beyond = owner.get(&format!("{jobs}?pageNum=9"), V2023).await.json();
    assert_eq!(beyond["results"], json!([]));

    for bad in [
        "itemsPerPage=0",
        "itemsPerPage=501",
        "pageNum=0",
        "pageNum=x",
        "includeCount=maybe",
    ] {
        let name = bad.split('=').next().unwrap();
        let body = owner
            .get(&format!("{jobs}?{bad}"), V2023)
            .await
            .assert_error(400, "INVALID_QUERY_PARAMETER");
        assert!(body["detail"].as_str().unwrap().contains(name), "{body}");
    }

    let enveloped = owner
        .get(&format!("{jobs}?envelope=true"), V2023)
        .await
        .json();
    assert_eq!(enveloped["status"], 200);
    assert_eq!(enveloped["totalCount"], 3);
    let one = owner
        .get(
            &format!("{backup}/snapshots/{snapshot}?envelope=true"),
            V2023,
        )
        .await
        .json();
    assert_eq!(one["status"], 200);
    assert_eq!(one["content"]["id"], snapshot);
    let pretty = owner
        .get(&format!("{backup}/snapshots/{snapshot}?pretty=true"), V2023)
        .await;
    assert!(pretty.text.starts_with("{\n  \""), "{}", pretty.text);
    assert_eq!(
        pretty.header("content-type"),
        "application/vnd.atlas.2023-01-01+json;charset=utf-8"
    );
    owner
        .get(&format!("{jobs}?pretty=yes"), V2023)
        .await
        .assert_error(400, "INVALID_QUERY_PARAMETER");
}

#[tokio::test]
async fn unknown_paths_flex_fallback_and_operations_endpoints() {
    let server = Server::start("paths");
    let owner = server.owner();
    let group = server.group_path();
    create_cluster(&owner, &group, "Cluster0", false).await;

    completed_snapshot(&owner, &format!("{group}/clusters/Cluster0/backup")).await;
    owner
        .get(&format!("{group}/nothing"), V2023)
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND");
    let flex_version = "application/vnd.atlas.2024-11-13+json";
    let flex = owner
        .get(
            &format!("{group}/flexClusters/Cluster0/backup/restoreJobs"),
            flex_version,
        )
        .await;
    let body = flex.assert_error(400, "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API");
    assert_eq!(
        body["detail"],
        "Cannot use non-flex cluster Cluster0 in the flex API."
    );
    owner
        .get(
            &format!("{group}/flexClusters/Nope/backup/snapshots/aaaaaaaaaaaaaaaaaaaaaaaa"),
            flex_version,
        )
        .await
        .assert_error(404, "CLUSTER_NOT_FOUND");
    let put = owner
        .send(
            reqwest::Method::PUT,
            &format!("{group}/clusters/Cluster0/backup/restoreJobs"),
            V2023,
            Some("{}"),
        )
        .await;
    put.assert_error(405, "METHOD_NOT_ALLOWED");

    let anonymous = Client::anonymous(&server.base);
    let health = anonymous.get("/healthz", "").await;
    assert_eq!(health.status.as_u16(), 200);
    assert_eq!(anonymous.get("/readyz", "").await.status.as_u16(), 200);
    let document = anonymous.get("/api/atlas/v2/openapi.json", "").await.json();
    assert_eq!(document["openapi"], "3.0.1");
    let restore_jobs = &document["paths"]["/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/restoreJobs"];
    assert_eq!(
        restore_jobs["post"]["operationId"],
        "createBackupRestoreJob"
    );
    assert!(restore_jobs["post"]["responses"]["200"]["content"]["application/vnd.atlas.2023-01-01+json"].is_object());

    // Metrics count the requests above by route and status.
    let metrics = anonymous.get("/metrics", "").await.text;
    assert!(metrics.contains("rewind_http_requests_total{method=\"GET\",route=\"/api/atlas/v2/groups/{groupId}/flexClusters/{name}/{*rest}\",status=\"400\"} 1"), "{metrics}");
    assert!(
        metrics.contains("rewind_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rewind_jobs{kind=\"snapshot\",state=\"completed\"} 1"),
        "{metrics}"
    );
    assert!(
        !anonymous
            .get("/metrics", "")
            .await
            .text
            .contains("privateKey")
    );
}

#[tokio::test]
async fn an_internal_error_is_logged_with_its_cause_and_never_leaks() {
    let server = Server::start("internal");
    let owner = server.owner();
    let group = server.group_path();
    let (backup, snapshot, id) = download_job(&owner, &group).await;

    // Damage the stored row behind the server's back, as a bad disk or a bad migration would.
    let database = rusqlite::Connection::open(server.data_dir.join("metadata.sqlite")).unwrap();
    database
        .busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let changed = database
        .execute(
            "UPDATE restore_jobs SET delivery_urls = 'not json' WHERE id = ?1",
            [&id],
        )
        .unwrap();
    assert_eq!(changed, 1);

    let reply = owner
        .get(&format!("{backup}/restoreJobs/{id}"), V2023)
        .await;
    let body = reply.assert_error(500, "UNEXPECTED_ERROR");
    assert_eq!(
        body,
        json!({"detail": "Unexpected error.", "error": 500, "errorCode": "UNEXPECTED_ERROR", "parameters": [], "reason": "Internal Server Error"})
    );
    assert!(
        !reply.text.contains("delivery_urls") && !reply.text.contains("corrupt"),
        "{}",
        reply.text
    );
    let log = server.log();
    assert!(
        log.contains("corrupt row: delivery_urls"),
        "the cause is logged: {log}"
    );
    // The server keeps serving.
    assert_eq!(
        owner
            .get(&format!("{backup}/snapshots/{snapshot}"), V2023)
            .await
            .status
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_replica() {
    let data_dir = crate::support::fresh_data_dir("logs");
    let server = crate::support::Server::start_with_env(
        &data_dir,
        0,
        &["--log-format", "json"],
        &[("RUST_LOG", "info")],
    );
    let created = server
        .owner()
        .post(
            &format!("{}/clusters", server.group_path()),
            crate::support::V_CLUSTER,
            &crate::support::cluster_body("Logged", false),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let request_id = created.header("x-request-id");
    assert_eq!(
        request_id.len(),
        24,
        "request ids look like every other id: {request_id}"
    );
    let log = server.log();
    let line = log
        .lines()
        .find(|line| line.contains("cluster created"))
        .unwrap_or_else(|| panic!("no log line: {log}"));
    let entry: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(entry["level"], "INFO");
    assert_eq!(entry["span"]["request_id"], request_id.as_str());
    assert_eq!(entry["span"]["replica"].as_str().map(str::len), Some(24));
    assert_eq!(
        entry["span"]["principal"],
        server.credentials.public_key.as_str()
    );
}
