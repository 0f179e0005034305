//! The databases store tests run against: a SQLite file in a temporary
//! directory, and a fresh schema in the PostgreSQL server that
//! `TRACER_TEST_POSTGRES_URL` names (`eval "$(scripts/setup-postgres.sh)"`).
//!
//! Without that variable the PostgreSQL runs print `*** SKIPPED postgres … ***`
//! and pass, except under `CI=true`, where they fail: CI must test both.

use sqlx::{Connection as _, PgConnection};
use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::OnceCell;
use tracer::store::{self, SharedStore};

pub const POSTGRES_URL_VAR: &str = "TRACER_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One test's own database: hand it to as many handles (or `tracer`
/// processes) as the test wants, they all see the same data.
#[derive(Clone)]
pub struct Db {
    pub backend: Backend,
    pub url: String,
    /// Keeps the SQLite file's directory alive as long as any clone.
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl Db {
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        Db {
            backend: Backend::Sqlite,
            url: format!("sqlite://{}/t.db", dir.path().display()),
            _dir: Some(Arc::new(dir)),
        }
    }

    pub async fn open(&self) -> SharedStore {
        match store::open(&self.url).await {
            Ok(s) => s,
            Err(e) => panic!("cannot open the {:?} test database: {e}", self.backend),
        }
    }
}

/// The server's URL, or None (after saying so) when the tests are to be skipped.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "{POSTGRES_URL_VAR} is not set: under CI the PostgreSQL tests must run \
             (eval \"$(scripts/setup-postgres.sh)\" before cargo test)"
        ),
        _ => {
            // Past the test harness's capture, so that it shows in a passing run.
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED postgres {test}: {POSTGRES_URL_VAR} is not set \
                 (eval \"$(scripts/setup-postgres.sh)\") ***"
            );
            None
        }
    }
}

/// A schema of its own in the test server, reached through a URL whose
/// `search_path` names it; dropped by [`PgSchema::drop`].
pub struct PgSchema {
    server_url: String,
    name: String,
}

const SCHEMA_PREFIX: &str = "tracer_test_";

impl PgSchema {
    /// None when PostgreSQL tests are skipped (see [`postgres_url`]).
    pub async fn create(test: &str) -> Option<PgSchema> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        static SWEPT: OnceCell<()> = OnceCell::const_new();
        let server_url = postgres_url(test)?;
        let mut conn = PgConnection::connect(&server_url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR}: cannot connect: {e}"));
        SWEPT.get_or_init(|| sweep_dead_schemas(&server_url)).await;
        let name = format!(
            "{SCHEMA_PREFIX}{}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        let _ = conn.close().await;
        Some(PgSchema { server_url, name })
    }

    pub fn url(&self) -> String {
        let mut url = url::Url::parse(&self.server_url).expect("a valid URL");
        url.query_pairs_mut()
            .append_pair("options", &format!("-c search_path={}", self.name));
        url.to_string()
    }

    pub fn db(&self) -> Db {
        Db {
            backend: Backend::Postgres,
            url: self.url(),
            _dir: None,
        }
    }

    pub async fn drop(self) {
        let Ok(mut conn) = PgConnection::connect(&self.server_url).await else {
            return;
        };
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.name
        )))
        .execute(&mut conn)
        .await;
        let _ = conn.close().await;
    }
}

/// Drops the schemas that test processes which are gone (a panic past the
/// cleanup, a killed run) left behind.
async fn sweep_dead_schemas(server_url: &str) {
    let Ok(mut conn) = PgConnection::connect(server_url).await else {
        return;
    };
    let names: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)")
            .bind(SCHEMA_PREFIX)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name[SCHEMA_PREFIX.len()..].split('_').next().unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE"
            )))
            .execute(&mut conn)
            .await;
        }
    }
    let _ = conn.close().await;
}

/// Runs `check` on a fresh SQLite database.
pub async fn on_sqlite<F, Fut>(check: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    check(Db::sqlite()).await;
}

/// Runs `check` on a fresh PostgreSQL schema, and drops the schema whether
/// the check passed or panicked.
pub async fn on_postgres<F, Fut>(test: &str, check: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(schema) = PgSchema::create(test).await else {
        return;
    };
    let outcome = tokio::spawn(check(schema.db())).await;
    schema.drop().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("{e}"),
        }
    }
}
