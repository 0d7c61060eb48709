//! The time `$$NOW` reads: one value for a whole command, as mongod fixes it when the command
//! starts, however many documents and expressions read it.

use std::cell::Cell;

use bson::DateTime;

thread_local! {
    static NOW: Cell<Option<DateTime>> = const { Cell::new(None) };
}

/// Runs `f` (synchronous work of one command) with `$$NOW` reading `now`.
pub fn with_now<T>(now: DateTime, f: impl FnOnce() -> T) -> T {
    let outer = NOW.replace(Some(now));
    let out = f();
    NOW.set(outer);
    out
}

/// `$$NOW`: the time [`with_now`] set, or the clock outside of one.
pub(crate) fn now() -> DateTime {
    NOW.get().unwrap_or_else(DateTime::now)
}
