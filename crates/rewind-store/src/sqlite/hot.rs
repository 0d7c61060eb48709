//! Hot reads served from memory.
//!
//! The store's process owns its SQLite file (see [`super::SqliteStore::open`]) and every
//! write goes through the one writer connection, so the writer knows exactly when each table
//! changes: SQLite's update hook marks the tables a write touches, and once the group commit
//! is durable each marked table's generation is bumped, before any writer is answered.
//!
//! A cached read remembers the sum of the generations of the tables it read, taken *before*
//! it read them, and is served again only while that sum is unchanged. So a cached value is
//! never older than the last acknowledged write: a read racing a commit stores a stamp the
//! commit's bump invalidates. Only point lookups on the request path are cached; lists,
//! counts and everything the job runner reads go to SQLite.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use rewind_domain::cluster::Cluster;
use rewind_domain::group::Group;
use rewind_domain::restore_job::RestoreJob;
use rewind_domain::schedule::BackupSchedule;
use rewind_domain::snapshot::Snapshot;
use rewind_domain::{ClusterName, ObjectId};

use crate::{ApiKey, BearerGrant};

/// Tables as bits of a mask; a table not listed here shares the last bit.
const TABLES: [&str; 9] = [
    "groups",
    "clusters",
    "schedules",
    "snapshots",
    "restore_jobs",
    "access_tokens",
    "service_accounts",
    "orgs",
    "api_keys",
];

/// The mask of the named tables.
pub(super) fn mask(names: &[&str]) -> u32 {
    names.iter().fold(0, |mask, name| mask | bit_of(name))
}

fn bit_of(table: &str) -> u32 {
    let index = TABLES
        .iter()
        .position(|known| *known == table)
        .unwrap_or(TABLES.len());
    1 << index
}

/// Per-table change counters, bumped by the writer after each durable commit.
#[derive(Default)]
pub(super) struct Generations {
    /// Tables written since the last publish (set from SQLite's update hook).
    pending: AtomicU32,
    counters: [AtomicU64; TABLES.len() + 1],
}

impl Generations {
    /// Called by the update hook for every row a write inserts, updates or deletes.
    pub(super) fn touched(&self, table: &str) {
        self.pending.fetch_or(bit_of(table), Ordering::Relaxed);
    }

    /// Called after a commit has ended (durably or not): every table touched since the last
    /// call gets a new generation. Rolled-back writes are counted too, which only costs a
    /// cache miss.
    pub(super) fn publish(&self) {
        let touched = self.pending.swap(0, Ordering::AcqRel);
        for (index, counter) in self.counters.iter().enumerate() {
            if touched & (1 << index) != 0 {
                counter.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// A value that changes whenever any table of `mask` gets a new generation.
    fn stamp(&self, mask: u32) -> u64 {
        self.counters
            .iter()
            .enumerate()
            .filter(|(index, _)| mask & (1 << index) != 0)
            .fold(0u64, |sum, (_, counter)| {
                sum.wrapping_add(counter.load(Ordering::Acquire))
            })
    }
}

/// Entries kept per cache; past it the cache starts over (entries are cheap to rebuild and
/// most are stale by then).
const CAPACITY: usize = 8192;

/// Results of one kind of point lookup, each valid while its tables are unchanged.
pub(super) struct HotCache<K, V> {
    mask: u32,
    /// Read-mostly: hits share the lock, so request threads on different cores do not queue.
    entries: RwLock<HashMap<K, (u64, V)>>,
}

impl<K: Eq + Hash, V: Clone> HotCache<K, V> {
    /// A cache of reads that depend on the tables in `mask`.
    pub(super) fn new(mask: u32) -> Self {
        Self {
            mask,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The cached result for `key` if its tables did not change since it was read, else the
    /// result of `read`, remembered.
    pub(super) fn get_or_read<E>(
        &self,
        generations: &Generations,
        key: K,
        read: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        // Taken before reading: a commit landing during the read makes this stamp stale.
        let stamp = generations.stamp(self.mask);
        // A poisoned map is still a valid map: entries are inserted whole.
        if let Some((cached_stamp, value)) = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            && *cached_stamp == stamp
        {
            return Ok(value.clone());
        }
        let value = read()?;
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, (stamp, value.clone()));
        Ok(value)
    }
}

/// The cached point lookups of the request path, and the generations that validate them.
pub(super) struct HotReads {
    pub(super) generations: std::sync::Arc<Generations>,
    pub(super) groups: HotCache<ObjectId, Option<Group>>,
    pub(super) clusters: HotCache<(ObjectId, ClusterName), Option<Cluster>>,
    pub(super) schedules: HotCache<ObjectId, Option<BackupSchedule>>,
    pub(super) snapshots: HotCache<(ObjectId, ObjectId), Option<Snapshot>>,
    pub(super) bearer_grants: HotCache<String, Option<BearerGrant>>,
    pub(super) api_keys: HotCache<String, Option<ApiKey>>,
    pub(super) restore_jobs:
        HotCache<(ObjectId, ClusterName, ObjectId), Option<(RestoreJob, ObjectId)>>,
}

impl HotReads {
    pub(super) fn new(generations: std::sync::Arc<Generations>) -> Self {
        Self {
            generations,
            groups: HotCache::new(mask(&["groups"])),
            clusters: HotCache::new(mask(&["clusters"])),
            schedules: HotCache::new(mask(&["schedules"])),
            snapshots: HotCache::new(mask(&["snapshots"])),
            bearer_grants: HotCache::new(mask(&["access_tokens", "service_accounts"])),
            api_keys: HotCache::new(mask(&["api_keys"])),
            restore_jobs: HotCache::new(mask(&["restore_jobs", "groups", "clusters"])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_name_known_tables() {
        assert_eq!(mask(&["groups"]), 1);
        assert_eq!(mask(&["groups", "clusters"]), 3);
        assert_eq!(bit_of("replicas"), 1 << TABLES.len());
    }

    #[test]
    fn entries_live_until_one_of_their_tables_changes() {
        let generations = Generations::default();
        let cache = HotCache::<u8, u32>::new(mask(&["clusters", "groups"]));
        let mut reads = 0;
        let mut read = |value| {
            reads += 1;
            Ok::<_, ()>(value)
        };
        assert_eq!(cache.get_or_read(&generations, 1, || read(10)), Ok(10));
        assert_eq!(cache.get_or_read(&generations, 1, || read(11)), Ok(10));
        // A write to another table keeps the entry.
        generations.touched("restore_jobs");
        generations.publish();
        assert_eq!(cache.get_or_read(&generations, 1, || read(12)), Ok(10));
        // A write pending but not yet published keeps it too: its commit is not acknowledged.
        generations.touched("groups");
        assert_eq!(cache.get_or_read(&generations, 1, || read(13)), Ok(10));
        generations.publish();
        assert_eq!(cache.get_or_read(&generations, 1, || read(14)), Ok(14));
        assert_eq!(reads, 2);
    }

    #[test]
    fn failed_reads_are_not_cached() {
        let generations = Generations::default();
        let cache = HotCache::<u8, u32>::new(mask(&["groups"]));
        assert_eq!(
            cache.get_or_read(&generations, 1, || Err("down")),
            Err("down")
        );
        assert_eq!(
            cache.get_or_read(&generations, 1, || Ok::<_, &str>(5)),
            Ok(5)
        );
    }
}
