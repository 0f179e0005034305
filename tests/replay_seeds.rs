//! The seeds' flows fed through the real proxy (stand-in services that make
//! their nested calls through tracer), exported, and compared with the
//! seeds section by section: titles, caller/service lines, header lines,
//! bodies.

mod common;

use common::replay::Replay;
use common::seeds;
use std::process::Command;

/// Records the seed's traffic into a flow and exports it; returns body.md.
async fn replay_and_export(seed: &str, stamps: bool) -> (Replay, String, common::Tracer) {
    let replay = Replay::load(seed);
    let tracer = replay
        .run(stamps, "[storage]\nmax_body_bytes = 4096\n")
        .await;
    tracer.flush().await;
    let store = tracer::store::open(&tracer.db_url).await.unwrap();
    store
        .start_flow("replay", Some("seed replay"), 0)
        .await
        .unwrap();
    store
        .stop_flow(Some("replay"), tracer::timefmt::now_micros())
        .await
        .unwrap();
    let out = tracer.dir.path().join("pages");
    let status = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .args([
            "--db",
            &tracer.db_url,
            "export",
            "--flow",
            "replay",
            "--format",
            "all",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let body = std::fs::read_to_string(out.join("body.md")).unwrap();
    if let Some(keep) = std::env::var_os("TRACER_KEEP_PAGES") {
        let _ = Command::new("cp").arg("-r").arg(&out).arg(keep).status();
    }
    (replay, body, tracer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_create_through_the_proxy_matches_the_seed() {
    let (replay, body, _t) = replay_and_export(seeds::IMAGE_CREATE, true).await;
    let rendered = seeds::parse(&body);
    assert_eq!(rendered.len(), 22);
    let diffs = seeds::differences(&rendered, &replay.sections);
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_show_through_the_proxy_matches_the_seed() {
    let (replay, body, _t) = replay_and_export(seeds::IMAGE_SHOW, true).await;
    let rendered = seeds::parse(&body);
    assert_eq!(rendered.len(), 8);
    let diffs = seeds::differences(&rendered, &replay.sections);
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
