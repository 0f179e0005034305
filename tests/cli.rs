//! The real `tracer` binary against a real SQLite file.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tracer::model::{BodyRecord, CallerSource, Exchange, HeaderField};
use tracer::store::{self, SharedStore};

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// A port nothing listens on: `flow stop` finds no daemon there.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Env {
    fn new() -> Env {
        Env::with_admin_port(closed_port())
    }

    fn with_admin_port(port: u16) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tracer.toml");
        std::fs::write(&config, format!("[admin]\nlisten = \"127.0.0.1:{port}\"\n")).unwrap();
        Env { dir, config }
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}/t.db", self.dir.path().display())
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tracer"));
        c.current_dir(self.dir.path())
            .env_remove("TRACER_CONFIG")
            .env_remove("TRACER_LOG")
            .env_remove("RUST_LOG")
            .arg("--config")
            .arg(&self.config)
            .arg("--db")
            .arg(self.db_url())
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    async fn store(&self) -> SharedStore {
        store::open(&self.db_url()).await.unwrap()
    }
}

/// Fails with exactly one line on stderr, and returns it.
fn one_line_failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn exchange(n: usize, at: i64) -> Exchange {
    Exchange {
        id: 0,
        uuid: format!("{n:032x}"),
        request_id: format!("fbb232c41ed24c67a1bdcf571f97f4{n:02}"),
        service: "glance".into(),
        caller: "openstack".into(),
        caller_source: CallerSource::UserAgent,
        client_addr: "127.0.0.1:40000".into(),
        upstream_url: "http://127.0.0.1:60999/v2/images".into(),
        method: "POST".into(),
        target: "/v2/images".into(),
        request_version: "HTTP/1.1".into(),
        request_headers: vec![
            HeaderField::new("Host", "127.0.0.1:60999"),
            HeaderField::new("Content-Type", "application/json"),
            HeaderField::new("X-Odd", vec![0xe9]),
        ],
        request_body: BodyRecord {
            kept: b"{\"name\": \"cirros\"}".to_vec(),
            size: 18,
            sha256: "ab".repeat(32),
        },
        status: Some(201),
        reason: Some("Created".into()),
        response_version: Some("HTTP/1.1".into()),
        response_headers: vec![HeaderField::new("Content-Length", "4")],
        response_body: BodyRecord {
            kept: vec![0x51, 0x46, 0x49, 0xfb],
            size: 4,
            sha256: "cd".repeat(32),
        },
        request_seq: at,
        response_seq: Some(at + 5),
        started_at: at,
        response_at: Some(at + 5_000),
        finished_at: at + 12_345,
        error: None,
        ignored: false,
    }
}

fn now() -> i64 {
    tracer::timefmt::now_micros()
}

#[test]
fn flow_start_stop_list() {
    let env = Env::new();
    let out = env.ok(&[
        "flow",
        "start",
        "image-create",
        "--title",
        "Create an image",
    ]);
    assert!(out.contains("started flow image-create"), "{out}");
    let list = env.ok(&["flow", "list"]);
    assert!(
        list.contains("image-create") && list.contains("(open)"),
        "{list}"
    );
    assert!(list.contains("Create an image"), "{list}");
    let out = env.ok(&["flow", "stop"]);
    assert!(
        out.contains("stopped flow image-create: 0 exchanges"),
        "{out}"
    );
    let json = env.ok(&["flow", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["name"], "image-create");
    assert_eq!(v["open"], false);
    assert_eq!(v["title"], "Create an image");
    env.ok(&["flow", "delete", "image-create"]);
    assert_eq!(env.ok(&["flow", "list", "--json"]), "");
}

#[test]
fn flow_errors_are_one_line() {
    let env = Env::new();
    env.ok(&["flow", "start", "a"]);
    let err = one_line_failure(&env.run(&["flow", "start", "a"]));
    assert!(err.contains("already open"), "{err}");
    let err = one_line_failure(&env.run(&["flow", "start", "Not_Valid"]));
    assert!(err.contains("not valid"), "{err}");
    env.ok(&["flow", "start", "b"]);
    let err = one_line_failure(&env.run(&["flow", "stop"]));
    assert!(err.contains("several flows are open (a, b)"), "{err}");
    let err = one_line_failure(&env.run(&["flow", "stop", "zzz"]));
    assert!(err.contains("no flow named \"zzz\""), "{err}");
    let err = one_line_failure(&env.run(&["list", "--flow", "zzz"]));
    assert!(err.contains("no flow named \"zzz\""), "{err}");
    let err = one_line_failure(&env.run(&["flow", "delete", "zzz"]));
    assert!(err.contains("zzz"), "{err}");
}

#[test]
fn record_keeps_the_command_and_exits_with_its_status() {
    let env = Env::new();
    let script = "echo out; echo err >&2; exit 3";
    let out = env.run(&["record", "rec", "--title", "T", "--", "sh", "-c", script]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("err\n"), "{err}");
    assert!(err.contains("stopped flow rec"), "{err}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let flow = rt.block_on(async { env.store().await.get_flow("rec").await.unwrap() });
    assert!(!flow.is_open());
    assert_eq!(flow.title.as_deref(), Some("T"));
    let cmd = flow.command.unwrap();
    assert_eq!(cmd.argv, ["sh", "-c", script]);
    assert_eq!(cmd.stdout, b"out\n");
    assert_eq!(cmd.stderr, b"err\n");
    assert_eq!(cmd.exit_status, Some(3));
}

#[test]
fn record_reports_signals_as_128_plus_n() {
    let env = Env::new();
    let out = env.run(&["record", "killed", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(128 + 15));
}

#[test]
fn record_of_a_missing_command_still_stops_the_flow() {
    let env = Env::new();
    let out = env.run(&["record", "missing", "--", "no-such-command-xyz"]);
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot run \"no-such-command-xyz\""), "{err}");
    let json = env.ok(&["flow", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["open"], false);
    assert_eq!(v["command"]["argv"][0], "no-such-command-xyz");
}

#[test]
fn bad_config_key_is_named() {
    let env = Env::new();
    std::fs::write(&env.config, "[storage]\nurll = \"sqlite://x.db\"\n").unwrap();
    let err = one_line_failure(&env.run(&["flow", "list"]));
    assert!(err.contains("urll"), "{err}");
}

#[test]
fn unreachable_database_is_one_clear_line() {
    let env = Env::new();
    let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .current_dir(env.dir.path())
        .args(["--config"])
        .arg(&env.config)
        .args(["--db", "sqlite:///nonexistent-dir/x.db", "list"])
        .output()
        .unwrap();
    let err = one_line_failure(&out);
    assert!(
        err.contains("cannot open database")
            && err.contains("/nonexistent-dir/x.db does not exist"),
        "{err}"
    );
}

#[test]
fn show_of_an_unknown_id_fails() {
    let env = Env::new();
    env.ok(&["flow", "start", "first"]);
    let err = one_line_failure(&env.run(&["show", "999"]));
    assert!(err.contains("no exchange") && err.contains("999"), "{err}");
}

#[test]
fn list_and_show_stored_exchanges() {
    let env = Env::new();
    let t0 = now() - 60_000_000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = env.store().await;
        s.insert_exchanges(&[exchange(1, t0)]).await.unwrap();
        s.start_flow("f", None, t0 + 1_000_000).await.unwrap();
        let mut get = exchange(2, t0 + 2_000_000);
        get.method = "GET".into();
        get.target = "/v2/images/1".into();
        get.status = Some(404);
        get.reason = Some("Not Found".into());
        let mut ignored = exchange(3, t0 + 3_000_000);
        ignored.ignored = true;
        s.insert_exchanges(&[get, ignored]).await.unwrap();
        s.stop_flow(None, t0 + 4_000_000).await.unwrap();
        s.insert_exchanges(&[exchange(4, t0 + 5_000_000)])
            .await
            .unwrap();
    });

    let table = env.ok(&["list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}"); // header + 3 (the ignored one hidden)
    assert!(lines[0].starts_with("ID"), "{table}");
    assert!(
        lines[1].starts_with("1 ") && lines[3].starts_with("4 "),
        "{table}"
    );
    assert!(lines[1].contains("openstack → glance") && lines[1].contains("201 Created"));
    assert!(lines[1].contains("12.3ms"), "{table}");
    assert_eq!(env.ok(&["list", "--all"]).lines().count(), 5);

    let ids = |out: String| -> Vec<i64> {
        out.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(ids(env.ok(&["list", "--json", "--flow", "f"])), [2]);
    assert_eq!(
        ids(env.ok(&["list", "--json", "--flow", "f", "--all"])),
        [2, 3]
    );
    assert_eq!(ids(env.ok(&["list", "--json", "--limit", "2"])), [2, 4]);
    assert_eq!(ids(env.ok(&["list", "--json", "--method", "get"])), [2]);
    assert_eq!(ids(env.ok(&["list", "--json", "--status", "201"])), [1, 4]);
    assert_eq!(
        ids(env.ok(&["list", "--json", "--from", "30s"])),
        Vec::<i64>::new()
    );
    assert_eq!(ids(env.ok(&["list", "--json", "--from", "2h"])), [1, 2, 4]);
    let err = one_line_failure(&env.run(&["list", "--from", "yesterday"]));
    assert!(err.contains("--from"), "{err}");

    let line = env.ok(&["list", "--json", "--limit", "1"]);
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["uuid"], format!("{:032x}", 4));
    assert_eq!(v["caller_source"], "user-agent");
    assert_eq!(v["duration_ms"], 12.345);
    assert_eq!(v["status"], 201);
    assert_eq!(v["response_body_size"], 4);

    let full = env.ok(&["show", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(full.trim()).unwrap();
    assert_eq!(
        v["request"]["headers"][0],
        serde_json::json!(["Host", "127.0.0.1:60999"])
    );
    assert_eq!(v["request"]["headers"][2][1]["b64"], "6Q==");
    assert_eq!(v["request"]["body"]["encoding"], "utf8");
    assert_eq!(v["request"]["body"]["data"], "{\"name\": \"cirros\"}");
    assert_eq!(v["response"]["body"]["encoding"], "base64");
    assert_eq!(v["response"]["reason"], "Created");
    assert_eq!(v["timing"]["response_seq"], t0 + 5);

    // By request id too, and for humans.
    let human = env.ok(&["show", "fbb232c41ed24c67a1bdcf571f97f401"]);
    assert!(
        human.contains(">>> POST /v2/images HTTP/1.1\nHost: 127.0.0.1:60999\n"),
        "{human}"
    );
    assert!(human.contains("X-Odd: é"), "{human}");
    assert!(
        human.contains("<<< HTTP/1.1 201 Created\nContent-Length: 4\n"),
        "{human}"
    );
    assert!(human.contains("|QFI.|"), "{human}");
    assert!(
        human.contains("caller      openstack (decided by: user-agent)"),
        "{human}"
    );
}

/// A stand-in for the daemon's admin listener: answers the flush after
/// `delay`, and reports what the flow looked like when the request came.
fn fake_daemon(db_url: String, delay: Duration) -> (u16, std::thread::JoinHandle<(String, bool)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 2048];
        let n = conn.read(&mut buf).unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let closed = rt.block_on(async {
            let s = store::open(&db_url).await.unwrap();
            !s.get_flow("w").await.unwrap().is_open()
        });
        std::thread::sleep(delay);
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        (request, closed)
    });
    (port, handle)
}

#[test]
fn flow_stop_closes_the_window_then_waits_for_the_daemon() {
    let probe = Env::new();
    let url = format!("sqlite://{}/t.db", probe.dir.path().display());
    let (port, daemon) = fake_daemon(url, Duration::from_millis(700));
    // Same directory, so the fake daemon and the CLI share the file.
    std::fs::write(
        &probe.config,
        format!("[admin]\nlisten = \"0.0.0.0:{port}\"\n"),
    )
    .unwrap();
    probe.ok(&["flow", "start", "w"]);
    let t = Instant::now();
    probe.ok(&["flow", "stop", "w"]);
    assert!(t.elapsed() >= Duration::from_millis(700), "did not wait");
    let (request, closed_before_flush) = daemon.join().unwrap();
    assert!(
        request.starts_with("POST /api/flush HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        closed_before_flush,
        "the window must close before the flush"
    );
}

#[test]
fn database_file_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.ok(&["flow", "start", "first"]);
    let mode = std::fs::metadata(Path::new(env.dir.path()).join("t.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Sends `sig` to a process (or, negative, a process group) with kill(1).
fn kill(sig: &str, target: i64) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), "--".into(), target.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {target}");
}

/// Waits for CMD's first line, which tracer passes on only once CMD runs
/// (and tracer's signal handling is in place).
fn wait_ready(child: &mut std::process::Child) {
    let mut stdout = child.stdout.take().unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"ready\n") {
        assert_eq!(stdout.read(&mut byte).unwrap(), 1, "no ready line");
        got.push(byte[0]);
    }
}

const READY_THEN_SLEEP: &str = "echo ready; exec sleep 30";

fn flow_is_closed(env: &Env, name: &str) -> bool {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { !env.store().await.get_flow(name).await.unwrap().is_open() })
}

#[test]
fn ctrl_c_reaches_the_command_and_the_flow_is_still_stopped() {
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    // Its own process group, as a terminal would give it: Ctrl-C goes to the group.
    let mut child = env
        .cmd(&["record", "intr", "--", "sh", "-c", READY_THEN_SLEEP])
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    kill("INT", -(child.id() as i64));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(flow_is_closed(&env, "intr"));
}

#[test]
fn sigterm_to_tracer_ends_the_command_and_stops_the_flow() {
    let env = Env::new();
    let mut child = env
        .cmd(&["record", "term", "--", "sh", "-c", READY_THEN_SLEEP])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    kill("TERM", child.id() as i64);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + 9));
    assert!(flow_is_closed(&env, "term"));
}

/// `list`, `show`, `export` and `flow list` read: in an empty folder they
/// say there is nothing and create nothing; on a copy in a read-only
/// folder (a read-only bind mount, which stops root too) they work.
#[test]
fn read_commands_open_the_database_read_only() {
    let env = Env::new();
    for args in [&["list"][..], &["flow", "list"], &["show", "1"]] {
        let err = one_line_failure(&env.run(args));
        assert!(err.contains("does not exist"), "{args:?}: {err}");
    }
    assert!(
        !env.dir.path().join("t.db").exists(),
        "a read command created the database"
    );

    let t0 = now() - 60_000_000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = env.store().await;
        s.start_flow("ro", None, t0 - 1).await.unwrap();
        s.insert_exchanges(&[exchange(1, t0)]).await.unwrap();
        s.stop_flow(Some("ro"), t0 + 1).await.unwrap();
        s.close().await;
    });
    let ro = tempfile::tempdir().unwrap();
    std::fs::copy(env.dir.path().join("t.db"), ro.path().join("t.db")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let tracer = env!("CARGO_BIN_EXE_tracer");
    let script = format!(
        "set -e; mount --bind -o ro {ro} {ro}; \
         touch {ro}/probe 2>/dev/null && {{ echo 'bind mount is writable'; exit 3; }}; \
         db=sqlite://{ro}/t.db; \
         {tracer} --db $db list; {tracer} --db $db show 1 >/dev/null; \
         {tracer} --db $db flow list; {tracer} --db $db export --flow ro --out {out}/pages",
        ro = ro.path().display(),
        out = out.path().display(),
    );
    let run = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env_remove("TRACER_CONFIG")
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "read-only copy: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let listed = String::from_utf8_lossy(&run.stdout);
    assert!(listed.contains("ro"), "{listed}");
    assert!(out.path().join("pages/index.md").is_file());
    let names: Vec<_> = std::fs::read_dir(ro.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["t.db"], "nothing was written beside the copy");
}

/// `tracer list --json | head -1`: the reader goes, tracer ends quietly.
#[test]
fn a_closed_pipe_ends_a_listing_quietly() {
    let env = Env::new();
    let t0 = now() - 60_000_000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = env.store().await;
        let batch: Vec<Exchange> = (0..3000).map(|n| exchange(n, t0 + n as i64)).collect();
        s.insert_exchanges(&batch).await.unwrap();
        s.close().await;
    });
    let script = format!(
        "{} --config {} --db {} list --json 2>{}/err | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        env!("CARGO_BIN_EXE_tracer"),
        env.config.display(),
        env.db_url(),
        env.dir.path().display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let status = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let err = std::fs::read_to_string(env.dir.path().join("err")).unwrap();
    assert_eq!(status, "0", "exit status; stderr: {err}");
    assert_eq!(err, "", "nothing on stderr");
}

/// 32 hex digits name a request id (or uuid) even when all are decimal
/// digits; a short number is a row id.
#[test]
fn a_thirty_two_digit_key_is_a_request_id() {
    let env = Env::new();
    let t0 = now() - 60_000_000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = env.store().await;
        let mut a = exchange(1, t0);
        a.uuid = "f".repeat(32);
        a.request_id = "a".repeat(32);
        let mut b = exchange(2, t0 + 1);
        b.uuid = "e".repeat(32);
        b.request_id = "00000000000000000000000000000001".into();
        b.target = "/v2/images/the-second".into();
        s.insert_exchanges(&[a, b]).await.unwrap();
        s.close().await;
    });
    let shown = env.ok(&["show", "00000000000000000000000000000001", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["request"]["target"], "/v2/images/the-second");
    assert_eq!(v["id"], 2);
    let shown = env.ok(&["show", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["id"], 1);
}

/// A record whose command failed leaves its flow (it documents the
/// failure), and the retry replaces it instead of failing on the name.
#[test]
fn a_failed_record_can_be_retried() {
    let env = Env::new();
    let failed = env.run(&["record", "retry-me", "--", "sh", "-c", "exit 3"]);
    assert_eq!(failed.status.code(), Some(3));
    let again = env.run(&["record", "retry-me", "--", "true"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("replacing flow retry-me"));
    // A flow that went well is not replaced without being asked.
    let err = one_line_failure(&env.run(&["record", "retry-me", "--", "true"]));
    assert!(err.contains("--replace"), "{err}");
    env.ok(&["record", "--replace", "retry-me", "--", "true"]);
}

/// `show` names the API operation of the request, with its reference.
#[test]
fn show_names_the_operation() {
    let env = Env::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = env.store().await;
        s.insert_exchanges(&[exchange(1, now())]).await.unwrap();
        s.close().await;
    });
    let shown = env.ok(&["show", "1"]);
    assert!(
        shown.contains("operation   Create image (POST /v2/images) https://docs.openstack.org/api-ref/image/v2/index.html?expanded=create-image-detail#create-image"),
        "{shown}"
    );
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["show", "1", "--json"])).unwrap();
    assert_eq!(v["operation"]["title"], "Create image");
}
