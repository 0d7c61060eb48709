//! Retryable writes: a write command sent with a session (`lsid`) and a `txnNumber` runs at
//! most once. Drivers resend the same command with the same `txnNumber` after a network
//! error; mongod answers the resend with the first execution's reply instead of writing
//! again, and refuses an older `txnNumber` (225 TransactionTooOld). Without this, a retried
//! `$inc` applied twice and a retried insert failed with a duplicate key.
//!
//! Each session's operations run one at a time (mongod checks a session out the same way),
//! so a resend that arrives while the first attempt still runs waits for its reply. Replies
//! are kept in memory for the session timeout: a resend after a restart of the server runs
//! the write again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bson::{Bson, Document};
use rewind_wire::{CommandRequest, Reply};

use crate::error::{CommandError, Result};

/// How long an idle session's record is kept: mongod's `logicalSessionTimeoutMinutes`.
const SESSION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How often idle sessions are swept (on the next retryable write after this long).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Most bytes of replies kept for resends (a findAndModify's document or a bulkWrite's
/// results can be megabytes). Past it a reply is not kept, and its resend gets 217 rather
/// than run the write again.
const MAX_KEPT_BYTES: usize = 256 << 20;

/// The commands whose statements are retryable.
const RETRYABLE: &[&str] = &["insert", "update", "delete", "findAndModify", "bulkWrite"];

/// The session and transaction number of a retryable write.
pub struct RetryKey {
    /// The `lsid` document's bytes (its `id`, and `uid` when authenticated).
    session: Vec<u8>,
    /// Its `id`, for messages.
    session_id: String,
    txn_number: i64,
}

impl RetryKey {
    /// The key of `request` when it is a retryable write (one of [`RETRYABLE`] with both
    /// `lsid` and `txnNumber`); `None` for every other command.
    pub fn of(request: &CommandRequest) -> Result<Option<Self>> {
        let body = &request.body;
        if !RETRYABLE.contains(&request.name.as_str()) {
            return Ok(None);
        }
        let (Some(lsid), Some(txn)) = (body.get("lsid"), body.get("txnNumber")) else {
            return Ok(None);
        };
        let txn_number = match txn {
            Bson::Int64(n) => *n,
            Bson::Int32(n) => i64::from(*n),
            other => {
                return Err(CommandError::type_mismatch(format!(
                    "BSON field 'OperationSessionInfo.txnNumber' is the wrong type '{}', \
                     expected type 'long'",
                    crate::options::type_name(other)
                )));
            }
        };
        let Bson::Document(lsid) = lsid else {
            return Err(CommandError::type_mismatch(
                "BSON field 'OperationSessionInfo.lsid' is the wrong type, expected type 'object'",
            ));
        };
        let session_id = match lsid.get("id") {
            Some(Bson::Binary(id)) => id.bytes.iter().map(|b| format!("{b:02x}")).collect(),
            _ => return Err(CommandError::new_missing("OperationSessionInfo.lsid", "id")),
        };
        Ok(Some(Self {
            session: lsid
                .to_vec()
                .map_err(|e| CommandError::bad_value(e.to_string()))?,
            session_id,
            txn_number,
        }))
    }
}

/// What is known of a session's latest retryable write.
#[derive(Default)]
struct SessionWrites {
    /// Its `txnNumber`.
    txn_number: Option<i64>,
    /// The reply it got, once it ran to completion.
    reply: Option<Document>,
    /// The BSON size of `reply`, counted in [`RetryableWrites::kept_bytes`].
    reply_bytes: usize,
    /// It may have written but its reply is not kept: it was abandoned before its reply was
    /// known (its connection's task was cancelled at shutdown), or the reply was over budget.
    outcome_unknown: bool,
    last_used: Option<Instant>,
}

/// The retryable-write records of every session of one replica set.
#[derive(Default)]
pub struct RetryableWrites {
    sessions: Mutex<HashMap<Vec<u8>, Arc<tokio::sync::Mutex<SessionWrites>>>>,
    last_sweep: Mutex<Option<Instant>>,
    /// Bytes of the replies kept, bounded by [`MAX_KEPT_BYTES`].
    kept_bytes: AtomicUsize,
}

impl RetryableWrites {
    fn session(&self, key: &[u8]) -> Arc<tokio::sync::Mutex<SessionWrites>> {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let mut last_sweep = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
        if last_sweep.is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY) {
            *last_sweep = Some(now);
            // A session someone holds (running, or about to lock it) is kept; so is one used
            // within the timeout.
            sessions.retain(|_, session| {
                if Arc::strong_count(session) > 1 {
                    return true;
                }
                let Ok(state) = session.try_lock() else {
                    return true;
                };
                let keep = state
                    .last_used
                    .is_none_or(|at| now.duration_since(at) < SESSION_TIMEOUT);
                if !keep {
                    self.kept_bytes
                        .fetch_sub(state.reply_bytes, Ordering::Relaxed);
                }
                keep
            });
        }
        sessions.entry(key.to_vec()).or_default().clone()
    }

    /// Runs `execute` unless this session already ran `key`'s transaction number, whose
    /// reply is then returned again.
    pub async fn run(
        &self,
        key: RetryKey,
        execute: impl Future<Output = Option<Result<Reply>>>,
    ) -> Option<Result<Reply>> {
        let session = self.session(&key.session);
        let mut state = session.lock().await;
        state.last_used = Some(Instant::now());
        match state.txn_number {
            Some(latest) if key.txn_number < latest => {
                return Some(Err(CommandError::transaction_too_old(format!(
                    "Retryable write with txnNumber {} is prohibited on session {} because a \
                     newer retryable write with txnNumber {latest} has already started on this \
                     session.",
                    key.txn_number, key.session_id
                ))));
            }
            Some(latest) if key.txn_number == latest => {
                if let Some(reply) = &state.reply {
                    return Some(Ok(Reply::Document(reply.clone())));
                }
                if state.outcome_unknown {
                    return Some(Err(CommandError::incomplete_history(format!(
                        "Incomplete history detected for transaction {} on session {}: its \
                         first attempt may have written, and its reply was not kept (the \
                         attempt was interrupted, or the replies kept hit their memory bound)",
                        key.txn_number, key.session_id
                    ))));
                }
                // The first attempt failed before writing anything: run it again.
            }
            _ => {}
        }
        state.txn_number = Some(key.txn_number);
        state.reply = None;
        self.kept_bytes
            .fetch_sub(std::mem::take(&mut state.reply_bytes), Ordering::Relaxed);
        // Stays set if this future is dropped while the write runs.
        state.outcome_unknown = true;
        let outcome = execute.await;
        state.outcome_unknown = false;
        if let Some(Ok(Reply::Document(reply))) = &outcome {
            // A reply that does not serialize is not kept (its size counts as over budget).
            let bytes = reply.to_vec().map_or(MAX_KEPT_BYTES + 1, |b| b.len());
            let kept = self.kept_bytes.fetch_add(bytes, Ordering::Relaxed);
            if kept + bytes <= MAX_KEPT_BYTES {
                state.reply = Some(reply.clone());
                state.reply_bytes = bytes;
            } else {
                // Not kept: a resend cannot be answered, and must not write again.
                self.kept_bytes.fetch_sub(bytes, Ordering::Relaxed);
                state.outcome_unknown = true;
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    fn key(txn_number: i64) -> RetryKey {
        RetryKey {
            session: vec![1, 2, 3],
            session_id: "010203".into(),
            txn_number,
        }
    }

    fn code(outcome: Option<Result<Reply>>) -> i32 {
        match outcome {
            Some(Err(e)) => e.code(),
            _ => 0,
        }
    }

    #[tokio::test]
    async fn an_abandoned_attempt_is_not_run_again() {
        let writes = RetryableWrites::default();
        // The connection's task is cancelled while the write runs: whether it wrote is
        // unknown, so a resend is refused rather than run a second time.
        let abandoned = writes.run(key(1), std::future::pending());
        let _ = tokio::time::timeout(Duration::from_millis(10), abandoned).await;
        assert_eq!(code(writes.run(key(1), async { None }).await), 217);
        // The next transaction number runs, and its resend answers its reply.
        let reply = || async { Some(Ok(Reply::Document(doc! {"n": 1, "ok": 1.0}))) };
        assert!(matches!(writes.run(key(2), reply()).await, Some(Ok(_))));
        let again = writes.run(key(2), async { None }).await;
        assert!(matches!(again, Some(Ok(Reply::Document(d))) if d == doc! {"n": 1, "ok": 1.0}));
        assert_eq!(code(writes.run(key(1), reply()).await), 225);
    }
}
