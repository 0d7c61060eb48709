//! A read's `maxTimeMS`, carried from the command into the blocking thread that runs its
//! engine calls and checked between scan chunks, so that a read past its limit stops there.

use std::cell::Cell;
use std::time::Instant;

use crate::error::{CommandError, Result};

tokio::task_local! {
    /// The deadline of the command this task runs.
    static COMMAND: Instant;
}

thread_local! {
    /// The deadline of the engine call this blocking thread runs.
    static CALL: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `command` with `deadline` as its limit (see [`within`]).
pub async fn scope<F: Future>(deadline: Instant, command: F) -> F::Output {
    COMMAND.scope(deadline, command).await
}

/// The current command's deadline, if it has one.
pub fn current() -> Option<Instant> {
    COMMAND.try_with(|d| *d).ok()
}

/// Runs `call` on this (blocking) thread under `deadline`.
pub fn within<T>(deadline: Option<Instant>, call: impl FnOnce() -> T) -> T {
    let previous = CALL.replace(deadline);
    let out = call();
    CALL.set(previous);
    out
}

/// Fails with MaxTimeMSExpired once the engine call's deadline has passed.
pub fn check() -> Result<()> {
    match CALL.get() {
        Some(deadline) if Instant::now() >= deadline => Err(CommandError::max_time_expired()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_call_past_its_deadline_fails_its_next_check() {
        let past = Instant::now();
        let later = past + Duration::from_secs(3600);
        assert!(check().is_ok(), "no deadline, no limit");
        let codes = within(Some(past), || {
            let inner = within(Some(later), check).map_err(|e| e.code());
            (check().map_err(|e| e.code()), inner)
        });
        assert_eq!(codes, (Err(50), Ok(())));
        assert!(check().is_ok(), "the previous deadline is restored");
    }

    #[tokio::test]
    async fn a_command_carries_its_deadline_to_its_task() {
        assert_eq!(current(), None);
        let deadline = Instant::now();
        assert_eq!(scope(deadline, async { current() }).await, Some(deadline));
    }
}
