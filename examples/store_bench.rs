//! The store on its own: rows per second a fresh SQLite file takes in
//! batches like the capture writer's, with exchanges shaped like the proxy
//! benchmark's (a small GET, a ~80-byte JSON answer, the stamps).
//!
//! `cargo run --release --example store_bench -- [ROWS] [BATCH]`
//! (defaults: 200000 rows, batches of 2048). Run it twice and compare within
//! one sitting; absolute figures on a shared machine are noise.
use std::time::Instant;
use tracer::model::{BodyRecord, CallerSource, Exchange, HeaderField};

fn exchange(i: i64) -> Exchange {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let body =
        br#"{"status":"ok","service":"bench","items":[1,2,3],"note":"a small JSON body"}"#.to_vec();
    Exchange {
        id: 0,
        // As the proxy makes them: time-ordered.
        uuid: uuid::Uuid::now_v7().simple().to_string(),
        request_id: id.clone(),
        service: "bench".into(),
        caller: "unknown".into(),
        caller_source: CallerSource::UserAgent,
        client_addr: "127.0.0.1:51234".into(),
        upstream_url: "http://127.0.0.1:18001/".into(),
        method: "GET".into(),
        target: "/".into(),
        request_version: "HTTP/1.1".into(),
        request_headers: vec![
            HeaderField::new("Host", "127.0.0.1:18002"),
            HeaderField::new("X-Requestshook-Request-Id", id.clone()),
            HeaderField::new("X-Requestshook-Request-From", "unknown"),
        ],
        request_body: BodyRecord {
            kept: vec![],
            size: 0,
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        },
        status: Some(200),
        reason: Some("OK".into()),
        response_version: Some("HTTP/1.1".into()),
        response_headers: vec![
            HeaderField::new("content-type", "application/json"),
            HeaderField::new("content-length", body.len().to_string()),
            HeaderField::new("X-Requestshook-Request-Id", id),
            HeaderField::new("X-Requestshook-Request-From", "unknown"),
        ],
        response_body: BodyRecord {
            kept: body,
            size: 77,
            sha256: "0f1e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b".into(),
        },
        request_seq: 1_000_000 + 2 * i,
        response_seq: Some(1_000_001 + 2 * i),
        started_at: 1_700_000_000_000_000 + i,
        response_at: Some(1_700_000_000_000_100 + i),
        finished_at: 1_700_000_000_000_200 + i,
        error: None,
        ignored: false,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: i64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200_000);
    let batch: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2048);
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = tracer::store::open(&url).await?;
    let all: Vec<Exchange> = (0..rows).map(exchange).collect();
    let t = Instant::now();
    for chunk in all.chunks(batch) {
        store.insert_exchanges(chunk).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{rows} rows in {secs:.2}s: {:.0} rows/s, {:.1} µs/row",
        rows as f64 / secs,
        secs * 1e6 / rows as f64
    );
    Ok(())
}
