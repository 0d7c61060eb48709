//! Malformed and hostile input is refused while other clients are served.

use std::time::Duration;

use bson::doc;
use rewind_wire::header::{MsgHeader, OP_COMPRESSED, OP_MSG};
use rewind_wire::op_msg::{CHECKSUM_PRESENT, MORE_TO_COME, OpMsg};
use rewind_wire::{Message, ServerConfig};
use tokio::io::AsyncWriteExt;

use super::support::{Client, code, default_server, ok, server};

fn header(length: i32, op_code: i32) -> Vec<u8> {
    let mut out = Vec::new();
    MsgHeader {
        message_length: length,
        request_id: 1,
        response_to: 0,
        op_code,
    }
    .write_to(&mut out);
    out
}

#[tokio::test]
async fn truncated_message_is_dropped_and_others_are_served() {
    let server = default_server().await;
    let mut good = Client::connect(&server).await;
    // A message that stalls half-way: its connection waits, nobody else does.
    let mut stalled = Client::connect(&server).await;
    let full = OpMsg::new(doc! { "ping": 1, "$db": "admin" })
        .encode(1, 0)
        .unwrap();
    stalled.send(&full[..full.len() / 2]).await;
    assert!(ok(&good.ping().await));
    // A message cut short by the client closing its side: the server closes.
    let mut truncated = Client::connect(&server).await;
    truncated.send(&full[..full.len() - 3]).await;
    truncated.stream.shutdown().await.unwrap();
    assert!(truncated.is_closed_by_server().await);
    assert!(ok(&good.ping().await));
}

#[tokio::test]
async fn stalled_message_times_out() {
    let mut config = ServerConfig::new("rs0");
    config.frame_timeout = Duration::from_millis(200);
    let server = server(config, None).await;
    let mut stalled = Client::connect(&server).await;
    stalled.send(&header(1000, OP_MSG)).await;
    assert!(stalled.is_closed_by_server().await);
}

#[tokio::test]
async fn oversized_and_undersized_lengths_close_the_connection() {
    let server = default_server().await;
    let mut good = Client::connect(&server).await;
    for length in [48_000_001, i32::MAX, -5, 0, 15] {
        let mut hostile = Client::connect(&server).await;
        hostile.send(&header(length, OP_MSG)).await;
        assert!(hostile.is_closed_by_server().await, "length {length}");
        assert!(ok(&good.ping().await));
    }
    // A claim at the limit is legal: the server waits for the bytes without
    // reserving 48 MB, and still serves others.
    let mut claims_max = Client::connect(&server).await;
    claims_max.send(&header(48_000_000, OP_MSG)).await;
    claims_max.send(&[0u8; 1024]).await;
    assert!(ok(&good.ping().await));
}

#[tokio::test]
async fn garbage_is_refused() {
    let server = default_server().await;
    let mut good = Client::connect(&server).await;
    // Not the wire protocol at all: "GET " read as a length is out of range.
    let mut http = Client::connect(&server).await;
    http.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    assert!(http.is_closed_by_server().await);
    // A well-framed OP_MSG full of garbage gets an error reply and the
    // connection stays usable.
    let mut framed = Client::connect(&server).await;
    let mut bytes = header(16 + 40, OP_MSG);
    bytes.extend((0..40u8).map(|i| i.wrapping_mul(37).wrapping_add(13)));
    framed.send(&bytes).await;
    let reply = framed.reply_to(1).await;
    assert!(!ok(&reply), "{reply}");
    assert!(reply.get_str("errmsg").is_ok() && reply.get_str("codeName").is_ok());
    // Valid flags and section kind, then a document that is not BSON.
    let mut bytes = header(16 + 4 + 1 + 12, OP_MSG);
    bytes.extend_from_slice(&[
        0, 0, 0, 0, 0, 12, 0, 0, 0, 0x02, b'a', 0, 0xff, 0xff, 0xff, 0x7f, 0,
    ]);
    framed.send(&bytes).await;
    assert_eq!(code(&framed.reply_to(1).await), 22);
    assert!(ok(&framed.ping().await));
    assert!(ok(&good.ping().await));
}

#[tokio::test]
async fn wrong_and_compressed_opcodes_get_protocol_errors() {
    let server = default_server().await;
    let mut good = Client::connect(&server).await;
    for op_code in [2002, 2005, 1, 9999, OP_COMPRESSED] {
        let mut client = Client::connect(&server).await;
        let mut bytes = OpMsg::new(doc! { "ping": 1, "$db": "admin" })
            .encode(1, 0)
            .unwrap();
        bytes[12..16].copy_from_slice(&op_code.to_le_bytes());
        client.send(&bytes).await;
        let reply = client.reply_to(1).await;
        assert_eq!(code(&reply), 17, "{op_code}: {reply}");
        assert!(ok(&good.ping().await));
    }
}

#[tokio::test]
async fn checksums_are_verified_and_mirrored() {
    let server = default_server().await;
    let mut client = Client::connect(&server).await;
    let mut msg = OpMsg::new(doc! { "ping": 1, "$db": "admin" });
    msg.flags = CHECKSUM_PRESENT;
    let id = client.send_msg(&msg).await;
    let (header, reply) = client.read().await.unwrap();
    assert_eq!(header.response_to, id);
    let Message::Msg(reply) = reply else {
        panic!("OP_MSG expected")
    };
    assert!(
        reply.checksum_present(),
        "reply carries a verified checksum"
    );
    assert!(ok(&reply.body));

    let mut corrupt = msg.encode(7, 0).unwrap();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    client.send(&corrupt).await;
    let reply = client.reply_to(7).await;
    assert!(
        reply.get_str("errmsg").unwrap().contains("checksum"),
        "{reply}"
    );
}

#[tokio::test]
async fn more_to_come_gets_no_reply() {
    let server = default_server().await;
    let mut client = Client::connect(&server).await;
    let mut fire_and_forget = OpMsg::new(doc! { "ping": 1, "$db": "admin" });
    fire_and_forget.flags = MORE_TO_COME;
    client.send_msg(&fire_and_forget).await;
    // Even a failing unacknowledged command stays silent.
    let unknown = OpMsg {
        flags: MORE_TO_COME,
        ..OpMsg::new(doc! { "insert": "c", "$db": "test" })
    };
    client.send_msg(&unknown).await;
    let id = client
        .send_msg(&OpMsg::new(doc! { "ping": 1, "$db": "admin" }))
        .await;
    // The first reply to arrive answers the acknowledged request.
    let reply = client.reply_to(id).await;
    assert!(ok(&reply));
}

#[tokio::test]
async fn connection_limit_closes_extra_connections() {
    let mut config = ServerConfig::new("rs0");
    config.max_connections = 2;
    let server = server(config, None).await;
    let mut first = Client::connect(&server).await;
    let mut second = Client::connect(&server).await;
    assert!(ok(&first.ping().await));
    assert!(ok(&second.ping().await));
    let mut third = Client::connect(&server).await;
    assert!(third.is_closed_by_server().await);
    assert!(ok(&first.ping().await));
    drop(second);
    super::support::eventually(|| server.connection_count() < 2).await;
    let mut fourth = Client::connect(&server).await;
    assert!(ok(&fourth.ping().await));
}
