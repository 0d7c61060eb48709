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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Poll;
    use std::time::Duration;

    use tokio::task::JoinHandle;

    use super::super::{SqliteStore, execute, lock};
    use crate::StoreError;

    /// Writes queued while the test holds the writer: the writer thread takes the first and
    /// waits, the rest join its group once the writer is released, in the order queued.
    struct HeldWriter {
        queued: Arc<AtomicUsize>,
        spawned: std::cell::Cell<usize>,
    }

    impl HeldWriter {
        fn new() -> Self {
            Self {
                queued: Arc::new(AtomicUsize::new(0)),
                spawned: std::cell::Cell::new(0),
            }
        }

        /// Spawns `write` (a future that queues one write on its first poll). With `ordered`,
        /// returns once every write spawned so far is queued, so that writes queue in the
        /// order spawned.
        fn spawn<T: Send + 'static>(
            &self,
            ordered: bool,
            write: impl Future<Output = Result<T, StoreError>> + Send + 'static,
        ) -> JoinHandle<Result<T, StoreError>> {
            let queued = self.queued.clone();
            self.spawned.set(self.spawned.get() + 1);
            let handle = tokio::spawn(async move {
                let mut write = std::pin::pin!(write);
                let first =
                    std::future::poll_fn(|context| Poll::Ready(write.as_mut().poll(context))).await;
                queued.fetch_add(1, Ordering::SeqCst);
                match first {
                    Poll::Ready(outcome) => outcome,
                    Poll::Pending => write.await,
                }
            });
            if ordered {
                self.wait_for(self.spawned.get());
            }
            handle
        }

        /// Waits until `count` writes are queued: a blocking wait (the writer's guard may not
        /// cross an await) while the runtime's workers run the spawned writes. Panics after
        /// ten seconds (a write that panicked before it queued never counts).
        fn wait_for(&self, count: usize) {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            tokio::task::block_in_place(|| {
                while self.queued.load(Ordering::SeqCst) < count {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "only {} of {count} writes queued",
                        self.queued.load(Ordering::SeqCst)
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        }
    }

    /// Inserts a `server_secrets` row named `name`, then does what `then` says.
    fn insert_then(
        connection: &rusqlite::Connection,
        name: &str,
        then: Then,
    ) -> Result<(), StoreError> {
        execute(
            connection,
            "INSERT INTO server_secrets (name, value) VALUES (?1, 'second')",
            [name],
        )?;
        match then {
            Then::Succeed => Ok(()),
            Then::Fail => Err(StoreError::Conflict("refused after writing".into())),
            Then::Panic => panic!("a write that panics after writing"),
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Then {
        Succeed,
        Fail,
        Panic,
    }

    fn secret_names(store: &SqliteStore) -> Vec<String> {
        store
            .read(|connection| {
                let mut statement =
                    connection.prepare("SELECT name FROM server_secrets ORDER BY name")?;
                let names = statement
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(names)
            })
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_or_panicking_write_rolls_back_alone_in_its_group() {
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        let held = lock(&store.writer);
        let group = HeldWriter::new();
        let thens = [Then::Succeed, Then::Fail, Then::Panic];
        let writes: Vec<_> = (0..60)
            .map(|index| {
                let store = store.clone();
                let name = format!("secret-{index:02}");
                group.spawn(false, async move {
                    let then = thens[index % 3];
                    store
                        .write(move |connection| insert_then(connection, &name, then))
                        .await
                })
            })
            .collect();
        group.wait_for(60);
        drop(held);
        for (index, write) in writes.into_iter().enumerate() {
            match (thens[index % 3], write.await.unwrap()) {
                (Then::Succeed, Ok(()))
                | (Then::Fail, Err(StoreError::Conflict(_)))
                | (Then::Panic, Err(StoreError::Task(_))) => {}
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        let expected: Vec<String> = (0..60)
            .filter(|index| index % 3 == 0)
            .map(|index| format!("secret-{index:02}"))
            .collect();
        assert_eq!(
            secret_names(&store),
            expected,
            "only the successful writes' rows remain"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_statement_writes_fail_alone_in_their_group_without_a_savepoint() {
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        store
            .write(|connection| {
                execute(
                    connection,
                    "INSERT INTO server_secrets (name, value) VALUES ('taken', 'first')",
                    [],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let held = lock(&store.writer);
        let group = HeldWriter::new();
        let writes: Vec<_> = (0..60u32)
            .map(|index| {
                let store = store.clone();
                group.spawn(false, async move {
                    store
                        .write_one_statement(move |connection| {
                            // Every third is refused by its read-only guard, every third fails
                            // in its statement (a duplicate key), which SQLite undoes alone.
                            match index % 3 {
                                2 => Err(StoreError::Conflict("guard".into())),
                                1 => insert_then(connection, "taken", Then::Succeed),
                                _ => insert_then(
                                    connection,
                                    &format!("secret-{index:02}"),
                                    Then::Succeed,
                                ),
                            }
                        })
                        .await
                })
            })
            .collect();
        group.wait_for(60);
        drop(held);
        for (index, write) in writes.into_iter().enumerate() {
            match (index % 3, write.await.unwrap()) {
                (0, Ok(()))
                | (1, Err(StoreError::Database(_)))
                | (2, Err(StoreError::Conflict(_))) => {}
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        let mut expected: Vec<String> = (0..60)
            .filter(|index| index % 3 == 0)
            .map(|index| format!("secret-{index:02}"))
            .collect();
        expected.push("taken".to_owned());
        assert_eq!(secret_names(&store), expected);
        let first: String = store
            .read(|connection| {
                Ok(connection.query_row(
                    "SELECT value FROM server_secrets WHERE name = 'taken'",
                    [],
                    |row| row.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(first, "first", "the failed inserts changed nothing");
    }

    /// A one-statement write that panics (which could be after its change) or fails after a
    /// change drops its whole group: the writes before it in the group are not committed and
    /// their callers are told so; the write queued after it runs in the next group.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_one_statement_write_drops_its_group_and_its_neighbours_learn_it() {
        for broken in [Then::Panic, Then::Fail] {
            let store = Arc::new(SqliteStore::in_memory().await.unwrap());
            let held = lock(&store.writer);
            let group = HeldWriter::new();
            let [before, culprit, after] = [
                ("before", Then::Succeed),
                ("culprit", broken),
                ("after", Then::Succeed),
            ]
            .map(|(name, then)| {
                let store = store.clone();
                group.spawn(true, async move {
                    store
                        .write_one_statement(move |connection| insert_then(connection, name, then))
                        .await
                })
            });
            drop(held);
            let before = before.await.unwrap();
            let culprit = culprit.await.unwrap();
            assert!(
                matches!(before, Err(StoreError::Task(_))),
                "{broken:?}: {before:?}"
            );
            assert!(
                matches!(culprit, Err(StoreError::Task(_))),
                "{broken:?}: {culprit:?}"
            );
            after.await.unwrap().unwrap();
            assert_eq!(secret_names(&store), ["after"], "{broken:?}");
        }
    }
}
