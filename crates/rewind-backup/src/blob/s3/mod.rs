//! [`S3BlobStore`]: objects in an S3 bucket (AWS or any S3-compatible service) through the
//! `object_store` crate.
//!
//! Objects are stored in the same form as in a local store (see [`super::format`]): a header
//! holding the SHA-256 of the payload, verified on every `get`. A single S3 `PUT` is atomic
//! (readers see the old object or the new one), and with the default signed payloads the
//! service checks the uploaded bytes against the request's SHA-256 before storing them.
//!
//! Configuration comes from the standard AWS environment variables, read once when the store
//! is opened: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) for an
//! S3-compatible service, and the other `AWS_*` settings `object_store` knows (web identity,
//! container credentials, instance metadata, `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, ...). Plain
//! `http://` is allowed only for an endpoint given explicitly with an `http://` URL.
//!
//! The [`super::BlobStore`] trait is synchronous and is called from blocking threads, but also
//! possibly from threads inside someone else's tokio runtime. The store therefore owns a small
//! runtime of its own, spawns each request onto it and waits on a plain channel: no
//! `block_on` ever runs on the caller's thread, so no "runtime within a runtime" panic.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload};

use super::{BlobStore, format, validate_key};
use crate::error::BlobError;

/// How long one request may take, unless `AWS_TIMEOUT` says otherwise.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// How long opening the store may take to reach the bucket.
const OPEN_PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variables whose values are secrets, removed from every error message.
const SECRET_VARS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_TOKEN",
    "AWS_SSE_CUSTOMER_KEY_BASE64",
];

/// A [`BlobStore`] in an S3 bucket under an optional key prefix (`s3://bucket/prefix`).
pub struct S3BlobStore {
    /// The bucket seen through the prefix: paths here are object keys.
    store: Arc<PrefixStore<AmazonS3>>,
    /// Always `Some` until dropped; taken by `Drop` to shut down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
    /// `s3://bucket/prefix`, for messages.
    location: String,
    /// Secret values to scrub from error messages.
    secrets: Arc<Vec<String>>,
}

impl fmt::Debug for S3BlobStore {
    // Never prints the client: its configuration holds the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Drop for S3BlobStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which panics inside another
        // runtime's async context; the store may well be dropped there.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `bucket` and the key prefix (without trailing `/`, possibly empty) of an `s3://` URL.
fn parse_location(location: &str) -> Result<(&str, &str), BlobError> {
    let invalid = |reason: &str| BlobError::Unsupported {
        location: location.into(),
        reason: reason.into(),
    };
    let rest = location
        .strip_prefix("s3://")
        .ok_or_else(|| invalid("not an s3:// URL"))?;
    if rest.contains(['?', '#']) {
        return Err(invalid("an s3:// URL takes no query or fragment"));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'));
    if !bucket_ok {
        return Err(invalid(
            "expected s3://BUCKET/PREFIX with a valid bucket name (3-63 of a-z, 0-9, '.', '-')",
        ));
    }
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() && validate_key(prefix).is_err() {
        return Err(invalid(
            "the prefix must be '/'-separated components of A-Z, a-z, 0-9 and '._=-'",
        ));
    }
    Ok((bucket, prefix))
}

/// `message` on one line (S3 error bodies are multi-line XML), without any secret value.
fn redact(message: String, secrets: &[String]) -> String {
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    secrets.iter().fold(one_line, |m, secret| {
        m.replace(secret.as_str(), "[redacted]")
    })
}

impl S3BlobStore {
    /// Opens `s3://bucket/prefix` with the configuration in the process environment (the
    /// `AWS_*` variables), and checks that the bucket answers.
    pub fn open(location: &str) -> Result<Self, BlobError> {
        Self::open_with(location, std::env::vars())
    }

    /// Opens `s3://bucket/prefix` with the configuration in `vars`, given as environment
    /// variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...; other names are ignored), and
    /// checks that the bucket answers.
    pub fn open_with(
        location: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, BlobError> {
        let (bucket, prefix) = parse_location(location)?;
        let config_error = |reason: String| BlobError::Unsupported {
            location: location.into(),
            reason,
        };
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with("AWS_"))
            .collect();
        let secrets: Vec<String> = vars
            .iter()
            .filter(|(name, value)| SECRET_VARS.contains(&name.as_str()) && value.len() >= 4)
            .map(|(_, value)| value.clone())
            .collect();
        let secrets = Arc::new(secrets);

        // object_store's 30 s per request is short for a large oplog slice on a slow link;
        // `AWS_TIMEOUT` (e.g. `120s`) overrides this.
        let mut builder = AmazonS3Builder::new()
            .with_client_options(ClientOptions::new().with_timeout(REQUEST_TIMEOUT));
        for (name, value) in &vars {
            if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        // The builder takes `AWS_ENDPOINT_URL_S3` over `AWS_ENDPOINT_URL` / `AWS_ENDPOINT`.
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
        if endpoint.as_deref().is_some_and(|e| {
            e.get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        }) {
            builder = builder.with_allow_http(true);
        }
        builder = builder.with_bucket_name(bucket);

        // reqwest is built without a bundled TLS provider: use ring, unless the process
        // already chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rewind-s3")
            .enable_all()
            .build()
            .map_err(|e| config_error(format!("cannot start the S3 client: {e}")))?;
        let s3 = {
            // The HTTP client may want a runtime around while it is built.
            let _guard = runtime.enter();
            builder
                .build()
                .map_err(|e| config_error(redact(e.to_string(), &secrets)))?
        };
        let store = Self {
            store: Arc::new(PrefixStore::new(s3, prefix)),
            runtime: Some(runtime),
            location: location.into(),
            secrets,
        };
        store.probe()?;
        Ok(store)
    }

    /// Fails unless the bucket answers a listing of the prefix (wrong bucket, endpoint or
    /// credentials are reported when the store is opened, not at the first backup).
    fn probe(&self) -> Result<(), BlobError> {
        let store = self.store.clone();
        let listed = self.run(async move {
            tokio::time::timeout(OPEN_PROBE_TIMEOUT, store.list_with_delimiter(None)).await
        })?;
        match listed {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(BlobError::Unsupported {
                location: self.location.clone(),
                reason: format!("the bucket cannot be listed: {}", self.message(&e)),
            }),
            Err(_) => Err(BlobError::Unsupported {
                location: self.location.clone(),
                reason: format!(
                    "the bucket did not answer within {}s",
                    OPEN_PROBE_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    /// Runs `future` on the store's runtime and waits for its output on this thread.
    fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, BlobError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let runtime = self.runtime.as_ref().expect("runtime lives until drop");
        runtime.spawn(async move {
            // The receiver is only gone if the caller is; nothing to report then.
            let _ = tx.send(future.await);
        });
        rx.recv().map_err(|_| BlobError::Io {
            key: "(S3 client)".into(),
            error: io::Error::other("the S3 request task ended without an answer"),
        })
    }

    /// The message of an S3 error, without any secret.
    fn message(&self, error: &object_store::Error) -> String {
        redact(error.to_string(), &self.secrets)
    }

    fn io_err(&self, key: &str, error: &object_store::Error) -> BlobError {
        BlobError::Io {
            key: key.into(),
            error: io::Error::other(self.message(error)),
        }
    }

    fn path(key: &str) -> Result<Path, BlobError> {
        validate_key(key)?;
        Path::parse(key).map_err(|_| BlobError::InvalidKey { key: key.into() })
    }

    /// Stores `raw` under `key` as is, without the checksum header: a foreign writer.
    #[cfg(test)]
    pub(super) fn put_raw(&self, key: &str, raw: &[u8]) {
        let (store, path, raw) = (self.store.clone(), Self::path(key).unwrap(), raw.to_vec());
        self.run(async move { store.put(&path, PutPayload::from(raw)).await })
            .unwrap()
            .unwrap();
    }
}

impl BlobStore for S3BlobStore {
    fn put(&self, key: &str, data: &[u8]) -> Result<(), BlobError> {
        let path = Self::path(key)?;
        let payload = PutPayload::from(format::encode(data));
        let store = self.store.clone();
        self.run(async move { store.put(&path, payload).await })?
            .map(|_| ())
            .map_err(|e| self.io_err(key, &e))
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        let path = Self::path(key)?;
        let store = self.store.clone();
        let got = self.run(async move {
            match store.get(&path).await {
                Ok(result) => result.bytes().await,
                Err(e) => Err(e),
            }
        })?;
        match got {
            Ok(bytes) => format::decode(key, bytes.into()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(BlobError::NotFound { key: key.into() })
            }
            Err(e) => Err(self.io_err(key, &e)),
        }
    }

    fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        let path = Self::path(key)?;
        let store = self.store.clone();
        match self.run(async move { store.head(&path).await })? {
            Ok(meta) => Ok(Some(format::payload_len(meta.size))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.io_err(key, &e)),
        }
    }

    fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = Self::path(key)?;
        let store = self.store.clone();
        match self.run(async move { store.delete(&path).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.io_err(key, &e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        // S3 lists by plain string prefix, but object_store lists whole path segments: list
        // the deepest "directory" the prefix names in full, then filter.
        let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let dir = if dir_part.is_empty() {
            None
        } else {
            Some(Self::path(dir_part)?)
        };
        let store = self.store.clone();
        // object_store follows the continuation tokens: this is every page.
        let listed = self.run(async move {
            store
                .list(dir.as_ref())
                .map_ok(|meta| meta.location.to_string())
                .try_collect::<Vec<String>>()
                .await
        })?;
        let mut keys = listed.map_err(|e| self.io_err(prefix, &e))?;
        // Objects whose names are not valid keys were not written by a store.
        keys.retain(|k| k.starts_with(prefix) && validate_key(k).is_ok());
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests;
