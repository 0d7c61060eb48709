//! The data handler, availability, accepting and shutdown controls.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bson::{Bson, Document, doc};
use rewind_wire::op_msg::{DocumentSequence, OpMsg};
use rewind_wire::{CommandHandler, CommandRequest, ServerConfig, error_reply};

use super::support::{Client, code, default_server, ok, server};

/// Implements `insert` by echoing what it received.
struct EchoInsert;

#[async_trait]
impl CommandHandler for EchoInsert {
    async fn handle(&self, request: &CommandRequest) -> Option<Document> {
        match request.name.as_str() {
            "insert" => {
                let documents = request.body.get_array("documents").ok()?;
                Some(
                    doc! { "n": documents.len() as i32, "db": request.db.as_str(), "conn": request.connection.id as i64, "ok": 1.0 },
                )
            }
            "fail" => Some(error_reply(2, "BadValue", "as asked")),
            _ => None,
        }
    }
}

#[tokio::test]
async fn handler_gets_data_commands_with_sequences_merged() {
    let server = server(ServerConfig::new("rs0"), Some(Arc::new(EchoInsert))).await;
    let mut client = Client::connect(&server).await;
    let insert = OpMsg {
        flags: 0,
        body: doc! { "insert": "c", "$db": "shop", "ordered": true },
        sequences: vec![
            DocumentSequence::from_documents("documents", &[doc! { "_id": 1 }, doc! { "_id": 2 }])
                .unwrap(),
        ],
    };
    let id = client.send_msg(&insert).await;
    let reply = client.reply_to(id).await;
    assert_eq!(reply.get_i32("n").unwrap(), 2);
    assert_eq!(reply.get_str("db").unwrap(), "shop");
    assert!(reply.get_i64("conn").unwrap() >= 1);

    assert_eq!(code(&client.command("shop", doc! { "fail": 1 }).await), 2);
    // Built-ins are answered before the handler is asked.
    assert!(ok(&client.ping().await));
    let unknown = client.command("shop", doc! { "frobnicate": 1 }).await;
    assert_eq!(
        unknown,
        doc! { "ok": 0.0, "errmsg": "no such command: 'frobnicate'", "code": 59, "codeName": "CommandNotFound" }
    );
    // A sequence clashing with a body field is refused.
    let mut clash = insert.clone();
    clash.body.insert("documents", Bson::Array(Vec::new()));
    let id = client.send_msg(&clash).await;
    assert!(!ok(&client.reply_to(id).await));
}

#[tokio::test]
async fn missing_db_and_empty_commands_are_refused() {
    let server = default_server().await;
    let mut client = Client::connect(&server).await;
    let id = client.send_msg(&OpMsg::new(doc! { "ping": 1 })).await;
    assert_eq!(code(&client.reply_to(id).await), 40571);
    let id = client.send_msg(&OpMsg::new(doc! {})).await;
    assert!(!ok(&client.reply_to(id).await));
    assert_eq!(
        code(&client.command("test", doc! { "insert": "c" }).await),
        59
    );
}

#[tokio::test]
async fn unavailable_server_fails_every_command() {
    let server = default_server().await;
    let mut client = Client::connect(&server).await;
    server.set_unavailable("cluster is being restored");
    assert!(!server.is_available());
    for command in [
        doc! { "ping": 1 },
        doc! { "hello": 1 },
        doc! { "find": "c" },
    ] {
        let reply = client.command("admin", command).await;
        assert_eq!(code(&reply), 91);
        assert_eq!(reply.get_str("codeName").unwrap(), "ShutdownInProgress");
        assert_eq!(
            reply.get_str("errmsg").unwrap(),
            "cluster is being restored"
        );
    }
    server.set_available();
    assert!(ok(&client.ping().await));
}

#[tokio::test]
async fn refusing_new_connections_keeps_existing_ones() {
    let server = default_server().await;
    let mut existing = Client::connect(&server).await;
    // Served once, it has certainly been accepted.
    assert!(ok(&existing.ping().await));
    server.set_accepting(false);
    let mut refused = Client::connect(&server).await;
    assert!(refused.is_closed_by_server().await);
    assert!(ok(&existing.ping().await));
    server.set_accepting(true);
    let mut again = Client::connect(&server).await;
    assert!(ok(&again.ping().await));
}

#[tokio::test]
async fn shutdown_closes_connections_even_mid_command() {
    let server = default_server().await;
    let mut idle = Client::connect(&server).await;
    assert!(ok(&idle.ping().await));
    let mut waiting = Client::connect(&server).await;
    let hello = waiting.command("admin", doc! { "hello": 1 }).await;
    let version = hello.get_document("topologyVersion").unwrap().clone();
    waiting
        .send_msg(&OpMsg::new(doc! { "hello": 1, "topologyVersion": version, "maxAwaitTimeMS": 60_000, "$db": "admin" }))
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown completes");
    assert!(server.is_shut_down());
    assert_eq!(server.connection_count(), 0);
    assert!(idle.is_closed_by_server().await);
    assert!(waiting.is_closed_by_server().await);
    assert!(
        tokio::net::TcpStream::connect(server.local_addr())
            .await
            .is_err(),
        "listener is closed"
    );
    // A second shutdown is harmless.
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("idempotent");
}
