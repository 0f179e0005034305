//! `export_flow` and `write_site` through the Store trait (in memory).

mod common;

use common::memstore::MemStore;
use common::seeds;
use std::path::PathBuf;
use tracer::export::{
    export_flow, write_site, ExportFormat, ExportOptions, SiteOptions, MERMAID_MIN_JS,
};
use tracer::model::{BodyRecord, Exchange, Flow, HeaderField, RecordedCommand};
use tracer::render::{self, RenderOptions};

/// The seed's exchanges inside a closed flow whose window holds them.
pub fn seed_flow(seed: &str, name: &str) -> (Flow, Vec<Exchange>) {
    let xs = seeds::exchanges(&seeds::parse(&seeds::read_seed(seed)));
    let first = xs.iter().map(|x| x.started_at).min().unwrap_or(0);
    let last = xs.iter().map(|x| x.finished_at).max().unwrap_or(0);
    let flow = Flow {
        name: name.into(),
        title: None,
        started_at: first - 1,
        stopped_at: Some(last + 1),
        command: Some(RecordedCommand {
            argv: vec![
                "openstack".into(),
                "image".into(),
                "show".into(),
                "cirros".into(),
            ],
            stdout: b"+-------+--------+\n| Field | Value  |\n+-------+--------+\n".to_vec(),
            stderr: Vec::new(),
            exit_status: Some(0),
        }),
    };
    (flow, xs)
}

fn export_args(out: PathBuf, format: ExportFormat) -> ExportOptions {
    ExportOptions {
        flow: "image-show".into(),
        out,
        format,
        redact: false,
        all: false,
        notes: None,
        strict: false,
        pages: Default::default(),
    }
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn export_writes_the_four_pages_and_har() {
    let (flow, xs) = seed_flow(seeds::IMAGE_SHOW, "image-show");
    let store = MemStore::with_flow(flow.clone(), xs.clone());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("new/dir");

    let written = export_flow(&store, &export_args(out.clone(), ExportFormat::Mkdocs))
        .await
        .unwrap();
    assert_eq!(
        names(&written.written),
        ["body.md", "diagram.md", "index.md", "log.md"]
    );
    let pages = render::flow_pages(&flow, &xs, &RenderOptions::default());
    assert_eq!(
        std::fs::read_to_string(out.join("body.md")).unwrap(),
        pages.body_md
    );
    assert_eq!(
        std::fs::read_to_string(out.join("index.md")).unwrap(),
        pages.index_md
    );
    assert!(pages.index_md.contains(
        "??? example \"openstack image show cirros\"\n    ``` text\n    +-------+--------+\n"
    ));
    assert!(!out.join("flow.har").exists());

    let written = export_flow(&store, &export_args(out.clone(), ExportFormat::Har))
        .await
        .unwrap();
    assert_eq!(names(&written.written), ["flow.har"]);

    let written = export_flow(&store, &export_args(out.clone(), ExportFormat::All))
        .await
        .unwrap();
    assert_eq!(
        names(&written.written),
        ["body.md", "diagram.md", "index.md", "log.md", "flow.har"]
    );
    let index = std::fs::read_to_string(out.join("index.md")).unwrap();
    assert!(index.contains("[flow.har](flow.har)"));
    let har: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("flow.har")).unwrap()).unwrap();
    assert_eq!(har["log"]["entries"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn export_errors_and_ignored_exchanges() {
    let (flow, mut xs) = seed_flow(seeds::IMAGE_SHOW, "image-show");
    // The token validation marked by an ignore rule.
    xs[3].ignored = true;
    let store = MemStore::with_flow(flow, xs);
    let tmp = tempfile::tempdir().unwrap();

    let mut args = export_args(tmp.path().to_path_buf(), ExportFormat::Mkdocs);
    export_flow(&store, &args).await.unwrap();
    let body = std::fs::read_to_string(tmp.path().join("body.md")).unwrap();
    assert_eq!(body.matches("\n### (").count() + 1, 6, "{body}");
    assert!(!body.contains("`glance-api` --> `keystone`"));

    args.all = true;
    export_flow(&store, &args).await.unwrap();
    let body = std::fs::read_to_string(tmp.path().join("body.md")).unwrap();
    assert!(body.contains("### (8) 200 OK /v2/images/"));

    args.flow = "nope".into();
    let err = export_flow(&store, &args).await.unwrap_err();
    assert!(err.to_string().contains("no flow named \"nope\""), "{err}");
}

#[tokio::test]
async fn export_redacts_every_file() {
    let (flow, xs) = seed_flow(seeds::IMAGE_SHOW, "image-show");
    let store = MemStore::with_flow(flow, xs);
    let tmp = tempfile::tempdir().unwrap();
    let mut args = export_args(tmp.path().to_path_buf(), ExportFormat::All);
    args.redact = true;
    let written = export_flow(&store, &args).await.unwrap();
    let token = "gAAAAABjsoJr7kmCgtOnnBLFPFUIe4__8XDcHmZmQ6Gxg2bf1_CUvVe7";
    for path in written.written {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(token), "{} shows a token", path.display());
        assert!(
            !text.contains("\"asdf\""),
            "{} shows a password",
            path.display()
        );
    }
}

#[tokio::test]
async fn site_holds_every_flow() {
    let store = MemStore::default();
    let (show, xs) = seed_flow(seeds::IMAGE_SHOW, "image-show");
    store.add_flow(show, xs);
    let (mut create, xs) = seed_flow(seeds::IMAGE_CREATE, "image-create");
    create.title = Some("Image create".into());
    // The seeds' clocks overlap: move the second flow later.
    let shift = 10_000_000_000;
    create.started_at += shift;
    create.stopped_at = create.stopped_at.map(|t| t + shift);
    let xs = xs
        .into_iter()
        .map(|mut x| {
            x.started_at += shift;
            x.finished_at += shift;
            x.response_at = x.response_at.map(|t| t + shift);
            x
        })
        .collect();
    store.add_flow(create, xs);

    let tmp = tempfile::tempdir().unwrap();
    let args = SiteOptions {
        out: tmp.path().to_path_buf(),
        flows: vec![],
        offline: true,
        redact: false,
        all: false,
        site_name: None,
        ..Default::default()
    };
    write_site(&store, &args).await.unwrap();
    let yml = std::fs::read_to_string(tmp.path().join("mkdocs.yml")).unwrap();
    assert!(yml.contains("site_name: \"tracer flows\"\n"));
    assert!(yml.contains("  - \"image-show\":\n      - \"image-show/index.md\"\n"));
    assert!(yml.contains("  - \"Image create\":\n      - \"image-create/index.md\"\n"));
    for f in ["index.md", "log.md", "body.md", "diagram.md", "flow.har"] {
        assert!(tmp.path().join("docs/image-create").join(f).exists(), "{f}");
        assert!(tmp.path().join("docs/image-show").join(f).exists(), "{f}");
    }
    let index = std::fs::read_to_string(tmp.path().join("docs/index.md")).unwrap();
    assert!(index.contains("[image-create](image-create/index.md)"));
    let js = std::fs::read(tmp.path().join("docs/assets/mermaid.min.js")).unwrap();
    assert_eq!(js, MERMAID_MIN_JS);

    // Only the named flows; an unknown name is an error naming it.
    let only = tempfile::tempdir().unwrap();
    let args = SiteOptions {
        out: only.path().to_path_buf(),
        flows: vec!["image-show".into()],
        offline: false,
        redact: false,
        all: false,
        site_name: Some("Glance".into()),
        ..Default::default()
    };
    write_site(&store, &args).await.unwrap();
    assert!(!only.path().join("docs/image-create").exists());
    assert!(!only.path().join("docs/assets/mermaid.min.js").exists());
    let args = SiteOptions {
        flows: vec!["missing".into()],
        ..args
    };
    let err = write_site(&store, &args).await.unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

/// Every kind of secret a flow can hold, in every place it can show.
fn secret_flow() -> (Flow, Vec<Exchange>) {
    let (mut flow, mut xs) = seed_flow(seeds::IMAGE_SHOW, "secrets");
    let token = "gAAAAABk0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let x = &mut xs[2];
    x.target = "/identity/v3/auth/tokens?password=query-pass-zq1&nocatalog".into();
    x.request_headers.push(HeaderField::new(
        "Authorization",
        "Basic YWRtaW46YmFzaWMtcGFzcw==",
    ));
    x.request_body = BodyRecord {
        kept: format!(
            r#"{{"auth":{{"identity":{{"methods":["password","token","application_credential"],"password":{{"user":{{"name":"admin","password":"zqk9"}}}},"token":{{"id":"{}"}},"application_credential":{{"id":"a1","secret":"appcred-secret-zq-0123456789-abcdefghijklmnop"}}}}}}}}"#,
            token.replace('k', "m")
        )
        .into_bytes(),
        size: 0,
        sha256: String::new(),
    };
    x.request_body.size = x.request_body.kept.len() as u64;
    x.error = Some(format!("upstream echoed {token}").into());
    let x = &mut xs[3];
    x.response_headers
        .push(HeaderField::new("X-Subject-Token", token));
    flow.command = Some(RecordedCommand {
        argv: vec![
            "openstack".into(),
            "--os-password".into(),
            "pw-zq".into(),
            format!("--os-token={}", token.replace('k', "q")),
            "application".into(),
            "credential".into(),
            "create".into(),
        ],
        stdout: b"| secret | appcred-secret-zq-0123456789-abcdefghijklmnop |\n".to_vec(),
        stderr: format!("token {token} password=query-pass-zq1\n").into_bytes(),
        exit_status: Some(0),
    });
    (flow, xs)
}

#[tokio::test]
async fn redaction_reaches_every_file_of_export_and_site() {
    let (flow, xs) = secret_flow();
    let token = "gAAAAABk0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let secrets = [
        token.to_string(),
        token.replace('k', "m"),
        token.replace('k', "q"),
        "query-pass-zq1".into(),
        "zqk9".into(),
        "pw-zq".into(),
        "YWRtaW46YmFzaWMtcGFzcw".into(),
        "appcred-secret-zq".into(),
    ];
    let store = MemStore::with_flow(flow, xs);
    let tmp = tempfile::tempdir().unwrap();
    let mut written = export_flow(
        &store,
        &ExportOptions {
            flow: "secrets".into(),
            out: tmp.path().join("export"),
            format: ExportFormat::All,
            redact: true,
            all: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let site = tmp.path().join("site");
    write_site(
        &store,
        &SiteOptions {
            out: site.clone(),
            flows: vec![],
            offline: false,
            redact: true,
            all: true,
            site_name: None,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for f in ["index.md", "log.md", "body.md", "diagram.md", "flow.har"] {
        written.written.push(site.join("docs/secrets").join(f));
    }
    let mut all = String::new();
    for path in &written.written {
        let text = std::fs::read_to_string(path).unwrap();
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{} shows {s}", path.display());
        }
        all.push_str(&text);
    }
    // Tokens keep 8 characters, passwords nothing.
    for shown in [
        "X-Subject-Token: gAAAAABk***",
        "\"id\": \"gAAAAABm***\"",
        "--os-token=gAAAAABq***",
        "--os-password '***'",
        "\"password\": \"***\"",
        "password=***&nocatalog",
        "Authorization: Basic ***",
        "\"secret\": \"appcred-***\"",
        "upstream echoed gAAAAABk***",
        "| secret | appcred-*** |",
    ] {
        assert!(all.contains(shown), "no {shown:?} in:\n{all}");
    }
    let har: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.join("docs/secrets/flow.har")).unwrap())
            .unwrap();
    let entry = &har["log"]["entries"][2]["request"];
    assert_eq!(entry["queryString"][0]["value"], "***");
    assert!(entry["postData"]["text"]
        .as_str()
        .unwrap()
        .contains(r#""password":"***""#));
}
