//! What the page tests share: where a built site goes, the mkdocs build,
//! and short constructors for hand-made exchanges.

use super::tools::run;
use std::path::{Path, PathBuf};
use std::process::Command;
use tracer::model::{BodyRecord, CallerSource, Exchange, HeaderField};

/// A fresh folder for a site: a temporary one, or `$TRACER_KEEP_SITE/NAME`
/// to keep it for a look.
pub fn workdir(name: &str) -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("TRACER_KEEP_SITE") {
        Some(dir) => {
            let p = PathBuf::from(dir).join(name);
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            (None, p)
        }
        None => {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    }
}

/// `mkdocs build --strict` of DIR/mkdocs.yml into DIR/site: no warning.
pub fn mkdocs_build(dir: &Path, mkdocs: &Path) -> String {
    let out = run(Command::new(mkdocs)
        .env("NO_MKDOCS_2_WARNING", "1")
        .args(["build", "--strict", "--config-file"])
        .arg(dir.join("mkdocs.yml"))
        .arg("--site-dir")
        .arg(dir.join("site")));
    eprintln!("mkdocs build --strict:\n{out}");
    assert!(!out.contains("WARNING -"), "{out}");
    out
}

/// A body kept whole.
pub fn record(bytes: &[u8]) -> BodyRecord {
    BodyRecord {
        kept: bytes.to_vec(),
        size: bytes.len() as u64,
        sha256: String::new(),
    }
}

pub fn hf(pairs: &[(&str, &str)]) -> Vec<HeaderField> {
    pairs
        .iter()
        .map(|(n, v)| HeaderField::new(*n, *v))
        .collect()
}

/// A request of `caller` to `service` that got no response: event number
/// `n * 10` of a flow near 2027, forwarded to `upstream` + target.
pub fn request(
    n: i64,
    (caller, service): (&str, &str),
    method: &str,
    target: &str,
    upstream: &str,
    headers: Vec<HeaderField>,
) -> Exchange {
    let t0 = 1_800_000_000_000_000;
    Exchange {
        id: n,
        uuid: format!("{n:032x}"),
        request_id: format!("{n:032x}"),
        service: service.into(),
        caller: caller.into(),
        caller_source: CallerSource::Header,
        client_addr: "127.0.0.1:40000".into(),
        upstream_url: format!("{upstream}{target}"),
        method: method.into(),
        target: target.into(),
        request_version: "HTTP/1.1".into(),
        request_headers: headers,
        request_body: BodyRecord::default(),
        status: None,
        reason: None,
        response_version: None,
        response_headers: Vec::new(),
        response_body: BodyRecord::default(),
        request_seq: t0 + n * 10,
        response_seq: None,
        started_at: t0 + n * 10,
        response_at: None,
        finished_at: t0 + n * 10 + 5,
        error: None,
        ignored: false,
    }
}

/// The request answered 3 µs (and 3 events) later.
pub fn answered(
    mut x: Exchange,
    status: u16,
    reason: &str,
    headers: Vec<HeaderField>,
    body: BodyRecord,
) -> Exchange {
    x.status = Some(status);
    x.reason = Some(reason.into());
    x.response_version = Some("HTTP/1.1".into());
    x.response_headers = headers;
    x.response_body = body;
    x.response_seq = Some(x.request_seq + 3);
    x.response_at = Some(x.started_at + 3);
    x
}
