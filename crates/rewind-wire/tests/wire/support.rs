//! A minimal raw wire client for the tests.

use std::sync::Arc;
use std::time::Duration;

use bson::{Document, doc};
use rewind_wire::header::MsgHeader;
use rewind_wire::op_msg::OpMsg;
use rewind_wire::{CommandHandler, Message, ServerConfig, ServerHandle, parse_message, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TIMEOUT: Duration = Duration::from_secs(5);

pub async fn server(
    config: ServerConfig,
    handler: Option<Arc<dyn CommandHandler>>,
) -> ServerHandle {
    start(config, handler).await.expect("server starts")
}

pub async fn default_server() -> ServerHandle {
    server(ServerConfig::new("rs0"), None).await
}

pub struct Client {
    pub stream: TcpStream,
    next_id: i32,
}

impl Client {
    pub async fn connect(server: &ServerHandle) -> Client {
        let stream = TcpStream::connect(server.local_addr())
            .await
            .expect("connect");
        Client {
            stream,
            next_id: 100,
        }
    }

    pub fn next_id(&mut self) -> i32 {
        self.next_id += 1;
        self.next_id
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends an OP_MSG and returns its request id.
    pub async fn send_msg(&mut self, msg: &OpMsg) -> i32 {
        let id = self.next_id();
        let bytes = msg.encode(id, 0).expect("encode");
        self.send(&bytes).await;
        id
    }

    /// Reads one reply; `None` when the server closed the connection.
    pub async fn read(&mut self) -> Option<(MsgHeader, Message)> {
        let mut header = [0u8; 16];
        let read = tokio::time::timeout(TIMEOUT, self.stream.read_exact(&mut header))
            .await
            .expect("reply in time");
        if read.is_err() {
            return None;
        }
        let len = usize::try_from(i32::from_le_bytes(header[..4].try_into().unwrap())).unwrap();
        let mut bytes = header.to_vec();
        bytes.resize(len, 0);
        tokio::time::timeout(TIMEOUT, self.stream.read_exact(&mut bytes[16..]))
            .await
            .expect("body in time")
            .ok()?;
        Some(parse_message(&bytes).expect("server replies are valid"))
    }

    /// Reads one OP_MSG reply and checks it answers `request_id`.
    pub async fn reply_to(&mut self, request_id: i32) -> Document {
        let (header, message) = self.read().await.expect("a reply");
        assert_eq!(header.response_to, request_id);
        match message {
            Message::Msg(msg) => {
                assert!(!msg.more_to_come(), "replies never use exhaust");
                msg.body
            }
            other => panic!("expected OP_MSG, got {other:?}"),
        }
    }

    pub async fn command(&mut self, db: &str, mut body: Document) -> Document {
        body.insert("$db", db);
        let id = self.send_msg(&OpMsg::new(body)).await;
        self.reply_to(id).await
    }

    pub async fn ping(&mut self) -> Document {
        self.command("admin", doc! { "ping": 1 }).await
    }

    /// Whether the server closes the connection (EOF or reset) in time.
    pub async fn is_closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 64];
        loop {
            match tokio::time::timeout(TIMEOUT, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

pub fn ok(reply: &Document) -> bool {
    reply
        .get("ok")
        .and_then(|v| v.as_f64().or_else(|| v.as_i32().map(f64::from)))
        == Some(1.0)
}

pub fn code(reply: &Document) -> i32 {
    reply
        .get_i32("code")
        .unwrap_or_else(|_| panic!("no code in {reply}"))
}

/// Polls `condition` for up to [`TIMEOUT`].
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
