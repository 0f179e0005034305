//! The admin listener: the JSON API (and the browsable UI) of a running daemon.
//!
//! `POST /api/flush` is how `tracer flow stop` knows every exchange the
//! daemon has answered is in the database.

use crate::capture::CaptureQueue;
use crate::store::SharedStore;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long `POST /api/flush` waits for the writer.
const FLUSH_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AdminState {
    pub store: SharedStore,
    pub queue: CaptureQueue,
    /// (name, listen, upstream) of every service.
    pub services: Vec<(String, String, String)>,
}

pub async fn serve(listener: TcpListener, state: AdminState, shutdown: CancellationToken) {
    let state = Arc::new(state);
    loop {
        let (tcp, _) = tokio::select! {
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = shutdown.cancelled() => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .expect("static response parts are valid")
}

async fn route(state: &AdminState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/api/flush") => {
            let flushed = state.queue.flush(FLUSH_WAIT).await;
            let status = if flushed {
                StatusCode::OK
            } else {
                StatusCode::GATEWAY_TIMEOUT
            };
            json(
                status,
                serde_json::json!({ "flushed": flushed, "queue": state.queue.stats() }),
            )
        }
        (&Method::GET, "/api/stats") => json(
            StatusCode::OK,
            serde_json::json!({
                "queue": state.queue.stats(),
                "services": state.services.iter().map(|(n, l, u)| serde_json::json!({"name": n, "listen": l, "upstream": u})).collect::<Vec<_>>(),
            }),
        ),
        (&Method::GET, "/healthz") => json(StatusCode::OK, serde_json::json!({"ok": true})),
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not found"}),
        ),
    }
}
