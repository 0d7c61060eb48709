//! One case per validation rule of `POST .../restoreJobs`: status, `errorCode`, the field
//! named in `detail`, and nothing written.

use serde_json::{Value, json};

use crate::support::{Client, Server, V_CLUSTER, V2023, completed_snapshot, create_cluster};

/// What a rejected request must look like.
struct Case {
    name: &'static str,
    path: String,
    body: String,
    status: u16,
    code: &'static str,
    /// Text `detail` must contain (the field, or the value it is about).
    names: String,
}

async fn count_all_jobs(owner: &Client, backups: &[String]) -> u64 {
    let mut total = 0;
    for backup in backups {
        total += crate::support::restore_job_count(owner, backup).await;
    }
    total
}

async fn check(owner: &Client, backups: &[String], cases: Vec<Case>) {
    let before = count_all_jobs(owner, backups).await;
    for case in cases {
        let reply = owner
            .send(reqwest::Method::POST, &case.path, V2023, Some(&case.body))
            .await;
        assert_eq!(
            reply.status.as_u16(),
            case.status,
            "{}: {}",
            case.name,
            reply.text
        );
        let body = reply.assert_error(case.status, case.code);
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains(&case.names),
            "{}: detail {detail:?} must name {:?}",
            case.name,
            case.names
        );
        assert_eq!(
            count_all_jobs(owner, backups).await,
            before,
            "{}: a rejected request wrote a job",
            case.name
        );
    }
}

fn case(
    name: &'static str,
    path: &str,
    body: Value,
    status: u16,
    code: &'static str,
    names: &str,
) -> Case {
    Case {
        name,
        path: path.to_owned(),
        body: body.to_string(),
        status,
        code,
        names: names.to_owned(),
    }
}

#[tokio::test]
async fn every_rule_is_enforced_and_writes_nothing() {
    let server = Server::start("validation");
    let owner = server.owner();
    let group_id = server.credentials.group_id.clone();
    let group = server.group_path();
    create_cluster(&owner, &group, "Source", true).await;
    create_cluster(&owner, &group, "Target", false).await;
    create_cluster(&owner, &group, "NoPit", false).await;
    let no_backup = owner
        .post(
            &format!("{group}/clusters"),
            V_CLUSTER,
            &json!({"name": "NoBackup", "backupEnabled": false}),
        )
        .await;
    assert_eq!(no_backup.status.as_u16(), 201, "{}", no_backup.text);
    let source = format!("{group}/clusters/Source/backup");
    let target = format!("{group}/clusters/Target/backup");
    let no_pit = format!("{group}/clusters/NoPit/backup");
    let snapshot = completed_snapshot(&owner, &source).await;
    let no_pit_snapshot = completed_snapshot(&owner, &no_pit).await;
    let jobs = format!("{source}/restoreJobs");
    let backups = vec![source.clone(), target.clone(), no_pit.clone()];

    let automated = |extra: Value| {
        let mut body = json!({"deliveryType": "automated", "snapshotId": snapshot, "targetClusterName": "Target", "targetGroupId": group_id});
        for (key, value) in extra.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        body
    };
    let pit = |extra: Value| {
        let mut body = json!({"deliveryType": "pointInTime", "targetClusterName": "Target", "targetGroupId": group_id});
        for (key, value) in extra.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        body
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let other_group = "aaaaaaaaaaaaaaaaaaaaaaaa";

    let mut cases = vec![
        Case {
            name: "malformed JSON",
            path: jobs.clone(),
            body: "{\"deliveryType\": ".into(),
            status: 400,
            code: "MALFORMED_JSON",
            names: "malformed".into(),
        },
        Case {
            name: "not an object",
            path: jobs.clone(),
            body: "[]".into(),
            status: 400,
            code: "MALFORMED_JSON",
            names: "object".into(),
        },
        Case {
            name: "empty body",
            path: jobs.clone(),
            body: String::new(),
            status: 400,
            code: "MALFORMED_JSON",
            names: "empty".into(),
        },
        case(
            "unknown field",
            &jobs,
            automated(json!({"restoreEverything": true})),
            400,
            "INVALID_ATTRIBUTE",
            "restoreEverything",
        ),
        case(
            "read-only id",
            &jobs,
            automated(json!({"id": "32b6e34b3d91647abb20e7b8"})),
            400,
            "ATTRIBUTE_READ_ONLY",
            "id",
        ),
        case(
            "read-only finishedAt",
            &jobs,
            automated(json!({"finishedAt": "2025-05-04T09:42:00Z"})),
            400,
            "ATTRIBUTE_READ_ONLY",
            "finishedAt",
        ),
        case(
            "deliveryType missing",
            &jobs,
            automated(json!({"deliveryType": null})),
            400,
            "MISSING_ATTRIBUTE",
            "deliveryType",
        ),
        case(
            "deliveryType empty (Terraform without config)",
            &jobs,
            json!({"deliveryType": ""}),
            400,
            "INVALID_ENUM_VALUE",
            "deliveryType",
        ),
        case(
            "deliveryType unknown",
            &jobs,
            automated(json!({"deliveryType": "restore"})),
            400,
            "INVALID_ENUM_VALUE",
            "deliveryType",
        ),
        case(
            "deliveryType wrong type",
            &jobs,
            automated(json!({"deliveryType": 3})),
            400,
            "INVALID_JSON_ATTRIBUTE",
            "deliveryType",
        ),
        case(
            "snapshotId pattern",
            &jobs,
            automated(json!({"snapshotId": "32B6E34B3D91647ABB20E7B8"})),
            400,
            "VALIDATION_ERROR",
            "snapshotId",
        ),
        case(
            "snapshotId length",
            &jobs,
            automated(json!({"snapshotId": "32b6e34b"})),
            400,
            "VALIDATION_ERROR",
            "snapshotId",
        ),
        case(
            "snapshotId wrong type",
            &jobs,
            automated(json!({"snapshotId": 7})),
            400,
            "INVALID_JSON_ATTRIBUTE",
            "snapshotId",
        ),
        case(
            "targetClusterName pattern",
            &jobs,
            automated(json!({"targetClusterName": "-bad"})),
            400,
            "VALIDATION_ERROR",
            "targetClusterName",
        ),
        case(
            "targetClusterName length",
            &jobs,
            automated(json!({"targetClusterName": "a".repeat(65)})),
            400,
            "VALIDATION_ERROR",
            "targetClusterName",
        ),
        case(
            "targetGroupId pattern",
            &jobs,
            automated(json!({"targetGroupId": "not-an-id"})),
            400,
            "VALIDATION_ERROR",
            "targetGroupId",
        ),
        case(
            "the seed's own example",
            &jobs,
            json!({"deliveryType": "automated", "oplogInc": 1, "oplogTs": 42, "pointInTimeUTCSeconds": 42, "snapshotId": "32b6e34b3d91647abb20e7b8", "targetClusterName": "string", "targetGroupId": "32b6e34b3d91647abb20e7b8"}),
            400,
            "VALIDATION_ERROR",
            "oplogTs",
        ),
        case(
            "pointInTimeUTCSeconds minimum",
            &jobs,
            pit(json!({"pointInTimeUTCSeconds": 1_199_145_599})),
            400,
            "VALIDATION_ERROR",
            "pointInTimeUTCSeconds",
        ),
        case(
            "oplogInc minimum",
            &jobs,
            pit(json!({"oplogTs": now, "oplogInc": 0})),
            400,
            "VALIDATION_ERROR",
            "oplogInc",
        ),
        case(
            "oplogTs beyond int32",
            &jobs,
            pit(json!({"oplogTs": 3_000_000_000_i64, "oplogInc": 1})),
            400,
            "VALIDATION_ERROR",
            "oplogTs",
        ),
        case(
            "oplogTs wrong type",
            &jobs,
            pit(json!({"oplogTs": "1700000000", "oplogInc": 1})),
            400,
            "INVALID_JSON_ATTRIBUTE",
            "oplogTs",
        ),
        case(
            "automated without targetClusterName",
            &jobs,
            automated(json!({"targetClusterName": null})),
            400,
            "MISSING_ATTRIBUTE",
            "targetClusterName",
        ),
        case(
            "automated without targetGroupId",
            &jobs,
            automated(json!({"targetGroupId": null})),
            400,
            "MISSING_ATTRIBUTE",
            "targetGroupId",
        ),
        case(
            "pointInTime without targetClusterName",
            &jobs,
            pit(json!({"targetClusterName": null, "pointInTimeUTCSeconds": now})),
            400,
            "MISSING_ATTRIBUTE",
            "targetClusterName",
        ),
        case(
            "pointInTime without targetGroupId",
            &jobs,
            pit(json!({"targetGroupId": null, "pointInTimeUTCSeconds": now})),
            400,
            "MISSING_ATTRIBUTE",
            "targetGroupId",
        ),
        case(
            "automated without snapshotId",
            &jobs,
            automated(json!({"snapshotId": null})),
            404,
            "SNAPSHOT_NOT_FOUND",
            "snapshotId",
        ),
        case(
            "download without snapshotId",
            &jobs,
            json!({"deliveryType": "download"}),
            404,
            "SNAPSHOT_NOT_FOUND",
            "snapshotId",
        ),
        case(
            "download of an unknown snapshot",
            &jobs,
            json!({"deliveryType": "download", "snapshotId": "32b6e34b3d91647abb20e7b8"}),
            404,
            "SNAPSHOT_NOT_FOUND",
            "32b6e34b3d91647abb20e7b8",
        ),
        case(
            "automated from another cluster's snapshot",
            &jobs,
            automated(json!({"snapshotId": no_pit_snapshot})),
            404,
            "SNAPSHOT_NOT_FOUND",
            &no_pit_snapshot,
        ),
        case(
            "pointInTime without a time",
            &jobs,
            pit(json!({})),
            400,
            "INVALID_PIT_RESTORE_TIME",
            "pointInTimeUTCSeconds",
        ),
        case(
            "pointInTime with both forms",
            &jobs,
            pit(json!({"pointInTimeUTCSeconds": now, "oplogTs": now, "oplogInc": 1})),
            400,
            "INVALID_PIT_RESTORE_TIME",
            "pointInTimeUTCSeconds",
        ),
        case(
            "oplogTs without oplogInc",
            &jobs,
            pit(json!({"oplogTs": now})),
            400,
            "INVALID_PIT_RESTORE_TIME",
            "oplogInc",
        ),
        case(
            "oplogInc without oplogTs",
            &jobs,
            pit(json!({"oplogInc": 4})),
            400,
            "INVALID_PIT_RESTORE_TIME",
            "oplogTs",
        ),
        case(
            "pointInTime outside the restore window",
            &jobs,
            pit(json!({"pointInTimeUTCSeconds": now - 8 * 86_400})),
            400,
            "INVALID_PIT_RESTORE_TIME",
            "pointInTimeUTCSeconds",
        ),
        case(
            "pointInTime in the future",
            &jobs,
            pit(json!({"pointInTimeUTCSeconds": now + 3600})),
            400,
            "INVALID_PIT_RESTORE_TIME",
            "pointInTimeUTCSeconds",
        ),
        case(
            "pointInTime before the first snapshot",
            &jobs,
            pit(json!({"pointInTimeUTCSeconds": now - 3600})),
            404,
            "UNABLE_T0_FIND_SNAPSHOT_PRIOR_TO_PIT_RESTORE_OPTIME",
            &(now - 3600).to_string(),
        ),
        case(
            "pointInTime without pitEnabled",
            &format!("{no_pit}/restoreJobs"),
            pit(json!({"pointInTimeUTCSeconds": now})),
            400,
            "PIT_RESTORE_NOT_ENABLED",
            "pitEnabled",
        ),
        case(
            "malformed groupId",
            "/api/atlas/v2/groups/xyz/clusters/Source/backup/restoreJobs",
            automated(json!({})),
            404,
            "INVALID_GROUP_ID",
            "groupId",
        ),
        case(
            "unknown groupId",
            &format!("/api/atlas/v2/groups/{other_group}/clusters/Source/backup/restoreJobs"),
            automated(json!({})),
            404,
            "GROUP_NOT_FOUND",
            other_group,
        ),
        case(
            "unknown cluster",
            &format!("{group}/clusters/Nope/backup/restoreJobs"),
            automated(json!({})),
            404,
            "CLUSTER_NOT_FOUND",
            "Nope",
        ),
        case(
            "malformed cluster name",
            &format!("{group}/clusters/bad_name/backup/restoreJobs"),
            automated(json!({})),
            404,
            "CLUSTER_NOT_FOUND",
            "bad_name",
        ),
        case(
            "unknown target group",
            &jobs,
            automated(json!({"targetGroupId": other_group})),
            404,
            "GROUP_NOT_FOUND",
            other_group,
        ),
        case(
            "unknown target cluster",
            &jobs,
            automated(json!({"targetClusterName": "Missing"})),
            404,
            "CLUSTER_NOT_FOUND",
            "Missing",
        ),
        case(
            "source without backup",
            &format!("{group}/clusters/NoBackup/backup/restoreJobs"),
            automated(json!({})),
            400,
            "BACKUP_JOB_NOT_FOUND",
            "Backups are not enabled",
        ),
    ];
    check(&owner, &backups, std::mem::take(&mut cases)).await;

    // A deleted snapshot: 409.
    let deleted = completed_snapshot(&owner, &source).await;
    assert_eq!(
        owner
            .delete(&format!("{source}/snapshots/{deleted}"), V2023)
            .await
            .status
            .as_u16(),
        204
    );
    check(
        &owner,
        &backups,
        vec![case(
            "deleted snapshot",
            &jobs,
            automated(json!({"snapshotId": deleted})),
            409,
            "CANNOT_START_RESTORE_JOB_FOR_DELETED_SNAPSHOT",
            &deleted,
        )],
    )
    .await;

    // A paused target.
    let paused = owner
        .patch(
            &format!("{group}/clusters/Target"),
            V_CLUSTER,
            &json!({"paused": true}),
        )
        .await;
    assert_eq!(paused.status.as_u16(), 200, "{}", paused.text);
    check(
        &owner,
        &backups,
        vec![case(
            "paused target",
            &jobs,
            automated(json!({})),
            400,
            "CLUSTER_PAUSED_CANNOT_RESTORE",
            "Target",
        )],
    )
    .await;
    owner
        .patch(
            &format!("{group}/clusters/Target"),
            V_CLUSTER,
            &json!({"paused": false}),
        )
        .await;

    // A target already being restored.
    let first = owner.post(&jobs, V2023, &automated(json!({}))).await;
    assert_eq!(first.status.as_u16(), 200, "{}", first.text);
    check(
        &owner,
        &backups,
        vec![
            case(
                "target already restoring",
                &jobs,
                automated(json!({})),
                400,
                "CLUSTER_RESTORE_IN_PROGRESS_CANNOT_UPDATE",
                "Target",
            ),
            case(
                "PIT into a target already restoring",
                &jobs,
                pit(json!({"pointInTimeUTCSeconds": now})),
                400,
                "CLUSTER_RESTORE_IN_PROGRESS_CANNOT_UPDATE",
                "Target",
            ),
        ],
    )
    .await;

    // One active download per snapshot.
    let download = owner
        .post(
            &jobs,
            V2023,
            &json!({"deliveryType": "download", "snapshotId": snapshot}),
        )
        .await;
    assert_eq!(download.status.as_u16(), 200, "{}", download.text);
    check(
        &owner,
        &backups,
        vec![case(
            "second download of a snapshot",
            &jobs,
            json!({"deliveryType": "download", "snapshotId": snapshot}),
            400,
            "CANNOT_DOWNLOAD_SNAPSHOT_CONCURRENTLY",
            &snapshot,
        )],
    )
    .await;

    // At most 20 active downloads per project: 19 more snapshots, one download each.
    for _ in 0..19 {
        let another = completed_snapshot(&owner, &no_pit).await;
        let reply = owner
            .post(
                &format!("{no_pit}/restoreJobs"),
                V2023,
                &json!({"deliveryType": "download", "snapshotId": another}),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    }
    let one_more = completed_snapshot(&owner, &no_pit).await;
    check(
        &owner,
        &backups,
        vec![case(
            "21st download in the project",
            &format!("{no_pit}/restoreJobs"),
            json!({"deliveryType": "download", "snapshotId": one_more}),
            400,
            "TOO_MANY_SNAPSHOT_DOWNLOADS",
            &group_id,
        )],
    )
    .await;
}

#[tokio::test]
async fn unfinished_snapshots_block_restores_and_new_on_demand_snapshots() {
    // A replica without workers serves the API only, so a snapshot it queues stays queued.
    let data_dir = crate::support::fresh_data_dir("unfinished");
    let server = Server::start_in(&data_dir, 0);
    let owner = server.owner();
    let group = server.group_path();
    create_cluster(&owner, &group, "Source", false).await;
    let source = format!("{group}/clusters/Source/backup");
    let queued = owner
        .post(&format!("{source}/snapshots"), V2023, &json!({}))
        .await;
    assert_eq!(queued.status.as_u16(), 200, "{}", queued.text);
    let queued = queued.json();
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["storageSizeBytes"], 0);
    assert!(queued.get("createdAt").is_none());
    let id = queued["id"].as_str().unwrap().to_owned();
    let jobs = format!("{source}/restoreJobs");
    let group_id = server.credentials.group_id.clone();
    check(&owner, std::slice::from_ref(&source), vec![
        case("automated from an incomplete snapshot", &jobs, json!({"deliveryType": "automated", "snapshotId": id, "targetClusterName": "Source", "targetGroupId": group_id}), 409, "CANNOT_START_RESTORE_JOB_FOR_INCOMPLETE_CLUSTER_SNAPSHOT", &id),
        case("download of an incomplete snapshot", &jobs, json!({"deliveryType": "download", "snapshotId": id}), 409, "CANNOT_DOWNLOAD_INCOMPLETE_SNAPSHOT", &id),
    ])
    .await;
    let second = owner
        .post(
            &format!("{source}/snapshots"),
            V2023,
            &json!({"description": "again"}),
        )
        .await;
    second.assert_error(400, "UNFINISHED_ON_DEMAND_SNAPSHOT");
    owner
        .delete(&format!("{source}/snapshots/{id}"), V2023)
        .await
        .assert_error(400, "CANNOT_DELETE_IN_PROGRESS_SNAPSHOT");
    let listed = owner
        .get(&format!("{source}/snapshots"), V2023)
        .await
        .json();
    assert_eq!(
        listed["totalCount"], 1,
        "the refused snapshot request wrote nothing"
    );
    drop(server);

    // A replica with a worker picks the queued snapshot up.
    let worker = Server::start_in(&data_dir, 1);
    completed_after(&worker.owner(), &format!("{source}/snapshots/{id}")).await;
}

async fn completed_after(client: &Client, path: &str) {
    for _ in 0..200 {
        if client.get(path, V2023).await.json()["status"] == "completed" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} never completed");
}
