//! The admin UI and JSON API of a real daemon, over real sockets: proxied
//! exchanges and a flow in its SQLite file, the API's shapes and status
//! codes, HTML escaping of stored data, and headless Chromium drawing a
//! flow's sequence diagram from the daemon with the network shut.
//!
//! `TRACER_WEB_SHOTS=DIR` also writes screenshots of the flow and exchange
//! pages into DIR, for a look.

mod common;

use common::tools::{chromium, python, root, run};
use common::{raw_roundtrip, response, seeds, wait_for_exchanges, Script, Tracer, Upstream};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use tracer::model::Exchange;
use tracer::present::json;
use tracer::timefmt::now_micros;

const EVIL: &str = "<script>alert('stored')</script>";

struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The page with minijinja's escapes undone, to look for text in it.
    fn unescaped(&self) -> String {
        self.text()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
    }
    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

async fn call(admin: SocketAddr, method: &str, path: &str, host: &str) -> Reply {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let (head, body) = raw_roundtrip(admin, req.as_bytes()).await;
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    Reply { status, head, body }
}

async fn get(admin: SocketAddr, path: &str) -> Reply {
    call(admin, "GET", path, &admin.to_string()).await
}

/// A stand-in glance: lists images, creates one, 404s on the rest.
fn glance() -> Script {
    Arc::new(|req| match (req.method.as_str(), req.target.as_str()) {
        ("GET", "/v2/images") => response(
            "200 OK",
            &[("Content-Type", "application/json"), ("X-Evil", EVIL)],
            br#"{"images":[{"id":"a42bfade-78ec-4c95-b7b4-272ba265072c","name":"cirros"}]}"#,
        ),
        ("POST", "/v2/images") => response(
            "201 Created",
            &[("Content-Type", "application/json")],
            br#"{"id":"a42bfade-78ec-4c95-b7b4-272ba265072c","status":"queued"}"#,
        ),
        _ => response(
            "404 Not Found",
            &[("Content-Type", "text/plain")],
            b"no such image\n",
        ),
    })
}

/// Three exchanges through the proxy inside the flow `web-check`; the
/// seed `image create` flow written beside them. Returns the stored
/// exchanges of web-check.
async fn populate(t: &Tracer) -> Vec<Exchange> {
    let store = tracer::store::open(&t.db_url).await.unwrap();
    store
        .start_flow("web-check", Some("Web <b>check</b>"), now_micros())
        .await
        .unwrap();
    let addr = t.addr("glance");
    let host = format!("Host: {addr}\r\n");
    let from = "X-Requestshook-Request-From: openstack\r\n";
    let requests = [
        format!("GET /v2/images HTTP/1.1\r\n{host}X-Note: {EVIL}\r\nAccept: application/json\r\n{from}\r\n"),
        format!("POST /v2/images HTTP/1.1\r\n{host}Content-Type: application/json\r\nContent-Length: 17\r\n{from}\r\n{{\"name\":\"cirros\"}}"),
        format!("GET /v2/images/nope HTTP/1.1\r\n{host}{from}\r\n"),
    ];
    for r in &requests {
        raw_roundtrip(addr, r.as_bytes()).await;
    }
    let stored = wait_for_exchanges(t, 3).await;
    assert_eq!(stored.len(), 3, "{}", t.log());
    store
        .stop_flow(Some("web-check"), now_micros())
        .await
        .unwrap();

    // A real flow's worth of calls (nested keystone validations, a binary
    // upload, placeholders): the seed of `openstack image create`.
    let seed = seeds::exchanges(&seeds::parse(&seeds::read_seed(seeds::IMAGE_CREATE)));
    store.insert_exchanges(&seed).await.unwrap();
    let first = seed.iter().map(|x| x.started_at).min().unwrap();
    let last = seed.iter().map(|x| x.finished_at).max().unwrap();
    store
        .start_flow("image-create", Some("Image create"), first - 1)
        .await
        .unwrap();
    store
        .stop_flow(Some("image-create"), last + 1)
        .await
        .unwrap();
    stored
}

#[tokio::test]
async fn json_api_and_pages_of_a_running_daemon() {
    let upstream = Upstream::start(glance()).await;
    let t = Tracer::start(&[("glance", upstream.url(""))], "");
    let stored = populate(&t).await;
    let a = t.admin;

    // --- JSON API ---
    let r = get(a, "/api/flows").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let flows = r.json()["flows"].as_array().unwrap().clone();
    let web = flows.iter().find(|f| f["name"] == "web-check").unwrap();
    assert_eq!(web["exchanges"], 3);
    assert_eq!(web["services"], serde_json::json!(["glance"]));
    assert_eq!(web["open"], false);
    assert_eq!(web["lost"], 0);

    // A flow: its summary, its exchanges as `tracer list --json` rows, its events.
    let r = get(a, "/api/flows/web-check").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(&v["flow"], web);
    let rows: Vec<Value> = stored.iter().map(json::exchange_summary).collect();
    assert_eq!(v["exchanges"], Value::Array(rows.clone()));
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 6);
    assert_eq!(events[0]["n"], 1);
    assert_eq!(events[0]["side"], "request");
    assert_eq!(events[0]["title"], "GET /v2/images");

    for path in [
        "/api/flows/nope",
        "/api/flows/nope/har",
        "/api/flows/Not%20valid",
    ] {
        let r = get(a, path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("no flow named"),
            "{path}: {}",
            r.text()
        );
    }

    // HAR, as `tracer export --format har` writes it.
    let r = get(a, "/api/flows/web-check/har").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-disposition")
        .unwrap()
        .contains("web-check.har"));
    let har = r.json();
    assert_eq!(har["log"]["entries"].as_array().unwrap().len(), 3);
    assert_eq!(har["log"]["entries"][1]["response"]["status"], 201);
    assert_eq!(
        get(a, "/api/flows/web-check/har?redact=maybe").await.status,
        400
    );

    // Exchange lists: filters, limits, newest last, 400 on a bad query.
    let r = get(a, "/api/exchanges?flow=web-check").await;
    assert_eq!(r.json()["exchanges"], Value::Array(rows.clone()));
    assert_eq!(r.json()["more"], false);
    let r = get(a, "/api/exchanges?service=glance&status=404").await;
    let only = r.json()["exchanges"].as_array().unwrap().clone();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["target"], "/v2/images/nope");
    let r = get(a, "/api/exchanges?method=post&service=glance").await;
    assert_eq!(r.json()["exchanges"][0]["status"], 201);
    let r = get(a, "/api/exchanges?service=glance&limit=2").await;
    let v = r.json();
    assert_eq!(
        v["exchanges"],
        Value::Array(rows[1..].to_vec()),
        "the newest, oldest first"
    );
    assert_eq!(v["more"], true);
    // The seed flow is there too: 11 calls, all listed without a limit's cut.
    let r = get(a, "/api/exchanges?flow=image-create").await;
    assert_eq!(r.json()["exchanges"].as_array().unwrap().len(), 11);
    for (query, what) in [
        ("status=abc", "status"),
        ("limit=-3", "limit"),
        ("colour=red", "colour"),
        ("from=yesterday-ish", "from"),
    ] {
        let r = get(a, &format!("/api/exchanges?{query}")).await;
        assert_eq!(r.status, 400, "{query}");
        assert!(
            r.json()["error"].as_str().unwrap().contains(what),
            "{query}: {}",
            r.text()
        );
    }
    assert_eq!(get(a, "/api/exchanges?flow=nope").await.status, 404);

    // One exchange, as `tracer show --json`, by id, uuid or request id.
    let first = &stored[0];
    for key in [
        first.id.to_string(),
        first.uuid.clone(),
        first.request_id.clone(),
    ] {
        let r = get(a, &format!("/api/exchanges/{key}")).await;
        assert_eq!(r.status, 200, "{key}");
        assert_eq!(r.json(), json::exchange_full(first), "{key}");
    }
    let r = get(a, "/api/exchanges/999999").await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("999999"));

    // Counters and uptime; flush; wrong methods; unknown paths.
    let v = get(a, "/api/stats").await.json();
    assert!(v["queue"]["stored"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(v["queue"]["lost"], 0);
    assert!(v["uptime_secs"].is_u64(), "{v}");
    assert_eq!(v["services"][0]["name"], "glance");
    assert_eq!(call(a, "POST", "/api/flush", "x").await.status, 200);
    let r = get(a, "/api/flush").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("POST"));
    assert!(r.json()["error"].is_string());
    let r = call(a, "POST", "/api/flows", &a.to_string()).await;
    assert_eq!(
        (r.status, r.header("allow").as_deref()),
        (405, Some("GET, HEAD"))
    );
    let r = get(a, "/api/nothing").await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
    assert_eq!(get(a, "/healthz").await.json()["ok"], true);

    // A page of some other site that resolved its name to 127.0.0.1 (DNS
    // rebinding) gets no captured data from a loopback listener.
    let r = call(a, "GET", "/api/exchanges/1", "evil.example:8799").await;
    assert_eq!(r.status, 403);
    assert_eq!(call(a, "GET", "/", "evil.example").await.status, 403);
    assert_eq!(
        call(a, "GET", "/api/flows", "localhost:1").await.status,
        200
    );

    // --- HTML ---
    let r = get(a, "/").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("script-src 'self'"));
    let home = r.text();
    assert!(home.contains(r#"href="/flows/web-check""#), "{home}");
    assert!(home.contains("Web &lt;b&gt;check"), "title escaped");
    assert!(!home.contains("<b>check</b>"));
    assert!(r.unescaped().contains("Web <b>check</b>"));
    assert!(home.contains(r#"data-stat="stored""#));
    assert!(home.contains(r#"href="/api/flows/image-create/har""#));

    let r = get(a, "/flows/web-check").await;
    let page = r.text();
    assert!(
        page.contains(r#"<pre class="mermaid" id="diagram">"#),
        "{page}"
    );
    assert!(
        r.unescaped()
            .contains("sequenceDiagram\nautonumber\nopenstack->>glance: GET /v2/images\n"),
        "{page}"
    );
    for n in 1..=6 {
        assert!(page.contains(&format!(r#"id="ev-{n}""#)), "row {n}: {page}");
    }
    assert!(page.contains(&format!(r#"href="/exchanges/{}""#, stored[2].id)));
    assert!(page.contains("404 Not Found"));
    assert!(page.contains(r#"src="/assets/mermaid.min.js""#));

    // The exchange page: headers as stored (case, order), escaped.
    let r = get(a, &format!("/exchanges/{}", first.id)).await;
    assert_eq!(r.status, 200);
    let page = r.text();
    assert!(
        !page.contains(EVIL),
        "a stored <script> must not reach the page raw"
    );
    assert!(!page.contains("<script>alert"));
    let escaped = "&lt;script&gt;alert(&#x27;stored&#x27;)&lt;";
    assert_eq!(
        page.matches(escaped).count(),
        2,
        "request and response header: {page}"
    );
    assert_eq!(r.unescaped().matches(EVIL).count(), 2);
    let at = |needle: &str| {
        page.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {page}"))
    };
    assert!(at(">X-Note<") < at(">Accept<"));
    assert!(at(">Accept<") < at(">X-Requestshook-Request-From<"));
    assert!(at(">X-Requestshook-Request-From<") < at(">X-Requestshook-Request-Id<"));
    assert!(page.contains("decided by <code>header</code>"));
    assert!(page.contains(&first.response_body.sha256));
    // The JSON body pretty-printed, as the pages show it.
    assert!(
        page.contains("&quot;images&quot;: [\n    {\n      &quot;id&quot;"),
        "{page}"
    );
    assert!(page.contains(r#"href="/flows/web-check#ev-1""#), "{page}");

    let r = get(a, &format!("/exchanges/{}/response.body", first.id)).await;
    assert_eq!(r.body, first.response_body.kept);
    let r = get(a, "/exchanges?service=glance&method=GET").await;
    assert_eq!(r.status, 200);
    let list = r.unescaped();
    assert!(
        list.contains(">/v2/images/nope<") && !list.contains(r#"class="method">POST<"#),
        "{list}"
    );
    for (path, status) in [
        ("/exchanges/999999", 404),
        ("/flows/nope", 404),
        ("/exchanges?status=abc", 400),
        ("/no/such/page", 404),
    ] {
        let r = get(a, path).await;
        assert_eq!(r.status, status, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with("text/html"),
            "{path}"
        );
    }
    let r = get(a, "/assets/mermaid.min.js").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), tracer::export::MERMAID_MIN_JS.len());
    assert_eq!(get(a, "/assets/tracer.js").await.status, 200);

    browser_checks(&t, stored[0].id);
}

/// Chromium loads the daemon's flow pages with every other host shut off
/// and finds the SVG mermaid drew, the messages in it, and the event rows.
fn browser_checks(t: &Tracer, exchange_id: i64) {
    let Some(chromium) = chromium() else {
        return;
    };
    let Some(python) = python() else {
        return;
    };
    let origin = format!("http://{}", t.admin);
    let check = |path: &str, extra: &[&str]| {
        let mut cmd = Command::new(&python);
        cmd.arg(root().join("tests/browser/mermaid_offline.py"))
            .arg(format!("{origin}{path}"))
            .arg("--chromium")
            .arg(&chromium)
            .args(["--svg-id", "flow-diagram", "--allow-origin", &origin])
            .args(extra);
        let out = run(&mut cmd);
        eprintln!("{path}: {out}");
    };
    check(
        "/flows/web-check",
        &[
            "--contains",
            "GET /v2/images",
            "--contains",
            "201 Created /v2/images",
            "--page-contains",
            r#"id="ev-6""#,
        ],
    );
    check(
        "/flows/image-create",
        &[
            "--contains",
            "POST /v2/images",
            "--contains",
            "PUT /v2/images/{image_id}/file",
            // autonumber: the 22nd arrow carries its number.
            "--contains",
            ">22<",
            "--page-contains",
            r#"id="ev-22""#,
            "--page-contains",
            "glance-api → keystone",
        ],
    );

    if let Some(dir) = std::env::var_os("TRACER_WEB_SHOTS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, path, size) in [
            ("flows", "/".to_string(), "1400,900"),
            ("flow", "/flows/image-create".to_string(), "1400,2400"),
            ("flow-small", "/flows/web-check".to_string(), "1400,1200"),
            ("exchange", format!("/exchanges/{exchange_id}"), "1400,1600"),
            // The seed's image upload (section 13): a binary body.
            (
                "exchange-binary",
                format!("/exchanges/{:032x}", 13),
                "1400,1400",
            ),
            ("not-found", "/flows/nope".to_string(), "1000,500"),
            ("exchanges", "/exchanges".to_string(), "1400,1000"),
        ] {
            let profile = tempfile::tempdir().unwrap();
            run(Command::new(&chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg(format!("--window-size={size}"))
                .arg("--virtual-time-budget=10000")
                .arg(format!(
                    "--screenshot={}",
                    dir.join(format!("{name}.png")).display()
                ))
                .arg(format!("{origin}{path}")));
        }
    }
}
