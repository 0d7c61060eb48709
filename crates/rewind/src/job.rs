//! Runs one leased job step on a blocking thread while keeping its lease alive.
//!
//! The step checks a cancel flag at its checkpoints. The runner renews the lease every third
//! of its length (the heartbeat); if the store says the lease is gone, another worker owns the
//! job and this one stops at the next checkpoint. On shutdown the step is asked to stop at its
//! next checkpoint and gets a grace period to reach it; a step that does not is abandoned and
//! its lease released, which is safe because every step is idempotent.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rewind_store::StoreError;
use tokio::sync::watch;
use tokio::time::Instant;

/// Where a step stopped.
#[derive(Debug)]
pub enum Checkpoint<T> {
    /// The job's work is done, with its result.
    Done(T),
    /// The step saw the cancel flag at a checkpoint and stopped with nothing half-applied.
    Cancelled,
}

/// How a run ended.
#[derive(Debug)]
pub enum Ended<T> {
    /// The step returned.
    Finished(anyhow::Result<Checkpoint<T>>),
    /// Another worker holds the job now; this one must not record anything.
    LeaseLost,
    /// Shutdown's grace period ran out before the step reached a checkpoint.
    ShutDown,
}

/// The shortest heartbeat period, so a tiny lease does not turn into a busy loop.
const MIN_HEARTBEAT: Duration = Duration::from_millis(100);

/// Runs `step` on a blocking thread, calling `heartbeat` every `every` until it returns.
pub async fn run<T, S, H, F>(
    step: S,
    heartbeat: H,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) -> Ended<T>
where
    T: Send + 'static,
    S: FnOnce(&AtomicBool) -> std::io::Result<Checkpoint<T>> + Send + 'static,
    H: Fn() -> F,
    F: Future<Output = Result<bool, StoreError>>,
{
    let cancel = Arc::new(AtomicBool::new(false));
    let mut handle = tokio::task::spawn_blocking({
        let cancel = cancel.clone();
        move || step(&cancel)
    });
    let mut ticker = tokio::time::interval_at(
        Instant::now() + every.max(MIN_HEARTBEAT),
        every.max(MIN_HEARTBEAT),
    );
    let mut deadline = None;
    if *stop.borrow() {
        cancel.store(true, Ordering::Relaxed);
        deadline = Some(Instant::now() + grace);
    }
    loop {
        tokio::select! {
            joined = &mut handle => {
                return Ended::Finished(match joined {
                    Ok(outcome) => outcome.map_err(anyhow::Error::from),
                    Err(error) => Err(anyhow::anyhow!("the job step panicked: {error}")),
                });
            }
            _ = ticker.tick() => match heartbeat().await {
                Ok(true) => {}
                Ok(false) => {
                    cancel.store(true, Ordering::Relaxed);
                    return Ended::LeaseLost;
                }
                // The store may be back before the lease lapses; if not, the reaper decides.
                Err(error) => tracing::warn!(%error, "renewing a job lease failed"),
            },
            _ = stop.changed(), if deadline.is_none() => {
                cancel.store(true, Ordering::Relaxed);
                deadline = Some(Instant::now() + grace);
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                return Ended::ShutDown;
            }
        }
    }
}

/// Waits `delay` in short slices; false when cancelled meanwhile (a checkpoint).
pub fn pause(delay: Duration, cancel: &AtomicBool) -> bool {
    let until = std::time::Instant::now() + delay;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// How long to wait before attempt `attempt + 1` after a transient failure: 1 s, 2 s, 4 s, …
/// up to a minute.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    fn never_stops() -> watch::Receiver<bool> {
        let (sender, receiver) = watch::channel(false);
        std::mem::forget(sender);
        receiver
    }

    #[tokio::test]
    async fn heartbeats_while_the_step_runs() {
        let beats = Arc::new(AtomicU32::new(0));
        let ended = run(
            |cancel: &AtomicBool| {
                assert!(pause(Duration::from_millis(450), cancel));
                Ok(Checkpoint::Done(7))
            },
            || {
                let beats = beats.clone();
                async move {
                    beats.fetch_add(1, Ordering::Relaxed);
                    Ok(true)
                }
            },
            Duration::from_millis(100),
            never_stops(),
            Duration::from_secs(1),
        )
        .await;
        assert!(matches!(ended, Ended::Finished(Ok(Checkpoint::Done(7)))));
        assert!(
            beats.load(Ordering::Relaxed) >= 3,
            "renewed during the step"
        );
    }

    #[tokio::test]
    async fn a_lost_lease_stops_the_step_at_its_checkpoint() {
        let stopped = Arc::new(AtomicBool::new(false));
        let ended = run(
            {
                let stopped = stopped.clone();
                move |cancel: &AtomicBool| {
                    let finished = pause(Duration::from_secs(30), cancel);
                    stopped.store(!finished, Ordering::Relaxed);
                    Ok(Checkpoint::Done(()))
                }
            },
            || async { Ok(false) },
            Duration::from_millis(100),
            never_stops(),
            Duration::from_secs(1),
        )
        .await;
        assert!(matches!(ended, Ended::LeaseLost));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            stopped.load(Ordering::Relaxed),
            "the step saw the cancel flag"
        );
    }

    #[tokio::test]
    async fn shutdown_waits_for_a_checkpoint_within_the_grace() {
        let (sender, receiver) = watch::channel(false);
        let run = tokio::spawn(run(
            |cancel: &AtomicBool| {
                if pause(Duration::from_secs(30), cancel) {
                    Ok(Checkpoint::Done(()))
                } else {
                    Ok(Checkpoint::Cancelled)
                }
            },
            || async { Ok(true) },
            Duration::from_secs(10),
            receiver,
            Duration::from_secs(5),
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        sender.send(true).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(2), run)
            .await
            .expect("stopped at the checkpoint, well within the grace")
            .unwrap();
        assert!(matches!(ended, Ended::Finished(Ok(Checkpoint::Cancelled))));
    }

    #[tokio::test]
    async fn shutdown_abandons_a_step_past_the_grace() {
        let (sender, receiver) = watch::channel(false);
        let run = tokio::spawn(run(
            |_: &AtomicBool| {
                // A step with no checkpoint in sight.
                std::thread::sleep(Duration::from_secs(2));
                Ok(Checkpoint::Done(()))
            },
            || async { Ok(true) },
            Duration::from_secs(10),
            receiver,
            Duration::from_millis(200),
        ));
        sender.send(true).unwrap();
        let ended = run.await.unwrap();
        assert!(matches!(ended, Ended::ShutDown));
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(40), Duration::from_secs(60));
    }
}
