//! Exported pages are published: whatever a client put into a request
//! (target, headers, caller name, reason phrase, body), whatever the user
//! typed (title, site name, the recorded command) must show as text, never
//! run. A flow with hostile input everywhere is written by `tracer site`
//! and by `tracer export` (inside a user's own mkdocs project), built with
//! `mkdocs build --strict`, and every built page is opened in headless
//! Chromium (tests/browser/no_script.py): no dialog may open, no element may
//! carry an injected handler or `javascript:` link, and the hostile text
//! must be on the pages literally.
//!
//! Tools as in site_checks.rs (`scripts/setup-python.sh`,
//! `scripts/setup-browser.sh`); `TRACER_KEEP_SITE=DIR` keeps the sites.

mod common;

use common::memstore::MemStore;
use common::pages::{answered, hf, mkdocs_build, record, request, workdir};
use common::tools::{chromium, root, run, tool, venv};
use std::process::Command;
use tracer::export::{export_flow, write_site, ExportFormat, ExportOptions, SiteOptions};
use tracer::model::{Exchange, Flow, RecordedCommand};

/// What every payload carries where it would execute.
const MARKER: &str = "XSS-";

const IMAGE: &str = "0b8f3a0e-1111-2222-3333-444455556666";

/// The hostile strings, each a payload that would run if written raw.
pub const TITLE: &str = "Image <script>alert('XSS-title')</script> & \"quoted\" 'single' </title><script>alert('XSS-title2')</script> {: onclick=\"alert('XSS-title3')\" }";
pub const SITE_NAME: &str =
    "Docs <img src=x onerror=alert('XSS-site')> \" onmouseover=\"alert('XSS-site2') </title><script>alert('XSS-site3')</script>";
const CALLER: &str = "cli` <img src=x onerror=alert('XSS-caller')> `x";
const SERVICE: &str = "glance<img src=x onerror=alert('XSS-svc')>";
const TARGET: &str = "/v2/images?<svg/onload=alert('XSS-target')>";
const LINK_TARGET: &str =
    "/v2/images?q=[a](javascript:alert('XSS-link'))&p=![i](javascript:alert('XSS-img'))";
const REASON: &str =
    "Created `<img src=x onerror=alert('XSS-reason')>` \"q\" {: onclick=\"alert('XSS-reason2')\" }";
const ERROR: &str = "upstream said <script>alert('XSS-error')</script>\n[x](javascript:alert('XSS-errlink'))\n``` mermaid\nsequenceDiagram\na->>b: <img src=x onerror=alert('XSS-errfence')>\n```\n~~~\n<img src=x onerror=alert('XSS-tilde')>\n~~~\n{: onclick=\"alert('XSS-errattr')\" }";
const BODY: &str = "{\"name\": \"```\\n</code></pre><script>alert('XSS-body')</script>\", \"<img src=x onerror=alert('XSS-key')>\": {\"id\": \"0b8f3a0e-1111-2222-3333-444455556666\"}}";

fn exchange(n: i64, method: &str, target: &str) -> Exchange {
    let headers = hf(&[
        (
            "Host",
            "127.0.0.1:19292 <img src=x onerror=alert('XSS-host')>",
        ),
        (
            "X-Requestshook-Request-From",
            "<img src=x onerror=alert('XSS-from')>",
        ),
        ("Content-Type", "application/json"),
    ]);
    request(
        n,
        (CALLER, SERVICE),
        method,
        target,
        "http://127.0.0.1:9292",
        headers,
    )
}

fn reply(x: Exchange, status: u16, reason: &str, body: &str) -> Exchange {
    let headers = hf(&[
        ("Content-Type", "application/json"),
        ("X-Note", "</code><script>alert('XSS-resphdr')</script> ```"),
    ]);
    answered(x, status, reason, headers, record(body.as_bytes()))
}

pub fn hostile_flow(name: &str) -> (Flow, Vec<Exchange>) {
    let mut create = exchange(1, "POST", TARGET);
    create.request_body = record(BODY.as_bytes());
    let create = reply(create, 201, REASON, &format!("{{\"id\": \"{IMAGE}\"}}"));
    // Uses the id: the Variables table names it, with its origin.
    let upload = reply(
        exchange(
            2,
            "PUT",
            &format!("/v2/images/{IMAGE}/<img src=x onerror=alert('XSS-mermaid')>%%{{init}}%%"),
        ),
        204,
        "No Content",
        "",
    );
    let mut text = reply(exchange(3, "GET", LINK_TARGET), 200, "OK", "");
    text.response_headers = hf(&[("Content-Type", "text/html")]);
    text.response_body = record(
        b"<html>\n```\n</code></pre><script>alert('XSS-html')</script>\n~~~\n[x](javascript:alert('XSS-htmllink'))\n</html>\n",
    );
    let mut failed = exchange(4, "GE`T", "/v2/schemas/image");
    failed.error = Some(ERROR.into());
    let xs = vec![create, upload, text, failed];
    let flow = Flow {
        name: name.into(),
        title: Some(TITLE.into()),
        started_at: 1_800_000_000_000_000 - 1,
        stopped_at: Some(1_800_000_000_001_000),
        command: Some(RecordedCommand {
            argv: vec![
                "openstack".into(),
                "image".into(),
                "create".into(),
                "--property".into(),
                "x=<img src=x onerror=alert(\"XSS-argv\")>".into(),
                "\"q\" [l](javascript:alert('XSS-argvlink'))".into(),
            ],
            stdout: b"```\n</code></pre><script>alert('XSS-stdout')</script>\n".to_vec(),
            stderr: b"~~~\n<img src=x onerror=alert('XSS-stderr')>\n".to_vec(),
            exit_status: Some(1),
        }),
    };
    (flow, xs)
}

/// Texts that must be on the built pages literally.
const VISIBLE: &[&str] = &[
    "<svg/onload=alert('XSS-target')>",
    "<img src=x onerror=alert('XSS-caller')>",
    "<script>alert('XSS-title')</script>",
    "<img src=x onerror=alert('XSS-site')>",
    "[a](javascript:alert('XSS-link'))",
    "<script>alert('XSS-error')</script>",
    "</code></pre><script>alert('XSS-body')</script>",
    "</code></pre><script>alert('XSS-stdout')</script>",
    "x=<img src=x onerror=alert(\"XSS-argv\")>",
    // The mermaid diagram's message text, inside its SVG.
    "<img src=x onerror=alert('XSS-mermaid')>",
];

#[tokio::test]
async fn hostile_input_shows_as_text_and_runs_nowhere() {
    let Some(mkdocs) = tool(venv().join("bin/mkdocs"), "scripts/setup-python.sh") else {
        return;
    };
    let python = venv().join("bin/python");
    let Some(chromium) = chromium() else {
        return;
    };
    let (flow, xs) = hostile_flow("hostile");
    let store = MemStore::with_flow(flow, xs);

    // `tracer site --offline`, so mermaid renders with the network shut.
    let (_keep, site) = workdir("hostile-site");
    let opts = SiteOptions {
        out: site.clone(),
        flows: vec![],
        offline: true,
        redact: false,
        all: false,
        site_name: Some(SITE_NAME.into()),
        pages: Default::default(),
    };
    write_site(&store, &opts).await.unwrap();
    mkdocs_build(&site, &mkdocs);

    // `tracer export` into a user's own project: no nav, so mkdocs takes
    // each page's title from the page itself.
    let (_keep2, own) = workdir("hostile-export");
    let opts = ExportOptions {
        flow: "hostile".into(),
        out: own.join("docs/hostile"),
        format: ExportFormat::All,
        redact: false,
        all: false,
        notes: None,
        strict: false,
        pages: Default::default(),
    };
    export_flow(&store, &opts).await.unwrap();
    let yml = std::fs::read_to_string(site.join("mkdocs.yml")).unwrap();
    let yml = yml.split("\nnav:\n").next().unwrap().replacen(
        &yml.lines().next().unwrap().to_string(),
        "site_name: my docs",
        1,
    );
    std::fs::write(own.join("mkdocs.yml"), yml + "\n").unwrap();
    std::fs::write(own.join("docs/index.md"), "# My docs\n").unwrap();
    let assets = own.join("docs/assets");
    std::fs::create_dir_all(&assets).unwrap();
    for f in ["mermaid.min.js", "iframe-worker-shim.js"] {
        std::fs::copy(site.join("docs/assets").join(f), assets.join(f)).unwrap();
    }
    mkdocs_build(&own, &mkdocs);

    let mut cmd = Command::new(&python);
    cmd.arg(root().join("tests/browser/no_script.py"))
        .arg(site.join("site"))
        .arg(own.join("site"))
        .args(["--marker", MARKER, "--chromium"])
        .arg(&chromium);
    for v in VISIBLE {
        cmd.args(["--visible", v]);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "script ran or text is missing:\n{text}"
    );

    // The diagram rendered, and its labels show the hostile path as text
    // (the SVG's markup escapes it), not sanitised away.
    let report = run(Command::new(&python)
        .arg(root().join("tests/browser/mermaid_offline.py"))
        .arg(site.join("site/hostile/index.html"))
        .arg("--chromium")
        .arg(&chromium)
        .args([
            "--contains",
            "/&lt;img src=x onerror=alert('XSS-mermaid')&gt;%%{init}%%",
            "--contains",
            "201 Created `&lt;img src=x onerror=alert('XSS-reason')&gt;`",
            "--contains",
            "GE`T /v2/schemas/image",
        ]));
    eprintln!("{report}");

    // The HAR of the same flow is still valid HAR 1.2.
    let report = run(Command::new(&python)
        .arg(root().join("tests/python/check_har.py"))
        .arg(own.join("docs/hostile/flow.har"))
        .args(["--entries", "4", "--failed", "1"]));
    eprintln!("{report}");
}
