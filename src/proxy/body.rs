//! Relaying a body from one side to the other while the capture watches it.
//!
//! Bytes are forwarded exactly as they arrived (chunk framing included); the
//! capture sees the payload (chunk framing removed). Nothing is held beyond
//! one read buffer, whatever the body's size.
//!
//! A request body is read strictly: chunk framing that another parser
//! could read differently fails the relay before the offending bytes are
//! forwarded (the last chunk and its trailers are held until they are known
//! to be well formed, so the upstream never sees a complete body that tracer
//! refused). A response body is read leniently: the upstream's bytes go to
//! its own client unjudged.

use super::io::{Reader, Writer};
use super::Framing;
use crate::capture::BodyCapture;
use crate::model::ErrorKind;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Longest chunk-size line or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;
/// Largest trailer section of a request (with its last-chunk line).
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("connection closed before the body ended")]
    SourceClosed,
    #[error("read failed: {0}")]
    Read(std::io::Error),
    #[error("write failed: {0}")]
    Write(std::io::Error),
    #[error("bad chunked encoding: {0}")]
    BadChunk(&'static str),
}

impl BodyError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            BodyError::SourceClosed => ErrorKind::ClosedEarly,
            BodyError::Read(e) | BodyError::Write(e) => ErrorKind::of_io(e),
            BodyError::BadChunk(_) => ErrorKind::BadFraming,
        }
    }
}

/// How a body is read.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Strict chunk framing (requests), or lenient (responses).
    pub strict: bool,
    /// How long the source may send nothing.
    pub idle: Duration,
}

/// Flushes what is pending (so nobody waits on bytes we hold) and reads more.
async fn fill<R, W>(src: &mut Reader<R>, dst: &mut Writer<W>, rules: Rules) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    dst.flush().await.map_err(BodyError::Write)?;
    match src.read_more_within(rules.idle).await {
        Ok(0) => Err(BodyError::SourceClosed),
        Ok(_) => Ok(()),
        Err(e) => Err(BodyError::Read(e)),
    }
}

/// Relays one body delimited by `framing`, then flushes.
pub async fn relay<R, W>(
    framing: Framing,
    src: &mut Reader<R>,
    dst: &mut Writer<W>,
    capture: &mut BodyCapture,
    rules: Rules,
) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let relayed = async {
        match framing {
            Framing::None => Ok(()),
            Framing::Length(n) => relay_exact(n, src, dst, capture, rules).await,
            Framing::Chunked => relay_chunked(src, dst, capture, rules).await,
            Framing::UntilClose => loop {
                if !src.buf.is_empty() {
                    let data = src.buf.split().freeze();
                    capture.feed_relayed(data.clone()).await;
                    dst.put(&data).await.map_err(BodyError::Write)?;
                }
                match fill(src, dst, rules).await {
                    Err(BodyError::SourceClosed) => break Ok(()),
                    other => other?,
                }
            },
        }
    }
    .await;
    // Also after a failure: the record keeps the hash of what did pass.
    capture.settle().await;
    relayed?;
    dst.flush().await.map_err(BodyError::Write)
}

/// Relays exactly `n` payload bytes.
async fn relay_exact<R, W>(
    mut n: u64,
    src: &mut Reader<R>,
    dst: &mut Writer<W>,
    capture: &mut BodyCapture,
    rules: Rules,
) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    while n > 0 {
        if src.buf.is_empty() {
            fill(src, dst, rules).await?;
        }
        let take = (src.buf.len() as u64).min(n) as usize;
        let data = src.buf.split_to(take).freeze();
        capture.feed_relayed(data.clone()).await;
        dst.put(&data).await.map_err(BodyError::Write)?;
        n -= take as u64;
    }
    Ok(())
}

/// Forwards `len` raw framing bytes from the front of the buffer.
async fn pass_raw<R, W>(
    len: usize,
    src: &mut Reader<R>,
    dst: &mut Writer<W>,
) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let raw = src.buf.split_to(len);
    dst.put(&raw).await.map_err(BodyError::Write)
}

async fn relay_chunked<R, W>(
    src: &mut Reader<R>,
    dst: &mut Writer<W>,
    capture: &mut BodyCapture,
    rules: Rules,
) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let (line_len, size) = loop {
            let parsed = if rules.strict {
                strict_chunk_size(&src.buf).map_err(BodyError::BadChunk)?
            } else {
                lenient_chunk_size(&src.buf)?
            };
            match parsed {
                Some(found) => break found,
                None => fill(src, dst, rules).await?,
            }
        };
        if size == 0 {
            return if rules.strict {
                relay_strict_trailers(line_len, src, dst, rules).await
            } else {
                pass_raw(line_len, src, dst).await?;
                relay_trailers(src, dst, rules).await
            };
        }
        pass_raw(line_len, src, dst).await?;
        relay_exact(size, src, dst, capture, rules).await?;
        // The line break that ends the chunk data.
        while src.buf.len() < 2 && !src.buf.starts_with(b"\n") {
            fill(src, dst, rules).await?;
        }
        let brk = if src.buf.starts_with(b"\r\n") {
            2
        } else if src.buf.starts_with(b"\n") && !rules.strict {
            1
        } else {
            return Err(BodyError::BadChunk("chunk data not followed by CRLF"));
        };
        pass_raw(brk, src, dst).await?;
    }
}

/// A chunk-size line as httparse reads it. Ok(None): not complete yet.
fn lenient_chunk_size(buf: &[u8]) -> Result<Option<(usize, u64)>, BodyError> {
    match httparse::parse_chunk_size(buf) {
        Ok(httparse::Status::Complete(found)) => Ok(Some(found)),
        Ok(httparse::Status::Partial) if buf.len() > MAX_LINE => {
            Err(BodyError::BadChunk("chunk size line too long"))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(BodyError::BadChunk("invalid chunk size line")),
    }
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A chunk-size line exactly as RFC 9112 §7.1 has it: `1*HEXDIG
/// *(BWS ";" ...) CRLF`, the size fitting in 64 bits. Ok(None): not
/// complete yet (an error shows as soon as the bytes so far allow).
pub fn strict_chunk_size(buf: &[u8]) -> Result<Option<(usize, u64)>, &'static str> {
    let line_end = buf.iter().position(|&b| b == b'\n');
    let line = &buf[..line_end.unwrap_or(buf.len())];
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 && (!line.is_empty() || line_end.is_some()) {
        return Err("chunk size is not a hexadecimal number");
    }
    let significant = line[..digits].iter().skip_while(|&&b| b == b'0').count();
    if significant > 16 {
        return Err("chunk size does not fit in 64 bits");
    }
    let rest = line[digits..]
        .strip_suffix(b"\r")
        .unwrap_or(&line[digits..]);
    let after_bws = &rest[rest.iter().take_while(|&&b| is_ows(b)).count()..];
    let complete = line_end.is_some();
    if !after_bws.is_empty() && after_bws[0] != b';'
        || complete && !rest.is_empty() && after_bws.is_empty()
    {
        return Err("chunk size is not a hexadecimal number");
    }
    if rest.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err("control character in a chunk extension");
    }
    let Some(end) = line_end else {
        return if buf.len() > MAX_LINE {
            Err("chunk size line too long")
        } else {
            Ok(None)
        };
    };
    if !line.ends_with(b"\r") {
        return Err("chunk size line does not end in CRLF");
    }
    let hex = std::str::from_utf8(&line[..digits]).unwrap_or("");
    let size = u64::from_str_radix(hex, 16).map_err(|_| "chunk size does not fit in 64 bits")?;
    Ok(Some((end + 1, size)))
}

/// Trailer lines after the last chunk, up to and including the blank line.
async fn relay_trailers<R, W>(
    src: &mut Reader<R>,
    dst: &mut Writer<W>,
    rules: Rules,
) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let Some(nl) = src.buf.iter().position(|&b| b == b'\n') else {
            if src.buf.len() > MAX_LINE {
                return Err(BodyError::BadChunk("trailer line too long"));
            }
            fill(src, dst, rules).await?;
            continue;
        };
        let blank = nl == 0 || (nl == 1 && src.buf[0] == b'\r');
        pass_raw(nl + 1, src, dst).await?;
        if blank {
            return Ok(());
        }
    }
}

/// The last-chunk line (`head_len` bytes at the front of the buffer) and
/// the trailer section, forwarded together once every line is a well-formed
/// header field, so a refused trailer never reaches the upstream.
async fn relay_strict_trailers<R, W>(
    head_len: usize,
    src: &mut Reader<R>,
    dst: &mut Writer<W>,
    rules: Rules,
) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        match trailer_section_len(&src.buf[head_len..]).map_err(BodyError::BadChunk)? {
            Some(len) => return pass_raw(head_len + len, src, dst).await,
            None if src.buf.len() > MAX_TRAILERS => {
                return Err(BodyError::BadChunk("trailer section too large"))
            }
            None => fill(src, dst, rules).await?,
        }
    }
}

/// Length of a complete trailer section (blank line included), checking
/// each line as it completes. Ok(None): not complete yet.
fn trailer_section_len(buf: &[u8]) -> Result<Option<usize>, &'static str> {
    let mut at = 0;
    while let Some(nl) = buf[at..].iter().position(|&b| b == b'\n') {
        let line = &buf[at..at + nl];
        let Some(line) = line.strip_suffix(b"\r") else {
            return Err("trailer line does not end in CRLF");
        };
        at += nl + 1;
        if line.is_empty() {
            return Ok(Some(at));
        }
        check_trailer_field(line)?;
    }
    Ok(None)
}

/// `field-name ":" OWS field-value OWS`, no obs-fold, no control characters.
fn check_trailer_field(line: &[u8]) -> Result<(), &'static str> {
    const BAD: &str = "trailer line is not a header field";
    let colon = line.iter().position(|&b| b == b':').ok_or(BAD)?;
    let name = &line[..colon];
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if name.is_empty() || !name.iter().all(tchar) {
        return Err(BAD);
    }
    if line[colon + 1..]
        .iter()
        .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(BAD);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Rules = Rules {
        strict: true,
        idle: Duration::from_secs(5),
    };
    const LENIENT: Rules = Rules {
        strict: false,
        idle: Duration::from_secs(5),
    };

    async fn run(
        framing: Framing,
        input: &[u8],
        rules: Rules,
    ) -> (Result<(), BodyError>, Vec<u8>, Vec<u8>, Vec<u8>) {
        let (mut feed, src) = tokio::io::duplex(1 << 20);
        let (dst, mut out) = tokio::io::duplex(1 << 20);
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        feed.write_all(input).await.unwrap();
        drop(feed);
        let mut reader = Reader::new(src);
        let mut writer = Writer::new(dst, Duration::from_secs(5));
        let mut cap = BodyCapture::new(1 << 20);
        let res = relay(framing, &mut reader, &mut writer, &mut cap, rules).await;
        drop(writer);
        let mut forwarded = Vec::new();
        out.read_to_end(&mut forwarded).await.unwrap();
        (res, forwarded, cap.finish().kept, reader.buf.to_vec())
    }

    #[tokio::test]
    async fn chunked_is_forwarded_raw_and_captured_decoded() {
        let wire = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for rules in [STRICT, LENIENT] {
            let (res, fwd, cap, rest) = run(Framing::Chunked, wire, rules).await;
            res.unwrap();
            assert_eq!(fwd, &wire[..wire.len() - 4]);
            assert_eq!(cap, b"Wikipedia");
            assert_eq!(
                rest, b"NEXT",
                "bytes after the body stay for the next message"
            );
        }
    }

    #[tokio::test]
    async fn length_stops_at_length() {
        let (res, fwd, cap, rest) = run(Framing::Length(3), b"abcdef", STRICT).await;
        res.unwrap();
        assert_eq!(
            (fwd.as_slice(), cap.as_slice(), rest.as_slice()),
            (&b"abc"[..], &b"abc"[..], &b"def"[..])
        );
    }

    #[tokio::test]
    async fn short_body_is_an_error_on_the_source_side() {
        let (res, fwd, _, _) = run(Framing::Length(10), b"abc", STRICT).await;
        let err = res.unwrap_err();
        assert!(matches!(err, BodyError::SourceClosed));
        assert_eq!(err.kind(), ErrorKind::ClosedEarly);
        assert_eq!(fwd, b"abc", "what arrived was forwarded");
    }

    #[tokio::test]
    async fn until_close_takes_everything() {
        let (res, fwd, cap, _) = run(Framing::UntilClose, b"all of it", LENIENT).await;
        res.unwrap();
        assert_eq!(
            (fwd.as_slice(), cap.as_slice()),
            (&b"all of it"[..], &b"all of it"[..])
        );
    }

    #[tokio::test]
    async fn bad_chunk_sizes_are_refused_before_forwarding() {
        for bad in [
            &b"zz\r\n"[..],
            b"-1\r\n",
            b"0x10\r\n",
            b" 5\r\n",
            b"\r\n",
            b"10000000000000000\r\n",
            b"5\n",
            b"5 x\r\n",
            b"5 \r\n",
        ] {
            let mut wire = b"3\r\nabc\r\n".to_vec();
            wire.extend_from_slice(bad);
            wire.extend_from_slice(b"hello\r\n0\r\n\r\n");
            let (res, fwd, _, _) = run(Framing::Chunked, &wire, STRICT).await;
            let err = res.unwrap_err();
            assert!(
                matches!(err, BodyError::BadChunk(_)) && err.kind() == ErrorKind::BadFraming,
                "{:?}: {err}",
                String::from_utf8_lossy(bad)
            );
            assert!(
                b"3\r\nabc\r\n".starts_with(&fwd),
                "the bad line is not forwarded: {:?}",
                String::from_utf8_lossy(&fwd)
            );
        }
        // A response's upstream is not judged as strictly.
        let loose = b"5\r\nhello\n0\r\n\r\n";
        let (res, _, cap, _) = run(Framing::Chunked, loose, LENIENT).await;
        res.unwrap();
        assert_eq!(cap, b"hello");
        assert!(run(Framing::Chunked, loose, STRICT).await.0.is_err());
    }

    #[tokio::test]
    async fn trailers_that_are_not_fields_are_held_back() {
        let wire = b"3\r\nabc\r\n0\r\nGET /SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n";
        let (res, fwd, _, _) = run(Framing::Chunked, wire, STRICT).await;
        assert!(matches!(res, Err(BodyError::BadChunk(_))), "{res:?}");
        assert!(
            b"3\r\nabc\r\n".starts_with(&fwd),
            "not even the last chunk went on: {:?}",
            String::from_utf8_lossy(&fwd)
        );
        let wire = b"0\r\nX-A: 1\r\n folded\r\n\r\n";
        assert!(run(Framing::Chunked, wire, STRICT).await.0.is_err());
        let wire = b"0\r\nX-A: 1\nX-B: 2\r\n\r\n";
        assert!(run(Framing::Chunked, wire, STRICT).await.0.is_err());
    }

    #[test]
    fn strict_chunk_size_lines() {
        assert_eq!(strict_chunk_size(b"1a\r\n"), Ok(Some((4, 26))));
        assert_eq!(strict_chunk_size(b"5 ;name=v\r\nx"), Ok(Some((11, 5))));
        assert_eq!(
            strict_chunk_size(b"000000000000000000005\r\n"),
            Ok(Some((23, 5)))
        );
        assert_eq!(strict_chunk_size(b"5"), Ok(None));
        assert_eq!(strict_chunk_size(b""), Ok(None));
        assert!(
            strict_chunk_size(b"z").is_err(),
            "refused before the line ends"
        );
        assert!(strict_chunk_size(b"5;a\x01\r\n").is_err());
    }

    #[tokio::test]
    async fn an_idle_source_times_out() {
        let (_feed, src) = tokio::io::duplex(64);
        let (dst, _out) = tokio::io::duplex(64);
        let mut reader = Reader::new(src);
        let mut writer = Writer::new(dst, Duration::from_secs(5));
        let mut cap = BodyCapture::new(16);
        let rules = Rules {
            strict: true,
            idle: Duration::from_millis(50),
        };
        let err = relay(
            Framing::Length(5),
            &mut reader,
            &mut writer,
            &mut cap,
            rules,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(matches!(err, BodyError::Read(_)), "the source's fault");
    }
}
