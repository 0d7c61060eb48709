//! The writer thread and its group commits.

use std::sync::Mutex;

use rusqlite::{Connection, TransactionBehavior};

use super::{Answer, WriteJob, execute, hot, lock};

/// Writes committed together at most.
const MAX_GROUP_COMMIT: usize = 256;

/// The writer thread: commits queued writes in groups until the store is dropped.
pub(super) fn run(
    writer: &Mutex<Connection>,
    queue: &std::sync::mpsc::Receiver<WriteJob>,
    generations: &hot::Generations,
) {
    while let Ok(first) = queue.recv() {
        commit_group(&mut lock(writer), first, queue, generations);
    }
}

/// Runs `first` and every write queued after it in one transaction, each in its own
/// savepoint unless it is a one-statement write, commits, then answers everyone.
///
/// Writes queued while the group runs join it too, until the queue is empty (or the group is
/// full): they share this commit's sync instead of waiting for the next one, and the sync is
/// most of a group's cost. A write whose savepoint cannot be taken, or that panics, is
/// dropped: its caller is told the write was not committed. A one-statement write that
/// panics, or whose failure left something behind, drops the whole group (see
/// [`run_one_statement`]).
fn commit_group(
    connection: &mut Connection,
    first: WriteJob,
    queue: &std::sync::mpsc::Receiver<WriteJob>,
    generations: &hot::Generations,
) {
    let transaction = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(transaction) => transaction,
        Err(error) => {
            tracing::error!(%error, "cannot begin a write transaction");
            return;
        }
    };
    let mut answers = Vec::new();
    let mut taken = 0;
    let mut next = Some(first);
    while let Some(job) = next.take() {
        taken += 1;
        let ran = if job.savepoint {
            run_in_savepoint(&transaction, job)
        } else {
            run_one_statement(&transaction, job)
        };
        match ran {
            Ok(Some(answer)) => answers.push(answer),
            Ok(None) => {}
            Err(()) => {
                // The transaction is in an unknown state: nobody in it is told it committed.
                drop(answers);
                return;
            }
        }
        if taken < MAX_GROUP_COMMIT {
            next = queue.try_recv().ok();
        }
    }
    let committed = transaction.commit().map_err(|error| {
        tracing::error!(%error, "group commit failed");
        error.to_string()
    });
    // Before anyone is answered: a caller told its write is done must not read older data.
    generations.publish();
    for answer in answers {
        answer(committed.clone());
    }
}

/// Runs one write inside its own savepoint and returns how to answer its caller (`None` when
/// it panicked or could not start: its caller learns it was not committed). `Err` when a
/// failed write could not be rolled back, which leaves the whole group unusable.
fn run_in_savepoint(connection: &Connection, job: WriteJob) -> Result<Option<Answer>, ()> {
    // Savepoints through cached statements: rusqlite's `savepoint()` parses its SQL anew for
    // every write.
    if let Err(error) = execute(connection, "SAVEPOINT write", []) {
        tracing::error!(%error, "cannot take a savepoint");
        return Ok(None);
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.work)(connection)));
    let kept = match &outcome {
        Ok((true, _)) => execute(connection, "RELEASE write", []).map(|_| true),
        _ => Ok(false),
    };
    let kept = kept.unwrap_or_else(|error| {
        tracing::error!(%error, "cannot release a savepoint");
        false
    });
    if !kept {
        // A failed, panicked or unreleasable write is rolled back alone.
        let rolled_back = execute(connection, "ROLLBACK TO write", [])
            .and_then(|_| execute(connection, "RELEASE write", []));
        if let Err(error) = rolled_back {
            tracing::error!(%error, "cannot roll a write back; dropping the whole group");
            return Err(());
        }
    }
    Ok(match outcome {
        Ok((true, answer)) if kept => Some(answer),
        // Rolled back above: the caller gets the write's own error.
        Ok((false, answer)) => Some(answer),
        Ok((true, _)) => None,
        Err(_) => {
            tracing::error!("a write panicked; rolled back");
            None
        }
    })
}

/// Runs a write whose only change is its last statement, without a savepoint: when that
/// statement fails SQLite undoes it alone, and nothing before it changed anything. `Err`
/// (the whole group is dropped) when it panicked, which could be after its change; when the
/// transaction is gone (SQLite rolls it back on I/O errors and a full disk, and the writes
/// after would commit one by one); or when it failed after a change that completed, which
/// breaks its promise and must not commit.
fn run_one_statement(connection: &Connection, job: WriteJob) -> Result<Option<Answer>, ()> {
    let changes_before = connection.total_changes();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.work)(connection))) {
        Ok(_) if connection.is_autocommit() => {
            tracing::error!("a write ended the transaction; dropping the whole group");
            Err(())
        }
        Ok((false, _)) if connection.total_changes() != changes_before => {
            tracing::error!(
                "a one-statement write failed after a change; dropping the whole group"
            );
            Err(())
        }
        Ok((_, answer)) => Ok(Some(answer)),
        Err(_) => {
            tracing::error!("a write panicked; dropping the whole group");
            Err(())
        }
    }
}
