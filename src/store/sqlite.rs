//! SQLite backend: one file (created mode 0600), WAL so the daemon and CLI
//! commands can share it, schema from `migrations/sqlite/`. The queries are
//! the shared ones of [`SqlStore`].

use super::sql::SqlStore;
use super::{Result, StoreError};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Sqlite;
use std::path::Path;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another process's write lock.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub type SqliteStore = SqlStore<Sqlite>;

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

/// Opens (creating if missing) and migrates the file a `sqlite:` URL names.
pub async fn open(url: &str) -> Result<SqliteStore> {
    let open_err = |message: String| StoreError::Open {
        url: url.to_string(),
        message,
    };
    let path = Path::new(path_of(url).ok_or_else(|| open_err("no file path given".into()))?);
    create_file(path).map_err(open_err)?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        // 16 KiB pages (a new file only; SQLite's default is 4 KiB): a row
        // of exchange is about 1 KB, so the writer touches and writes a
        // quarter as many pages per row; measured about 30% less CPU per row.
        .page_size(16 * 1024)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        // A statement that changes several rows inside a transaction keeps
        // a statement journal: in memory it costs no file writes.
        .pragma("temp_store", "memory")
        // A bounded WAL: checkpoints come every 4 MiB (256 of these pages)
        // instead of every 16, and the file is cut back to 4 MiB after
        // each. With the disk full, a little freed space then lets storing
        // resume instead of being refilled by one WAL growth.
        .pragma("wal_autocheckpoint", "256")
        .pragma("journal_size_limit", "4194304");
    // Several processes (the daemon, `tracer flow start`, a second daemon)
    // may open a fresh file at once: switching it to WAL and the first
    // migration take locks the others see as "database is locked" before
    // any busy handler applies. Those are retried, bounded; other errors are not.
    let deadline = tokio::time::Instant::now() + OPEN_RETRY_FOR;
    loop {
        let attempt = async {
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.clone())
                .await?;
            MIGRATOR.run(&pool).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(pool)
        };
        match attempt.await {
            Ok(pool) => return Ok(SqlStore::new(pool)),
            Err(e) if is_busy(&*e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(open_err(e.to_string())),
        }
    }
}

/// Opens an existing file for reading only: nothing is created, migrated
/// or written, so it works on a read-only copy (and on a read-only folder,
/// where SQLite cannot make the WAL's shared-memory file: the file is then
/// read as immutable).
pub async fn open_read_only(url: &str) -> Result<SqliteStore> {
    let open_err = |message: String| StoreError::Open {
        url: url.to_string(),
        message,
    };
    let path = Path::new(path_of(url).ok_or_else(|| open_err("no file path given".into()))?);
    if !path.is_file() {
        return Err(open_err(format!(
            "{} does not exist (nothing recorded yet: `tracer serve` creates it)",
            path.display()
        )));
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = match connect_checked(options.clone()).await {
        Ok(pool) => pool,
        Err(first) => {
            let pool = connect_checked(options.immutable(true))
                .await
                .map_err(|_| open_err(first.to_string()))?;
            let wal = format!("{}-wal", path.display());
            if Path::new(&wal).exists() {
                tracing::warn!(
                    "{} is read as it was last checkpointed: what {wal} holds is not \
                     seen (a read-only folder has no room for its index); copy the \
                     database after `tracer serve` has stopped",
                    path.display()
                );
            }
            pool
        }
    };
    super::check_schema(&pool, &MIGRATOR)
        .await
        .map_err(open_err)?;
    Ok(SqlStore::new(pool))
}

async fn connect_checked(
    options: SqliteConnectOptions,
) -> std::result::Result<sqlx::SqlitePool, sqlx::Error> {
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await?;
    // A WAL file that cannot be read shows on the first query, not on connect.
    sqlx::query("SELECT count(*) FROM sqlite_master")
        .execute(&pool)
        .await?;
    Ok(pool)
}

/// How long opening keeps retrying while another process holds the file's lock.
const OPEN_RETRY_FOR: Duration = Duration::from_secs(15);

/// Locked by another process, or beaten to a migration by another process
/// (sqlx's SQLite migrator takes no lock: the loser sees the tables the
/// winner just committed, or fails to record the same version, and on the
/// next look finds the migration applied).
fn is_busy(e: &(dyn std::error::Error + 'static)) -> bool {
    let text = e.to_string();
    text.contains("database is locked")
        || text.contains("(code: 5)")
        || text.contains("(code: 6)")
        || text.contains("already exists")
        // ALTER TABLE ADD COLUMN of a migration the other process just ran.
        || text.contains("duplicate column name")
        || text.contains("UNIQUE constraint failed: _sqlx_migrations")
}
