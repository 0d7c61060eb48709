//! Projects, clusters, schedules, snapshots and API keys through their whole lifecycle.

use serde_json::json;

use crate::support::{Server, V_CLUSTER, V2023, cluster_body, completed_snapshot, create_cluster};

#[tokio::test]
async fn bootstrap_writes_credentials_once_and_privately() {
    let data_dir = crate::support::fresh_data_dir("bootstrap");
    let server = Server::start_in(&data_dir, 0);
    let path = data_dir.join("bootstrap-credentials.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let first = std::fs::read(&path).unwrap();
    let groups = server
        .owner()
        .get("/api/atlas/v2/groups", V2023)
        .await
        .json();
    assert_eq!(groups["totalCount"], 1);
    assert_eq!(groups["results"][0]["id"], server.credentials.group_id);
    let orgs = server.owner().get("/api/atlas/v2/orgs", V2023).await.json();
    assert_eq!(orgs["results"][0]["id"], server.credentials.org_id);
    assert!(server.terminate().success());
    let again = Server::start_in(&data_dir, 0);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        first,
        "a second start keeps the first credentials"
    );
    assert_eq!(
        again
            .owner()
            .get("/api/atlas/v2/groups", V2023)
            .await
            .json()["totalCount"],
        1
    );
}

#[tokio::test]
async fn clusters_record_and_echo_what_clients_send() {
    let server = Server::start("clusters");
    let owner = server.owner();
    let group = server.group_path();
    let created = owner
        .post(
            &format!("{group}/clusters"),
            V_CLUSTER,
            &cluster_body("Cluster0", true),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let cluster = created.json();
    assert_eq!(cluster["name"], "Cluster0");
    assert_eq!(cluster["groupId"], server.credentials.group_id);
    assert_eq!(cluster["clusterType"], "REPLICASET");
    assert_eq!(cluster["stateName"], "CREATING", "provisioning starts");
    assert_eq!(cluster["connectionStrings"], json!({}));
    // A replica starts the cluster's database and reports where drivers reach it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let served = loop {
        let current = owner
            .get(&format!("{group}/clusters/Cluster0"), V_CLUSTER)
            .await
            .json();
        if current["stateName"] == "IDLE" {
            break current;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never IDLE: {current}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let uri = served["connectionStrings"]["standard"].as_str().unwrap();
    assert!(
        uri.starts_with("mongodb://127.0.0.1:")
            && uri.ends_with("/?replicaSet=atlas-cluster0-shard-0"),
        "{uri}"
    );
    assert_eq!(
        (
            cluster["backupEnabled"].clone(),
            cluster["pitEnabled"].clone(),
            cluster["paused"].clone()
        ),
        (json!(true), json!(true), json!(false))
    );
    assert_eq!(
        cluster["replicationSpecs"],
        cluster_body("Cluster0", true)["replicationSpecs"],
        "recorded and echoed"
    );
    assert_eq!(cluster["tags"], json!([{"key": "team", "value": "backup"}]));
    assert!(
        cluster["mongoDBVersion"]
            .as_str()
            .unwrap()
            .starts_with(cluster["mongoDBMajorVersion"].as_str().unwrap())
    );
    assert!(cluster["id"].as_str().unwrap().len() == 24 && cluster["createDate"].is_string());

    owner
        .post(
            &format!("{group}/clusters"),
            V_CLUSTER,
            &cluster_body("Cluster0", false),
        )
        .await
        .assert_error(400, "DUPLICATE_CLUSTER_NAME");
    let read_only = owner
        .post(
            &format!("{group}/clusters"),
            V_CLUSTER,
            &json!({"name": "X", "stateName": "IDLE"}),
        )
        .await;
    assert!(
        read_only.assert_error(400, "ATTRIBUTE_READ_ONLY")["detail"]
            .as_str()
            .unwrap()
            .contains("stateName")
    );
    let bad_priority = owner
        .post(
            &format!("{group}/clusters"),
            V_CLUSTER,
            &json!({"name": "X", "replicationSpecs": [{"regionConfigs": [{"priority": "high"}]}]}),
        )
        .await;
    assert!(
        bad_priority.assert_error(400, "INVALID_JSON_ATTRIBUTE")["detail"]
            .as_str()
            .unwrap()
            .contains("replicationSpecs[0].regionConfigs[0].priority")
    );
    owner
        .post(
            &format!("{group}/clusters"),
            V_CLUSTER,
            &json!({"name": "X", "backupEnabled": false, "pitEnabled": true}),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    owner
        .post(
            &format!("{group}/clusters"),
            V_CLUSTER,
            &json!({"clusterType": "SHARDED"}),
        )
        .await
        .assert_error(400, "MISSING_ATTRIBUTE");

    let sharded = owner
        .post(&format!("{group}/clusters"), V_CLUSTER, &json!({"name": "Sharded", "clusterType": "SHARDED", "backupEnabled": true, "replicationSpecs": [{"regionConfigs": []}, {"regionConfigs": []}]}))
        .await;
    assert_eq!(sharded.status.as_u16(), 201, "{}", sharded.text);
    let list = owner
        .get(&format!("{group}/clusters"), V_CLUSTER)
        .await
        .json();
    assert_eq!(list["totalCount"], 2);

    let patched = owner
        .patch(
            &format!("{group}/clusters/Cluster0"),
            V_CLUSTER,
            &json!({"paused": true, "labels": [{"key": "a", "value": "b"}]}),
        )
        .await;
    assert_eq!(patched.status.as_u16(), 200, "{}", patched.text);
    let patched = patched.json();
    assert_eq!(patched["paused"], true);
    assert_eq!(patched["labels"], json!([{"key": "a", "value": "b"}]));
    assert_eq!(patched["replicationSpecs"], cluster["replicationSpecs"]);
    owner
        .patch(
            &format!("{group}/clusters/Cluster0"),
            V_CLUSTER,
            &json!({"name": "Renamed"}),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    // A cluster keeps its replica sets: neither its type nor its shard count changes.
    for (name, body, field) in [
        (
            "Cluster0",
            json!({"clusterType": "SHARDED", "replicationSpecs": [{"regionConfigs": []}, {"regionConfigs": []}]}),
            "clusterType",
        ),
        (
            "Sharded",
            json!({"replicationSpecs": [{"regionConfigs": []}]}),
            "replicationSpecs",
        ),
    ] {
        let before = owner
            .get(&format!("{group}/clusters/{name}"), V_CLUSTER)
            .await
            .json();
        let refused = owner
            .patch(&format!("{group}/clusters/{name}"), V_CLUSTER, &body)
            .await
            .assert_error(400, "VALIDATION_ERROR");
        assert!(
            refused["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{refused}"
        );
        let after = owner
            .get(&format!("{group}/clusters/{name}"), V_CLUSTER)
            .await
            .json();
        for unchanged in ["clusterType", "replicationSpecs"] {
            assert_eq!(
                before[unchanged], after[unchanged],
                "a refused PATCH changes nothing"
            );
        }
    }
    // Sending the same topology again (as Terraform does on every update) is accepted.
    let same = owner
        .patch(
            &format!("{group}/clusters/Sharded"),
            V_CLUSTER,
            &json!({"clusterType": "SHARDED", "replicationSpecs": [{"regionConfigs": []}, {"regionConfigs": []}]}),
        )
        .await;
    assert_eq!(same.status.as_u16(), 200, "{}", same.text);

    // Snapshots of a sharded cluster are listed through the sharded endpoints with a member per shard.
    let sharded_backup = format!("{group}/clusters/Sharded/backup");
    let snapshot = completed_snapshot(&owner, &sharded_backup).await;
    let sharded_list = owner
        .get(
            &format!("{sharded_backup}/snapshots/shardedClusters"),
            V2023,
        )
        .await
        .json();
    assert_eq!(sharded_list["totalCount"], 1);
    let one = owner
        .get(
            &format!("{sharded_backup}/snapshots/shardedCluster/{snapshot}"),
            V2023,
        )
        .await
        .json();
    assert_eq!(one["type"], "shardedCluster");
    assert_eq!(one["members"].as_array().unwrap().len(), 2);
    let replica_set = owner
        .get(
            &format!("{group}/clusters/Cluster0/backup/snapshots/shardedClusters"),
            V2023,
        )
        .await
        .json();
    assert_eq!(replica_set["results"], json!([]));
    assert_eq!(
        owner
            .delete(
                &format!("{sharded_backup}/snapshots/shardedCluster/{snapshot}"),
                V2023
            )
            .await
            .status
            .as_u16(),
        204
    );
    owner
        .get(
            &format!("{sharded_backup}/snapshots/shardedCluster/{snapshot}"),
            V2023,
        )
        .await
        .assert_error(404, "SNAPSHOT_NOT_FOUND");

    let deleted = owner
        .delete(&format!("{group}/clusters/Sharded"), V_CLUSTER)
        .await;
    assert_eq!(deleted.status.as_u16(), 202, "{}", deleted.text);
    owner
        .get(&format!("{group}/clusters/Sharded"), V_CLUSTER)
        .await
        .assert_error(404, "CLUSTER_NOT_FOUND");
    owner
        .delete(&server.group_path(), V2023)
        .await
        .assert_error(409, "CANNOT_CLOSE_GROUP_ACTIVE_ATLAS_CLUSTERS");
}

#[tokio::test]
async fn schedules_and_snapshot_retention() {
    let server = Server::start("schedule");
    let owner = server.owner();
    let group = server.group_path();
    create_cluster(&owner, &group, "Cluster0", true).await;
    let backup = format!("{group}/clusters/Cluster0/backup");
    let schedule = owner.get(&format!("{backup}/schedule"), V2023).await.json();
    assert_eq!(schedule["restoreWindowDays"], 7);
    assert_eq!(schedule["clusterName"], "Cluster0");
    let items = schedule["policies"][0]["policyItems"].as_array().unwrap();
    let shape: Vec<_> = items
        .iter()
        .map(|item| {
            (
                item["frequencyType"].clone(),
                item["frequencyInterval"].clone(),
                item["retentionUnit"].clone(),
                item["retentionValue"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (json!("hourly"), json!(6), json!("days"), json!(7)),
            (json!("daily"), json!(1), json!("days"), json!(7)),
            (json!("weekly"), json!(6), json!("weeks"), json!(4)),
            (json!("monthly"), json!(40), json!("months"), json!(12)),
            (json!("yearly"), json!(12), json!("years"), json!(1)),
        ]
    );
    assert!(schedule["nextSnapshot"].is_string());

    let patched = owner
        .patch(
            &format!("{backup}/schedule"),
            V2023,
            &json!({"restoreWindowDays": 2, "referenceHourOfDay": 3}),
        )
        .await;
    assert_eq!(patched.status.as_u16(), 200, "{}", patched.text);
    assert_eq!(
        owner.get(&format!("{backup}/schedule"), V2023).await.json()["restoreWindowDays"],
        2
    );
    let error = owner
        .patch(
            &format!("{backup}/schedule"),
            V2023,
            &json!({"referenceMinuteOfHour": 60}),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("referenceMinuteOfHour")
    );
    owner
        .patch(
            &format!("{backup}/schedule"),
            V2023,
            &json!({"clusterId": "aaaaaaaaaaaaaaaaaaaaaaaa"}),
        )
        .await
        .assert_error(400, "ATTRIBUTE_READ_ONLY");
    let cleared = owner.delete(&format!("{backup}/schedule"), V2023).await;
    assert_eq!(cleared.status.as_u16(), 200);
    assert_eq!(cleared.json()["policies"][0]["policyItems"], json!([]));

    let snapshot = completed_snapshot(&owner, &backup).await;
    let before = owner
        .get(&format!("{backup}/snapshots/{snapshot}"), V2023)
        .await
        .json();
    assert_eq!(before["frequencyType"], "ondemand");
    assert_eq!(before["snapshotType"], "onDemand");
    assert!(before["storageSizeBytes"].as_i64().unwrap() > 0);
    let changed = owner
        .patch(
            &format!("{backup}/snapshots/{snapshot}"),
            V2023,
            &json!({"retentionUnit": "WEEKS", "retentionValue": 2}),
        )
        .await;
    assert_eq!(changed.status.as_u16(), 200, "{}", changed.text);
    assert_ne!(changed.json()["expiresAt"], before["expiresAt"]);
    owner
        .patch(
            &format!("{backup}/snapshots/{snapshot}"),
            V2023,
            &json!({"retentionUnit": "weeks", "retentionValue": 2}),
        )
        .await
        .assert_error(400, "INVALID_ENUM_VALUE");
    owner
        .patch(
            &format!("{backup}/snapshots/{snapshot}"),
            V2023,
            &json!({"retentionUnit": "DAYS"}),
        )
        .await
        .assert_error(400, "MISSING_ATTRIBUTE");
    assert_eq!(
        owner
            .delete(&format!("{backup}/snapshots/{snapshot}"), V2023)
            .await
            .status
            .as_u16(),
        204
    );
    owner
        .get(&format!("{backup}/snapshots/{snapshot}"), V2023)
        .await
        .assert_error(404, "SNAPSHOT_NOT_FOUND");
    owner
        .get(&format!("{backup}/snapshots/xyz"), V2023)
        .await
        .assert_error(404, "INVALID_SNAPSHOT_ID");
}

#[tokio::test]
async fn api_keys_are_managed_and_private_keys_shown_once() {
    let server = Server::start("keys");
    let owner = server.owner();
    let org = server.org_path();
    let created = owner
        .post(
            &format!("{org}/apiKeys"),
            V2023,
            &json!({"desc": "deploy", "roles": ["ORG_READ_ONLY"]}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 200, "{}", created.text);
    let key = created.json();
    let id = key["id"].as_str().unwrap();
    assert_eq!(key["privateKey"].as_str().unwrap().len(), 36);
    let read = owner
        .get(&format!("{org}/apiKeys/{id}"), V2023)
        .await
        .json();
    assert!(
        read["privateKey"].as_str().unwrap().starts_with("********"),
        "masked after creation: {read}"
    );
    assert_eq!(
        read["roles"],
        json!([{"orgId": server.credentials.org_id, "roleName": "ORG_READ_ONLY"}])
    );
    let listed = owner.get(&format!("{org}/apiKeys"), V2023).await.json();
    assert_eq!(listed["totalCount"], 2);
    owner
        .post(
            &format!("{org}/apiKeys"),
            V2023,
            &json!({"desc": "x", "roles": ["GROUP_OWNER"]}),
        )
        .await
        .assert_error(400, "INVALID_ENUM_VALUE");
    owner
        .post(
            &format!("{org}/apiKeys"),
            V2023,
            &json!({"roles": ["ORG_OWNER"]}),
        )
        .await
        .assert_error(400, "MISSING_ATTRIBUTE");
    let updated = owner
        .patch(
            &format!("{org}/apiKeys/{id}"),
            V2023,
            &json!({"desc": "renamed"}),
        )
        .await
        .json();
    assert_eq!(updated["desc"], "renamed");
    let group = server.group_path();
    let assigned = owner
        .post(
            &format!("{group}/apiKeys/{id}"),
            V2023,
            &json!([{"roleName": "GROUP_BACKUP_MANAGER"}]),
        )
        .await;
    assert_eq!(assigned.status.as_u16(), 200, "{}", assigned.text);
    let project_keys = owner.get(&format!("{group}/apiKeys"), V2023).await.json();
    assert_eq!(project_keys["totalCount"], 1);
    let roles = owner
        .patch(
            &format!("{group}/apiKeys/{id}"),
            V2023,
            &json!({"roles": ["GROUP_READ_ONLY"]}),
        )
        .await
        .json();
    assert!(
        roles["roles"].as_array().unwrap().contains(
            &json!({"groupId": server.credentials.group_id, "roleName": "GROUP_READ_ONLY"})
        )
    );
    assert_eq!(
        owner
            .delete(&format!("{org}/apiKeys/{id}"), V2023)
            .await
            .status
            .as_u16(),
        204
    );
    owner
        .get(&format!("{org}/apiKeys/{id}"), V2023)
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND");

    let project = owner
        .post("/api/atlas/v2/groups", V2023, &json!({"name": "Second"}))
        .await;
    assert_eq!(project.status.as_u16(), 200, "{}", project.text);
    owner
        .post("/api/atlas/v2/groups", V2023, &json!({"name": "Second"}))
        .await
        .assert_error(409, "GROUP_ALREADY_EXISTS");
    let second_id = project.json()["id"].as_str().unwrap().to_owned();
    create_cluster(
        &owner,
        &format!("/api/atlas/v2/groups/{second_id}"),
        "Only",
        false,
    )
    .await;
    assert_eq!(
        owner
            .delete(
                &format!("/api/atlas/v2/groups/{second_id}/clusters/Only"),
                V_CLUSTER
            )
            .await
            .status
            .as_u16(),
        202
    );
    assert_eq!(
        owner
            .delete(&format!("/api/atlas/v2/groups/{second_id}"), V2023)
            .await
            .status
            .as_u16(),
        204
    );
    owner
        .get(&format!("/api/atlas/v2/groups/{second_id}"), V2023)
        .await
        .assert_error(404, "GROUP_NOT_FOUND");
}

#[tokio::test]
async fn a_snapshot_whose_worker_died_is_taken_again() {
    // An API-only replica queues the snapshot; then it is marked taken by a worker that died
    // (its lease lapsed), as if that process was killed mid-snapshot.
    let data_dir = crate::support::fresh_data_dir("lease");
    let api_only = Server::start_in(&data_dir, 0);
    let owner = api_only.owner();
    let group = api_only.group_path();
    create_cluster(&owner, &group, "Cluster0", false).await;
    let backup = format!("{group}/clusters/Cluster0/backup");
    let queued = owner
        .post(&format!("{backup}/snapshots"), V2023, &json!({}))
        .await
        .json();
    let id = queued["id"].as_str().unwrap().to_owned();
    let database = rusqlite::Connection::open(data_dir.join("metadata.sqlite")).unwrap();
    database
        .busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let changed = database
        .execute(
            "UPDATE snapshots SET status = 'inProgress', lease_owner = 'dead-replica/0', lease_expires_at = 1, attempts = 1 WHERE id = ?1",
            [&id],
        )
        .unwrap();
    assert_eq!(changed, 1);
    assert_eq!(
        owner
            .get(&format!("{backup}/snapshots/{id}"), V2023)
            .await
            .json()["status"],
        "inProgress"
    );
    drop(api_only);

    let worker = Server::start_in(&data_dir, 1);
    let path = format!("{backup}/snapshots/{id}");
    for _ in 0..200 {
        let snapshot = worker.owner().get(&path, V2023).await.json();
        if snapshot["status"] == "completed" {
            let attempts: i64 = database
                .query_row(
                    "SELECT attempts FROM snapshots WHERE id = ?1",
                    [&id],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(
                attempts, 2,
                "taken once by the dead worker, once by the live one"
            );
            assert!(
                worker
                    .log()
                    .contains("reclaimed snapshots whose worker stopped before finishing"),
                "{}",
                worker.log()
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the snapshot of a dead worker was never taken again");
}

#[test]
fn an_unreachable_blob_store_stops_a_first_start_before_credentials_are_minted() {
    let data_dir = crate::support::fresh_data_dir("bad-blobs");
    // Nothing listens on port 9 of loopback: the S3 store's startup probe fails.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .args(["--blob-store", "s3://no-such-bucket/prefix"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret-never-printed")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_TIMEOUT", "2s")
        .env("AWS_RETRY_MAX_RETRIES", "0")
        .output()
        .expect("run rewind serve");
    assert!(!output.status.success(), "serve must fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stderr.contains("blob store"), "{stderr}");
    assert!(
        !data_dir.join("bootstrap-credentials.json").exists(),
        "no credentials minted for a service that did not start"
    );
    assert!(
        !stdout.contains("private") && !stderr.contains("test-secret-never-printed"),
        "{stdout}\n{stderr}"
    );
}
