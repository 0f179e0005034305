//! The one SQL store behind both backends.
//!
//! SQLite and PostgreSQL accept every statement here as written: `$N`
//! placeholders (sqlx's SQLite driver binds `$N` by its number), `ON
//! CONFLICT`, `CASE`, `CAST(… AS BIGINT)`, `NOT ignored` (an INTEGER in
//! SQLite, a BOOLEAN in PostgreSQL). So [`SqlStore`] is generic over the sqlx
//! driver, and a backend (`sqlite.rs`, `postgres.rs`) only opens its pool and
//! applies its migrations. Orderings that would depend on a text collation
//! (PostgreSQL's follows the database locale) are done here, bytewise.

use super::{
    codec, ExchangeFilter, Loss, LossCause, LossTally, Result, Store, StoreError, TokenOwner,
};
use crate::model::{
    BodyRecord, CallerSource, ErrorKind, ErrorSide, Exchange, ExchangeError, Flow, FlowSummary,
    Micros, RecordedCommand,
};
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, QueryBuilder, Row, Type,
};
use std::borrow::Cow;

/// Rows per multi-row INSERT (PostgreSQL; SQLite steps one prepared row
/// statement, see `sqlite_insert.rs`): 30 binds each stays far below
/// PostgreSQL's 65535 bind limit while cutting statement round trips.
const ROWS_PER_INSERT: usize = 256;
/// Kept body bytes per INSERT: a batch of large bodies goes in several
/// statements of one transaction rather than in one huge message.
const BYTES_PER_INSERT: usize = 16 << 20;

pub(super) const INSERT_HEAD: &str = "INSERT INTO exchanges (uuid, request_id, service, caller, \
    caller_source, client_addr, upstream_url, method, target, request_version, request_headers, \
    request_body, request_body_size, request_body_sha256, status, reason, response_version, \
    response_headers, response_body, response_body_size, response_body_sha256, request_seq, \
    response_seq, started_at, response_at, finished_at, error, ignored, error_kind, error_side) ";

/// A batch retried after a failed commit must not store anything twice.
pub(super) const INSERT_TAIL: &str = " ON CONFLICT (uuid) DO NOTHING";

const COLUMNS_HEAD: &str = "id, uuid, request_id, service, caller, caller_source, client_addr, \
    upstream_url, method, target, request_version, request_headers, request_body_size, \
    request_body_sha256, status, reason, response_version, response_headers, response_body_size, \
    response_body_sha256, request_seq, response_seq, started_at, response_at, finished_at, error, \
    ignored, error_kind, error_side";

const FLOW_COLUMNS: &str =
    "SELECT name, title, started_at, stopped_at, command_argv, stdout, stderr, exit_status FROM flows";

/// A `Store` over any sqlx pool whose driver speaks the SQL above.
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
}

impl<DB> SqlStore<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    /// Wraps a pool whose database the backend has already migrated.
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }

    async fn select_exchanges(
        &self,
        filter: &ExchangeFilter,
        with_bodies: bool,
    ) -> Result<Vec<Exchange>> {
        let columns = if with_bodies {
            format!("{COLUMNS_HEAD}, request_body, response_body")
        } else {
            COLUMNS_HEAD.to_string()
        };
        let mut qb = QueryBuilder::<DB>::new(format!("SELECT {columns} FROM exchanges WHERE 1=1"));
        if !filter.include_ignored {
            qb.push(" AND NOT ignored");
        }
        if let Some(from) = filter.from {
            qb.push(" AND started_at >= ").push_bind(from);
        }
        if let Some(to) = filter.to {
            qb.push(" AND started_at <= ").push_bind(to);
        }
        if let Some(method) = &filter.method {
            qb.push(" AND method = ")
                .push_bind(method.to_ascii_uppercase());
        }
        if let Some(status) = filter.status {
            qb.push(" AND status = ").push_bind(i64::from(status));
        }
        if let Some(service) = &filter.service {
            qb.push(" AND service = ").push_bind(service.clone());
        }
        let rows = match filter.limit {
            // The newest N, handed back oldest first.
            Some(limit) => {
                qb.push(" ORDER BY request_seq DESC, id DESC LIMIT ")
                    .push_bind(limit.max(0));
                let mut rows = qb.build().fetch_all(&self.pool).await?;
                rows.reverse();
                rows
            }
            None => {
                qb.push(" ORDER BY request_seq, id");
                qb.build().fetch_all(&self.pool).await?
            }
        };
        rows.iter()
            .map(|r| exchange_from_row(r, with_bodies))
            .collect()
    }

    async fn flow_summary(&self, flow: Flow) -> Result<FlowSummary> {
        let end = flow.stopped_at.unwrap_or(i64::MAX);
        let services = sqlx::query::<DB>(
            "SELECT service, COUNT(*) FROM exchanges \
             WHERE NOT ignored AND started_at >= $1 AND started_at <= $2 \
             GROUP BY service ORDER BY MIN(request_seq)",
        )
        .bind(flow.started_at)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        let mut exchanges = 0;
        let mut names = Vec::with_capacity(services.len());
        for row in &services {
            names.push(row.try_get::<String, _>(0)?);
            exchanges += row.try_get::<i64, _>(1)?;
        }
        // PostgreSQL's SUM of BIGINT is NUMERIC: cast back.
        let lost: i64 = sqlx::query::<DB>(
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM capture_losses \
             WHERE at >= $1 AND at <= $2",
        )
        .bind(flow.started_at)
        .bind(end)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok(FlowSummary {
            flow,
            exchanges,
            services: names,
            lost,
        })
    }

    /// Oldest first; names break ties bytewise.
    async fn open_flow_names(&self) -> Result<Vec<String>> {
        let rows = sqlx::query::<DB>("SELECT started_at, name FROM flows WHERE stopped_at IS NULL")
            .fetch_all(&self.pool)
            .await?;
        let mut open = rows
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect::<Result<Vec<_>>>()?;
        open.sort();
        Ok(open.into_iter().map(|(_, name)| name).collect())
    }

    async fn fetch_flows(&self, name: Option<&str>) -> Result<Vec<Flow>> {
        let rows = match name {
            Some(name) => {
                sqlx::query::<DB>(sqlx::AssertSqlSafe(format!(
                    "{FLOW_COLUMNS} WHERE name = $1"
                )))
                .bind(name.to_string())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query::<DB>(FLOW_COLUMNS)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let mut flows = rows.iter().map(flow_from_row).collect::<Result<Vec<_>>>()?;
        flows.sort_by(|a, b| (a.started_at, &a.name).cmp(&(b.started_at, &b.name)));
        Ok(flows)
    }
}

/// How a backend writes a batch of exchanges, the one hot statement.
pub trait Dialect: Database {
    fn insert_exchanges(
        pool: &Pool<Self>,
        batch: &[Exchange],
    ) -> impl std::future::Future<Output = Result<()>> + Send;
}

impl Dialect for sqlx::Sqlite {
    async fn insert_exchanges(pool: &Pool<Self>, batch: &[Exchange]) -> Result<()> {
        super::sqlite_insert::insert_exchanges(pool, batch).await
    }
}

impl Dialect for sqlx::Postgres {
    async fn insert_exchanges(pool: &Pool<Self>, batch: &[Exchange]) -> Result<()> {
        insert_with_binds(pool, batch).await
    }
}

/// Multi-row INSERTs with every value bound through sqlx.
async fn insert_with_binds(pool: &Pool<sqlx::Postgres>, batch: &[Exchange]) -> Result<()> {
    type DB = sqlx::Postgres;
    let mut tx = pool.begin().await?;
    for chunk in insert_chunks(batch) {
        let mut qb = QueryBuilder::<DB>::new(INSERT_HEAD);
        qb.push_values(chunk, |mut b, ex| {
            b.push_bind(text(&ex.uuid))
                .push_bind(text(&ex.request_id))
                .push_bind(text(&ex.service))
                .push_bind(text(&ex.caller))
                .push_bind(ex.caller_source.as_str().to_string())
                .push_bind(text(&ex.client_addr))
                .push_bind(text(&ex.upstream_url))
                .push_bind(text(&ex.method))
                .push_bind(text(&ex.target))
                .push_bind(text(&ex.request_version))
                .push_bind(codec::headers_to_text(&ex.request_headers))
                .push_bind(ex.request_body.kept.clone())
                .push_bind(to_i64(ex.request_body.size))
                .push_bind(text(&ex.request_body.sha256))
                .push_bind(ex.status.map(i64::from))
                .push_bind(opt_text(&ex.reason))
                .push_bind(opt_text(&ex.response_version))
                .push_bind(codec::headers_to_text(&ex.response_headers))
                .push_bind(ex.response_body.kept.clone())
                .push_bind(to_i64(ex.response_body.size))
                .push_bind(text(&ex.response_body.sha256))
                .push_bind(ex.request_seq)
                .push_bind(ex.response_seq)
                .push_bind(ex.started_at)
                .push_bind(ex.response_at)
                .push_bind(ex.finished_at)
                .push_bind(ex.error.as_ref().map(|e| text(&e.message)))
                .push_bind(ex.ignored)
                .push_bind(ex.error.as_ref().map(|e| e.kind.as_str().to_string()))
                .push_bind(ex.error.as_ref().map(|e| e.side.as_str().to_string()));
        });
        qb.push(INSERT_TAIL);
        qb.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The statements one batch is written with: at most `ROWS_PER_INSERT` rows
/// and (past its first row) `BYTES_PER_INSERT` kept body bytes each.
///
/// Every statement has a power-of-two number of rows: the driver caches
/// prepared statements by their text, and a few sizes stay cached where
/// every possible size would be parsed again and again (7,000 placeholders
/// take a while to parse).
fn insert_chunks(batch: &[Exchange]) -> Vec<&[Exchange]> {
    let bounded = chunks_by(batch, ROWS_PER_INSERT, BYTES_PER_INSERT, |ex| {
        ex.request_body.kept.len() + ex.response_body.kept.len()
    });
    bounded.into_iter().flat_map(power_of_two_runs).collect()
}

/// `items` cut into runs of decreasing powers of two (37 → 32, 4, 1).
fn power_of_two_runs<T>(mut items: &[T]) -> Vec<&[T]> {
    let mut runs = Vec::new();
    while !items.is_empty() {
        let (run, rest) = items.split_at(1 << items.len().ilog2());
        runs.push(run);
        items = rest;
    }
    runs
}

/// Consecutive runs of at most `rows` items and `bytes` total `size` (a
/// larger item goes alone).
fn chunks_by<T>(items: &[T], rows: usize, bytes: usize, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let (mut start, mut total) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && (i - start == rows || total + n > bytes) {
            chunks.push(&items[start..i]);
            (start, total) = (i, 0);
        }
        total += n;
    }
    if start < items.len() {
        chunks.push(&items[start..]);
    }
    chunks
}

/// Text as stored: PostgreSQL refuses U+0000 in TEXT, which would fail a
/// whole batch, so both backends store it as U+FFFD. (HTTP heads cannot
/// carry NUL; this is for error messages and the like.) Rare, so copied
/// only then.
pub(super) fn stored_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// [`stored_text`], owned for binding through sqlx.
fn text(s: &str) -> String {
    stored_text(s).into_owned()
}

fn opt_text(s: &Option<String>) -> Option<String> {
    s.as_deref().map(text)
}

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn corrupt(what: &str, id: i64, why: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("exchange {id}: bad {what}: {why}"))
}

fn exchange_from_row<R>(row: &R, with_bodies: bool) -> Result<Exchange>
where
    R: Row,
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> Vec<u8>: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> bool: Decode<'q, R::Database> + Type<R::Database>,
    for<'a> &'a str: ColumnIndex<R>,
{
    let id: i64 = row.try_get("id")?;
    let headers = |col: &str| -> Result<_> {
        let text: String = row.try_get(col)?;
        codec::headers_from_text(&text).map_err(|e| corrupt(col, id, e))
    };
    let body = |prefix: &str| -> Result<BodyRecord> {
        let kept = if with_bodies {
            row.try_get(prefix)?
        } else {
            Vec::new()
        };
        let size: i64 = row.try_get(format!("{prefix}_size").as_str())?;
        Ok(BodyRecord {
            kept,
            size: u64::try_from(size).unwrap_or(0),
            sha256: row.try_get(format!("{prefix}_sha256").as_str())?,
        })
    };
    let status: Option<i64> = row.try_get("status")?;
    let caller_source: String = row.try_get("caller_source")?;
    Ok(Exchange {
        id,
        uuid: row.try_get("uuid")?,
        request_id: row.try_get("request_id")?,
        service: row.try_get("service")?,
        caller: row.try_get("caller")?,
        caller_source: CallerSource::parse(&caller_source).unwrap_or(CallerSource::Unknown),
        client_addr: row.try_get("client_addr")?,
        upstream_url: row.try_get("upstream_url")?,
        method: row.try_get("method")?,
        target: row.try_get("target")?,
        request_version: row.try_get("request_version")?,
        request_headers: headers("request_headers")?,
        request_body: body("request_body")?,
        status: status
            .map(|s| u16::try_from(s).map_err(|e| corrupt("status", id, e)))
            .transpose()?,
        reason: row.try_get("reason")?,
        response_version: row.try_get("response_version")?,
        response_headers: headers("response_headers")?,
        response_body: body("response_body")?,
        request_seq: row.try_get("request_seq")?,
        response_seq: row.try_get("response_seq")?,
        started_at: row.try_get("started_at")?,
        response_at: row.try_get("response_at")?,
        finished_at: row.try_get("finished_at")?,
        error: error_from_columns(
            row.try_get("error")?,
            row.try_get("error_kind")?,
            row.try_get("error_side")?,
        ),
        ignored: row.try_get("ignored")?,
    })
}

/// A stored error; rows from before errors had kinds read as `other`.
fn error_from_columns(
    message: Option<String>,
    kind: Option<String>,
    side: Option<String>,
) -> Option<ExchangeError> {
    let message = message?;
    Some(ExchangeError::new(
        kind.as_deref()
            .and_then(ErrorKind::parse)
            .unwrap_or(ErrorKind::Other),
        side.as_deref()
            .and_then(ErrorSide::parse)
            .unwrap_or(ErrorSide::Tracer),
        message,
    ))
}

fn flow_from_row<R>(row: &R) -> Result<Flow>
where
    R: Row,
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> Vec<u8>: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'a> &'a str: ColumnIndex<R>,
{
    let name: String = row.try_get("name")?;
    let argv: Option<String> = row.try_get("command_argv")?;
    let command = match argv {
        None => None,
        Some(text) => Some(RecordedCommand {
            argv: serde_json::from_str(&text).map_err(|e| {
                StoreError::Database(format!("flow {name:?}: bad command line: {e}"))
            })?,
            stdout: row
                .try_get::<Option<Vec<u8>>, _>("stdout")?
                .unwrap_or_default(),
            stderr: row
                .try_get::<Option<Vec<u8>>, _>("stderr")?
                .unwrap_or_default(),
            exit_status: row
                .try_get::<Option<i64>, _>("exit_status")?
                .and_then(|s| i32::try_from(s).ok()),
        }),
    };
    Ok(Flow {
        name,
        title: row.try_get("title")?,
        started_at: row.try_get("started_at")?,
        stopped_at: row.try_get("stopped_at")?,
        command,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

// The bounds of the inherent impl above, again: stable Rust has no trait
// aliases, and where clauses on a trait are not implied at its uses.
#[async_trait::async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn insert_exchanges(&self, batch: &[Exchange]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        DB::insert_exchanges(&self.pool, batch).await
    }

    async fn record_loss(&self, loss: Loss) -> Result<()> {
        sqlx::query::<DB>(
            "INSERT INTO capture_losses (at, count, cause, detail) VALUES ($1, $2, $3, $4)",
        )
        .bind(loss.at)
        .bind(loss.count)
        .bind(loss.cause.as_str().to_string())
        .bind(loss.detail.as_deref().map(text))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn losses(&self, from: Micros, to: Micros) -> Result<Vec<LossTally>> {
        // PostgreSQL's SUM of BIGINT is NUMERIC: cast back.
        let rows = sqlx::query::<DB>(
            "SELECT cause, CAST(SUM(count) AS BIGINT), MAX(detail) FROM capture_losses \
             WHERE at >= $1 AND at <= $2 GROUP BY cause",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut tallies = rows
            .iter()
            .map(|r| {
                let cause: String = r.try_get(0)?;
                Ok(LossTally {
                    cause: LossCause::parse(&cause).unwrap_or(LossCause::QueueFull),
                    count: r.try_get(1)?,
                    detail: r.try_get(2)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        tallies.sort_by_key(|t| t.cause);
        Ok(tallies)
    }

    async fn list_exchanges(&self, filter: &ExchangeFilter) -> Result<Vec<Exchange>> {
        self.select_exchanges(filter, true).await
    }

    async fn list_exchange_heads(&self, filter: &ExchangeFilter) -> Result<Vec<Exchange>> {
        self.select_exchanges(filter, false).await
    }

    async fn get_exchange(&self, key: &str) -> Result<Option<Exchange>> {
        let key = key.trim();
        // 32 hex digits are a request id or a uuid even when they are all
        // decimal digits; a row id is at most 19 digits.
        let row_id = !key.is_empty() && key.len() <= 19 && key.bytes().all(|b| b.is_ascii_digit());
        let row = if row_id {
            let Ok(id) = key.parse::<i64>() else {
                return Ok(None);
            };
            sqlx::query::<DB>("SELECT * FROM exchanges WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
        } else {
            // uuids are stored in simple form; accept the hyphenated one too.
            let uuid = key.replace('-', "").to_ascii_lowercase();
            sqlx::query::<DB>(
                "SELECT * FROM exchanges WHERE uuid = $1 OR request_id = $2 \
                 ORDER BY (uuid = $1) DESC, request_seq, id LIMIT 1",
            )
            .bind(uuid)
            .bind(key.to_string())
            .fetch_optional(&self.pool)
            .await?
        };
        row.map(|r| exchange_from_row(&r, true)).transpose()
    }

    async fn start_flow(&self, name: &str, title: Option<&str>, at: Micros) -> Result<Flow> {
        if !crate::model::is_valid_flow_name(name) {
            return Err(StoreError::BadFlowName(name.to_string()));
        }
        let inserted =
            sqlx::query::<DB>("INSERT INTO flows (name, title, started_at) VALUES ($1, $2, $3)")
                .bind(name.to_string())
                .bind(title.map(text))
                .bind(at)
                .execute(&self.pool)
                .await;
        match inserted {
            Ok(_) => Ok(Flow {
                name: name.to_string(),
                title: title.map(text),
                started_at: at,
                stopped_at: None,
                command: None,
            }),
            Err(e) if is_unique_violation(&e) => {
                if self.get_flow(name).await?.is_open() {
                    Err(StoreError::FlowAlreadyOpen(name.to_string()))
                } else {
                    Err(StoreError::FlowExists(name.to_string()))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stopping a flow that is already closed leaves it as it was, so a
    /// retried stop is harmless; callers see it from `stopped_at`.
    async fn stop_flow(&self, name: Option<&str>, at: Micros) -> Result<Flow> {
        let name = match name {
            Some(n) => n.to_string(),
            None => {
                let mut open = self.open_flow_names().await?;
                match open.len() {
                    0 => return Err(StoreError::NoOpenFlow),
                    1 => open.remove(0),
                    _ => return Err(StoreError::SeveralOpenFlows(open.join(", "))),
                }
            }
        };
        // A clock that stepped back must not make the window negative.
        sqlx::query::<DB>(
            "UPDATE flows SET stopped_at = CASE WHEN $1 > started_at THEN $1 ELSE started_at END \
             WHERE name = $2 AND stopped_at IS NULL",
        )
        .bind(at)
        .bind(name.clone())
        .execute(&self.pool)
        .await?;
        self.get_flow(&name).await
    }

    async fn set_flow_command(&self, name: &str, command: &RecordedCommand) -> Result<()> {
        let argv = serde_json::to_string(&command.argv)
            .map_err(|e| StoreError::Database(e.to_string()))?;
        // RETURNING: the generic QueryResult has no row count.
        let done = sqlx::query::<DB>(
            "UPDATE flows SET command_argv = $1, stdout = $2, stderr = $3, exit_status = $4 \
             WHERE name = $5 RETURNING name",
        )
        .bind(argv)
        .bind(command.stdout.clone())
        .bind(command.stderr.clone())
        .bind(command.exit_status.map(i64::from))
        .bind(name.to_string())
        .fetch_optional(&self.pool)
        .await?;
        if done.is_none() {
            return Err(StoreError::UnknownFlow(name.to_string()));
        }
        Ok(())
    }

    async fn delete_flow(&self, name: &str) -> Result<()> {
        let done = sqlx::query::<DB>("DELETE FROM flows WHERE name = $1 RETURNING name")
            .bind(name.to_string())
            .fetch_optional(&self.pool)
            .await?;
        if done.is_none() {
            return Err(StoreError::UnknownFlow(name.to_string()));
        }
        Ok(())
    }

    async fn get_flow(&self, name: &str) -> Result<Flow> {
        self.fetch_flows(Some(name))
            .await?
            .pop()
            .ok_or_else(|| StoreError::UnknownFlow(name.to_string()))
    }

    async fn list_flows(&self) -> Result<Vec<FlowSummary>> {
        let flows = self.fetch_flows(None).await?;
        let mut out = Vec::with_capacity(flows.len());
        for flow in flows {
            out.push(self.flow_summary(flow).await?);
        }
        Ok(out)
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn put_token(&self, token: &TokenOwner) -> Result<()> {
        sqlx::query::<DB>(
            "INSERT INTO token_owners (token_sha256, user_name, user_id, project_id, expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token_sha256) DO UPDATE SET \
             user_name = excluded.user_name, user_id = excluded.user_id, \
             project_id = excluded.project_id, expires_at = excluded.expires_at",
        )
        .bind(text(&token.token_sha256))
        .bind(text(&token.user_name))
        .bind(opt_text(&token.user_id))
        .bind(opt_text(&token.project_id))
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn live_tokens(&self, now: Micros) -> Result<Vec<TokenOwner>> {
        let rows = sqlx::query::<DB>(
            "SELECT token_sha256, user_name, user_id, project_id, expires_at FROM token_owners \
             WHERE expires_at IS NULL OR expires_at > $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut tokens = rows
            .iter()
            .map(|r| {
                Ok(TokenOwner {
                    token_sha256: r.try_get("token_sha256")?,
                    user_name: r.try_get("user_name")?,
                    user_id: r.try_get("user_id")?,
                    project_id: r.try_get("project_id")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        tokens.sort_by(|a, b| a.token_sha256.cmp(&b.token_sha256));
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lens(sizes: &[usize], rows: usize, bytes: usize) -> Vec<usize> {
        chunks_by(sizes, rows, bytes, |&n| n)
            .iter()
            .map(|c| c.len())
            .collect()
    }

    #[test]
    fn insert_statements_have_power_of_two_rows() {
        let sizes = |n: usize| -> Vec<usize> {
            power_of_two_runs(&vec![0u8; n])
                .iter()
                .map(|r| r.len())
                .collect()
        };
        assert_eq!(sizes(37), [32, 4, 1]);
        assert_eq!(sizes(256), [256]);
        assert_eq!(sizes(255), [128, 64, 32, 16, 8, 4, 2, 1]);
        assert!(sizes(0).is_empty());
    }

    #[test]
    fn chunks_are_bounded_by_rows_and_bytes() {
        assert!(insert_chunks(&[]).is_empty());
        assert_eq!(lens(&[0; 130], 64, 100), [64, 64, 2]);
        // At most 16 per chunk; a larger item still goes alone.
        assert_eq!(lens(&[10, 6, 1, 40, 1], 64, 16), [2, 1, 1, 1]);
        assert_eq!(lens(&[1, 2, 3, 4, 5, 6], 4, 10), [4, 1, 1]);
    }

    #[test]
    fn nul_becomes_replacement_character() {
        assert_eq!(text("a\0b"), "a\u{fffd}b");
        assert_eq!(opt_text(&Some("ok".into())).as_deref(), Some("ok"));
    }
}
