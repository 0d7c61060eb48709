//! Runs the store conformance suite against every implementation.

use rewind_store::{ProjectStore, SqliteStore, conformance};

#[tokio::test]
async fn sqlite_in_memory_conforms() {
    let store = SqliteStore::in_memory().await.expect("open");
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn sqlite_file_conforms() {
    let directory = std::env::temp_dir().join(format!("rewind-store-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("metadata.sqlite");
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::open(&path).await.expect("open");
    conformance::run_all(&store).await;
    drop(store);
    // Reopening applies no migration twice and finds the data left by the suite.
    let reopened = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(
        reopened.list_orgs(rewind_store::Page::ALL).await.unwrap().1,
        1
    );
    std::fs::remove_dir_all(&directory).unwrap();
}
