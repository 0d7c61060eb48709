//! Download links over raw sockets: the server answers download requests leading a connection
//! itself (the file goes out with `sendfile`) and hands the connection to hyper at the first
//! other request, so these tests control exactly what each connection carries.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::support::{Server, V2023, download_job};

/// A completed download restore's link, as a path on the server.
async fn download_link(server: &Server) -> String {
    let owner = server.owner();
    let (backup, _, id) = download_job(&owner, &server.group_path()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = owner
            .get(&format!("{backup}/restoreJobs/{id}"), V2023)
            .await
            .json();
        if let Some(url) = job["deliveryUrl"][0].as_str() {
            return url.strip_prefix(&server.base).unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the download never packaged: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One HTTP/1.1 connection, written and read by hand.
struct Connection {
    stream: TcpStream,
    unread: Vec<u8>,
}

/// A response as it came off the wire.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map_or("", |(_, value)| value)
    }
}

impl Connection {
    fn open(server: &Server) -> Self {
        let stream = TcpStream::connect(server.base.strip_prefix("http://").unwrap()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Self {
            stream,
            unread: Vec::new(),
        }
    }

    /// Sends requests (`method path [header lines]`) in one write: pipelined when several.
    fn send(&mut self, requests: &[(&str, &str, &str)]) {
        let mut bytes = String::new();
        for (method, path, headers) in requests {
            bytes.push_str(&format!(
                "{method} {path} HTTP/1.1\r\nHost: rewind\r\n{headers}\r\n"
            ));
        }
        self.stream.write_all(bytes.as_bytes()).unwrap();
    }

    /// Reads one response; `HEAD` responses have no body whatever their `Content-Length`.
    fn reply(&mut self, head: bool) -> Reply {
        let end = loop {
            if let Some(end) = self.unread.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            self.fill();
        };
        let text = String::from_utf8(self.unread[..end].to_vec()).unwrap();
        self.unread.drain(..end + 4);
        let mut lines = text.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(": ").unwrap();
                (name.to_owned(), value.to_owned())
            })
            .collect();
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        let length: usize = if head {
            0
        } else {
            reply.header("content-length").parse().unwrap()
        };
        while self.unread.len() < length {
            self.fill();
        }
        reply.body = self.unread.drain(..length).collect();
        reply
    }

    fn fill(&mut self) {
        let mut buffer = [0; 64 * 1024];
        let read = self.stream.read(&mut buffer).unwrap();
        assert!(read > 0, "the server closed the connection");
        self.unread.extend_from_slice(&buffer[..read]);
    }

    /// Whether the server closed the connection (after anything still unread).
    fn closed(&mut self) -> bool {
        let mut buffer = [0; 1];
        self.unread.is_empty() && matches!(self.stream.read(&mut buffer), Ok(0))
    }
}

#[tokio::test]
async fn a_download_link_resumes_with_ranges_and_serves_one_complete_download() {
    let server = Server::start("dl-ranges");
    let link = download_link(&server).await;

    let mut connection = Connection::open(&server);
    connection.send(&[("HEAD", &link, "")]);
    let head = connection.reply(true);
    assert_eq!(head.status, 200);
    let size: u64 = head.header("content-length").parse().unwrap();
    let sha256 = head.header("x-content-sha256").to_owned();
    assert_eq!(head.header("etag"), format!("\"{sha256}\""));
    assert_eq!(head.header("content-type"), "application/gzip");
    assert_eq!(head.header("accept-ranges"), "bytes");
    let name = link.rsplit('/').next().unwrap();
    assert_eq!(
        head.header("content-disposition"),
        format!("attachment; filename=\"{name}\"")
    );
    assert_eq!(head.header("x-request-id").len(), 24, "a request id");
    assert!(!head.header("date").is_empty());

    // Refusals on the same connection, which stays open through them.
    connection.send(&[("GET", &link, "Range: bytes=999999999-\r\n")]);
    let unsatisfiable = connection.reply(false);
    assert_eq!(unsatisfiable.status, 416);
    assert_eq!(
        unsatisfiable.header("content-range"),
        format!("bytes */{size}")
    );
    connection.send(&[("GET", &format!("{link}?format=zip"), "")]);
    assert_eq!(connection.reply(false).status, 400);
    connection.send(&[("GET", &format!("{link}.zip"), "")]);
    assert_eq!(connection.reply(false).status, 404);
    let unknown = link.replace("/downloads/", "/downloads/x");
    connection.send(&[("HEAD", &unknown, "")]);
    assert_eq!(connection.reply(true).status, 404);

    // An interrupted download resumes; both parts on one keep-alive connection.
    connection.send(&[("GET", &link, "Range: bytes=0-9\r\n")]);
    let first = connection.reply(false);
    assert_eq!(first.status, 206);
    assert_eq!(first.header("content-range"), format!("bytes 0-9/{size}"));
    assert_eq!(first.body.len(), 10);
    connection.send(&[("GET", &link, "Range: bytes=10-\r\n")]);
    let rest = connection.reply(false);
    assert_eq!(rest.status, 206);
    assert_eq!(
        rest.header("content-range"),
        format!("bytes 10-{}/{size}", size - 1)
    );
    let file = [first.body, rest.body].concat();
    assert_eq!(file.len() as u64, size);
    assert_eq!(hex(&Sha256::digest(&file)), sha256);

    // The resume delivered the last byte: the link's one download is done.
    let mut again = Connection::open(&server);
    again.send(&[("GET", &link, "")]);
    assert_eq!(again.reply(false).status, 410);
    again.send(&[("HEAD", &link, "Connection: close\r\n")]);
    let closing = again.reply(true);
    assert_eq!(closing.status, 410);
    assert_eq!(closing.header("connection"), "close");
    assert!(again.closed());

    // Requests answered outside hyper are counted under the download route like any other.
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (method, status) in [("HEAD", 200), ("GET", 206), ("GET", 410), ("GET", 416)] {
        let line = format!(
            "rewind_http_requests_total{{method=\"{method}\",route=\"/api/rewind/v1/downloads/{{token}}/{{file}}\",status=\"{status}\"}}"
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(server.terminate().success());
}

#[tokio::test]
async fn a_whole_download_then_other_requests_share_a_connection() {
    let server = Server::start("dl-keepalive");
    let link = download_link(&server).await;

    // Another route first: hyper serves the connection from there on, downloads included.
    let mut hyper_first = Connection::open(&server);
    hyper_first.send(&[
        ("GET", "/healthz", ""),
        ("HEAD", &link, ""),
        ("GET", &link, "Range: bytes=0-9\r\n"),
    ]);
    assert_eq!(hyper_first.reply(false).status, 200);
    let head = hyper_first.reply(true);
    assert_eq!(head.status, 200);
    let size: usize = head.header("content-length").parse().unwrap();
    let start = hyper_first.reply(false);
    assert_eq!(start.status, 206);

    // A whole download first, then another route pipelined behind it: the download goes out
    // with sendfile, and hyper answers what follows from the bytes already read.
    let mut download_first = Connection::open(&server);
    download_first.send(&[("GET", &link, ""), ("GET", "/healthz", "")]);
    let whole = download_first.reply(false);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body.len(), size);
    assert_eq!(
        hex(&Sha256::digest(&whole.body)),
        head.header("x-content-sha256")
    );
    assert_eq!(whole.body[..10], start.body);
    assert_eq!(download_first.reply(false).status, 200);
    download_first.send(&[("GET", &link, "")]);
    assert_eq!(download_first.reply(false).status, 410);

    // An idle keep-alive connection does not hold up shutdown.
    let mut idle = Connection::open(&server);
    idle.send(&[("HEAD", &link, "")]);
    assert_eq!(idle.reply(true).status, 410);
    assert!(server.terminate().success());
    assert!(idle.closed());
}

#[tokio::test]
async fn a_download_behind_another_request_streams_through_hyper_and_completes() {
    let server = Server::start("dl-hyper");
    let link = download_link(&server).await;
    let mut connection = Connection::open(&server);
    connection.send(&[("GET", "/healthz", ""), ("GET", &link, "")]);
    assert_eq!(connection.reply(false).status, 200);
    let whole = connection.reply(false);
    assert_eq!(whole.status, 200);
    assert_eq!(
        whole.body.len(),
        whole.header("content-length").parse::<usize>().unwrap()
    );
    assert_eq!(
        hex(&Sha256::digest(&whole.body)),
        whole.header("x-content-sha256")
    );
    connection.send(&[("GET", &link, "")]);
    assert_eq!(connection.reply(false).status, 410);
    assert!(server.terminate().success());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
