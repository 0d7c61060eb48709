//! Download requests answered by the server itself: the router decides the response (so every
//! rule and middleware applies), and this module writes it as HTTP/1.1, sending a file slice
//! with `sendfile(2)`.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, Version, header, response};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::handlers::downloads::FileSlice;
use crate::routes::service::DOWNLOAD;

/// A response body other than a file slice is a refusal's few words: more is not expected
/// here, and is refused rather than buffered.
const MAX_BODY: usize = 64 * 1024;

/// What the bytes starting a connection's next request are.
pub(super) enum Parsed {
    /// Not a whole request head yet.
    Partial,
    /// A download request, and the length of its head.
    Download(Box<Request>, usize),
    /// Anything else: a request to another route, one with a body or a protocol switch, not
    /// HTTP/1.1, or malformed.
    Other,
}

/// Parses a request head, keeping only the requests this module answers: `GET` and `HEAD` of
/// download links in HTTP/1.1, with no body and no `Expect` or `Upgrade`.
pub(super) fn parse(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Request::new(&mut headers);
    let length = match head.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let (Some(method), Some(path), Some(1)) = (head.method, head.path, head.version) else {
        return Parsed::Other;
    };
    let method = match method {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        _ => return Parsed::Other,
    };
    let prefix = DOWNLOAD
        .split_once('{')
        .map_or(DOWNLOAD, |(prefix, _)| prefix);
    if !path.starts_with(prefix) {
        return Parsed::Other;
    }
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .version(Version::HTTP_11);
    for field in head.headers.iter() {
        let name = field.name;
        if [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::EXPECT,
            header::UPGRADE,
        ]
        .iter()
        .any(|refused| refused.as_str().eq_ignore_ascii_case(name))
        {
            return Parsed::Other;
        }
        request = request.header(name, field.value);
    }
    match request.body(Body::empty()) {
        Ok(request) => Parsed::Download(Box::new(request), length),
        Err(_) => Parsed::Other,
    }
}

/// Answers `request` through `router` on `socket`; whether the connection stays open.
pub(super) async fn respond(socket: &mut TcpStream, router: &Router, request: Request) -> bool {
    let head_only = request.method() == Method::HEAD;
    let mut close = wants_close(request.headers());
    let Ok(response) = router.clone().oneshot(request).await;
    let (mut parts, body) = response.into_parts();
    close |= wants_close(&parts.headers);
    let slice = parts.extensions.remove::<FileSlice>();
    let (slice, body) = match (head_only, slice) {
        (true, _) => (None, Bytes::new()),
        (false, Some(slice)) => {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, slice.len().into());
            (Some(slice), Bytes::new())
        }
        (false, None) => match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(body) => {
                parts
                    .headers
                    .entry(header::CONTENT_LENGTH)
                    .or_insert_with(|| body.len().into());
                (None, body)
            }
            Err(error) => {
                tracing::error!(%error, "a download response's body could not be read");
                return false;
            }
        },
    };
    if close {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let mut bytes = encode_head(&mut parts);
    bytes.extend_from_slice(&body);
    if socket.write_all(&bytes).await.is_err() {
        return false;
    }
    if let Some(slice) = slice
        && let Err(error) = slice.send(socket).await
    {
        // Past the router's request span: the request id ties these to the request's logs.
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        // The peer leaving mid-download is routine (it resumes with `Range`); a short file
        // is not.
        if error.kind() == std::io::ErrorKind::UnexpectedEof {
            tracing::error!(%error, request_id, "sending a download failed");
        } else {
            tracing::debug!(%error, request_id, "a download connection ended early");
        }
        return false;
    }
    !close
}

/// Whether a request or response says `Connection: close`.
fn wants_close(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|option| option.trim().eq_ignore_ascii_case("close"))
}

/// The status line and headers, with a `Date` as hyper adds one.
fn encode_head(parts: &mut response::Parts) -> Vec<u8> {
    if !parts.headers.contains_key(header::DATE)
        && let Ok(date) =
            HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now()))
    {
        parts.headers.insert(header::DATE, date);
    }
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

#[cfg(test)]
mod tests {
    use super::{Parsed, parse};

    fn parsed(head: &str) -> &'static str {
        match parse(head.as_bytes()) {
            Parsed::Partial => "partial",
            Parsed::Download(..) => "download",
            Parsed::Other => "other",
        }
    }

    #[test]
    fn only_bodiless_http11_download_gets_and_heads_are_answered_here() {
        let link = "/api/rewind/v1/downloads/t/restore-s.tar.gz";
        for (head, expected) in [
            (
                format!("GET {link} HTTP/1.1\r\nHost: h\r\n\r\n"),
                "download",
            ),
            (
                format!("HEAD {link}?format=archive HTTP/1.1\r\n\r\n"),
                "download",
            ),
            (
                format!("GET {link} HTTP/1.1\r\nRange: bytes=1-\r\n\r\n"),
                "download",
            ),
            (format!("GET {link} HTTP/1.1\r\nHost: h\r\n"), "partial"),
            (format!("GET {link} HTTP/1.0\r\n\r\n"), "other"),
            (format!("POST {link} HTTP/1.1\r\n\r\n"), "other"),
            (
                format!("GET {link} HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
                "other",
            ),
            (
                format!("GET {link} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
                "other",
            ),
            (
                format!("GET {link} HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"),
                "other",
            ),
            (
                format!("GET {link} HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"),
                "other",
            ),
            ("GET /healthz HTTP/1.1\r\n\r\n".to_owned(), "other"),
            ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_owned(), "other"),
        ] {
            assert_eq!(parsed(&head), expected, "{head:?}");
        }
    }

    #[test]
    fn the_request_keeps_its_target_and_headers() {
        let head = "GET /api/rewind/v1/downloads/t/f?format=archive HTTP/1.1\r\nRange: bytes=0-9\r\n\r\nGET /next";
        let Parsed::Download(request, length) = parse(head.as_bytes()) else {
            panic!("a download");
        };
        assert_eq!(&head[length..], "GET /next");
        assert_eq!(
            request.uri().to_string(),
            "/api/rewind/v1/downloads/t/f?format=archive"
        );
        assert_eq!(request.headers()["range"], "bytes=0-9");
    }
}
