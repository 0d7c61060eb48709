//! Just enough of a MongoDB client for the black-box tests: one OP_MSG command at a time over
//! a TCP connection (the Python suite drives clusters with real drivers; these tests only
//! need to write and read a few documents).

use bson::{Document, doc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection to a cluster's replica set.
pub struct WireClient {
    stream: TcpStream,
    request_id: i32,
}

impl WireClient {
    /// Connects to the `host:port` of a `mongodb://host:port/?…` URI.
    pub async fn connect(uri: &str) -> std::io::Result<Self> {
        let address = uri
            .trim_start_matches("mongodb://")
            .split(['/', '?'])
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            stream: TcpStream::connect(address).await?,
            request_id: 0,
        })
    }

    /// Runs `command` on `db` and returns the reply document.
    pub async fn run(&mut self, db: &str, mut command: Document) -> std::io::Result<Document> {
        command.insert("$db", db);
        let body = bson::RawDocumentBuf::try_from(&command)
            .map_err(std::io::Error::other)?
            .into_bytes();
        self.request_id += 1;
        let length = 16 + 4 + 1 + body.len();
        let mut message = Vec::with_capacity(length);
        message.extend_from_slice(&(length as i32).to_le_bytes());
        message.extend_from_slice(&self.request_id.to_le_bytes());
        message.extend_from_slice(&0i32.to_le_bytes());
        message.extend_from_slice(&2013i32.to_le_bytes()); // OP_MSG
        message.extend_from_slice(&0u32.to_le_bytes()); // flags
        message.push(0); // section kind 0: the body
        message.extend_from_slice(&body);
        self.stream.write_all(&message).await?;
        let mut header = [0u8; 16];
        self.stream.read_exact(&mut header).await?;
        let total = i32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let mut rest = vec![0u8; total.saturating_sub(16)];
        self.stream.read_exact(&mut rest).await?;
        // flags (4 bytes), section kind (1 byte), then the reply document.
        Document::from_reader(&rest[5..]).map_err(std::io::Error::other)
    }

    /// Inserts documents into `db.collection`.
    pub async fn insert(&mut self, db: &str, collection: &str, documents: Vec<Document>) {
        let reply = self
            .run(db, doc! {"insert": collection, "documents": documents})
            .await
            .expect("insert");
        assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
    }

    /// Every document of `db.collection`, in `_id` order (one batch).
    pub async fn find_all(&mut self, db: &str, collection: &str) -> Vec<Document> {
        let reply = self
            .run(
                db,
                doc! {"find": collection, "sort": {"_id": 1}, "batchSize": 100_000, "singleBatch": true},
            )
            .await
            .expect("find");
        reply
            .get_document("cursor")
            .and_then(|cursor| cursor.get_array("firstBatch"))
            .map(|batch| {
                batch
                    .iter()
                    .filter_map(|value| value.as_document().cloned())
                    .collect()
            })
            .unwrap_or_else(|_| panic!("no batch in {reply}"))
    }
}
