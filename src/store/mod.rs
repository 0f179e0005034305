//! Storage: the one narrow interface everything reads and writes through.
//!
//! SQLite (embedded, one file) is the default backend; PostgreSQL goes behind
//! the same trait. Queries are runtime queries (no `query!` macros), schema
//! changes are sqlx migrations under `migrations/`.

use crate::model::{Exchange, Flow, FlowSummary, Micros, RecordedCommand};
use std::sync::Arc;

pub mod codec;
pub mod postgres;
pub mod sql;
pub mod sqlite;
#[allow(unsafe_code)] // the one place: SQLite's C API, see the module docs
mod sqlite_insert;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {message}")]
    Open { url: String, message: String },
    #[error("database error: {0}")]
    Database(String),
    #[error("no flow named {0:?} (see `tracer flow list`)")]
    UnknownFlow(String),
    #[error("flow {0:?} is already open; stop it first with `tracer flow stop {0}`")]
    FlowAlreadyOpen(String),
    #[error(
        "flow {0:?} already exists; choose another name or remove it with `tracer flow delete {0}`"
    )]
    FlowExists(String),
    #[error("no flow is open")]
    NoOpenFlow,
    #[error("several flows are open ({0}); name the one to stop")]
    SeveralOpenFlows(String),
    #[error("flow name {0:?} is not valid: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit")]
    BadFlowName(String),
    #[error("database URL {0:?} is not supported: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Which exchanges `list` (and the admin API) asks for.
#[derive(Debug, Clone, Default)]
pub struct ExchangeFilter {
    /// Only those whose request head arrived in this window (inclusive).
    pub from: Option<Micros>,
    pub to: Option<Micros>,
    pub method: Option<String>,
    pub status: Option<u16>,
    pub service: Option<String>,
    /// The newest `limit` (still returned oldest first).
    pub limit: Option<i64>,
    /// Include exchanges marked by ignore rules.
    pub include_ignored: bool,
}

impl ExchangeFilter {
    /// The exchanges of a flow, in event order.
    pub fn for_flow(flow: &Flow) -> Self {
        ExchangeFilter {
            from: Some(flow.started_at),
            to: flow.stopped_at,
            ..Default::default()
        }
    }
}

/// Captured exchanges that were not stored: counted with their cause,
/// never silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    pub at: Micros,
    pub count: i64,
    pub cause: LossCause,
    /// The first error message, for `write-failed` (e.g. "database or disk is full").
    pub detail: Option<String>,
}

/// Why exchanges were not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LossCause {
    /// The writer's queue was full: the database did not keep up.
    QueueFull,
    /// Body bytes waiting for the database were over `[storage].queue_bytes`.
    QueueBytes,
    /// The database refused the batch (disk full, I/O error, ...).
    WriteFailed,
    /// The writer had stopped (shutdown).
    WriterStopped,
}

impl LossCause {
    pub const ALL: [LossCause; 4] = [
        LossCause::QueueFull,
        LossCause::QueueBytes,
        LossCause::WriteFailed,
        LossCause::WriterStopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LossCause::QueueFull => "queue-full",
            LossCause::QueueBytes => "queue-bytes",
            LossCause::WriteFailed => "write-failed",
            LossCause::WriterStopped => "writer-stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// For people: "capture queue full".
    pub fn describe(self) -> &'static str {
        match self {
            LossCause::QueueFull => "capture queue full",
            LossCause::QueueBytes => "capture queue over its byte bound",
            LossCause::WriteFailed => "database write failed",
            LossCause::WriterStopped => "writer stopped",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Losses of one cause in a window of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossTally {
    pub cause: LossCause,
    pub count: i64,
    /// One of the recorded messages, if any.
    pub detail: Option<String>,
}

/// One user's token as keystone issued it (kept for caller attribution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    /// SHA-256 hex of the token: the token itself is a credential.
    pub token_sha256: String,
    pub user_name: String,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub expires_at: Option<Micros>,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Stores a batch in one transaction; assigns nothing back (ids are the database's).
    async fn insert_exchanges(&self, batch: &[Exchange]) -> Result<()>;
    async fn record_loss(&self, loss: Loss) -> Result<()>;
    /// Losses recorded in a window (inclusive), by cause.
    async fn losses(&self, _from: Micros, _to: Micros) -> Result<Vec<LossTally>> {
        Ok(Vec::new())
    }

    /// Oldest first, in event order (request_seq).
    async fn list_exchanges(&self, filter: &ExchangeFilter) -> Result<Vec<Exchange>>;
    /// Like `list_exchanges` but without the kept body bytes (`kept` is
    /// empty; `size` and `sha256` are set): for listings, which would
    /// otherwise read every stored body.
    async fn list_exchange_heads(&self, filter: &ExchangeFilter) -> Result<Vec<Exchange>> {
        let mut all = self.list_exchanges(filter).await?;
        for ex in &mut all {
            ex.request_body.kept = Vec::new();
            ex.response_body.kept = Vec::new();
        }
        Ok(all)
    }
    /// By row id, uuid or request id.
    async fn get_exchange(&self, key: &str) -> Result<Option<Exchange>>;

    async fn start_flow(&self, name: &str, title: Option<&str>, at: Micros) -> Result<Flow>;
    /// Closes the named flow, or the only open one.
    async fn stop_flow(&self, name: Option<&str>, at: Micros) -> Result<Flow>;
    async fn set_flow_command(&self, name: &str, command: &RecordedCommand) -> Result<()>;
    async fn delete_flow(&self, name: &str) -> Result<()>;
    async fn get_flow(&self, name: &str) -> Result<Flow>;
    async fn list_flows(&self) -> Result<Vec<FlowSummary>>;

    async fn put_token(&self, token: &TokenOwner) -> Result<()>;
    /// Closes the connections cleanly (SQLite then folds its WAL back into
    /// the file, leaving one file behind).
    async fn close(&self) {}
    /// Tokens not expired at `now`.
    async fn live_tokens(&self, now: Micros) -> Result<Vec<TokenOwner>>;
}

pub type SharedStore = Arc<dyn Store>;

/// Opens (and migrates) the database a URL names: `sqlite:PATH`,
/// `sqlite://PATH`, `postgres://…` or `postgresql://…`.
pub async fn open(url: &str) -> Result<SharedStore> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Opens the database a URL names for reading only (`list`, `show`,
/// `export`, `flow list`, `site`): nothing is created or migrated.
pub async fn open_read_only(url: &str) -> Result<SharedStore> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::open_read_only(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::open_read_only(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Whether a database has every migration this tracer knows, without
/// applying any: a reader must not change the schema under a daemon.
pub(crate) async fn check_schema<DB>(
    pool: &sqlx::Pool<DB>,
    migrator: &sqlx::migrate::Migrator,
) -> std::result::Result<(), String>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    use sqlx::Row as _;
    let newest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: i64 = sqlx::query::<DB>(
        "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM _sqlx_migrations WHERE success",
    )
    .fetch_one(pool)
    .await
    .and_then(|row| row.try_get(0))
    .map_err(|_| "not a tracer database (no schema version in it)".to_string())?;
    if applied < newest {
        return Err(format!(
            "it was written by an older tracer (schema {applied}, this one reads {newest}); \
             run a command that writes to it once (`tracer serve`, `tracer flow start`) to upgrade it"
        ));
    }
    Ok(())
}

/// A database URL fit for messages and logs: its password (in the user
/// info or a `password=` query parameter) replaced by `***`. A URL that does
/// not parse shows only its scheme, since where its password is cannot be told.
pub fn redact_url(raw: &str) -> String {
    const MASK: &str = "***";
    let Ok(mut url) = url::Url::parse(raw) else {
        return match raw.split_once("://") {
            Some((scheme, rest)) if rest.contains('@') || rest.contains("password") => {
                format!("{scheme}://{MASK}")
            }
            _ => raw.to_string(),
        };
    };
    let in_query = url.query_pairs().any(|(k, _)| k == "password");
    if url.password().is_none() && !in_query {
        return raw.to_string();
    }
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    }
    if in_query {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    MASK.into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://tracer:s3cret@db.example:5432/tracer"),
            "postgres://tracer:***@db.example:5432/tracer"
        );
        assert_eq!(
            redact_url("postgresql://u:p%40ss@h/db?sslmode=require"),
            "postgresql://u:***@h/db?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=s3cret&sslmode=disable"),
            "postgres://h/db?user=u&password=***&sslmode=disable"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://tracer.db"), "sqlite://tracer.db");
        assert_eq!(redact_url("sqlite:/tmp/t.db"), "sqlite:/tmp/t.db");
        // Unparseable (port not a number): nothing after the scheme survives.
        let r = redact_url("postgres://u:s3cret@h:port/db");
        assert!(!r.contains("s3cret"), "{r}");
        assert_eq!(redact_url("mysql://x"), "mysql://x");
        assert_eq!(redact_url("sqlite:///a dir/t.db"), "sqlite:///a dir/t.db");
    }
}
