//! The S3 store against a moto server: the shared conformance suite and S3-only checks.

use super::*;

#[test]
fn locations_are_parsed() {
    assert_eq!(parse_location("s3://bucket").unwrap(), ("bucket", ""));
    assert_eq!(parse_location("s3://bucket/").unwrap(), ("bucket", ""));
    assert_eq!(
        parse_location("s3://my.bucket-1/a/b/").unwrap(),
        ("my.bucket-1", "a/b")
    );
    for bad in [
        "s3://",
        "s3:///p",
        "s3://Bucket/p",
        "s3://b/p",
        "s3://bucket/a//b",
        "s3://bucket/../x",
        "s3://bucket/p?x=1",
        "s3://user:pw@bucket/p",
    ] {
        let err = parse_location(bad).unwrap_err();
        assert!(matches!(err, BlobError::Unsupported { .. }), "{bad}");
    }
}

#[test]
fn secrets_are_redacted() {
    let secrets = vec!["s3cr3t-value".to_string()];
    assert_eq!(
        redact(
            "bad key s3cr3t-value,\n  again s3cr3t-value".into(),
            &secrets
        ),
        "bad key [redacted], again [redacted]"
    );
}

#[test]
fn configuration_errors_are_reported_without_secrets() {
    // A secret key without its key id is refused before any request is made.
    let err = S3BlobStore::open_with(
        "s3://bucket/prefix",
        [(
            "AWS_SECRET_ACCESS_KEY".to_string(),
            "very-secret-key".to_string(),
        )],
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, BlobError::Unsupported { .. }), "{message}");
    assert!(!message.contains("very-secret-key"), "{message}");
}

/// A moto S3 server on a free loopback port, killed on drop.
struct Moto {
    child: std::process::Child,
    endpoint: String,
    _logs: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `moto_server` ($REWIND_TEST_MOTO_SERVER, default `<workspace>/.venv/bin/
/// moto_server`). Without it: `None` after a loud message, or a failure under `CI`.
fn start_moto() -> Option<Moto> {
    let default =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    let binary = std::env::var_os("REWIND_TEST_MOTO_SERVER")
        .map(std::path::PathBuf::from)
        .unwrap_or(default);
    if !binary.exists() {
        let message = format!(
            "moto_server not found at {}: the S3 blob store conformance suite did NOT \
             run (install it with `.venv/bin/python -m pip install -r \
             tests/python/requirements.txt` or set REWIND_TEST_MOTO_SERVER)",
            binary.display()
        );
        if std::env::var_os("CI").is_some() {
            panic!("{message}");
        }
        // Straight to the process's stderr: libtest does not capture it, so the skip shows.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "\n!!!!!!!! SKIPPED: {message}\n");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let logs = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(logs.path().join("moto.log")).unwrap();
    let child = std::process::Command::new(&binary)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let mut moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        _logs: logs,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = moto.child.try_wait().unwrap() {
            let log = std::fs::read_to_string(moto._logs.path().join("moto.log"));
            panic!("moto_server exited with {status}: {log:?}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "moto_server never listened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(moto)
}

impl Moto {
    /// Creates `bucket` (moto takes unsigned requests).
    fn create_bucket(&self, bucket: &str) {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        write!(
            conn,
            "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }

    fn vars(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing-key-id"),
            ("AWS_SECRET_ACCESS_KEY", "testing-secret-key"),
            ("AWS_REGION", "us-east-1"),
            ("NOT_AWS", "ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

struct S3 {
    store: S3BlobStore,
}

impl super::super::conformance::Harness for S3 {
    fn store(&self) -> &dyn BlobStore {
        &self.store
    }
    fn overwrite_raw(&self, key: &str, raw: &[u8]) {
        self.store.put_raw(key, raw);
    }
    fn read_raw(&self, key: &str) -> Vec<u8> {
        let (store, path) = (self.store.store.clone(), S3BlobStore::path(key).unwrap());
        let got = self
            .store
            .run(async move { store.get(&path).await?.bytes().await });
        got.unwrap().unwrap().to_vec()
    }
}

#[test]
fn s3_conformance() {
    let Some(moto) = start_moto() else { return };
    moto.create_bucket("rewind-test");
    let store = S3BlobStore::open_with("s3://rewind-test/some/prefix", moto.vars()).unwrap();
    // Objects outside the prefix are not the store's.
    let other = S3BlobStore::open_with("s3://rewind-test/other", moto.vars()).unwrap();
    other.put("a/b/c", b"elsewhere").unwrap();
    super::super::conformance::run_all(&S3 { store });
    assert_eq!(other.list("").unwrap(), ["a/b/c"]);

    // A whole-bucket store sees both prefixes' objects under their full keys.
    let root = S3BlobStore::open_with("s3://rewind-test", moto.vars()).unwrap();
    root.put("some/prefix/x", b"1").unwrap();
    assert_eq!(root.list("").unwrap(), ["other/a/b/c", "some/prefix/x"]);
    let prefixed = S3BlobStore::open_with("s3://rewind-test/some/prefix/", moto.vars()).unwrap();
    assert_eq!(prefixed.get("x").unwrap(), b"1");
}

#[test]
fn s3_calls_work_from_any_thread_and_errors_name_no_secret() {
    let Some(moto) = start_moto() else { return };
    moto.create_bucket("rewind-threads");
    let store = Arc::new(S3BlobStore::open_with("s3://rewind-threads/p", moto.vars()).unwrap());
    store.put("k", b"plain thread").unwrap();

    // From inside another runtime's async context (current-thread and multi-thread), and
    // from its blocking pool: no "runtime within a runtime" panic, and dropping the last
    // handle there does not panic either.
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = store.clone();
    current.block_on(async move {
        assert_eq!(s.get("k").unwrap(), b"plain thread");
        s.put("k2", b"from async").unwrap();
    });
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = store.clone();
    multi.block_on(async move {
        let s2 = s.clone();
        tokio::task::spawn_blocking(move || s2.put("k3", b"blocking pool"))
            .await
            .unwrap()
            .unwrap();
        tokio::spawn(async move { s.list("").unwrap() })
            .await
            .unwrap()
    });
    assert_eq!(store.list("").unwrap(), ["k", "k2", "k3"]);
    let last = Arc::try_unwrap(store).unwrap();
    multi.block_on(async move { drop(last) });

    // A store whose bucket does not exist is refused when opened, without secrets.
    let err = S3BlobStore::open_with("s3://no-such-bucket/p", moto.vars()).unwrap_err();
    let message = err.to_string();
    eprintln!("missing bucket: {message}");
    assert!(message.contains("s3://no-such-bucket/p"), "{message}");
    assert!(!message.contains("testing-secret-key"), "{message}");
    // Through open_blob_store, an unreachable endpoint is a clear error too.
    let mut vars = moto.vars();
    vars[0].1 = "http://127.0.0.1:9".into();
    let err = S3BlobStore::open_with("s3://rewind-threads/p", vars).unwrap_err();
    eprintln!("unreachable endpoint: {err}");
    assert!(matches!(err, BlobError::Unsupported { .. }), "{err}");
}
