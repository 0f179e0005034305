//! The SQLite writer's hot path: one prepared INSERT stepped once per
//! exchange, every value bound in place (`SQLITE_STATIC`) from the batch.
//!
//! Through sqlx every bound value is copied twice and allocated three times
//! on its way to SQLite (30 values per exchange), and every statement is a
//! round trip to the connection's worker thread. At proxy rates that cost
//! more CPU than SQLite's own work. sqlx hands out the raw connection for
//! such cases (`lock_handle`); the connection stays sqlx's, with its
//! pragmas and migrations, and nothing else touches it while the lock is
//! held. The unsafe code is limited to this file: prepare, bind, step.

use super::sql::{stored_text, to_i64, INSERT_HEAD, INSERT_TAIL};
use super::sqlite::BUSY_TIMEOUT;
use super::{codec, Result, StoreError};
use crate::model::Exchange;
use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;
use sqlx::{Pool, Sqlite};
use std::borrow::Cow;
use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::NonNull;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The shared column list (`sql::INSERT_HEAD`) with one row of numbered
/// parameters, in the order `insert_row` binds them.
static INSERT: LazyLock<CString> = LazyLock::new(|| {
    let params: Vec<String> = (1..=30).map(|i| format!("?{i}")).collect();
    let sql = format!("{INSERT_HEAD}VALUES ({}){INSERT_TAIL}", params.join(", "));
    CString::new(sql).unwrap_or_default()
});

/// Stores `batch` in one transaction on one pooled connection.
///
/// The write lock is taken first, waiting asynchronously while another
/// connection (this process's or another's) holds it. From there on the
/// transaction needs nobody else and runs to its end without an await; it
/// keeps the thread busy for that time (milliseconds), so on a
/// multi-threaded runtime the thread's other tasks are handed over first.
pub async fn insert_exchanges(pool: &Pool<Sqlite>, batch: &[Exchange]) -> Result<()> {
    let mut conn = pool.acquire().await?;
    let mut handle = conn.lock_handle().await?;
    begin_immediate(&mut handle).await?;
    let db = handle.as_raw_handle();
    let write = || match insert_rows(db, batch).and_then(|()| exec(db, c"COMMIT")) {
        Ok(()) => Ok(()),
        Err(e) => {
            // Leave the pooled connection outside any transaction.
            let _ = exec(db, c"ROLLBACK");
            Err(e)
        }
    };
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(write),
        _ => write(),
    }
}

/// `BEGIN IMMEDIATE` without SQLite's busy handler, which would block the
/// thread: while another connection writes, wait here, up to the same
/// `BUSY_TIMEOUT` the handler would.
async fn begin_immediate(handle: &mut LockedSqliteHandle<'_>) -> Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        let db = handle.as_raw_handle();
        let busy_ms = c_int::try_from(BUSY_TIMEOUT.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: valid connection we hold the lock of.
        unsafe { ffi::sqlite3_busy_timeout(db.as_ptr(), 0) };
        let rc = exec_rc(db, c"BEGIN IMMEDIATE");
        // SAFETY: as above; the connection keeps its usual timeout for sqlx.
        unsafe { ffi::sqlite3_busy_timeout(db.as_ptr(), busy_ms) };
        if rc != ffi::SQLITE_BUSY || Instant::now() >= deadline {
            return check(db, rc);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn exec(db: NonNull<ffi::sqlite3>, sql: &CStr) -> Result<()> {
    check(db, exec_rc(db, sql))
}

fn exec_rc(db: NonNull<ffi::sqlite3>, sql: &CStr) -> c_int {
    // SAFETY: `db` is an open connection we hold the lock of; `sql` is NUL-terminated.
    unsafe {
        ffi::sqlite3_exec(
            db.as_ptr(),
            sql.as_ptr(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
}

fn check(db: NonNull<ffi::sqlite3>, rc: c_int) -> Result<()> {
    if rc == ffi::SQLITE_OK || rc == ffi::SQLITE_DONE {
        return Ok(());
    }
    // SAFETY: sqlite3_errmsg returns a NUL-terminated string owned by the connection.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr())) }
        .to_string_lossy()
        .into_owned();
    Err(StoreError::Database(format!("{message} (code: {rc})")))
}

/// A prepared statement, finalized when dropped.
struct Statement {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
}

impl Statement {
    fn prepare(db: NonNull<ffi::sqlite3>, sql: &CStr) -> Result<Self> {
        let mut stmt = std::ptr::null_mut();
        // SAFETY: valid connection, NUL-terminated SQL (-1: read to the NUL).
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr(),
                -1,
                0,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        check(db, rc)?;
        let stmt = NonNull::new(stmt)
            .ok_or_else(|| StoreError::Database("empty INSERT statement".into()))?;
        Ok(Self { db, stmt })
    }

    // The bind calls below use SQLITE_STATIC: SQLite reads the bytes in place,
    // so they must stay put until the statement is reset. `insert_row` binds
    // only values that outlive its own call to `run`, which resets.

    /// Binds text as stored ([`stored_text`]): in place, or, in the rare
    /// case where U+0000 had to be replaced, as a copy SQLite makes at once
    /// (`SQLITE_TRANSIENT`), since the replaced text is gone after this call.
    fn text(&mut self, i: c_int, s: &str) -> Result<()> {
        let stored = stored_text(s);
        let lifetime = match stored {
            Cow::Borrowed(_) => ffi::SQLITE_STATIC(),
            Cow::Owned(_) => ffi::SQLITE_TRANSIENT(),
        };
        // SAFETY: see above; the length is given, no NUL needed.
        let rc = unsafe {
            ffi::sqlite3_bind_text64(
                self.stmt.as_ptr(),
                i,
                stored.as_ptr().cast::<c_char>(),
                stored.len() as u64,
                lifetime,
                ffi::SQLITE_UTF8 as u8,
            )
        };
        check(self.db, rc)
    }

    fn opt_text(&mut self, i: c_int, s: Option<&str>) -> Result<()> {
        match s {
            Some(s) => self.text(i, s),
            None => self.null(i),
        }
    }

    fn blob(&mut self, i: c_int, b: &[u8]) -> Result<()> {
        // SAFETY: see above. A zero-length blob is bound as an empty BLOB, not NULL.
        let rc = unsafe {
            ffi::sqlite3_bind_blob64(
                self.stmt.as_ptr(),
                i,
                b.as_ptr().cast(),
                b.len() as u64,
                ffi::SQLITE_STATIC(),
            )
        };
        check(self.db, rc)
    }

    fn int(&mut self, i: c_int, n: i64) -> Result<()> {
        // SAFETY: valid statement, index within 1..=30.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), i, n) };
        check(self.db, rc)
    }

    fn opt_int(&mut self, i: c_int, n: Option<i64>) -> Result<()> {
        match n {
            Some(n) => self.int(i, n),
            None => self.null(i),
        }
    }

    fn null(&mut self, i: c_int) -> Result<()> {
        // SAFETY: valid statement, index within 1..=30.
        let rc = unsafe { ffi::sqlite3_bind_null(self.stmt.as_ptr(), i) };
        check(self.db, rc)
    }

    /// Steps once, then resets and unbinds whatever happened, so no
    /// borrowed value stays bound past this call.
    fn run(&mut self) -> Result<()> {
        // SAFETY: valid statement with all parameters bound.
        let rc = unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) };
        let stepped = check(self.db, rc);
        // SAFETY: valid statement; reset returns the step's error again, already reported.
        unsafe {
            ffi::sqlite3_reset(self.stmt.as_ptr());
            ffi::sqlite3_clear_bindings(self.stmt.as_ptr());
        }
        stepped
    }
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared on this connection and is not used again.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

fn insert_rows(db: NonNull<ffi::sqlite3>, rows: &[Exchange]) -> Result<()> {
    let mut stmt = Statement::prepare(db, &INSERT)?;
    let (mut request_headers, mut response_headers) = (String::new(), String::new());
    for ex in rows {
        // Header lists as JSON, in buffers reused from row to row.
        codec::write_headers_text(&mut request_headers, &ex.request_headers);
        codec::write_headers_text(&mut response_headers, &ex.response_headers);
        insert_row(&mut stmt, ex, &request_headers, &response_headers)?;
    }
    Ok(())
}

/// Binds and steps one row. Every value bound in place lives until `run`
/// has reset the statement: it is borrowed from `ex` or from the caller.
fn insert_row(
    stmt: &mut Statement,
    ex: &Exchange,
    request_headers: &str,
    response_headers: &str,
) -> Result<()> {
    stmt.text(1, &ex.uuid)?;
    stmt.text(2, &ex.request_id)?;
    stmt.text(3, &ex.service)?;
    stmt.text(4, &ex.caller)?;
    stmt.text(5, ex.caller_source.as_str())?;
    stmt.text(6, &ex.client_addr)?;
    stmt.text(7, &ex.upstream_url)?;
    stmt.text(8, &ex.method)?;
    stmt.text(9, &ex.target)?;
    stmt.text(10, &ex.request_version)?;
    stmt.text(11, request_headers)?;
    stmt.blob(12, &ex.request_body.kept)?;
    stmt.int(13, to_i64(ex.request_body.size))?;
    stmt.text(14, &ex.request_body.sha256)?;
    stmt.opt_int(15, ex.status.map(i64::from))?;
    stmt.opt_text(16, ex.reason.as_deref())?;
    stmt.opt_text(17, ex.response_version.as_deref())?;
    stmt.text(18, response_headers)?;
    stmt.blob(19, &ex.response_body.kept)?;
    stmt.int(20, to_i64(ex.response_body.size))?;
    stmt.text(21, &ex.response_body.sha256)?;
    stmt.int(22, ex.request_seq)?;
    stmt.opt_int(23, ex.response_seq)?;
    stmt.int(24, ex.started_at)?;
    stmt.opt_int(25, ex.response_at)?;
    stmt.int(26, ex.finished_at)?;
    stmt.opt_text(27, ex.error.as_ref().map(|e| e.message.as_str()))?;
    stmt.int(28, i64::from(ex.ignored))?;
    stmt.opt_text(29, ex.error.as_ref().map(|e| e.kind.as_str()))?;
    stmt.opt_text(30, ex.error.as_ref().map(|e| e.side.as_str()))?;
    stmt.run()
}

#[cfg(test)]
mod tests {
    use crate::render::events::tests::exchange;
    use crate::store::{sqlite, ExchangeFilter, Store};
    use sqlx::Connection as _;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// Text with U+0000 is stored with U+FFFD, each field its own: the
    /// replaced copies must not be freed before the row is stepped (two
    /// same-sized copies in a row would then share one allocation).
    #[tokio::test]
    async fn text_with_nul_is_stored_replaced_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = sqlite::open(&url).await.unwrap();
        let mut ex = exchange("cli", "glance", "GET", "/v2/\0images", (1, Some(2)), None);
        ex.uuid = "b".repeat(32);
        ex.request_id = "req\0uest-one".into();
        ex.service = "ser\0vice-two".into();
        ex.method = "G\0T".into();
        store.insert_exchanges(&[ex]).await.unwrap();
        let stored = store
            .list_exchanges(&ExchangeFilter::default())
            .await
            .unwrap();
        let got = &stored[0];
        assert_eq!(got.request_id, "req\u{fffd}uest-one");
        assert_eq!(got.service, "ser\u{fffd}vice-two");
        assert_eq!(got.method, "G\u{fffd}T");
        assert_eq!(got.target, "/v2/\u{fffd}images");
    }

    /// Another connection holds the write lock for a while: the insert waits
    /// for it without blocking the (single-threaded) runtime, then lands.
    #[tokio::test]
    async fn waits_for_another_writer_without_blocking_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = sqlite::open(&url).await.unwrap();
        let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .unwrap();

        let ticks = Arc::new(AtomicU32::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            sqlx::query("COMMIT").execute(&mut other).await.unwrap();
        });
        let mut ex = exchange("cli", "glance", "GET", "/v2/images", (1, Some(2)), None);
        ex.uuid = "a".repeat(32);
        store.insert_exchanges(&[ex]).await.unwrap();
        release.await.unwrap();
        ticker.abort();
        assert!(
            ticks.load(Ordering::Relaxed) >= 10,
            "the runtime kept running while the insert waited"
        );
        let stored = store
            .list_exchanges(&ExchangeFilter::default())
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
    }
}
