//! Message heads read off the byte stream with httparse, so that what is
//! recorded and forwarded is exactly what arrived: header names in their
//! original case and order, duplicates kept, the reason phrase as sent.

use crate::model::HeaderField;

/// Headers parsed in one go before falling back to a larger array.
const FEW_HEADERS: usize = 64;
/// More header lines than this is a malformed message.
const MAX_HEADERS: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("head larger than {0} bytes")]
    TooLarge(usize),
}

/// A request head, with the raw bytes of its header lines for forwarding.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub headers: Vec<HeaderField>,
    /// The header lines exactly as received, without the request line and
    /// without the blank line that ends the head.
    pub raw_header_lines: Vec<u8>,
    /// A line of the head ended in a bare LF (httparse takes it; another
    /// parser may not): such a request is refused.
    pub bare_lf: bool,
}

/// A response head, raw bytes kept for forwarding unchanged.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<HeaderField>,
    /// Status line and header lines exactly as received, without the blank
    /// line that ends the head.
    pub raw_without_end: Vec<u8>,
}

pub fn version_str(minor: u8) -> String {
    match minor {
        0 => "HTTP/1.0".to_string(),
        1 => "HTTP/1.1".to_string(),
        _ => format!("HTTP/1.{minor}"),
    }
}

/// Length of the line break that ends a complete head of `len` bytes.
fn final_break_len(head: &[u8]) -> usize {
    if head.ends_with(b"\r\n") {
        2
    } else {
        1
    }
}

/// Parses a request head at the start of `buf`. Ok(None): not complete yet.
/// On success also returns how many bytes the head took.
pub fn parse_request(buf: &[u8], max: usize) -> Result<Option<(RequestHead, usize)>, HeadError> {
    match parse_request_with(buf, &mut [httparse::EMPTY_HEADER; FEW_HEADERS]) {
        Err(HeadError::Malformed { detail, .. }) if detail == TOO_MANY => {
            parse_request_with(buf, &mut vec![httparse::EMPTY_HEADER; MAX_HEADERS])
        }
        other => other,
    }
    .and_then(|r| match r {
        None if buf.len() > max => Err(HeadError::TooLarge(max)),
        Some((_, n)) if n > max => Err(HeadError::TooLarge(max)),
        r => Ok(r),
    })
}

const TOO_MANY: &str = "too many headers";

fn malformed(what: &'static str, e: httparse::Error) -> HeadError {
    let detail = match e {
        httparse::Error::TooManyHeaders => TOO_MANY.to_string(),
        other => other.to_string(),
    };
    HeadError::Malformed { what, detail }
}

fn parse_request_with<'b>(
    buf: &'b [u8],
    slots: &mut [httparse::Header<'b>],
) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut req = httparse::Request::new(slots);
    let len = match req.parse(buf).map_err(|e| malformed("request", e))? {
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(n) => n,
    };
    let head = &buf[..len];
    // httparse skips blank lines before the request line; so do we.
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(0);
    let line_end = start + head[start..].iter().position(|&b| b == b'\n').unwrap_or(0) + 1;
    let lines_end = len - final_break_len(head);
    let raw_header_lines = if lines_end > line_end {
        head[line_end..lines_end].to_vec()
    } else {
        Vec::new()
    };
    Ok(Some((
        RequestHead {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            version: req.version.unwrap_or(1),
            headers: fields(req.headers),
            raw_header_lines,
            bare_lf: super::framing::has_bare_lf(head),
        },
        len,
    )))
}

/// Parses a response head at the start of `buf`. Ok(None): not complete yet.
pub fn parse_response(buf: &[u8], max: usize) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    match parse_response_with(buf, &mut [httparse::EMPTY_HEADER; FEW_HEADERS]) {
        Err(HeadError::Malformed { detail, .. }) if detail == TOO_MANY => {
            parse_response_with(buf, &mut vec![httparse::EMPTY_HEADER; MAX_HEADERS])
        }
        other => other,
    }
    .and_then(|r| match r {
        None if buf.len() > max => Err(HeadError::TooLarge(max)),
        r => Ok(r),
    })
}

fn parse_response_with<'b>(
    buf: &'b [u8],
    slots: &mut [httparse::Header<'b>],
) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let mut resp = httparse::Response::new(slots);
    // Be lenient with what upstreams send: forward it, don't judge it.
    let config = {
        let mut c = httparse::ParserConfig::default();
        c.allow_spaces_after_header_name_in_responses(true)
            .allow_obsolete_multiline_headers_in_responses(true)
            .allow_multiple_spaces_in_response_status_delimiters(true);
        c
    };
    let len = match config
        .parse_response(&mut resp, buf)
        .map_err(|e| malformed("response", e))?
    {
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(n) => n,
    };
    let head = &buf[..len];
    let status_line_end = head.iter().position(|&b| b == b'\n').unwrap_or(0);
    Ok(Some((
        ResponseHead {
            version: resp.version.unwrap_or(1),
            status: resp.code.unwrap_or(0),
            reason: reason_phrase(&head[..status_line_end]),
            headers: fields(resp.headers),
            raw_without_end: head[..len - final_break_len(head)].to_vec(),
        },
        len,
    )))
}

/// The reason phrase exactly as sent (httparse drops non-UTF-8 ones): what
/// follows "HTTP/1.x SP 3DIGIT SP" on the status line.
fn reason_phrase(status_line: &[u8]) -> String {
    let line = status_line.strip_suffix(b"\r").unwrap_or(status_line);
    let mut parts = line.splitn(2, |&b| b == b' ');
    parts.next();
    let rest = parts.next().unwrap_or_default();
    let rest = rest
        .iter()
        .skip_while(|&&b| b == b' ')
        .copied()
        .collect::<Vec<u8>>();
    let reason = rest.get(3..).unwrap_or_default();
    let reason = reason.strip_prefix(b" ").unwrap_or(reason);
    HeaderField::new("", reason.to_vec()).value_str()
}

fn fields(headers: &[httparse::Header<'_>]) -> Vec<HeaderField> {
    headers
        .iter()
        .take_while(|h| !h.name.is_empty())
        .map(|h| HeaderField::new(h.name, h.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_head_keeps_case_order_and_duplicates() {
        let raw = b"\r\nPOST /v3/auth/tokens?x=1 HTTP/1.1\r\nHost: a\r\nx-lower: 1\r\nX-Dup: a\r\nX-Dup: b\r\n\r\nBODY";
        let (head, n) = parse_request(raw, 1024).unwrap().unwrap();
        assert_eq!(&raw[n..], b"BODY");
        assert_eq!(head.method, "POST");
        assert_eq!(head.target, "/v3/auth/tokens?x=1");
        let names: Vec<_> = head.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["Host", "x-lower", "X-Dup", "X-Dup"]);
        assert_eq!(
            head.raw_header_lines,
            b"Host: a\r\nx-lower: 1\r\nX-Dup: a\r\nX-Dup: b\r\n"
        );
    }

    #[test]
    fn partial_and_too_large() {
        assert!(parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n", 1024)
            .unwrap()
            .is_none());
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(100));
        assert_eq!(
            parse_request(big.as_bytes(), 50).unwrap_err(),
            HeadError::TooLarge(50)
        );
    }

    #[test]
    fn many_headers_parse() {
        let mut raw = String::from("GET / HTTP/1.1\r\n");
        for i in 0..200 {
            raw.push_str(&format!("X-{i}: {i}\r\n"));
        }
        raw.push_str("\r\n");
        let (head, _) = parse_request(raw.as_bytes(), 1 << 20).unwrap().unwrap();
        assert_eq!(head.headers.len(), 200);
    }

    #[test]
    fn response_reason_is_kept_verbatim() {
        let raw = b"HTTP/1.1 300 MULTIPLE CHOICES\r\nContent-Type: application/json\r\nx-openstack-request-id: req-1\r\n\r\n";
        let (head, n) = parse_response(raw, 1024).unwrap().unwrap();
        assert_eq!(n, raw.len());
        assert_eq!(
            (head.status, head.reason.as_str()),
            (300, "MULTIPLE CHOICES")
        );
        assert_eq!(head.raw_without_end, &raw[..raw.len() - 2]);
        let (head, _) = parse_response(b"HTTP/1.1 204 \r\n\r\n", 1024)
            .unwrap()
            .unwrap();
        assert_eq!(head.reason, "");
        let (head, _) = parse_response(b"HTTP/1.0 200 \xe9t\xe9\r\n\r\n", 1024)
            .unwrap()
            .unwrap();
        assert_eq!(head.reason, "\u{e9}t\u{e9}");
    }
}
