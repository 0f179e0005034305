//! SIGTERM in the middle of hundreds of concurrent exchanges: every exchange
//! a client got a response for is in the database afterwards.

mod common;

use common::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_load_loses_no_answered_exchange() {
    // An upstream that takes a little while, so exchanges are in flight.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    match tokio::io::AsyncReadExt::read(&mut s, &mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        let body = b"{\"ok\": true}";
                        let answer = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
                        if s.write_all(&[answer.as_bytes(), body].concat())
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    let mut t = Tracer::start(
        &[("glance-api", format!("http://{addr}"))],
        "[proxy]\nshutdown_grace_secs = 5\n",
    );
    let target = t.addr("glance-api");
    let answered = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    // 60 keep-alive connections × 8 requests = 480 exchanges offered.
    for c in 0..60 {
        let (answered, done) = (answered.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(target).await else {
                return;
            };
            let mut buf = Vec::new();
            for i in 0..8 {
                let req = format!("GET /v2/images?c={c}&i={i} HTTP/1.1\r\nHost: h\r\n\r\n");
                if stream.write_all(req.as_bytes()).await.is_err() {
                    return;
                }
                let read = tokio::time::timeout(
                    Duration::from_secs(20),
                    read_response_checked(&mut stream, &mut buf),
                )
                .await;
                match read {
                    Ok(Some(id)) => {
                        answered.lock().unwrap().push(id);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => return,
                }
            }
        }));
    }
    // SIGTERM once some, not all, exchanges are answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while done.load(Ordering::Relaxed) < 100 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = tokio::task::spawn_blocking(move || {
        let status = t.terminate();
        (status, t)
    })
    .await
    .unwrap();
    let (status, t) = status;
    for c in clients {
        let _ = c.await;
    }
    assert_eq!(
        status.code(),
        Some(0),
        "clean exit after SIGTERM: {}",
        t.log()
    );
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() >= 100,
        "load was running: {}",
        answered.len()
    );
    let stored: HashSet<String> = t
        .exchanges()
        .await
        .into_iter()
        .filter(|e| e.status.is_some())
        .map(|e| e.request_id)
        .collect();
    let missing: Vec<_> = answered.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} answered exchanges missing of {}",
        missing.len(),
        answered.len()
    );
    eprintln!(
        "answered {} / 480, all {} stored",
        answered.len(),
        answered.len()
    );
}

/// Reads one full response; returns its X-Requestshook-Request-Id.
async fn read_response_checked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let (head, body) = try_read_response(stream, buf, "GET").await?;
    if body != b"{\"ok\": true}" {
        return None;
    }
    header_lines(&head).into_iter().find_map(|l| {
        l.strip_prefix("X-Requestshook-Request-Id: ")
            .map(str::to_string)
    })
}
