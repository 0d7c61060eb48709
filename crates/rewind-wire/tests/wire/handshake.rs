//! hello / isMaster over OP_MSG and OP_QUERY, awaitable hello.

use std::time::{Duration, Instant};

use bson::{Bson, doc};
use rewind_wire::Message;
use rewind_wire::op_query::OpQuery;

use super::support::{Client, code, default_server, ok};

#[tokio::test]
async fn hello_answers_as_a_replica_set_primary() {
    let server = default_server().await;
    let mut client = Client::connect(&server).await;
    let hello = client
        .command("admin", doc! { "hello": 1, "helloOk": true })
        .await;
    let host = format!("127.0.0.1:{}", server.port());
    assert!(ok(&hello), "{hello}");
    assert!(hello.get_bool("isWritablePrimary").unwrap());
    assert!(hello.get("ismaster").is_none());
    assert!(!hello.get_bool("secondary").unwrap());
    assert!(hello.get_bool("helloOk").unwrap());
    assert_eq!(hello.get_str("setName").unwrap(), "rs0");
    assert_eq!(
        hello.get_array("hosts").unwrap(),
        &vec![Bson::String(host.clone())]
    );
    assert_eq!(hello.get_str("primary").unwrap(), host);
    assert_eq!(hello.get_str("me").unwrap(), host);
    assert!(hello.get_object_id("electionId").is_ok());
    let version = hello.get_document("topologyVersion").unwrap();
    assert!(version.get_object_id("processId").is_ok());
    assert!(version.get_i64("counter").is_ok());
    assert_eq!(hello.get_i32("maxBsonObjectSize").unwrap(), 16_777_216);
    assert_eq!(hello.get_i32("maxMessageSizeBytes").unwrap(), 48_000_000);
    assert_eq!(hello.get_i32("maxWriteBatchSize").unwrap(), 100_000);
    assert_eq!(hello.get_i32("logicalSessionTimeoutMinutes").unwrap(), 30);
    assert_eq!(hello.get_i32("minWireVersion").unwrap(), 0);
    assert_eq!(hello.get_i32("maxWireVersion").unwrap(), 25);
    assert!(hello.get_datetime("localTime").is_ok());
    assert!(
        hello
            .get_document("lastWrite")
            .unwrap()
            .get_datetime("lastWriteDate")
            .is_ok()
    );
    assert!(
        hello.get("compression").is_none(),
        "no compressor is advertised"
    );

    // Connection ids are distinct per connection, and int32 as mongod writes them.
    let first = hello.get_i32("connectionId").unwrap();
    let mut other = Client::connect(&server).await;
    let second = other
        .command("admin", doc! { "hello": 1 })
        .await
        .get_i32("connectionId")
        .unwrap();
    assert_ne!(first, second);

    let legacy = client.command("test", doc! { "isMaster": 1 }).await;
    assert!(legacy.get_bool("ismaster").unwrap());
    assert!(legacy.get("isWritablePrimary").is_none());
    assert!(legacy.get("helloOk").is_none());
}

async fn op_query(client: &mut Client, ns: &str, query: bson::Document) -> bson::Document {
    let request = OpQuery {
        flags: 0,
        full_collection_name: ns.into(),
        number_to_skip: 0,
        number_to_return: -1,
        query,
        return_fields_selector: None,
    };
    let id = client.next_id();
    client.send(&request.encode(id).unwrap()).await;
    let (header, message) = client.read().await.expect("reply");
    assert_eq!(header.response_to, id);
    match message {
        Message::Reply(mut reply) => {
            assert_eq!(reply.documents.len(), 1);
            reply.documents.remove(0)
        }
        other => panic!("expected OP_REPLY, got {other:?}"),
    }
}

#[tokio::test]
async fn legacy_op_query_handshake() {
    let server = default_server().await;
    let mut client = Client::connect(&server).await;
    let reply = op_query(
        &mut client,
        "admin.$cmd",
        doc! { "isMaster": 1, "helloOk": true },
    )
    .await;
    assert!(ok(&reply), "{reply}");
    assert!(reply.get_bool("ismaster").unwrap());
    assert!(reply.get_bool("helloOk").unwrap());
    assert_eq!(reply.get_i32("maxWireVersion").unwrap(), 25);

    let wrapped = op_query(
        &mut client,
        "mydb.$cmd",
        doc! { "$query": { "hello": 1 }, "$readPreference": { "mode": "primary" } },
    )
    .await;
    assert!(wrapped.get_bool("isWritablePrimary").unwrap());

    // Everything else over OP_QUERY is refused, as by mongod >= 5.1.
    let find = op_query(&mut client, "admin.$cmd", doc! { "ping": 1 }).await;
    assert_eq!(code(&find), 352);
    let legacy_find = op_query(&mut client, "test.coll", doc! {}).await;
    assert_eq!(code(&legacy_find), 352);

    // The connection then speaks OP_MSG as drivers do after the handshake.
    assert!(ok(&client.ping().await));
}

#[tokio::test]
async fn awaitable_hello_waits_then_answers() {
    let server = default_server().await;
    let mut client = Client::connect(&server).await;
    let hello = client.command("admin", doc! { "hello": 1 }).await;
    let version = hello.get_document("topologyVersion").unwrap().clone();

    let started = Instant::now();
    let reply = client
        .command(
            "admin",
            doc! { "hello": 1, "topologyVersion": version.clone(), "maxAwaitTimeMS": 300 },
        )
        .await;
    assert!(ok(&reply));
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "waited {:?}",
        started.elapsed()
    );

    // A stale view (other process) is answered at once.
    let started = Instant::now();
    let stale = doc! { "processId": bson::oid::ObjectId::new(), "counter": 0i64 };
    let reply = client
        .command(
            "admin",
            doc! { "hello": 1, "topologyVersion": stale, "maxAwaitTimeMS": 10_000 },
        )
        .await;
    assert!(ok(&reply));
    assert!(started.elapsed() < Duration::from_secs(2));

    // A topology change (becoming unavailable) wakes a waiting hello early.
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        let reply = client
            .command(
                "admin",
                doc! { "hello": 1, "topologyVersion": version, "maxAwaitTimeMS": 10_000 },
            )
            .await;
        (reply, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.set_unavailable("restore in progress");
    let (reply, waited) = waiter.await.unwrap();
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert_eq!(code(&reply), 91);

    let mut client = Client::connect(&server).await;
    let bad = client
        .command(
            "admin",
            doc! { "hello": 1, "topologyVersion": { "counter": 0i64 }, "maxAwaitTimeMS": -1 },
        )
        .await;
    assert_eq!(code(&bad), 91, "unavailable wins");
    server.set_available();
    let bad = client
        .command(
            "admin",
            doc! { "hello": 1, "topologyVersion": { "counter": 0i64 }, "maxAwaitTimeMS": -1 },
        )
        .await;
    assert_eq!(code(&bad), 2);
    let after = client.command("admin", doc! { "hello": 1 }).await;
    let counter = after
        .get_document("topologyVersion")
        .unwrap()
        .get_i64("counter")
        .unwrap();
    assert_eq!(
        counter, 2,
        "each availability change bumps the topology version"
    );
}
