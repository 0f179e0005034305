//! PostgreSQL backend: one database that several daemons on several hosts
//! (and the CLI anywhere) share, schema from `migrations/postgres/`. The
//! queries are the shared ones of [`SqlStore`]; event order across hosts is
//! `request_seq`, the µs hybrid clock of `capture::EventClock`.

use super::sql::SqlStore;
use super::{Result, StoreError};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection as _, Postgres};
use std::str::FromStr as _;
use std::time::Duration;

/// Applied under sqlx's advisory lock, so daemons starting together on a
/// fresh database migrate it once.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long opening waits for the server to answer at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a query waits for a free pooled connection (or a new one).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

pub type PostgresStore = SqlStore<Postgres>;

/// Connects, migrates and pools the database a `postgres://` or
/// `postgresql://` URL names. Every failure is `StoreError::Open` with the
/// URL's password masked.
pub async fn open(url: &str) -> Result<PostgresStore> {
    let pool = pool(url, 4).await?;
    // Through the pool (not a single connection): `Migrator::run` on a
    // `&mut PgConnection` makes this future !Send.
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| open_error(url, &format!("cannot prepare the schema: {e}")))?;
    Ok(SqlStore::new(pool))
}

/// Connects without migrating (read-only commands): the schema must be
/// this tracer's already.
pub async fn open_read_only(url: &str) -> Result<PostgresStore> {
    let pool = pool(url, 2).await?;
    super::check_schema(&pool, &MIGRATOR)
        .await
        .map_err(|e| open_error(url, &e))?;
    Ok(SqlStore::new(pool))
}

/// A pool of the URL's database, after one plain connection: its error
/// names the cause (refused, authentication, no such database) where a pool
/// would retry until a generic timeout.
async fn pool(url: &str, connections: u32) -> Result<sqlx::PgPool> {
    let open_err = |message: String| open_error(url, &message);
    let options = connect_options(url)?;
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .map_err(|_| {
            open_err(format!(
                "no answer from the server within {}s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| open_err(connect_error(e)))?;
    let _ = conn.close().await;
    Ok(PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options))
}

fn open_error(url: &str, message: &str) -> StoreError {
    StoreError::Open {
        url: super::redact_url(url),
        message: one_line(message),
    }
}

/// The URL's options; tracer's sessions are named in pg_stat_activity
/// unless the URL names them.
fn connect_options(url: &str) -> Result<PgConnectOptions> {
    let options =
        PgConnectOptions::from_str(url).map_err(|e| open_error(url, &format!("bad URL: {e}")))?;
    Ok(if options.get_application_name().is_none() {
        options.application_name("tracer")
    } else {
        options
    })
}

/// The cause of a failed connection, without sqlx's wrapping (and the
/// server's source line numbers).
fn connect_error(e: sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Io(io) => format!("cannot reach the server: {io}"),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        other => other.to_string(),
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
