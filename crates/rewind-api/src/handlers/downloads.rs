//! `GET /api/rewind/v1/downloads/{token}/{file}`: a download restore's delivery link.
//!
//! The token in the link is the credential (as a presigned URL is on Atlas): unguessable, only
//! its SHA-256 stored. A job has one file per replica set of its source (one link each, one
//! token for all). A link serves while its job is `completed` and unexpired, and for one
//! complete download of its file: requests with a `Range` resume an interrupted one, and the
//! download counts as done once a response delivered the file's last byte. `HEAD` (and every response) exposes
//! `Content-Length`, an `ETag` and the SHA-256 before a byte is read. `?format=archive` serves
//! the mongodump archive (`--archive --gzip`) instead of the tar.gz of a dump directory.

mod slice;

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rewind_domain::Timestamp;
use rewind_domain::restore_job::RestoreJobState;
use serde::Deserialize;

pub(crate) use self::slice::FileSlice;
use crate::AppState;
use crate::auth::secrets::sha256_hex;

/// The file of a packaged download, as the restore worker wrote it.
pub struct PackagedFile {
    /// Its path.
    pub path: PathBuf,
    /// Its length in bytes.
    pub size: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// The name, without extension, of a download's file: `restore-<snapshotId>` for a replica
/// set, `restore-<snapshotId>-<replicaSetName>` for each replica set of a sharded cluster.
pub fn download_stem(snapshot: &str, replica_set: Option<&str>) -> String {
    match replica_set {
        None => format!("restore-{snapshot}"),
        Some(set) => format!("restore-{snapshot}-{set}"),
    }
}

/// Where the worker packages a job's download file named `stem`, in either format.
pub fn packaged_file(downloads: &std::path::Path, job: &str, stem: &str, archive: bool) -> PathBuf {
    let extension = if archive { "archive.gz" } else { "tar.gz" };
    downloads.join(job).join(format!("{stem}.{extension}"))
}

/// Query of a download link.
#[derive(Deserialize)]
pub struct DownloadQuery {
    /// `archive` for the mongodump archive format.
    format: Option<String>,
}

/// Serves a download link.
pub async fn download(
    State(app): State<AppState>,
    method: Method,
    Path((token, file)): Path<(String, String)>,
    Query(query): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Response {
    match serve(&app, &method, &token, &file, query, &headers).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// Why a link does not serve.
enum Refusal {
    NotFound,
    Gone(&'static str),
    BadRange(u64),
    BadFormat,
    Internal(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "no such download".to_owned()),
            Self::Gone(why) => (StatusCode::GONE, why.to_owned()),
            Self::BadFormat => (
                StatusCode::BAD_REQUEST,
                "format must be `archive` or absent".to_owned(),
            ),
            Self::BadRange(size) => {
                let mut response = (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "unsatisfiable range".to_owned(),
                )
                    .into_response();
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                return response;
            }
            Self::Internal(cause) => {
                tracing::error!(%cause, "serving a download failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the download could not be served".to_owned(),
                )
            }
        };
        (status, message).into_response()
    }
}

async fn serve(
    app: &AppState,
    method: &Method,
    token: &str,
    file: &str,
    query: DownloadQuery,
    headers: &HeaderMap,
) -> Result<Response, Refusal> {
    let archive = match query.format.as_deref() {
        None => false,
        Some("archive") => true,
        Some(_) => return Err(Refusal::BadFormat),
    };
    let found = app
        .store
        .restore_job_by_download_token(&sha256_hex(token))
        .await
        .map_err(|error| Refusal::Internal(error.to_string()))?;
    let Some(link) = found else {
        return Err(Refusal::NotFound);
    };
    let job = &link.job;
    // The file must be one the job's links name (one per replica set of the source).
    let Some(stem) = job
        .delivery_urls
        .iter()
        .filter_map(|url| url.rsplit('/').next())
        .find(|name| *name == file)
        .and_then(|name| name.strip_suffix(".tar.gz"))
    else {
        return Err(Refusal::NotFound);
    };
    match job.state {
        RestoreJobState::Completed => {}
        RestoreJobState::Expired => return Err(Refusal::Gone("this download link expired")),
        _ => return Err(Refusal::Gone("this download was cancelled")),
    }
    if job.expires_at.is_none_or(|at| at <= Timestamp::now()) {
        return Err(Refusal::Gone("this download link expired"));
    }
    if link.completed_at.is_some() || link.downloaded_files.iter().any(|done| done == file) {
        return Err(Refusal::Gone("this file was already downloaded once"));
    }
    let packaged = read_packaged(&packaged_file(
        &app.downloads,
        &job.id.to_string(),
        stem,
        archive,
    ))
    .await?;
    let range = match headers.get(header::RANGE) {
        Some(value) => Some(parse_range(value, packaged.size)?),
        None => None,
    };
    let (start, end) = range.unwrap_or((0, packaged.size));
    let mut response = if method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        let completes = (end == packaged.size).then(|| Completion {
            app: app.clone(),
            job: job.id,
            file: file.to_owned(),
        });
        let slice = FileSlice::open(&packaged.path, start..end, completes)
            .await
            .map_err(|error| Refusal::Internal(error.to_string()))?;
        // The body streams the slice; a connection that can send it from the page cache takes
        // the extension instead and never polls the body.
        let mut response = Response::new(Body::from_stream(slice.clone().stream()));
        response.extensions_mut().insert(slice);
        response
    };
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        insert(
            &mut response,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{}/{}", end.saturating_sub(1), packaged.size),
        );
    }
    insert(
        &mut response,
        header::CONTENT_LENGTH,
        &(end - start).to_string(),
    );
    insert(&mut response, header::ACCEPT_RANGES, "bytes");
    insert(
        &mut response,
        header::ETAG,
        &format!("\"{}\"", packaged.sha256),
    );
    insert(
        &mut response,
        "x-content-sha256".parse().map_err(|_| Refusal::NotFound)?,
        &packaged.sha256,
    );
    insert(&mut response, header::CONTENT_TYPE, "application/gzip");
    let name = packaged
        .path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    insert(
        &mut response,
        header::CONTENT_DISPOSITION,
        &format!("attachment; filename=\"{name}\""),
    );
    Ok(response)
}

fn insert(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// Reads the size and SHA-256 the worker recorded beside a packaged file.
async fn read_packaged(path: &std::path::Path) -> Result<PackagedFile, Refusal> {
    let sidecar = path.with_extension("gz.sha256");
    let text = match tokio::fs::read_to_string(&sidecar).await {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(Refusal::NotFound);
        }
        Err(error) => return Err(Refusal::Internal(error.to_string())),
    };
    let mut fields = text.split_whitespace();
    let (Some(sha256), Some(size)) = (fields.next(), fields.next().and_then(|s| s.parse().ok()))
    else {
        return Err(Refusal::Internal(format!(
            "{} is malformed",
            sidecar.display()
        )));
    };
    Ok(PackagedFile {
        path: path.to_owned(),
        size,
        sha256: sha256.to_owned(),
    })
}

/// Parses one `bytes=a-b`, `bytes=a-` or `bytes=-n` range into `[start, end)`.
fn parse_range(value: &HeaderValue, size: u64) -> Result<(u64, u64), Refusal> {
    let text = value.to_str().map_err(|_| Refusal::BadRange(size))?;
    let spec = text.strip_prefix("bytes=").ok_or(Refusal::BadRange(size))?;
    if spec.contains(',') {
        return Err(Refusal::BadRange(size));
    }
    let (first, last) = spec.split_once('-').ok_or(Refusal::BadRange(size))?;
    let (start, end) = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let length: u64 = suffix.parse().map_err(|_| Refusal::BadRange(size))?;
            (size.saturating_sub(length), size)
        }
        (start, "") => (start.parse().map_err(|_| Refusal::BadRange(size))?, size),
        (start, last) => {
            let start: u64 = start.parse().map_err(|_| Refusal::BadRange(size))?;
            let last: u64 = last.parse().map_err(|_| Refusal::BadRange(size))?;
            (start, last.saturating_add(1).min(size))
        }
    };
    if start >= end || start >= size {
        return Err(Refusal::BadRange(size));
    }
    Ok((start, end))
}

/// What a response that delivers a file's last byte records: that file's one complete
/// download.
#[derive(Clone)]
pub(crate) struct Completion {
    app: AppState,
    job: rewind_domain::ObjectId,
    file: String,
}

impl Completion {
    /// Records the file's one complete download; both ways of sending a file end here.
    pub(crate) async fn record(&self) {
        let recorded = self
            .app
            .store
            .mark_downloaded(self.job, &self.file, Timestamp::now())
            .await;
        if let Err(error) = recorded {
            tracing::error!(%error, job = %self.job, file = %self.file, "recording a complete download failed");
        }
    }
}
