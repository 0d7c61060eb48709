//! Integration tests of rewind-backup against a real engine.

#[path = "backup/common.rs"]
mod common;
#[path = "backup/pitr.rs"]
mod pitr;
#[path = "backup/restore.rs"]
mod restore;
#[path = "backup/snapshots.rs"]
mod snapshots;
