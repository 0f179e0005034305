//! A disk that fills up under the daemon: the exchanges it cannot store
//! are counted as `write-failed` (not "queue full"), those losses are
//! recorded once the disk is writable again, and freeing a little space
//! is enough for storing to resume.
//!
//! The database lives on a small tmpfs mounted in a mount namespace of
//! the daemon's own (`unshare -m`, as root: CI runs as root); the test
//! reaches it through `/proc/PID/root`.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracer::store::LossCause;

fn filler(path: &std::path::Path, bytes: usize) {
    std::fs::write(path, vec![7u8; bytes]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_with_its_cause_and_recovers_when_space_is_freed() {
    let body = vec![b'x'; 96 * 1024];
    let upstream = Upstream::start(Arc::new(move |_| response("200 OK", &[], &body))).await;
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let port = free_port();
    let admin = free_port();
    let config = dir.path().join("tracer.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nlisten = \"127.0.0.1:{admin}\"\n[[service]]\nname = \"glance-api\"\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{}\"\n",
            upstream.url("")
        ),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let script = format!(
        "mount -t tmpfs -o size=6m tracer-test {mnt} && exec {bin} --config {config} --db sqlite://{mnt}/t.db serve",
        mnt = mnt.display(),
        bin = tracer_bin().display(),
        config = config.display(),
    );
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("TRACER_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let admin_addr: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(admin_addr).is_err() {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "tracer did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The daemon's view of the folder: its tmpfs.
    let inside = std::path::PathBuf::from(format!("/proc/{}/root", child.id()))
        .join(mnt.strip_prefix("/").unwrap());
    assert!(
        inside.join("t.db").is_file(),
        "the database is on the tmpfs"
    );
    // Most of the space taken, and one more MiB that will be freed later.
    let room = {
        let st = rustix::fs::statvfs(&inside).unwrap();
        (st.f_bavail * st.f_frsize) as usize
    };
    assert!(room < 6 << 20, "the tmpfs, not the disk under it: {room}");
    filler(&inside.join("filler-big"), room - (1 << 20) - 256 * 1024);
    filler(&inside.join("filler-small"), 1 << 20);

    let get = b"GET /v2/images/x/file HTTP/1.1\r\nHost: h\r\n\r\n";
    for _ in 0..40 {
        let (head, _) = raw_roundtrip(addr, get).await;
        assert!(head.starts_with(b"HTTP/1.1 200"), "the proxy goes on");
    }
    let stats = |admin_addr| async move {
        let (_, body) = raw_roundtrip(
            admin_addr,
            b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .await;
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["queue"].clone()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let lost = loop {
        let q = stats(admin_addr).await;
        if q["lost_write_failed"].as_u64().unwrap_or(0) > 0 || Instant::now() > deadline {
            break q;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        lost["lost_write_failed"].as_u64().unwrap() > 0,
        "the disk filled and it says so: {lost}"
    );
    assert_eq!(lost["lost_queue_full"], 0, "not a full queue: {lost}");

    // A little space back: storing resumes and the losses are recorded.
    std::fs::remove_file(inside.join("filler-small")).unwrap();
    let stored_before = lost["stored"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let (head, _) = raw_roundtrip(addr, get).await;
        assert!(head.starts_with(b"HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let q = stats(admin_addr).await;
        if q["stored"].as_u64().unwrap() > stored_before || Instant::now() > deadline {
            break q;
        }
    };
    assert!(
        after["stored"].as_u64().unwrap() > stored_before,
        "storing resumed: {after}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // SQLite resolves /proc/PID/root away: read the file from inside the
    // daemon's namespace, with Python's sqlite3, read-only.
    let query = format!(
        "import sqlite3, json; c = sqlite3.connect('file:{}?mode=ro', uri=True); \
         print(json.dumps(c.execute('SELECT cause, SUM(count), MAX(detail) FROM capture_losses GROUP BY cause').fetchall()))",
        mnt.join("t.db").display()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let losses = loop {
        let out = Command::new("nsenter")
            .args([
                "-t",
                &child.id().to_string(),
                "-m",
                "--",
                "python3",
                "-c",
                &query,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: Vec<(String, i64, Option<String>)> = serde_json::from_slice(&out.stdout).unwrap();
        if rows.iter().any(|r| r.0 == LossCause::WriteFailed.as_str()) || Instant::now() > deadline
        {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let failed = losses
        .iter()
        .find(|l| l.0 == LossCause::WriteFailed.as_str())
        .unwrap_or_else(|| panic!("write-failed losses recorded: {losses:?}"));
    assert!(failed.1 > 0);
    assert!(
        failed.2.as_deref().is_some_and(|d| d.contains("full")),
        "{failed:?}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
