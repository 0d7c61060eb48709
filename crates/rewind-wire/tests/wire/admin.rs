//! Admin and diagnostic commands answered without data.

use bson::doc;
use rewind_wire::{LastWrite, ServerConfig};

use super::support::{Client, code, default_server, ok, server};

#[tokio::test]
async fn build_info_server_status_and_friends() {
    let server = default_server().await;
    let mut client = Client::connect(&server).await;
    let build = client.command("test", doc! { "buildInfo": 1 }).await;
    assert_eq!(build.get_str("version").unwrap(), "8.0.4");
    assert!(ok(&build));

    let status = client.command("admin", doc! { "serverStatus": 1 }).await;
    assert_eq!(status.get_str("process").unwrap(), "mongod");
    assert_eq!(status.get_str("version").unwrap(), "8.0.4");
    assert!(
        status.get_str("host").is_ok()
            && status.get_f64("uptime").is_ok()
            && status.get_datetime("localTime").is_ok()
    );
    assert!(
        status
            .get_document("connections")
            .unwrap()
            .get_i32("current")
            .unwrap()
            >= 1
    );

    let uri = client.command("admin", doc! { "whatsmyuri": 1 }).await;
    assert_eq!(
        uri.get_str("you").unwrap(),
        client.stream.local_addr().unwrap().to_string()
    );

    let status = client
        .command(
            "admin",
            doc! { "connectionStatus": 1, "showPrivileges": true },
        )
        .await;
    let auth = status.get_document("authInfo").unwrap();
    assert!(auth.get_array("authenticatedUsers").unwrap().is_empty());
    assert!(
        auth.get_array("authenticatedUserPrivileges")
            .unwrap()
            .is_empty()
    );

    for command in [
        doc! { "hostInfo": 1 },
        doc! { "endSessions": [{ "id": 1 }] },
        doc! { "getCmdLineOpts": 1 },
        doc! { "getLog": "startupWarnings" },
    ] {
        let reply = client.command("admin", command.clone()).await;
        assert!(ok(&reply), "{command}: {reply}");
    }
}

#[tokio::test]
async fn get_parameter_is_admin_only_and_knows_fcv() {
    let server = default_server().await;
    let mut client = Client::connect(&server).await;
    let fcv = client
        .command(
            "admin",
            doc! { "getParameter": 1, "featureCompatibilityVersion": 1 },
        )
        .await;
    assert_eq!(
        fcv.get_document("featureCompatibilityVersion")
            .unwrap()
            .get_str("version")
            .unwrap(),
        "8.0"
    );
    assert_eq!(
        code(
            &client
                .command("admin", doc! { "getParameter": 1, "noSuchParameter": 1 })
                .await
        ),
        72
    );
    assert_eq!(
        code(
            &client
                .command(
                    "test",
                    doc! { "getParameter": 1, "featureCompatibilityVersion": 1 }
                )
                .await
        ),
        13
    );
}

#[tokio::test]
async fn repl_set_get_status_reports_one_primary() {
    let server = server(ServerConfig::new("cluster-7"), None).await;
    let mut client = Client::connect(&server).await;
    let when = bson::DateTime::from_millis(1_700_000_000_000);
    server.set_last_write(LastWrite {
        op_time: bson::Timestamp {
            time: 1_700_000_000,
            increment: 3,
        },
        wall_time: when,
    });
    let status = client
        .command("admin", doc! { "replSetGetStatus": 1 })
        .await;
    assert_eq!(status.get_str("set").unwrap(), "cluster-7");
    assert_eq!(status.get_i32("myState").unwrap(), 1);
    let members = status.get_array("members").unwrap();
    assert_eq!(members.len(), 1);
    let member = members[0].as_document().unwrap();
    assert_eq!(member.get_str("stateStr").unwrap(), "PRIMARY");
    assert_eq!(member.get_str("name").unwrap(), server.host());
    assert_eq!(member.get_datetime("optimeDate").unwrap(), &when);
    let hello = client.command("admin", doc! { "hello": 1 }).await;
    assert_eq!(
        hello
            .get_document("lastWrite")
            .unwrap()
            .get_datetime("lastWriteDate")
            .unwrap(),
        &when
    );
    assert_eq!(
        code(&client.command("test", doc! { "replSetGetStatus": 1 }).await),
        13
    );
    let config = client
        .command("admin", doc! { "replSetGetConfig": 1 })
        .await;
    let config = config.get_document("config").unwrap();
    assert_eq!(config.get_str("_id").unwrap(), "cluster-7");
    let members = config.get_array("members").unwrap();
    assert_eq!(members.len(), 1);
    let member = members[0].as_document().unwrap();
    assert_eq!(member.get_str("host").unwrap(), server.host());
    assert_eq!(
        code(&client.command("test", doc! { "replSetGetConfig": 1 }).await),
        13
    );
}
