//! The seed endpoint end to end, listing, and cancellation.

use serde_json::json;

use crate::support::{Server, V2023, completed_snapshot, create_cluster, restore_job_count};

#[tokio::test]
async fn seed_endpoint_creates_a_job_that_reads_back_by_id() {
    let server = Server::start("seed");
    let owner = server.owner();
    let group = server.group_path();
    create_cluster(&owner, &group, "Cluster0", true).await;
    create_cluster(&owner, &group, "Target", false).await;
    let backup = format!("{group}/clusters/Cluster0/backup");
    let snapshot = completed_snapshot(&owner, &backup).await;
    // The API alone from here (no worker runs the jobs), so each job reads back as created.
    let data_dir = server.data_dir.clone();
    assert!(server.terminate().success());
    let server = Server::start_in(&data_dir, 0);
    let owner = server.owner();

    let body = json!({
        "deliveryType": "automated",
        "snapshotId": snapshot,
        "targetClusterName": "Target",
        "targetGroupId": server.credentials.group_id,
    });
    let created = owner
        .post(&format!("{backup}/restoreJobs"), V2023, &body)
        .await;
    assert_eq!(created.status.as_u16(), 200, "{}", created.text);
    assert_eq!(
        created.header("content-type"),
        "application/vnd.atlas.2023-01-01+json;charset=utf-8"
    );
    let job = created.json();
    let id = job["id"].as_str().unwrap();
    assert_eq!(job["deliveryType"], "automated");
    assert_eq!(
        (
            job["cancelled"].clone(),
            job["failed"].clone(),
            job["expired"].clone()
        ),
        (json!(false), json!(false), json!(false))
    );
    assert_eq!(job["deliveryUrl"], json!([]));
    assert_eq!(job["snapshotId"], snapshot);
    assert_eq!(job["targetClusterName"], "Target");
    assert_eq!(job["targetGroupId"], server.credentials.group_id);
    assert!(job["timestamp"].is_string(), "snapshot capture time: {job}");
    assert!(
        job.get("finishedAt").is_none(),
        "no worker ran it, so nothing may claim the restore finished"
    );
    let rels: Vec<_> = job["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|link| link["rel"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        rels,
        [
            "self",
            "https://cloud.mongodb.com/snapshot",
            "https://cloud.mongodb.com/cluster",
            "https://cloud.mongodb.com/group"
        ]
    );
    assert_eq!(
        job["links"][0]["href"],
        format!("{}{backup}/restoreJobs/{id}", server.base)
    );

    let read = owner
        .get(&format!("{backup}/restoreJobs/{id}"), V2023)
        .await;
    assert_eq!(read.status.as_u16(), 200);
    assert_eq!(read.json(), job, "GET returns the job as created");

    // Newest first. The point in time must follow the snapshot's capture second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let pit = json!({
        "deliveryType": "pointInTime",
        "targetClusterName": "Cluster0",
        "targetGroupId": server.credentials.group_id,
        "pointInTimeUTCSeconds": time_now() - 1,
    });
    let second = owner
        .post(&format!("{backup}/restoreJobs"), V2023, &pit)
        .await;
    assert_eq!(second.status.as_u16(), 200, "{}", second.text);
    let second = second.json();
    assert_eq!(
        second["pointInTimeUTCSeconds"],
        pit["pointInTimeUTCSeconds"]
    );
    assert_eq!(
        second["snapshotId"], snapshot,
        "the base snapshot chosen for the point in time"
    );
    assert!(second["desiredTimestamp"]["date"].is_string());
    let list = owner
        .get(&format!("{backup}/restoreJobs"), V2023)
        .await
        .json();
    let ids: Vec<_> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].clone())
        .collect();
    assert_eq!(ids, [second["id"].clone(), json!(id)]);
    assert_eq!(list["totalCount"], 2);

    // The job survives a restart.
    let data_dir = server.data_dir.clone();
    assert!(server.terminate().success(), "graceful exit on SIGTERM");
    let restarted = Server::start_in(&data_dir, 0);
    let mut after = restarted
        .owner()
        .get(&format!("{backup}/restoreJobs/{id}"), V2023)
        .await
        .json();
    let mut before = job.clone();
    // Links are absolute and the port changed with the restart.
    after.as_object_mut().unwrap().remove("links");
    before.as_object_mut().unwrap().remove("links");
    assert_eq!(after, before, "the job reads back the same after a restart");
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn only_download_jobs_can_be_cancelled_and_only_once() {
    let server = Server::start("cancel");
    let owner = server.owner();
    let group = server.group_path();
    create_cluster(&owner, &group, "Cluster0", false).await;
    let backup = format!("{group}/clusters/Cluster0/backup");
    let snapshot = completed_snapshot(&owner, &backup).await;

    let download = owner
        .post(
            &format!("{backup}/restoreJobs"),
            V2023,
            &json!({"deliveryType": "download", "snapshotId": snapshot}),
        )
        .await;
    assert_eq!(download.status.as_u16(), 200, "{}", download.text);
    let download = download.json();
    assert_eq!(download["components"], json!([]));
    assert!(download.get("targetClusterName").is_none());
    let id = download["id"].as_str().unwrap();

    let cancelled = owner
        .delete(&format!("{backup}/restoreJobs/{id}"), V2023)
        .await;
    assert_eq!(cancelled.status.as_u16(), 204, "{}", cancelled.text);
    assert!(cancelled.text.is_empty());
    assert_eq!(
        cancelled.header("content-type"),
        "application/vnd.atlas.2023-01-01+json;charset=utf-8"
    );
    let read = owner
        .get(&format!("{backup}/restoreJobs/{id}"), V2023)
        .await
        .json();
    assert_eq!(read["cancelled"], true);
    owner
        .delete(&format!("{backup}/restoreJobs/{id}"), V2023)
        .await
        .assert_error(400, "CANNOT_CANCEL_FINISHED_RESTORE_JOB");

    // The slot is free again: a new download of the same snapshot is accepted.
    let again = owner
        .post(
            &format!("{backup}/restoreJobs"),
            V2023,
            &json!({"deliveryType": "download", "snapshotId": snapshot}),
        )
        .await;
    assert_eq!(again.status.as_u16(), 200, "{}", again.text);

    let automated = owner
        .post(
            &format!("{backup}/restoreJobs"),
            V2023,
            &json!({"deliveryType": "automated", "snapshotId": snapshot, "targetClusterName": "Cluster0", "targetGroupId": server.credentials.group_id}),
        )
        .await
        .json();
    let automated_id = automated["id"].as_str().unwrap();
    owner
        .delete(&format!("{backup}/restoreJobs/{automated_id}"), V2023)
        .await
        .assert_error(400, "CANNOT_CANCEL_AUTOMATED_RESTORE");
    owner
        .delete(
            &format!("{backup}/restoreJobs/aaaaaaaaaaaaaaaaaaaaaaaa"),
            V2023,
        )
        .await
        .assert_error(404, "RESTORE_JOB_NOT_FOUND");
    owner
        .delete(&format!("{backup}/restoreJobs/nothex"), V2023)
        .await
        .assert_error(404, "INVALID_JOB_ID");
    assert_eq!(restore_job_count(&owner, &backup).await, 3);
}
