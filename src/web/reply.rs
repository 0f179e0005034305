//! Responses of the admin listener, and the one error type its handlers
//! return: `/api/*` turns it into `{"error": "..."}`, the UI into a page.

use crate::store::StoreError;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};

pub type Reply = Response<Full<Bytes>>;

/// What went wrong, with the status code that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        WebError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        let status = match e {
            StoreError::UnknownFlow(_) | StoreError::BadFlowName(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        WebError::new(status, e.to_string())
    }
}

pub type WebResult<T> = Result<T, WebError>;

/// Scripts only from this origin (mermaid and tracer.js are served here),
/// nothing fetched from anywhere else: the UI works offline, and stored
/// data that slipped past escaping still could not run. mermaid writes
/// inline styles into its SVG, hence `'unsafe-inline'` for styles only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

pub fn bytes(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("content types are ASCII"),
    );
    h.insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("Referrer-Policy", HeaderValue::from_static("no-referrer"));
    // Captured data changes under the page: never serve it from a cache.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    bytes(status, "application/json", value.to_string())
}

pub fn html(status: StatusCode, page: String) -> Reply {
    let mut r = bytes(status, "text/html; charset=utf-8", page);
    r.headers_mut()
        .insert("Content-Security-Policy", HeaderValue::from_static(CSP));
    r
}

pub fn json_error(e: &WebError) -> Reply {
    json(e.status, &serde_json::json!({ "error": e.message }))
}

/// A download: `filename` becomes the name the browser saves it under.
pub fn attachment(content_type: &str, filename: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = bytes(StatusCode::OK, content_type, body);
    // Names here are flow names and numbers: nothing to quote.
    let value = format!("attachment; filename=\"{}\"", filename.replace('"', "_"));
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert("Content-Disposition", v);
    }
    r
}

/// A file compiled into the binary: cacheable for a while.
pub fn asset(content_type: &str, body: &'static [u8]) -> Reply {
    let mut r = bytes(StatusCode::OK, content_type, Bytes::from_static(body));
    r.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}
