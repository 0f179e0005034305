//! How a message body is delimited, and which requests tracer refuses
//! because two HTTP parsers could read them differently.
//!
//! tracer forwards the bytes it received. If it read a request's length one
//! way and the upstream another, the rest of the bytes would become a
//! request that tracer never saw (request smuggling). So request framing is
//! strict (RFC 9112 §6, §7 and §11.2, with the ambiguous cases refused
//! rather than resolved); response framing is lenient, because what an
//! upstream sends is forwarded to its own client, not judged.

use crate::model::HeaderField;

/// How a message body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes the connection (responses only).
    UntilClose,
}

/// Why a request is refused before anything is forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("Content-Length {0:?} is not a single decimal number")]
    BadContentLength(String),
    #[error("more than one Content-Length header")]
    SeveralContentLengths,
    #[error("both Transfer-Encoding and Content-Length")]
    LengthAndTransferEncoding,
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingInHttp10,
    #[error("Transfer-Encoding {0:?} does not end in a single chunked")]
    NotChunked(String),
    #[error("Transfer-Encoding {0:?} names a coding tracer does not know")]
    UnknownCoding(String),
    #[error("a bare LF ends a line of the head (lines end in CRLF)")]
    BareLf,
    #[error("no Host header in an HTTP/1.1 request")]
    NoHost,
    #[error("more than one Host header")]
    SeveralHosts,
}

impl FramingError {
    /// The status tracer answers with (RFC 9112 §6.1: an unknown coding is 501).
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            FramingError::UnknownCoding(_) => (501, "Not Implemented"),
            _ => (400, "Bad Request"),
        }
    }
}

/// Transfer codings a request may carry before `chunked` (RFC 9110 §8.4.1).
const KNOWN_CODINGS: [&str; 5] = ["gzip", "x-gzip", "deflate", "compress", "x-compress"];

fn fields<'a>(headers: &'a [HeaderField], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_slice())
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ' && b != b'\t');
    let end = v.iter().rposition(|&b| b != b' ' && b != b'\t');
    match (start, end) {
        (Some(s), Some(e)) => &v[s..=e],
        _ => &[],
    }
}

/// Exactly one Content-Length of 1*DIGIT that fits in a u64, or none.
fn strict_content_length(headers: &[HeaderField]) -> Result<Option<u64>, FramingError> {
    let mut values = fields(headers, "content-length");
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(FramingError::SeveralContentLengths);
    }
    let digits = trim_ows(first);
    let bad = || FramingError::BadContentLength(String::from_utf8_lossy(first).into_owned());
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(bad)
}

/// Body framing of a request, refusing whatever could be read two ways.
pub fn request_framing(version: u8, headers: &[HeaderField]) -> Result<Framing, FramingError> {
    let codings: Vec<&[u8]> = fields(headers, "transfer-encoding").collect();
    let length = strict_content_length(headers)?;
    if codings.is_empty() {
        return Ok(match length {
            Some(0) | None => Framing::None,
            Some(n) => Framing::Length(n),
        });
    }
    if version == 0 {
        return Err(FramingError::TransferEncodingInHttp10);
    }
    if length.is_some() {
        return Err(FramingError::LengthAndTransferEncoding);
    }
    let joined = codings
        .iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let tokens: Vec<String> = joined
        .split(',')
        .map(|t| t.trim_matches([' ', '\t']).to_ascii_lowercase())
        .collect();
    let chunked = tokens.iter().filter(|t| *t == "chunked").count();
    if chunked != 1 || tokens.last().map(String::as_str) != Some("chunked") {
        return Err(FramingError::NotChunked(joined));
    }
    if let Some(unknown) = tokens[..tokens.len() - 1]
        .iter()
        .find(|t| !KNOWN_CODINGS.contains(&t.as_str()))
    {
        return Err(FramingError::UnknownCoding(unknown.clone()));
    }
    Ok(Framing::Chunked)
}

/// Checks of a request head that the parser lets through: line endings
/// (httparse accepts a bare LF, which another parser may take as part of
/// a header value) and the Host header (RFC 9112 §3.2).
pub fn check_request_head(
    bare_lf: bool,
    version: u8,
    headers: &[HeaderField],
) -> Result<(), FramingError> {
    if bare_lf {
        return Err(FramingError::BareLf);
    }
    match fields(headers, "host").count() {
        0 if version >= 1 => Err(FramingError::NoHost),
        0 | 1 => Ok(()),
        _ => Err(FramingError::SeveralHosts),
    }
}

/// A LF not preceded by CR (found with memchr: this runs on every head).
pub fn has_bare_lf(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', bytes).any(|i| i == 0 || bytes[i - 1] != b'\r')
}

/// Body framing of a response to `method` (RFC 9112 §6.3).
pub fn response_framing(method: &str, status: u16, headers: &[HeaderField]) -> Framing {
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        return Framing::None;
    }
    let codings: Vec<String> = header_tokens(headers, "transfer-encoding").collect();
    if !codings.is_empty() {
        return if codings.last().map(String::as_str) == Some("chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        };
    }
    match lenient_content_length(headers) {
        Some(0) => Framing::None,
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    }
}

/// The Content-Length of a response as a lenient reader takes it: equal
/// repeated values are one value; anything else is no length at all.
fn lenient_content_length(headers: &[HeaderField]) -> Option<u64> {
    let mut found: Option<u64> = None;
    for value in header_tokens(headers, "content-length") {
        let n: u64 = value.parse().ok()?;
        if found.is_some_and(|f| f != n) {
            return None;
        }
        found = Some(n);
    }
    found
}

fn header_tokens<'a>(
    headers: &'a [HeaderField],
    name: &'a str,
) -> impl Iterator<Item = String> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| {
            h.value_str()
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        })
}

/// Whether the sender of a message with these headers closes after it.
pub fn closes_after(version: u8, headers: &[HeaderField]) -> bool {
    let mut keep_alive = false;
    for token in header_tokens(headers, "connection") {
        match token.as_str() {
            "close" => return true,
            "keep-alive" => keep_alive = true,
            _ => {}
        }
    }
    version == 0 && !keep_alive
}

pub fn expects_continue(headers: &[HeaderField]) -> bool {
    header_tokens(headers, "expect").any(|t| t == "100-continue")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<HeaderField> {
        pairs
            .iter()
            .map(|(n, v)| HeaderField::new(*n, v.as_bytes()))
            .collect()
    }

    #[test]
    fn request_lengths_are_single_decimal_numbers() {
        let cl = |v: &str| request_framing(1, &h(&[("Content-Length", v)]));
        assert_eq!(cl("38"), Ok(Framing::Length(38)));
        assert_eq!(cl("0"), Ok(Framing::None));
        assert_eq!(cl(" 38 "), Ok(Framing::Length(38)));
        for bad in [
            "+38",
            "38, 38",
            ",38",
            "5,",
            "",
            "-1",
            "0x10",
            "3 8",
            "99999999999999999999",
        ] {
            assert!(
                matches!(cl(bad), Err(FramingError::BadContentLength(_))),
                "{bad:?}: {:?}",
                cl(bad)
            );
        }
        assert_eq!(
            request_framing(1, &h(&[("Content-Length", "3"), ("content-length", "3")])),
            Err(FramingError::SeveralContentLengths)
        );
    }

    #[test]
    fn transfer_encoding_rules() {
        let te = |v: &str| request_framing(1, &h(&[("Transfer-Encoding", v)]));
        assert_eq!(te("chunked"), Ok(Framing::Chunked));
        assert_eq!(te("Chunked"), Ok(Framing::Chunked));
        assert_eq!(te("gzip, chunked"), Ok(Framing::Chunked));
        assert!(matches!(
            te("chunked, gzip"),
            Err(FramingError::NotChunked(_))
        ));
        assert!(matches!(
            te("chunked, chunked"),
            Err(FramingError::NotChunked(_))
        ));
        assert!(matches!(te("xchunked"), Err(FramingError::NotChunked(_))));
        assert!(matches!(te(""), Err(FramingError::NotChunked(_))));
        assert!(matches!(
            te("foo, chunked"),
            Err(FramingError::UnknownCoding(_))
        ));
        assert_eq!(
            request_framing(0, &h(&[("Transfer-Encoding", "chunked")])),
            Err(FramingError::TransferEncodingInHttp10)
        );
        assert_eq!(
            request_framing(
                1,
                &h(&[("Transfer-Encoding", "chunked"), ("Content-Length", "3")])
            ),
            Err(FramingError::LengthAndTransferEncoding)
        );
        // Two fields are one list.
        assert_eq!(
            request_framing(
                1,
                &h(&[
                    ("Transfer-Encoding", "gzip"),
                    ("Transfer-Encoding", "chunked")
                ])
            ),
            Ok(Framing::Chunked)
        );
    }

    #[test]
    fn heads_with_bare_lf_or_bad_host_are_refused() {
        let host = h(&[("Host", "a")]);
        assert!(!has_bare_lf(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(has_bare_lf(
            b"GET / HTTP/1.1\r\nX-A: a\nContent-Length: 38\r\n\r\n"
        ));
        assert!(has_bare_lf(b"\nGET / HTTP/1.1\r\n\r\n"));
        assert_eq!(check_request_head(false, 1, &host), Ok(()));
        assert_eq!(
            check_request_head(true, 1, &host),
            Err(FramingError::BareLf)
        );
        assert_eq!(check_request_head(false, 1, &[]), Err(FramingError::NoHost));
        assert_eq!(check_request_head(false, 0, &[]), Ok(()));
        assert_eq!(
            check_request_head(false, 1, &h(&[("Host", "a"), ("host", "b")])),
            Err(FramingError::SeveralHosts)
        );
    }

    #[test]
    fn response_framing_is_lenient() {
        assert_eq!(
            response_framing("HEAD", 200, &h(&[("Content-Length", "9")])),
            Framing::None
        );
        assert_eq!(response_framing("GET", 304, &h(&[])), Framing::None);
        assert_eq!(response_framing("GET", 200, &h(&[])), Framing::UntilClose);
        assert_eq!(
            response_framing("GET", 200, &h(&[("transfer-encoding", "chunked")])),
            Framing::Chunked
        );
        assert_eq!(
            response_framing("GET", 200, &h(&[("Content-Length", "5, 5")])),
            Framing::Length(5)
        );
    }

    #[test]
    fn connection_semantics() {
        assert!(closes_after(1, &h(&[("Connection", "close")])));
        assert!(!closes_after(1, &h(&[])));
        assert!(closes_after(0, &h(&[])));
        assert!(!closes_after(0, &h(&[("Connection", "Keep-Alive")])));
        assert!(expects_continue(&h(&[("Expect", "100-continue")])));
    }
}
