//! Notes live with the docs, not with one recording: a flow is recorded,
//! notes with highlights are written beside its pages, the same command is
//! recorded again (new ids, one more call, so new numbering), and every
//! note and highlight lands on the same step; an orphan note is reported
//! (an error with --strict).

mod common;

use common::*;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// keystone and glance in one stand-in: a fresh image id at every create.
fn services() -> Script {
    let images = Arc::new(AtomicUsize::new(0));
    Arc::new(move |req| {
        let json = [("Content-Type", "application/json")];
        match (req.method.as_str(), req.target.as_str()) {
            ("GET", "/") => response("200 OK", &json, br#"{"versions": {"values": []}}"#),
            ("POST", "/v3/auth/tokens") => response(
                "201 Created",
                &[
                    ("Content-Type", "application/json"),
                    (
                        "X-Subject-Token",
                        "gAAAAABnotesnotesnotesnotesnotes0123456789",
                    ),
                ],
                br#"{"token": {"methods": ["password"], "user": {"name": "admin"}}}"#,
            ),
            ("POST", "/v2/images") => {
                let n = images.fetch_add(1, Ordering::SeqCst);
                let id = format!("{n:08x}-78ec-4c95-b7b4-272ba265072c");
                let body = format!(
                    r#"{{"name": "cirros", "disk_format": "qcow2", "status": "queued", "id": "{id}", "file": "/v2/images/{id}/file"}}"#
                );
                let location = format!("http://glance/v2/images/{id}");
                response(
                    "201 Created",
                    &[
                        ("Content-Type", "application/json"),
                        ("Location", &location),
                    ],
                    body.as_bytes(),
                )
            }
            ("PUT", t) if t.ends_with("/file") => {
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".to_vec()
            }
            ("GET", t) if t.starts_with("/v2/images/") => {
                let id = t.trim_start_matches("/v2/images/");
                let body = format!(r#"{{"id": "{id}", "status": "active", "size": 64}}"#);
                response("200 OK", &json, body.as_bytes())
            }
            _ => response("404 Not Found", &[], b""),
        }
    })
}

const NOTES: &str = r#"
[[note]]
step = "POST /v2/images"
text = "Creates the image record; the data comes in the next steps."
highlight = ["/name", "/disk_format", "Content-Type"]

[[note]]
step = "201 /v2/images"
text = "The new image's id names it from here on."
highlight = ["/id", "Location"]

[[note]]
step = "PUT /v2/images/{image_id}/file"
text = "Uploads the data."

[[note]]
step = "DELETE /v2/images/{image_id}"
text = "Nothing deletes in this flow: this note has no step."
"#;

/// The section whose title starts with `title` (a step, ids replaced by
/// `id`): its text from the heading to the next.
fn section<'a>(page: &'a str, title: &str, id: &str) -> &'a str {
    let starts: Vec<usize> = page.match_indices("\n### (").map(|(i, _)| i + 1).collect();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(page.len());
        let text = &page[start..end];
        let heading = text.lines().next().unwrap();
        let named = heading
            .split_once(") ")
            .unwrap()
            .1
            .replace(id, "{image_id}");
        if named == title {
            return text;
        }
    }
    panic!("no section {title:?} in the page");
}

fn record_and_export(
    t: &Tracer,
    name: &str,
    out: &std::path::Path,
    discover: bool,
    python: &std::path::Path,
) -> (String, String) {
    let mut cmd = Command::new(tracer_bin());
    cmd.arg("--config")
        .arg(t.dir.path().join("tracer.toml"))
        .args(["--db", &t.db_url, "record", name, "--"])
        .arg(python)
        .arg(tools::root().join("tests/python/image_client.py"))
        .arg(format!("http://{}", t.addr("keystone")))
        .arg(format!("http://{}", t.addr("glance-api")));
    if discover {
        cmd.arg("--discover");
    }
    let rec = cmd.output().unwrap();
    assert!(
        rec.status.success(),
        "{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    let export = Command::new(tracer_bin())
        .args(["--db", &t.db_url, "export", "--flow", name, "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let body = std::fs::read_to_string(out.join("body.md")).unwrap();
    (body, String::from_utf8_lossy(&export.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_land_on_the_same_steps_after_a_re_recording() {
    let Some(python) = tools::python() else {
        return;
    };
    let up = Upstream::start(services()).await;
    let t = Tracer::start(&[("keystone", up.url("")), ("glance-api", up.url(""))], "");
    let docs = t.dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("notes.toml"), NOTES).unwrap();

    let mut pages = Vec::new();
    for (name, discover) in [("image-create", false), ("image-create-again", true)] {
        let (body, stderr) = record_and_export(&t, name, &docs, discover, &python);
        let n = pages.len();
        let id = format!("{n:08x}-78ec-4c95-b7b4-272ba265072c");
        assert!(
            stderr.contains("warning: note #4") && stderr.contains("matches no step"),
            "the orphan is reported: {stderr}"
        );
        pages.push((body, id));
    }
    let numbers: Vec<_> = pages
        .iter()
        .map(|(b, id)| {
            section(b, "POST /v2/images", id)
                .lines()
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_ne!(
        numbers[0], numbers[1],
        "the re-recording is numbered differently"
    );

    for (body, id) in &pages {
        let create = section(body, "POST /v2/images", id);
        assert!(create.contains("Creates the image record"), "{create}");
        // Content-Type is the 6th header line as urllib sends them.
        let header = create.lines().find(|l| l.contains("``` http")).unwrap();
        assert!(header.ends_with(" hl_lines=\"6\""), "{header}");
        let lines: Vec<&str> = create.lines().collect();
        let at = lines.iter().position(|l| l.contains("``` http")).unwrap();
        assert_eq!(lines[at + 6].trim(), "Content-Type: application/json");
        assert!(
            create.contains("linenums=\"1\" hl_lines=\"2 3\"\n    {\n      \"name\": \"cirros\",\n      \"disk_format\": \"qcow2\","),
            "{create}"
        );
        let created = section(body, "201 Created /v2/images", id);
        assert!(created.contains("The new image's id names it"), "{created}");
        assert!(
            created.contains("http title=\"201 Created /v2/images\" linenums=\"1\" hl_lines=\"2\"\n    Content-Type: application/json\n    Location: "),
            "Location is line 2: {created}"
        );
        assert!(
            created.contains("hl_lines=\"5\"\n    {\n"),
            "/id is line 5: {created}"
        );
        let upload = section(body, "PUT /v2/images/{image_id}/file", id);
        assert!(upload.contains("Uploads the data."), "{upload}");
        // Under the reference, before the tabs, as in seed 004.
        let reference = upload.find("!!! reference").unwrap();
        let note = upload.find("Uploads the data.").unwrap();
        let tabs = upload.find("=== \"Header\"").unwrap();
        assert!(reference < note && note < tabs, "{upload}");
    }

    // --strict: the orphan is an error, and nothing is written.
    let strict = Command::new(tracer_bin())
        .args([
            "--db",
            &t.db_url,
            "export",
            "--flow",
            "image-create",
            "--strict",
            "--out",
        ])
        .arg(t.dir.path().join("strict"))
        .arg("--notes")
        .arg(docs.join("notes.toml"))
        .output()
        .unwrap();
    assert!(!strict.status.success());
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(err.contains("note #4") && err.lines().count() == 1, "{err}");
    assert!(!t.dir.path().join("strict/body.md").exists());
}
