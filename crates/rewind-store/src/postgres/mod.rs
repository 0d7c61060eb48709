//! The shared store: PostgreSQL, for several replicas on one database.
//!
//! The schema and its migrations are the SQLite ones (both dialects accept them); rows decode
//! through the same [`crate::rows`] functions. Where SQLite relies on its single writer, this
//! store takes transaction-scoped advisory locks, so check-then-insert stays atomic across
//! replicas.

mod backups;
mod credentials;
mod projects;
mod restore_runs;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgRow};
use sqlx::{Connection, PgPool, Postgres, Row};

use crate::rows::{Decode, RowAccess};
use crate::schema::MIGRATIONS;
use crate::{Page, StoreError};

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    OptionalText(Option<String>),
    Number(i64),
    OptionalNumber(Option<i64>),
    TextArray(Vec<String>),
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Self::Number(value)
    }
}

impl From<Option<String>> for Arg {
    fn from(value: Option<String>) -> Self {
        Self::OptionalText(value)
    }
}

impl From<Option<i64>> for Arg {
    fn from(value: Option<i64>) -> Self {
        Self::OptionalNumber(value)
    }
}

impl From<Vec<String>> for Arg {
    fn from(value: Vec<String>) -> Self {
        Self::TextArray(value)
    }
}

/// Builds the argument list of a statement.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        vec![$(crate::postgres::Arg::from($value)),*]
    };
}
pub(crate) use args;

fn query(
    sql: &str,
    arguments: Vec<Arg>,
) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
    let mut query = sqlx::query(sql);
    for argument in arguments {
        query = match argument {
            Arg::Text(value) => query.bind(value),
            Arg::OptionalText(value) => query.bind(value),
            Arg::Number(value) => query.bind(value),
            Arg::OptionalNumber(value) => query.bind(value),
            Arg::TextArray(value) => query.bind(value),
        };
    }
    query
}

/// SQLite's `?N` placeholders as PostgreSQL's `$N`.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs a statement; returns the rows it changed.
pub(crate) async fn execute(
    connection: &mut PgConnection,
    sql: &str,
    arguments: Vec<Arg>,
) -> Result<u64, sqlx::Error> {
    Ok(query(sql, arguments)
        .execute(connection)
        .await?
        .rows_affected())
}

/// The first row of a query, decoded.
pub(crate) async fn one<T>(
    connection: &mut PgConnection,
    sql: &str,
    arguments: Vec<Arg>,
    decode: Decode<T>,
) -> Result<Option<T>, StoreError> {
    let row = query(sql, arguments).fetch_optional(connection).await?;
    row.as_ref().map(|row| decode(row)).transpose()
}

/// Every row of a query, decoded.
pub(crate) async fn all<T>(
    connection: &mut PgConnection,
    sql: &str,
    arguments: Vec<Arg>,
    decode: Decode<T>,
) -> Result<Vec<T>, StoreError> {
    let rows = query(sql, arguments).fetch_all(connection).await?;
    rows.iter().map(|row| decode(row)).collect()
}

/// A `COUNT(*)` query.
pub(crate) async fn count(
    connection: &mut PgConnection,
    sql: &str,
    arguments: Vec<Arg>,
) -> Result<u64, StoreError> {
    let row = query(sql, arguments).fetch_one(connection).await?;
    Ok(row.try_get::<i64, _>(0)?.max(0) as u64)
}

/// Serializes the transaction with every other holding the same `key` until it ends.
pub(crate) async fn lock(connection: &mut PgConnection, key: &str) -> Result<(), StoreError> {
    query("SELECT pg_advisory_xact_lock(hashtext($1))", args![key])
        .execute(connection)
        .await?;
    Ok(())
}

impl RowAccess for PgRow {
    fn text_at(&self, index: usize) -> Result<String, StoreError> {
        Ok(self.try_get(index)?)
    }

    fn optional_text_at(&self, index: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(index)?)
    }

    fn number_at(&self, index: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(index)?)
    }

    fn optional_number_at(&self, index: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(index)?)
    }
}

pub(crate) fn limit(page: Page) -> i64 {
    i64::try_from(page.limit).unwrap_or(i64::MAX)
}

pub(crate) fn offset(page: Page) -> i64 {
    i64::try_from(page.offset).unwrap_or(i64::MAX)
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://...`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        Self::connect_with(options, None).await
    }

    /// Connects with every session's `search_path` set to `schema`, creating the schema: each
    /// test gets its own.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        let mut connection = PgConnection::connect_with(&options).await?;
        execute(
            &mut connection,
            &format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""),
            args![],
        )
        .await?;
        connection.close().await?;
        Self::connect_with(options, Some(schema.to_owned())).await
    }

    async fn connect_with(
        options: PgConnectOptions,
        schema: Option<String>,
    ) -> Result<Self, StoreError> {
        let options = match &schema {
            Some(schema) => options.options([("search_path", schema.as_str())]),
            None => options,
        };
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations under an advisory lock, so replicas starting together apply
    /// each one once.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        lock(&mut transaction, "rewind.migrations").await?;
        execute(&mut transaction, "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)", args![]).await?;
        for (version, statements) in MIGRATIONS {
            let applied = count(
                &mut transaction,
                "SELECT COUNT(*) FROM schema_migrations WHERE version = $1",
                args![*version],
            )
            .await?;
            if applied > 0 {
                continue;
            }
            sqlx::raw_sql(statements).execute(&mut *transaction).await?;
            execute(
                &mut transaction,
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                args![*version, rewind_domain::Timestamp::now().millis()],
            )
            .await?;
            tracing::info!(migration.version = version, "applied metadata migration");
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Drops a schema made by [`PgStore::connect_in_schema`], with everything in it.
    pub async fn drop_schema(&self, schema: &str) -> Result<(), StoreError> {
        execute(
            &mut *self.connection().await?,
            &format!("DROP SCHEMA \"{schema}\" CASCADE"),
            args![],
        )
        .await?;
        Ok(())
    }

    /// A pooled connection.
    async fn connection(&self) -> Result<sqlx::pool::PoolConnection<Postgres>, StoreError> {
        Ok(self.pool.acquire().await?)
    }
}
