//! Starting the real binary and talking to it like an Atlas client does.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Media type of the 2023-01-01 operations.
pub const V2023: &str = "application/vnd.atlas.2023-01-01+json";
/// Media type of the cluster operations clients use.
pub const V_CLUSTER: &str = "application/vnd.atlas.2024-08-05+json";
/// Media type of the service account operations.
pub const V_SERVICE_ACCOUNT: &str = "application/vnd.atlas.2024-08-01+json";

/// The credentials written at first start.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub org_id: String,
    pub group_id: String,
    pub public_key: String,
    pub private_key: String,
}

/// A running `rewind serve`, stopped (SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub data_dir: PathBuf,
    pub credentials: Credentials,
}

/// A schema of its own in the test PostgreSQL database, dropped by [`PgSchema::drop_now`].
pub struct PgSchema {
    store: rewind_store::PgStore,
    name: String,
    credentials: std::sync::Mutex<Option<PathBuf>>,
    /// A database URL whose connections use only this schema.
    pub url: String,
}

impl PgSchema {
    /// Creates a fresh schema in the database `scripts/test.sh` makes sure answers.
    pub async fn create() -> Self {
        let base = std::env::var("REWIND_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let name = format!("rewind_it_{}", rewind_domain::ObjectId::generate());
        let store = rewind_store::PgStore::connect_in_schema(&base, &name)
            .await
            .expect("connect to PostgreSQL");
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        Self {
            store,
            name,
            url,
            credentials: std::sync::Mutex::new(None),
        }
    }

    /// The bootstrap credentials of the first replica started on this schema, if any.
    pub fn credentials_file(&self) -> Option<PathBuf> {
        self.credentials.lock().unwrap().clone()
    }

    /// Records where the first replica wrote its bootstrap credentials.
    pub fn remember_credentials(&self, path: &Path) {
        self.credentials
            .lock()
            .unwrap()
            .get_or_insert_with(|| path.to_owned());
    }

    /// Drops the schema and everything in it.
    pub async fn drop_now(self) {
        self.store
            .drop_schema(&self.name)
            .await
            .expect("drop the test schema");
    }
}

/// A fresh data directory under the target directory's temp area.
pub fn fresh_data_dir(name: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!(
        "rewind-it-{name}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("create data dir");
    directory
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

impl Server {
    /// Starts a server with one worker on a fresh data directory.
    pub fn start(name: &str) -> Self {
        Self::start_in(&fresh_data_dir(name), 1)
    }

    /// Starts a server on `data_dir` with `workers` background workers.
    pub fn start_in(data_dir: &Path, workers: usize) -> Self {
        Self::start_with(data_dir, workers, &[])
    }

    /// Starts a server on `data_dir` with `workers` background workers and extra flags.
    pub fn start_with(data_dir: &Path, workers: usize, extra: &[&str]) -> Self {
        Self::start_with_env(data_dir, workers, extra, &[])
    }

    /// Like [`Server::start_with`], with extra environment variables (they override `RUST_LOG`).
    pub fn start_with_env(
        data_dir: &Path,
        workers: usize,
        extra: &[&str],
        environment: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--workers",
                &workers.to_string(),
            ])
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .envs(environment.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(data_dir.join("server.log")).expect("log file"))
            .spawn()
            .expect("spawn rewind");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("rewind: listening on ") {
                    let _ = sender.send(url.to_owned());
                }
            }
        });
        // From here the server is ours to stop, even if a check below panics.
        let mut server = Self {
            child: Some(child),
            base: String::new(),
            data_dir: data_dir.to_owned(),
            credentials: Credentials::default(),
        };
        server.base = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("server announced its address");
        let text = std::fs::read_to_string(data_dir.join("bootstrap-credentials.json"))
            .expect("credentials file");
        let file: Value = serde_json::from_str(&text).unwrap();
        let field = |name: &str| file[name].as_str().unwrap().to_owned();
        server.credentials = Credentials {
            org_id: field("orgId"),
            group_id: field("groupId"),
            public_key: field("publicKey"),
            private_key: field("privateKey"),
        };
        server
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server as a crash would: SIGKILL, no shutdown of any kind.
    pub fn kill(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }

    /// The JSON log events (`--log-format json`) whose message is `message`, as their fields.
    pub fn events(&self, message: &str) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| event["fields"]["message"] == message)
            .map(|event| event["fields"].clone())
            .collect()
    }

    /// What the server logged so far (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
    }

    /// A client authenticated with the bootstrap Organization Owner key.
    pub fn owner(&self) -> Client {
        Client::digest(
            &self.base,
            &self.credentials.public_key,
            &self.credentials.private_key,
        )
    }

    /// `/api/atlas/v2/orgs/{bootstrap organization}`.
    pub fn org_path(&self) -> String {
        format!("/api/atlas/v2/orgs/{}", self.credentials.org_id)
    }

    /// `/api/atlas/v2/groups/{bootstrap group}`.
    pub fn group_path(&self) -> String {
        format!("/api/atlas/v2/groups/{}", self.credentials.group_id)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How a client authenticates.
#[derive(Clone)]
pub enum Auth {
    None,
    Digest { user: String, password: String },
    Bearer(String),
}

/// An HTTP client speaking to one server.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text))
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// Asserts an Atlas error: status, code, JSON content type, `X-Error-Code` and the body's
    /// fields; returns the body.
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "status of {}", self.text);
        let body = self.json();
        assert_eq!(body["errorCode"], code, "errorCode of {}", self.text);
        assert_eq!(body["error"], status);
        assert!(
            body["detail"].is_string()
                && body["reason"].is_string()
                && body["parameters"].is_array(),
            "{body}"
        );
        assert_eq!(self.header("content-type"), "application/json");
        assert_eq!(self.header("x-error-code"), code);
        body
    }
}

impl Client {
    /// A Digest client, answering challenges like the Go SDK: the first request goes out
    /// without credentials, body included, and is repeated with them after the 401.
    pub fn digest(base: &str, user: &str, password: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            auth: Auth::Digest {
                user: user.to_owned(),
                password: password.to_owned(),
            },
        }
    }

    /// A client with no credentials.
    pub fn anonymous(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            auth: Auth::None,
        }
    }

    /// A bearer-token client.
    pub fn bearer(base: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            auth: Auth::Bearer(token.to_owned()),
        }
    }

    /// Sends a request; `accept` may be empty to send no Accept header.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<&str>,
    ) -> Reply {
        let first = self.raw(method.clone(), path, accept, body, None).await;
        let Auth::Digest { user, password } = &self.auth else {
            return first;
        };
        if first.status != StatusCode::UNAUTHORIZED {
            return first;
        }
        let challenge = first.header("www-authenticate");
        let mut prompt = digest_auth::parse(&challenge).expect("parse challenge");
        let context = digest_auth::AuthContext::new_with_method(
            user.as_str(),
            password.as_str(),
            path,
            body.map(str::as_bytes),
            digest_auth::HttpMethod::from(method.as_str()),
        );
        let answer = prompt
            .respond(&context)
            .expect("answer challenge")
            .to_header_string();
        self.raw(method, path, accept, body, Some(answer)).await
    }

    /// Sends exactly one request with the given `Authorization` header (or the client's bearer).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<&str>,
        authorization: Option<String>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !accept.is_empty() {
            request = request.header("accept", accept);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        } else if let Auth::Bearer(token) = &self.auth {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.expect("send");
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.expect("body"),
        }
    }

    pub async fn get(&self, path: &str, accept: &str) -> Reply {
        self.send(Method::GET, path, accept, None).await
    }

    pub async fn post(&self, path: &str, accept: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, accept, Some(&body.to_string()))
            .await
    }

    pub async fn patch(&self, path: &str, accept: &str, body: &Value) -> Reply {
        self.send(Method::PATCH, path, accept, Some(&body.to_string()))
            .await
    }

    pub async fn delete(&self, path: &str, accept: &str) -> Reply {
        self.send(Method::DELETE, path, accept, None).await
    }
}

/// A cluster create body as the Atlas CLI and Terraform send it.
pub fn cluster_body(name: &str, pit: bool) -> Value {
    json!({
        "name": name,
        "clusterType": "REPLICASET",
        "backupEnabled": true,
        "pitEnabled": pit,
        "replicationSpecs": [{
            "zoneName": "Zone 1",
            "regionConfigs": [{
                "providerName": "AWS",
                "regionName": "US_EAST_1",
                "priority": 7,
                "electableSpecs": {"instanceSize": "M10", "nodeCount": 3},
                "autoScaling": {"diskGB": {"enabled": true}}
            }]
        }],
        "tags": [{"key": "team", "value": "backup"}]
    })
}

/// Creates a cluster in `group_path` and returns its name.
pub async fn create_cluster(client: &Client, group_path: &str, name: &str, pit: bool) -> String {
    let reply = client
        .post(
            &format!("{group_path}/clusters"),
            V_CLUSTER,
            &cluster_body(name, pit),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    name.to_owned()
}

/// Takes an on-demand snapshot and waits until the worker completed it; returns its id.
pub async fn completed_snapshot(client: &Client, backup_path: &str) -> String {
    let reply = client
        .post(
            &format!("{backup_path}/snapshots"),
            V2023,
            &json!({"description": "test", "retentionInDays": 3}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let snapshot = client
            .get(&format!("{backup_path}/snapshots/{id}"), V2023)
            .await
            .json();
        if snapshot["status"] == "completed" {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "snapshot never completed: {snapshot}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates `Cluster0` in the group, takes a completed snapshot of it and asks for its
/// download restore; the cluster's backup path, the snapshot's id and the job's id.
pub async fn download_job(client: &Client, group_path: &str) -> (String, String, String) {
    create_cluster(client, group_path, "Cluster0", false).await;
    let backup = format!("{group_path}/clusters/Cluster0/backup");
    let snapshot = completed_snapshot(client, &backup).await;
    let reply = client
        .post(
            &format!("{backup}/restoreJobs"),
            V2023,
            &json!({"deliveryType": "download", "snapshotId": snapshot}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    (backup, snapshot, id)
}

/// Total restore jobs of a cluster.
pub async fn restore_job_count(client: &Client, backup_path: &str) -> u64 {
    let reply = client
        .get(&format!("{backup_path}/restoreJobs"), V2023)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["totalCount"].as_u64().unwrap()
}
