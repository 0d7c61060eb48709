//! The cursor manager: open cursors by id, checkout for `getMore`, idle expiry, kills.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::source::Source;

/// How long a cursor may stay unused before it is discarded (mongod's
/// `cursorTimeoutMillis` default).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How long a `noCursorTimeout` cursor may stay idle: the session timeout mongod advertises
/// (`logicalSessionTimeoutMinutes`), after which it kills such cursors with their session.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// An open cursor: where its results come from and the namespace it belongs to.
pub struct Cursor {
    /// Namespace reported in replies and checked by `getMore`.
    pub ns: String,
    /// The remaining results or the position to resume from.
    pub source: Source,
    /// Tailable cursors stay open at the end of the data (capped collections, the oplog).
    pub tailable: bool,
    /// With `tailable`, `getMore` waits for new data up to its `maxTimeMS`.
    pub await_data: bool,
    /// `noCursorTimeout`: never dropped for being idle (only exhausted, killed or failed).
    pub no_timeout: bool,
}

enum Slot {
    Idle {
        cursor: Box<Cursor>,
        since: Instant,
    },
    /// Checked out by a running `getMore`.
    Busy,
}

/// Why a cursor could not be checked out.
#[derive(Debug, PartialEq, Eq)]
pub enum CheckoutError {
    /// No such cursor (never existed, exhausted, killed or expired).
    NotFound,
    /// Another `getMore` is running on it.
    InUse,
}

/// The result of killing one cursor, as `killCursors` reports it.
#[derive(Debug, PartialEq, Eq)]
pub enum Killed {
    /// The cursor existed and is gone.
    Killed,
    /// No such cursor.
    NotFound,
}

/// All open cursors of one replica set.
#[derive(Default)]
pub struct CursorManager {
    slots: Mutex<HashMap<i64, Slot>>,
    hasher: RandomState,
    counter: AtomicU64,
}

impl CursorManager {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Slot>> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts
        // and removes), so a poisoned lock is still usable.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh id: positive (drivers print them), non-zero (0 means "exhausted"), unguessable.
    fn new_id(&self, taken: &HashMap<i64, Slot>) -> i64 {
        loop {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let id = (self.hasher.hash_one(n) & (i64::MAX as u64)) as i64;
            if id != 0 && !taken.contains_key(&id) {
                return id;
            }
        }
    }

    /// Registers an open cursor and returns its id.
    pub fn register(&self, cursor: Cursor) -> i64 {
        self.register_at(cursor, Instant::now())
    }

    fn register_at(&self, cursor: Cursor, now: Instant) -> i64 {
        let mut slots = self.slots();
        sweep(&mut slots, now);
        let id = self.new_id(&slots);
        slots.insert(
            id,
            Slot::Idle {
                cursor: Box::new(cursor),
                since: now,
            },
        );
        id
    }

    /// Takes a cursor out for a `getMore`; give it back with [`CursorManager::checkin`].
    pub fn checkout(&self, id: i64) -> Result<Box<Cursor>, CheckoutError> {
        self.checkout_at(id, Instant::now())
    }

    fn checkout_at(&self, id: i64, now: Instant) -> Result<Box<Cursor>, CheckoutError> {
        let mut slots = self.slots();
        sweep(&mut slots, now);
        match slots.insert(id, Slot::Busy) {
            Some(Slot::Idle { cursor, .. }) => Ok(cursor),
            Some(Slot::Busy) => Err(CheckoutError::InUse),
            None => {
                slots.remove(&id);
                Err(CheckoutError::NotFound)
            }
        }
    }

    /// Returns a checked-out cursor that still has results. A cursor killed meanwhile stays
    /// dead.
    pub fn checkin(&self, id: i64, cursor: Box<Cursor>) {
        let mut slots = self.slots();
        if let Some(slot @ Slot::Busy) = slots.get_mut(&id) {
            *slot = Slot::Idle {
                cursor,
                since: Instant::now(),
            };
        }
    }

    /// Forgets a checked-out cursor that is exhausted or failed.
    pub fn release(&self, id: i64) {
        self.slots().remove(&id);
    }

    /// Kills one cursor (also one a `getMore` is running on: its results are dropped).
    pub fn kill(&self, id: i64) -> Killed {
        match self.slots().remove(&id) {
            Some(_) => Killed::Killed,
            None => Killed::NotFound,
        }
    }

    /// The namespace of an open, idle cursor (for `killCursors` checks).
    pub fn ns_of(&self, id: i64) -> Option<String> {
        match self.slots().get(&id) {
            Some(Slot::Idle { cursor, .. }) => Some(cursor.ns.clone()),
            _ => None,
        }
    }

    /// Number of open cursors (for tests and stats).
    pub fn len(&self) -> usize {
        self.slots().len()
    }

    /// Whether no cursor is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops cursors idle for longer than [`IDLE_TIMEOUT`], or `noCursorTimeout` ones idle for
/// longer than [`SESSION_IDLE_TIMEOUT`] (mongod kills those when their session expires). Run on
/// every register/checkout, which is enough to bound memory without a background task.
fn sweep(slots: &mut HashMap<i64, Slot>, now: Instant) {
    slots.retain(|_, slot| match slot {
        Slot::Idle { cursor, since } => {
            let limit = if cursor.no_timeout {
                SESSION_IDLE_TIMEOUT
            } else {
                IDLE_TIMEOUT
            };
            now.saturating_duration_since(*since) < limit
        }
        Slot::Busy => true,
    });
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use bson::rawdoc;

    use super::*;

    fn cursor(ns: &str) -> Cursor {
        Cursor {
            ns: ns.into(),
            source: Source::Buffered(VecDeque::from([rawdoc! {"a": 1}])),
            tailable: false,
            await_data: false,
            no_timeout: false,
        }
    }

    #[test]
    fn ids_are_positive_unique_and_checkout_round_trips() {
        let m = CursorManager::default();
        let a = m.register(cursor("d.a"));
        let b = m.register(cursor("d.b"));
        assert!(a > 0 && b > 0 && a != b);
        let c = m.checkout(a).ok().map(|c| c.ns.clone());
        assert_eq!(c.as_deref(), Some("d.a"));
        assert_eq!(m.checkout(a).err(), Some(CheckoutError::InUse));
        m.checkin(a, Box::new(cursor("d.a")));
        assert_eq!(m.ns_of(a).as_deref(), Some("d.a"));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn kill_reports_found_and_not_found_and_wins_over_busy() {
        let m = CursorManager::default();
        let a = m.register(cursor("d.a"));
        let taken = m.checkout(a);
        assert!(taken.is_ok());
        assert_eq!(m.kill(a), Killed::Killed);
        if let Ok(c) = taken {
            m.checkin(a, c);
        }
        assert_eq!(m.kill(a), Killed::NotFound);
        assert_eq!(m.checkout(a).err(), Some(CheckoutError::NotFound));
        assert!(m.is_empty());
    }

    #[test]
    fn idle_cursors_expire_after_ten_minutes() {
        let m = CursorManager::default();
        let start = Instant::now();
        let a = m.register_at(cursor("d.a"), start);
        let later = start + IDLE_TIMEOUT - Duration::from_secs(1);
        let b = m.register_at(cursor("d.b"), later);
        let kept = m.register_at(
            Cursor {
                no_timeout: true,
                ..cursor("d.c")
            },
            start,
        );
        assert_eq!(m.len(), 3);
        let expired = start + IDLE_TIMEOUT + Duration::from_secs(1);
        assert_eq!(
            m.checkout_at(a, expired).err(),
            Some(CheckoutError::NotFound)
        );
        assert!(m.checkout_at(b, expired).is_ok());
        assert!(m.checkout_at(kept, start + IDLE_TIMEOUT * 2).is_ok());
        // ... until its session would have expired.
        let kept = m.register_at(
            Cursor {
                no_timeout: true,
                ..cursor("d.c")
            },
            start,
        );
        assert_eq!(
            m.checkout_at(kept, start + SESSION_IDLE_TIMEOUT + Duration::from_secs(1))
                .err(),
            Some(CheckoutError::NotFound)
        );
    }
}
