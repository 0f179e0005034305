//! SQLite backend: one file (created mode 0600), WAL so the daemon and CLI
//! commands can share it, schema from `migrations/sqlite/`.

use super::{codec, ExchangeFilter, Loss, Result, Store, StoreError, TokenOwner};
use crate::model::{
    BodyRecord, CallerSource, Exchange, Flow, FlowSummary, Micros, RecordedCommand,
};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::path::Path;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows per multi-row INSERT: 28 binds each stays far below SQLite's
/// 32766-variable limit while cutting statement round trips.
const ROWS_PER_INSERT: usize = 64;

const INSERT_HEAD: &str = "INSERT OR IGNORE INTO exchanges (uuid, request_id, service, caller, \
    caller_source, client_addr, upstream_url, method, target, request_version, request_headers, \
    request_body, request_body_size, request_body_sha256, status, reason, response_version, \
    response_headers, response_body, response_body_size, response_body_sha256, request_seq, \
    response_seq, started_at, response_at, finished_at, error, ignored) ";

const COLUMNS_HEAD: &str = "id, uuid, request_id, service, caller, caller_source, client_addr, \
    upstream_url, method, target, request_version, request_headers, request_body_size, \
    request_body_sha256, status, reason, response_version, response_headers, response_body_size, \
    response_body_sha256, request_seq, response_seq, started_at, response_at, finished_at, error, \
    ignored";

const FLOW_COLUMNS: &str =
    "SELECT name, title, started_at, stopped_at, command_argv, stdout, stderr, exit_status FROM flows";

pub struct SqliteStore {
    pool: SqlitePool,
}

/// The file path a `sqlite://PATH` or `sqlite:PATH` URL names.
fn path_of(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty())
}

/// Creates the file ourselves so that it is born 0600 (bodies hold tokens
/// and passwords); an existing file keeps its mode.
fn create_file(path: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(format!("directory {} does not exist", dir.display()));
        }
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| format!("cannot open {} for writing: {e}", path.display()))
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self> {
        let open_err = |message: String| StoreError::Open {
            url: url.to_string(),
            message,
        };
        let path = Path::new(path_of(url).ok_or_else(|| open_err("no file path given".into()))?);
        create_file(path).map_err(open_err)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        // Two processes opening a fresh file at once can race on the first
        // migration; the loser succeeds on a second look.
        if let Err(first) = MIGRATOR.run(&pool).await {
            tokio::time::sleep(Duration::from_millis(200)).await;
            MIGRATOR.run(&pool).await.map_err(|e| {
                open_err(format!(
                    "cannot prepare the schema: {e} (first try: {first})"
                ))
            })?;
        }
        Ok(Self { pool })
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
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("SELECT {columns} FROM exchanges WHERE 1=1"));
        if !filter.include_ignored {
            qb.push(" AND ignored = 0");
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
        let services = sqlx::query(
            "SELECT service, COUNT(*) FROM exchanges \
             WHERE ignored = 0 AND started_at >= ? AND started_at <= ? \
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
        let lost: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(count), 0) FROM capture_losses WHERE at >= ? AND at <= ?",
        )
        .bind(flow.started_at)
        .bind(end)
        .fetch_one(&self.pool)
        .await?;
        Ok(FlowSummary {
            flow,
            exchanges,
            services: names,
            lost,
        })
    }

    async fn open_flow_names(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM flows WHERE stopped_at IS NULL ORDER BY started_at, name",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn corrupt(what: &str, id: i64, why: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("exchange {id}: bad {what}: {why}"))
}

fn exchange_from_row(row: &SqliteRow, with_bodies: bool) -> Result<Exchange> {
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
    let ignored: i64 = row.try_get("ignored")?;
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
        error: row.try_get("error")?,
        ignored: ignored != 0,
    })
}

fn flow_from_row(row: &SqliteRow) -> Result<Flow> {
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

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn insert_exchanges(&self, batch: &[Exchange]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for chunk in batch.chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Sqlite>::new(INSERT_HEAD);
            qb.push_values(chunk, |mut b, ex| {
                b.push_bind(ex.uuid.clone())
                    .push_bind(ex.request_id.clone())
                    .push_bind(ex.service.clone())
                    .push_bind(ex.caller.clone())
                    .push_bind(ex.caller_source.as_str())
                    .push_bind(ex.client_addr.clone())
                    .push_bind(ex.upstream_url.clone())
                    .push_bind(ex.method.clone())
                    .push_bind(ex.target.clone())
                    .push_bind(ex.request_version.clone())
                    .push_bind(codec::headers_to_text(&ex.request_headers))
                    .push_bind(ex.request_body.kept.clone())
                    .push_bind(to_i64(ex.request_body.size))
                    .push_bind(ex.request_body.sha256.clone())
                    .push_bind(ex.status.map(i64::from))
                    .push_bind(ex.reason.clone())
                    .push_bind(ex.response_version.clone())
                    .push_bind(codec::headers_to_text(&ex.response_headers))
                    .push_bind(ex.response_body.kept.clone())
                    .push_bind(to_i64(ex.response_body.size))
                    .push_bind(ex.response_body.sha256.clone())
                    .push_bind(ex.request_seq)
                    .push_bind(ex.response_seq)
                    .push_bind(ex.started_at)
                    .push_bind(ex.response_at)
                    .push_bind(ex.finished_at)
                    .push_bind(ex.error.clone())
                    .push_bind(i64::from(ex.ignored));
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_loss(&self, loss: Loss) -> Result<()> {
        sqlx::query("INSERT INTO capture_losses (at, count) VALUES (?, ?)")
            .bind(loss.at)
            .bind(loss.count)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_exchanges(&self, filter: &ExchangeFilter) -> Result<Vec<Exchange>> {
        self.select_exchanges(filter, true).await
    }

    async fn list_exchange_heads(&self, filter: &ExchangeFilter) -> Result<Vec<Exchange>> {
        self.select_exchanges(filter, false).await
    }

    async fn get_exchange(&self, key: &str) -> Result<Option<Exchange>> {
        let key = key.trim();
        let row = if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
            let Ok(id) = key.parse::<i64>() else {
                return Ok(None);
            };
            sqlx::query("SELECT * FROM exchanges WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
        } else {
            // uuids are stored in simple form; accept the hyphenated one too.
            let uuid = key.replace('-', "").to_ascii_lowercase();
            sqlx::query(
                "SELECT * FROM exchanges WHERE uuid = ? OR request_id = ? \
                 ORDER BY (uuid = ?) DESC, request_seq LIMIT 1",
            )
            .bind(uuid.clone())
            .bind(key.to_string())
            .bind(uuid)
            .fetch_optional(&self.pool)
            .await?
        };
        row.map(|r| exchange_from_row(&r, true)).transpose()
    }

    async fn start_flow(&self, name: &str, title: Option<&str>, at: Micros) -> Result<Flow> {
        if !crate::model::is_valid_flow_name(name) {
            return Err(StoreError::BadFlowName(name.to_string()));
        }
        let inserted = sqlx::query("INSERT INTO flows (name, title, started_at) VALUES (?, ?, ?)")
            .bind(name.to_string())
            .bind(title.map(str::to_string))
            .bind(at)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(Flow {
                name: name.to_string(),
                title: title.map(str::to_string),
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
        // MAX: a clock that stepped back must not make the window negative.
        sqlx::query(
            "UPDATE flows SET stopped_at = MAX(?, started_at) WHERE name = ? AND stopped_at IS NULL",
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
        let done = sqlx::query(
            "UPDATE flows SET command_argv = ?, stdout = ?, stderr = ?, exit_status = ? WHERE name = ?",
        )
        .bind(argv)
        .bind(command.stdout.clone())
        .bind(command.stderr.clone())
        .bind(command.exit_status.map(i64::from))
        .bind(name.to_string())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownFlow(name.to_string()));
        }
        Ok(())
    }

    async fn delete_flow(&self, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM flows WHERE name = ?")
            .bind(name.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownFlow(name.to_string()));
        }
        Ok(())
    }

    async fn get_flow(&self, name: &str) -> Result<Flow> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{FLOW_COLUMNS} WHERE name = ?"
        )))
        .bind(name.to_string())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => flow_from_row(&r),
            None => Err(StoreError::UnknownFlow(name.to_string())),
        }
    }

    async fn list_flows(&self) -> Result<Vec<FlowSummary>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{FLOW_COLUMNS} ORDER BY started_at, name"
        )))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.flow_summary(flow_from_row(row)?).await?);
        }
        Ok(out)
    }

    async fn put_token(&self, token: &TokenOwner) -> Result<()> {
        sqlx::query(
            "INSERT INTO token_owners (token_sha256, user_name, user_id, project_id, expires_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (token_sha256) DO UPDATE SET \
             user_name = excluded.user_name, user_id = excluded.user_id, \
             project_id = excluded.project_id, expires_at = excluded.expires_at",
        )
        .bind(token.token_sha256.clone())
        .bind(token.user_name.clone())
        .bind(token.user_id.clone())
        .bind(token.project_id.clone())
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn live_tokens(&self, now: Micros) -> Result<Vec<TokenOwner>> {
        let rows = sqlx::query(
            "SELECT token_sha256, user_name, user_id, project_id, expires_at FROM token_owners \
             WHERE expires_at IS NULL OR expires_at > ? ORDER BY token_sha256",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenOwner {
                    token_sha256: r.try_get("token_sha256")?,
                    user_name: r.try_get("user_name")?,
                    user_id: r.try_get("user_id")?,
                    project_id: r.try_get("project_id")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }
}
