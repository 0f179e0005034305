//! The admin listener: the browsable UI and the JSON API of a running daemon
//! (`[admin].listen`, loopback by default; see docs/api.md).
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | the server and the route table |
//! | `api.rs` | `/api/*`: JSON built by `present::json` |
//! | `pages.rs`, `views.rs`, `templates/` | the HTML pages (minijinja, auto-escaped) |
//! | `fetch.rs` | the store reads both share |
//! | `query.rs` | the filters of exchange lists |
//! | `reply.rs` | responses and the error type |
//! | `assets/` | tracer.js; mermaid is `assets/mermaid.min.js` of the repository |
//!
//! `POST /api/flush` is how `tracer flow stop` knows every exchange the
//! daemon has answered is in the database.

mod api;
mod fetch;
mod pages;
mod query;
mod reply;
mod templates;
mod views;

use crate::capture::CaptureQueue;
use crate::model::Micros;
use crate::store::SharedStore;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use reply::{Reply, WebError, WebResult};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AdminState {
    pub store: SharedStore,
    pub queue: CaptureQueue,
    /// (name, listen, upstream) of every service.
    pub services: Vec<(String, String, String)>,
}

/// What every request of the admin listener shares.
pub(crate) struct App {
    state: AdminState,
    templates: templates::Templates,
    started: Instant,
    started_at: Micros,
    /// The listener is on loopback: pages and API answer only requests
    /// addressed to a loopback host (see [`host_allowed`]).
    loopback: bool,
}

pub async fn serve(listener: TcpListener, state: AdminState, shutdown: CancellationToken) {
    let loopback = listener
        .local_addr()
        .map(|a| a.ip().is_loopback())
        .unwrap_or(true);
    let app = Arc::new(App {
        state,
        templates: templates::Templates::new(),
        started: Instant::now(),
        started_at: crate::timefmt::now_micros(),
        loopback,
    });
    loop {
        let (tcp, _) = tokio::select! {
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = shutdown.cancelled() => return,
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&app, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// Every path the listener answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Health,
    Flush,
    Stats,
    ApiFlows,
    ApiFlow(&'a str),
    ApiFlowHar(&'a str),
    ApiExchanges,
    ApiExchange(&'a str),
    Home,
    Flow(&'a str),
    Exchanges,
    Exchange(&'a str),
    Body(&'a str, pages::Part),
    MermaidJs,
    TracerJs,
}

impl<'a> Route<'a> {
    fn resolve(path: &'a str) -> Option<Route<'a>> {
        let trimmed = path.trim_start_matches('/');
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let segments: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        if segments.iter().any(|s| s.is_empty()) {
            return None;
        }
        Some(match segments.as_slice() {
            ["healthz"] => Route::Health,
            ["api", "flush"] => Route::Flush,
            ["api", "stats"] => Route::Stats,
            ["api", "flows"] => Route::ApiFlows,
            ["api", "flows", name] => Route::ApiFlow(name),
            ["api", "flows", name, "har"] => Route::ApiFlowHar(name),
            ["api", "exchanges"] => Route::ApiExchanges,
            ["api", "exchanges", key] => Route::ApiExchange(key),
            [] => Route::Home,
            ["flows", name] => Route::Flow(name),
            ["exchanges"] => Route::Exchanges,
            ["exchanges", key] => Route::Exchange(key),
            ["exchanges", key, "request.body"] => Route::Body(key, pages::Part::Request),
            ["exchanges", key, "response.body"] => Route::Body(key, pages::Part::Response),
            ["assets", "mermaid.min.js"] => Route::MermaidJs,
            ["assets", "tracer.js"] => Route::TracerJs,
            _ => return None,
        })
    }

    fn method(self) -> Method {
        match self {
            Route::Flush => Method::POST,
            _ => Method::GET,
        }
    }

    /// Whether the answer shows captured data (headers, bodies, tokens).
    fn shows_captures(self) -> bool {
        !matches!(
            self,
            Route::Health | Route::Flush | Route::MermaidJs | Route::TracerJs
        )
    }
}

fn is_api(path: &str) -> bool {
    path == "/healthz" || path == "/api" || path.starts_with("/api/")
}

async fn handle(app: &App, req: Request<Incoming>) -> Reply {
    let path = req.uri().path();
    let route = Route::resolve(path);
    let result = match route {
        None => Err(WebError::not_found(format!("no page at {path}"))),
        Some(route) => dispatch(app, &req, route).await,
    };
    result.unwrap_or_else(|e| {
        let mut r = if is_api(path) {
            reply::json_error(&e)
        } else {
            pages::error(app, &e)
        };
        if let (StatusCode::METHOD_NOT_ALLOWED, Some(route)) = (e.status, route) {
            let allow = if route.method() == Method::POST {
                "POST"
            } else {
                "GET, HEAD"
            };
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        r
    })
}

async fn dispatch(app: &App, req: &Request<Incoming>, route: Route<'_>) -> WebResult<Reply> {
    let method = req.method();
    let allowed =
        method == route.method() || (method == Method::HEAD && route.method() == Method::GET);
    if !allowed {
        return Err(WebError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} does not take {method}", req.uri().path()),
        ));
    }
    if app.loopback && route.shows_captures() && !host_allowed(req.headers().get(HOST)) {
        return Err(WebError::new(
            StatusCode::FORBIDDEN,
            "this admin listener is on loopback and answers only requests addressed to \
             localhost or a loopback address (a guard against DNS rebinding)",
        ));
    }
    let query = req.uri().query().unwrap_or("");
    let ok = |v: serde_json::Value| reply::json(StatusCode::OK, &v);
    Ok(match route {
        Route::Health => ok(serde_json::json!({"ok": true})),
        Route::Flush => api::flush(app).await,
        Route::Stats => ok(api::stats(app)),
        Route::ApiFlows => ok(api::flows(app).await?),
        Route::ApiFlow(name) => ok(api::flow(app, name).await?),
        Route::ApiFlowHar(name) => api::flow_har(app, name, query).await?,
        Route::ApiExchanges => ok(api::exchanges(app, query).await?),
        Route::ApiExchange(key) => ok(api::exchange(app, key).await?),
        Route::Home => pages::home(app).await?,
        Route::Flow(name) => pages::flow(app, name).await?,
        Route::Exchanges => pages::exchanges(app, query).await?,
        Route::Exchange(key) => pages::exchange(app, key).await?,
        Route::Body(key, part) => pages::body(app, key, part).await?,
        Route::MermaidJs => reply::asset(
            "text/javascript; charset=utf-8",
            crate::export::MERMAID_MIN_JS,
        ),
        Route::TracerJs => reply::asset(
            "text/javascript; charset=utf-8",
            include_bytes!("assets/tracer.js"),
        ),
    })
}

/// A request may read captures from a loopback listener only when it names
/// a loopback host: a web page the user visits could otherwise point a name
/// of its own at 127.0.0.1 (DNS rebinding) and read the captured tokens. No
/// Host header (HTTP/1.0 tools) is allowed: a browser always sends one.
fn host_allowed(host: Option<&HeaderValue>) -> bool {
    let Some(host) = host.and_then(|h| h.to_str().ok()) else {
        return host.is_none();
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Route::resolve("/"), Some(Route::Home));
        assert_eq!(Route::resolve("/flows/img-1/"), Some(Route::Flow("img-1")));
        assert_eq!(
            Route::resolve("/api/flows/img-1/har"),
            Some(Route::ApiFlowHar("img-1"))
        );
        assert_eq!(
            Route::resolve("/api/exchanges/7"),
            Some(Route::ApiExchange("7"))
        );
        assert_eq!(Route::resolve("/flows//x"), None);
        assert_eq!(Route::resolve("/nope"), None);
        assert_eq!(Route::Flush.method(), Method::POST);
        assert!(is_api("/api/nope") && is_api("/healthz") && !is_api("/apix"));
    }

    #[test]
    fn only_loopback_hosts_read_captures() {
        let ok = |h: &str| host_allowed(Some(&HeaderValue::from_str(h).unwrap()));
        assert!(ok("127.0.0.1:8799"));
        assert!(ok("localhost:8799"));
        assert!(ok("LOCALHOST"));
        assert!(ok("[::1]:8799"));
        assert!(ok("127.1.2.3"));
        assert!(!ok("evil.example:8799"));
        assert!(!ok("10.0.0.5:8799"));
        assert!(!ok("[::2]:8799"));
        assert!(host_allowed(None));
    }
}
