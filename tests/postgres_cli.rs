//! The real `tracer` binary against PostgreSQL: CLI commands and `serve`
//! daemons sharing one database, in a fresh schema of the server
//! `TRACER_TEST_POSTGRES_URL` names (skipped without it, except under CI).

mod common;

use common::db::PgSchema;
use common::{raw_roundtrip, response, Tracer, Upstream};
use std::process::{Command, Output};
use std::sync::Arc;

/// `tracer --db URL …` for one test: its own config (whose admin listener
/// names the daemon `flow stop` flushes) in a temp dir.
struct Cli {
    dir: tempfile::TempDir,
    url: String,
}

impl Cli {
    fn new(url: &str, admin: u16) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let config = format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\n");
        std::fs::write(dir.path().join("cli.toml"), config).unwrap();
        Cli {
            dir,
            url: url.to_string(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tracer"))
            .current_dir(self.dir.path())
            .env_remove("TRACER_CONFIG")
            .env_remove("TRACER_LOG")
            .env_remove("RUST_LOG")
            .arg("--config")
            .arg(self.dir.path().join("cli.toml"))
            .arg("--db")
            .arg(&self.url)
            .args(args)
            .output()
            .unwrap()
    }

    /// Stdout of a command that must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tracer {args:?} failed: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Vec<serde_json::Value> {
        json_lines(&self.ok(args))
    }
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

async fn get(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: a\r\nUser-Agent: openstacksdk\r\nConnection: close\r\n\r\n"
    );
    raw_roundtrip(addr, request.as_bytes()).await.0
}

/// `flow start`, `serve` + a proxied request, `list --json`, `flow stop`,
/// `flow list`: what a user does, with the database on PostgreSQL.
#[tokio::test]
async fn cli_and_daemon_on_postgres() {
    let Some(schema) = PgSchema::create("cli_and_daemon_on_postgres").await else {
        return;
    };
    let url = schema.url();
    let upstream = Upstream::start(Arc::new(|_: &common::Request| {
        response(
            "200 OK",
            &[("Content-Type", "application/json")],
            b"{\"images\": []}",
        )
    }))
    .await;
    let mut daemon = Tracer::start_on(Some(&url), &[("glance", upstream.url(""))], "");
    let cli = Cli::new(&url, daemon.admin.port());

    let started = cli.ok(&["flow", "start", "x", "--title", "X"]);
    assert!(started.contains('x'), "{started}");
    let head = get(daemon.addr("glance"), "/v2/images?limit=1").await;
    assert!(
        head.starts_with(b"HTTP/1.1 200 OK"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // `flow stop` waits for the daemon's writer: the exchange is stored after it.
    cli.ok(&["flow", "stop", "x"]);

    let listed = cli.json(&["list", "--json"]);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["service"], "glance");
    assert_eq!(listed[0]["method"], "GET");
    assert_eq!(listed[0]["target"], "/v2/images?limit=1");
    assert_eq!(listed[0]["status"], 200);
    assert_eq!(listed[0]["reason"], "OK");
    assert_eq!(listed[0]["response_body_size"], 14);

    let flows = cli.json(&["flow", "list", "--json"]);
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["name"], "x");
    assert_eq!(flows[0]["open"], false);
    assert_eq!(flows[0]["exchanges"], 1);
    assert_eq!(flows[0]["services"], serde_json::json!(["glance"]));
    let table = cli.ok(&["flow", "list"]);
    assert!(table.contains('x') && table.contains("glance"), "{table}");

    let id = listed[0]["id"].to_string();
    let shown = cli.ok(&["show", &id, "--json"]);
    assert!(shown.contains("images"), "{shown}");

    assert!(daemon.terminate().success(), "{}", daemon.log());
    schema.drop().await;
}

/// Two daemons (as on two hosts) write into one database; the CLI sees one
/// record, in event order.
#[tokio::test]
async fn two_daemons_share_one_database() {
    let Some(schema) = PgSchema::create("two_daemons_share_one_database").await else {
        return;
    };
    let url = schema.url();
    let answer = Arc::new(|_: &common::Request| response("200 OK", &[], b"ok"));
    let upstream = Upstream::start(answer).await;
    // Started together: both migrate the fresh schema at once.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Tracer::start_on(Some(&url), &[("keystone", upstream.url(""))], ""));
        let b = s.spawn(|| Tracer::start_on(Some(&url), &[("glance", upstream.url(""))], ""));
        (a.join().unwrap(), b.join().unwrap())
    });
    let cli = Cli::new(&url, a.admin.port());
    cli.ok(&["flow", "start", "both"]);
    get(a.addr("keystone"), "/identity/").await;
    get(b.addr("glance"), "/v2/images").await;
    get(a.addr("keystone"), "/identity/v3").await;
    // `flow stop` flushes the daemon of its config; the other flushes on request.
    b.flush().await;
    cli.ok(&["flow", "stop"]);

    let listed = cli.json(&["list", "--json", "--flow", "both"]);
    let seen: Vec<(String, String)> = listed
        .iter()
        .map(|v| {
            (
                v["service"].as_str().unwrap().to_string(),
                v["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("keystone".to_string(), "/identity/".to_string()),
            ("glance".to_string(), "/v2/images".to_string()),
            ("keystone".to_string(), "/identity/v3".to_string()),
        ]
    );
    let flows = cli.json(&["flow", "list", "--json"]);
    assert_eq!(flows[0]["exchanges"], 3);
    assert_eq!(
        flows[0]["services"],
        serde_json::json!(["keystone", "glance"])
    );
    drop((a, b));
    schema.drop().await;
}

/// An unreachable server is one clear line, without the password, and no
/// wait for a pool timeout.
#[test]
fn unreachable_postgres_is_one_clear_line() {
    let port = common::free_port();
    let url = format!("postgres://tracer:s3cr3t-pw@127.0.0.1:{port}/tracer");
    let t = std::time::Instant::now();
    let out = Cli::new(&url, common::free_port()).run(&["flow", "list"]);
    assert!(!out.status.success());
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("s3cr3t-pw"), "{stderr}");
    assert!(stderr.contains("tracer:***@127.0.0.1"), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
}
