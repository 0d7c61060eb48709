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
    assert!(
        matches!(
            SqliteStore::open(&path).await,
            Err(rewind_store::StoreError::InUse { .. })
        ),
        "a second opener of the same file is refused: the first serves reads from memory"
    );
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

/// The database the PostgreSQL tests use; `scripts/test.sh` makes sure one answers.
fn postgres_url() -> String {
    std::env::var("REWIND_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::test]
async fn postgres_conforms() {
    // Each run gets its own schema, dropped afterwards.
    let schema = format!(
        "rewind_conformance_{}_{}",
        std::process::id(),
        rewind_domain::ObjectId::generate()
    );
    let store = rewind_store::PgStore::connect_in_schema(&postgres_url(), &schema)
        .await
        .expect("connect to PostgreSQL");
    conformance::run_all(&store).await;
    store
        .drop_schema(&schema)
        .await
        .expect("drop the test schema");
}
