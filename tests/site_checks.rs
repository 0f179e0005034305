//! The checks that need outside tools: `mkdocs build --strict` on an
//! exported site, headless Chromium finding the rendered mermaid SVG with
//! no network, and an independent HAR reader.
//!
//! Tools: `scripts/setup-python.sh` (the .venv with pinned mkdocs,
//! mkdocs-material, haralyzer) and `scripts/setup-browser.sh` (Debian's
//! chromium). Without them these tests say SKIPPED loudly and pass, except
//! under `CI=true`, where a missing tool is a failure.
//!
//! `TRACER_KEEP_SITE=DIR` keeps the generated sites in DIR for a look.

mod common;

use common::memstore::MemStore;
use common::pages::{answered, hf, mkdocs_build, record, request, workdir};
use common::seeds;
use common::tools::{chromium, root, run, tool, venv};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use tracer::export::{export_flow, write_site, ExportFormat, ExportOptions, SiteOptions};
use tracer::model::{BodyRecord, Exchange, Flow, HeaderField, RecordedCommand};

fn shift(mut flow: Flow, xs: Vec<Exchange>, by: i64) -> (Flow, Vec<Exchange>) {
    flow.started_at += by;
    flow.stopped_at = flow.stopped_at.map(|t| t + by);
    let xs = xs
        .into_iter()
        .map(|mut x| {
            x.started_at += by;
            x.finished_at += by;
            x.response_at = x.response_at.map(|t| t + by);
            x
        })
        .collect();
    (flow, xs)
}

fn seed_flow(seed: &str, name: &str, title: &str, argv: &[&str]) -> (Flow, Vec<Exchange>) {
    let xs = seeds::exchanges(&seeds::parse(&seeds::read_seed(seed)));
    let flow = Flow {
        name: name.into(),
        title: Some(title.into()),
        started_at: xs[0].started_at - 1,
        stopped_at: Some(xs.iter().map(|x| x.finished_at).max().unwrap() + 1),
        command: Some(RecordedCommand {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            stdout: b"+------------------+--------------------------------------+\n| Field            | Value                                |\n+------------------+--------------------------------------+\n| id               | a42bfade-78ec-4c95-b7b4-272ba265072c |\n+------------------+--------------------------------------+\n".to_vec(),
            stderr: Vec::new(),
            exit_status: Some(0),
        }),
    };
    (flow, xs)
}

/// A flow of the awkward cases: no response, a 502 from the proxy, gzip,
/// binary, a body quoting Markdown fences, a query string.
fn edge_flow() -> (Flow, Vec<Exchange>) {
    let t0 = 1_800_000_000_000_000;
    let base = |n: i64, method: &str, target: &str| {
        request(
            n,
            ("openstack", "nova"),
            method,
            target,
            "http://127.0.0.1:8774",
            hf(&[("Host", "127.0.0.1:18774"), ("Accept", "application/json")]),
        )
    };

    let mut refused = base(1, "GET", "/v2.1/servers/detail?all_tenants=True&limit=2");
    refused.error = Some("upstream unreachable: connection refused".into());

    let mut gw = base(2, "GET", "/v2.1/flavors");
    gw.error = Some("upstream timed out after 60s".into());
    let gw = answered(
        gw,
        502,
        "Bad Gateway",
        hf(&[("Content-Type", "text/plain"), ("Content-Length", "29")]),
        record(b"tracer: upstream timed out\n"),
    );

    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(br#"{"servers":[{"id":"0b8f3a0e-1111-2222-3333-444455556666","name":"vm-1"}]}"#)
        .unwrap();
    let gz = gz.finish().unwrap();
    let zipped = answered(
        base(3, "GET", "/v2.1/servers"),
        200,
        "OK",
        hf(&[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ]),
        record(&gz),
    );

    let mut upload = base(
        4,
        "PUT",
        "/v2/images/0b8f3a0e-1111-2222-3333-444455556666/file",
    );
    upload
        .request_headers
        .push(HeaderField::new("Content-Type", "application/octet-stream"));
    upload.request_body = BodyRecord {
        kept: b"QFI\xfb\x00\x00\x00\x03'\"\\\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x07\x00\x00\x00\x00".to_vec(),
        size: 21233664,
        sha256: String::new(),
    };
    let upload = answered(
        upload,
        204,
        "No Content",
        hf(&[("Content-Length", "0")]),
        BodyRecord::default(),
    );

    // Participant names mermaid would misread, kept as single actors.
    let mut odd = base(5, "GET", "/");
    odd.caller = "10.0.0.5:4242".into();
    odd.service = "nova-xvpvnc end".into();
    let html = answered(
        odd,
        200,
        "OK",
        hf(&[("Content-Type", "text/html")]),
        record(
            b"<html><body>\n```\n[link](missing.md) <a href=\"x.md\">x</a>\n```\n</body></html>\n",
        ),
    );

    let xs = vec![refused, gw, zipped, upload, html];
    let flow = Flow {
        name: "edge-cases".into(),
        title: Some("Edge cases".into()),
        started_at: t0,
        stopped_at: Some(t0 + 1000),
        command: Some(RecordedCommand {
            argv: vec!["openstack".into(), "server".into(), "list".into()],
            stdout: Vec::new(),
            stderr: b"Unable to establish connection\n".to_vec(),
            exit_status: Some(1),
        }),
    };
    (flow, xs)
}

fn store() -> MemStore {
    let store = MemStore::default();
    let (f, xs) = seed_flow(
        seeds::IMAGE_CREATE,
        "image-create",
        "Image create",
        &[
            "openstack",
            "image",
            "create",
            "--disk-format",
            "qcow2",
            "--file",
            "cirros-0.6.1-x86_64-disk.img",
            "--public",
            "cirros-0.6.1-x86_64-disk",
        ],
    );
    store.add_flow(f, xs);
    let (f, xs) = seed_flow(
        seeds::IMAGE_SHOW,
        "image-show",
        "Image show",
        &["openstack", "image", "show", "cirros-0.6.1-x86_64-disk"],
    );
    let (f, xs) = shift(f, xs, 10_000_000_000);
    store.add_flow(f, xs);
    let (f, xs) = edge_flow();
    store.add_flow(f, xs);
    store
}

async fn site(dir: &Path, offline: bool) {
    let args = SiteOptions {
        out: dir.to_path_buf(),
        flows: vec![],
        offline,
        redact: false,
        all: false,
        site_name: None,
        pages: Default::default(),
    };
    write_site(&store(), &args).await.unwrap();
}

#[tokio::test]
async fn site_builds_strict_and_mermaid_renders_offline() {
    let Some(mkdocs) = tool(venv().join("bin/mkdocs"), "scripts/setup-python.sh") else {
        return;
    };
    let python = venv().join("bin/python");
    let Some(chromium) = chromium() else {
        return;
    };
    let (_keep, dir) = workdir("offline");
    site(&dir, true).await;
    mkdocs_build(&dir, &mkdocs);
    for page in [
        "index.html",
        "image-create/index.html",
        "image-create/log.html",
        "edge-cases/index.html",
    ] {
        assert!(dir.join("site").join(page).exists(), "{page} built");
    }

    let script = root().join("tests/browser/mermaid_offline.py");
    let check = |page: &str, extra: &[&str]| {
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .arg(dir.join("site").join(page))
            .arg("--chromium")
            .arg(&chromium)
            .args(extra);
        run(&mut cmd)
    };
    let out = check(
        "image-create/index.html",
        &[
            "--contains",
            "POST /v2/images",
            "--contains",
            "PUT /v2/images/{image_id}/file",
            "--contains",
            "204 No Content /v1/{account}/glance",
            // autonumber: the 22nd arrow carries its number.
            "--contains",
            ">22<",
        ],
    );
    eprintln!("offline page: {out}");
    let out = check(
        "edge-cases/index.html",
        &["--contains", "GET /v2.1/servers/detail"],
    );
    eprintln!("edge cases: {out}");

    // The same page of a site without --offline stays a code block when
    // there is no network: the check above is not passing by accident.
    let (_keep2, online) = workdir("online");
    site(&online, false).await;
    mkdocs_build(&online, &mkdocs);
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .arg(online.join("site/image-create/index.html"))
        .arg("--chromium")
        .arg(&chromium)
        .args(["--expect", "not-rendered"]);
    let out = run(&mut cmd);
    eprintln!("online-only page, no network: {out}");
    assert!(out.contains("unpkg.com/mermaid"), "{out}");
}

#[tokio::test]
async fn har_is_read_by_an_independent_reader() {
    let Some(python) = tool(venv().join("bin/python"), "scripts/setup-python.sh") else {
        return;
    };
    let (_keep, dir) = workdir("har");
    let store = store();
    let script = root().join("tests/python/check_har.py");
    for (flow, entries, failed, base64) in [
        ("image-create", "11", "0", "2"),
        ("edge-cases", "5", "1", "1"),
    ] {
        let out = dir.join(flow);
        let args = ExportOptions {
            flow: flow.into(),
            out: out.clone(),
            format: ExportFormat::Har,
            redact: false,
            all: false,
            notes: None,
            strict: false,
            pages: Default::default(),
        };
        export_flow(&store, &args).await.unwrap();
        let report = run(Command::new(&python)
            .arg(&script)
            .arg(out.join("flow.har"))
            .args(["--entries", entries, "--failed", failed, "--base64", base64]));
        eprintln!("{report}");
    }
}
