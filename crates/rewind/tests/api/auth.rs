//! Digest, bearer tokens and roles.

use base64::Engine;
use reqwest::Method;
use serde_json::json;

use crate::support::{
    Client, Server, V_SERVICE_ACCOUNT, V2023, completed_snapshot, create_cluster, restore_job_count,
};

#[tokio::test]
async fn digest_challenge_comes_before_any_side_effect_and_counts_cannot_be_replayed() {
    let server = Server::start("digest");
    let owner = server.owner();
    let group = server.group_path();
    create_cluster(&owner, &group, "Cluster0", false).await;
    let backup = format!("{group}/clusters/Cluster0/backup");
    let snapshot = completed_snapshot(&owner, &backup).await;
    let jobs = format!("{backup}/restoreJobs");
    let body = json!({"deliveryType": "download", "snapshotId": snapshot}).to_string();

    // The Go SDK's first request carries the whole body and no credentials.
    let anonymous = Client::anonymous(&server.base);
    let first = anonymous
        .send(Method::POST, &jobs, V2023, Some(&body))
        .await;
    let error = first.assert_error(401, "UNEXPECTED_ERROR");
    assert_eq!(error["detail"], "You are not authorized for this resource.");
    let challenges: Vec<_> = first
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(challenges.len(), 2);
    assert!(
        challenges[0].starts_with("Digest realm=\"MMS Public API\", domain=\"\", nonce=\""),
        "{}",
        challenges[0]
    );
    assert!(challenges[0].contains("algorithm=MD5") && challenges[1].contains("algorithm=SHA-256"));
    assert_eq!(
        restore_job_count(&owner, &backup).await,
        0,
        "the unauthenticated request wrote nothing"
    );

    // Answer the challenge by hand, then replay the same nonce count.
    let mut prompt = digest_auth::parse(&challenges[0]).unwrap();
    let context = digest_auth::AuthContext::new_with_method(
        server.credentials.public_key.as_str(),
        server.credentials.private_key.as_str(),
        jobs.as_str(),
        Some(body.as_bytes()),
        digest_auth::HttpMethod::from("POST"),
    );
    let authorization = prompt.respond(&context).unwrap().to_header_string();
    let accepted = anonymous
        .raw(
            Method::POST,
            &jobs,
            V2023,
            Some(&body),
            Some(authorization.clone()),
        )
        .await;
    assert_eq!(accepted.status.as_u16(), 200, "{}", accepted.text);
    let replayed = anonymous
        .raw(Method::POST, &jobs, V2023, Some(&body), Some(authorization))
        .await;
    replayed.assert_error(401, "UNEXPECTED_ERROR");
    assert_eq!(
        restore_job_count(&owner, &backup).await,
        1,
        "the replay wrote nothing"
    );

    // A wrong private key and an unknown public key get the same challenge.
    let wrong = Client::digest(
        &server.base,
        &server.credentials.public_key,
        "00000000-0000-0000-0000-000000000000",
    );
    wrong
        .get(&jobs, V2023)
        .await
        .assert_error(401, "UNEXPECTED_ERROR");
    let unknown = Client::digest(&server.base, "nosuchkey", &server.credentials.private_key);
    unknown
        .get(&jobs, V2023)
        .await
        .assert_error(401, "UNEXPECTED_ERROR");
    // A response computed for another path is refused.
    let mut prompt = digest_auth::parse(&challenges[0]).unwrap();
    let other_path = digest_auth::AuthContext::new_with_method(
        server.credentials.public_key.as_str(),
        server.credentials.private_key.as_str(),
        "/api/atlas/v2/groups",
        None::<&[u8]>,
        digest_auth::HttpMethod::from("GET"),
    );
    let authorization = prompt.respond(&other_path).unwrap().to_header_string();
    anonymous
        .raw(Method::GET, &jobs, V2023, None, Some(authorization))
        .await
        .assert_error(401, "UNEXPECTED_ERROR");
}

#[tokio::test]
async fn roles_decide_who_may_restore_where() {
    let server = Server::start("roles");
    let owner = server.owner();
    let org = server.org_path();
    let group = server.group_path();
    create_cluster(&owner, &group, "Cluster0", false).await;
    let backup = format!("{group}/clusters/Cluster0/backup");
    let snapshot = completed_snapshot(&owner, &backup).await;

    let other = owner
        .post(
            "/api/atlas/v2/groups",
            V2023,
            &json!({"name": "Other", "orgId": server.credentials.org_id}),
        )
        .await;
    assert_eq!(other.status.as_u16(), 200, "{}", other.text);
    let other_id = other.json()["id"].as_str().unwrap().to_owned();
    create_cluster(
        &owner,
        &format!("/api/atlas/v2/groups/{other_id}"),
        "Elsewhere",
        false,
    )
    .await;

    let key = |roles: serde_json::Value| {
        let owner = owner.clone();
        let org = org.clone();
        async move {
            let reply = owner
                .post(
                    &format!("{org}/apiKeys"),
                    V2023,
                    &json!({"desc": "test key", "roles": roles}),
                )
                .await;
            assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
            reply.json()
        }
    };
    let reader = key(json!(["ORG_MEMBER"])).await;
    let project_owner = key(json!(["ORG_MEMBER"])).await;
    for (api_key, role) in [
        (&reader, "GROUP_READ_ONLY"),
        (&project_owner, "GROUP_OWNER"),
    ] {
        let id = api_key["id"].as_str().unwrap();
        let assigned = owner
            .post(
                &format!("{group}/apiKeys/{id}"),
                V2023,
                &json!([{"roleName": role}]),
            )
            .await;
        assert_eq!(assigned.status.as_u16(), 200, "{}", assigned.text);
    }
    let client_of = |api_key: &serde_json::Value| {
        Client::digest(
            &server.base,
            api_key["publicKey"].as_str().unwrap(),
            api_key["privateKey"].as_str().unwrap(),
        )
    };
    let reader_client = client_of(&reader);
    let owner_client = client_of(&project_owner);
    let jobs = format!("{backup}/restoreJobs");
    let same_project = json!({"deliveryType": "automated", "snapshotId": snapshot, "targetClusterName": "Cluster0", "targetGroupId": server.credentials.group_id});
    let cross_project = json!({"deliveryType": "automated", "snapshotId": snapshot, "targetClusterName": "Elsewhere", "targetGroupId": other_id});

    assert_eq!(
        reader_client.get(&jobs, V2023).await.status.as_u16(),
        200,
        "any project role reads"
    );
    reader_client
        .post(&jobs, V2023, &same_project)
        .await
        .assert_error(401, "USER_UNAUTHORIZED");
    owner_client
        .post(&jobs, V2023, &cross_project)
        .await
        .assert_error(403, "CANNOT_RESTORE_TO_TARGET");
    reader_client
        .get(&format!("/api/atlas/v2/groups/{other_id}"), V2023)
        .await
        .assert_error(401, "USER_UNAUTHORIZED");
    assert_eq!(restore_job_count(&owner, &backup).await, 0);

    let accepted = owner_client.post(&jobs, V2023, &same_project).await;
    assert_eq!(
        accepted.status.as_u16(),
        200,
        "Project Owner restores within its project: {}",
        accepted.text
    );
    let cross = owner.post(&jobs, V2023, &cross_project).await;
    assert_eq!(
        cross.status.as_u16(),
        200,
        "Organization Owner restores across projects: {}",
        cross.text
    );

    // Removing the key from the project takes its access away at once.
    let id = project_owner["id"].as_str().unwrap();
    assert_eq!(
        owner
            .delete(&format!("{group}/apiKeys/{id}"), V2023)
            .await
            .status
            .as_u16(),
        204
    );
    owner_client
        .get(&jobs, V2023)
        .await
        .assert_error(401, "USER_UNAUTHORIZED");
    // Deleting the key makes it unknown.
    assert_eq!(
        owner
            .delete(&format!("{org}/apiKeys/{id}"), V2023)
            .await
            .status
            .as_u16(),
        204
    );
    owner_client
        .get(&jobs, V2023)
        .await
        .assert_error(401, "UNEXPECTED_ERROR");
}

#[tokio::test]
async fn service_account_tokens_work_until_revoked() {
    let server = Server::start("oauth");
    let owner = server.owner();
    let org = server.org_path();
    let created = owner
        .post(&format!("{org}/serviceAccounts"), V_SERVICE_ACCOUNT, &json!({"name": "ci", "description": "CI", "roles": ["ORG_OWNER"], "secretExpiresAfterHours": 24}))
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let account = created.json();
    let client_id = account["clientId"].as_str().unwrap().to_owned();
    let secret = account["secrets"][0]["secret"].as_str().unwrap().to_owned();
    assert!(client_id.starts_with("mdb_sa_id_") && secret.starts_with("mdb_sa_sk_"));
    let listed = owner
        .get(
            &format!("{org}/serviceAccounts/{client_id}"),
            V_SERVICE_ACCOUNT,
        )
        .await
        .json();
    assert!(
        listed["secrets"][0].get("secret").is_none(),
        "the secret is shown once only"
    );

    let http = reqwest::Client::new();
    let basic = |id: &str, secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    let token_reply = http
        .post(format!("{}/api/oauth/token", server.base))
        .header("authorization", basic(&client_id, &secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(token_reply.status().as_u16(), 200);
    let token: serde_json::Value = token_reply.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);
    let access_token = token["access_token"].as_str().unwrap().to_owned();

    let bearer = Client::bearer(&server.base, &access_token);
    let groups = bearer.get("/api/atlas/v2/groups", V2023).await;
    assert_eq!(groups.status.as_u16(), 200, "{}", groups.text);
    assert_eq!(groups.json()["totalCount"], 1);

    let wrong = http
        .post(format!("{}/api/oauth/token", server.base))
        .header("authorization", basic(&client_id, "mdb_sa_sk_wrong"))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert_eq!(
        wrong.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let bad_grant = http
        .post(format!("{}/api/oauth/token", server.base))
        .header("authorization", basic(&client_id, &secret))
        .body("grant_type=password")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_grant.status().as_u16(), 400);

    let revoked = http
        .post(format!("{}/api/oauth/revoke", server.base))
        .header("authorization", basic(&client_id, &secret))
        .body(format!("token={access_token}&token_type_hint=access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 200);
    bearer
        .get("/api/atlas/v2/groups", V2023)
        .await
        .assert_error(401, "UNEXPECTED_ERROR");
}
