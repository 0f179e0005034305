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
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

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
    Ok(SqlStore::new(pool))
}
