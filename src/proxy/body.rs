//! Relaying a body from one side to the other while the capture watches it.
//!
//! Bytes are forwarded exactly as they arrived (chunk framing included); the
//! capture sees the payload (chunk framing removed). Nothing is held beyond
//! one read buffer, whatever the body's size.

use super::head::Framing;
use super::io::{Reader, Writer};
use crate::capture::BodyCapture;
use tokio::io::{AsyncRead, AsyncWrite};

/// Longest chunk-size line or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;

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
    /// True when the failure was on the sending side (as opposed to the receiver).
    pub fn is_source_side(&self) -> bool {
        !matches!(self, BodyError::Write(_))
    }
}

/// Flushes what is pending (so nobody waits on bytes we hold) and reads more.
async fn fill<R, W>(src: &mut Reader<R>, dst: &mut Writer<W>) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    dst.flush().await.map_err(BodyError::Write)?;
    match src.read_more().await {
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
) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let relayed = async {
        match framing {
            Framing::None => Ok(()),
            Framing::Length(n) => relay_exact(n, src, dst, capture).await,
            Framing::Chunked => relay_chunked(src, dst, capture).await,
            Framing::UntilClose => loop {
                if !src.buf.is_empty() {
                    let data = src.buf.split().freeze();
                    capture.feed_relayed(data.clone()).await;
                    dst.put(&data).await.map_err(BodyError::Write)?;
                }
                match fill(src, dst).await {
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
) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    while n > 0 {
        if src.buf.is_empty() {
            fill(src, dst).await?;
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
) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let (line_len, size) = loop {
            match httparse::parse_chunk_size(&src.buf) {
                Ok(httparse::Status::Complete(found)) => break found,
                Ok(httparse::Status::Partial) if src.buf.len() > MAX_LINE => {
                    return Err(BodyError::BadChunk("chunk size line too long"))
                }
                Ok(httparse::Status::Partial) => fill(src, dst).await?,
                Err(_) => return Err(BodyError::BadChunk("invalid chunk size line")),
            }
        };
        pass_raw(line_len, src, dst).await?;
        if size == 0 {
            return relay_trailers(src, dst).await;
        }
        relay_exact(size, src, dst, capture).await?;
        // The line break that ends the chunk data.
        while src.buf.len() < 2 && !src.buf.starts_with(b"\n") {
            fill(src, dst).await?;
        }
        let brk = if src.buf.starts_with(b"\r\n") {
            2
        } else if src.buf.starts_with(b"\n") {
            1
        } else {
            return Err(BodyError::BadChunk(
                "chunk data not followed by a line break",
            ));
        };
        pass_raw(brk, src, dst).await?;
    }
}

/// Trailer lines after the last chunk, up to and including the blank line.
async fn relay_trailers<R, W>(src: &mut Reader<R>, dst: &mut Writer<W>) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let Some(nl) = src.buf.iter().position(|&b| b == b'\n') else {
            if src.buf.len() > MAX_LINE {
                return Err(BodyError::BadChunk("trailer line too long"));
            }
            fill(src, dst).await?;
            continue;
        };
        let blank = nl == 0 || (nl == 1 && src.buf[0] == b'\r');
        pass_raw(nl + 1, src, dst).await?;
        if blank {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(
        framing: Framing,
        input: &[u8],
    ) -> (Result<(), BodyError>, Vec<u8>, Vec<u8>, Vec<u8>) {
        let (mut feed, src) = tokio::io::duplex(1 << 20);
        let (dst, mut out) = tokio::io::duplex(1 << 20);
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        feed.write_all(input).await.unwrap();
        drop(feed);
        let mut reader = Reader::new(src);
        let mut writer = Writer::new(dst);
        let mut cap = BodyCapture::new(1 << 20);
        let res = relay(framing, &mut reader, &mut writer, &mut cap).await;
        drop(writer);
        let mut forwarded = Vec::new();
        out.read_to_end(&mut forwarded).await.unwrap();
        (res, forwarded, cap.finish().kept, reader.buf.to_vec())
    }

    #[tokio::test]
    async fn chunked_is_forwarded_raw_and_captured_decoded() {
        let wire = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let (res, fwd, cap, rest) = run(Framing::Chunked, wire).await;
        res.unwrap();
        assert_eq!(fwd, &wire[..wire.len() - 4]);
        assert_eq!(cap, b"Wikipedia");
        assert_eq!(
            rest, b"NEXT",
            "bytes after the body stay for the next message"
        );
    }

    #[tokio::test]
    async fn length_stops_at_length() {
        let (res, fwd, cap, rest) = run(Framing::Length(3), b"abcdef").await;
        res.unwrap();
        assert_eq!(
            (fwd.as_slice(), cap.as_slice(), rest.as_slice()),
            (&b"abc"[..], &b"abc"[..], &b"def"[..])
        );
    }

    #[tokio::test]
    async fn short_body_is_an_error_on_the_source_side() {
        let (res, fwd, _, _) = run(Framing::Length(10), b"abc").await;
        let err = res.unwrap_err();
        assert!(matches!(err, BodyError::SourceClosed) && err.is_source_side());
        assert_eq!(fwd, b"abc", "what arrived was forwarded");
    }

    #[tokio::test]
    async fn until_close_takes_everything() {
        let (res, fwd, cap, _) = run(Framing::UntilClose, b"all of it").await;
        res.unwrap();
        assert_eq!(
            (fwd.as_slice(), cap.as_slice()),
            (&b"all of it"[..], &b"all of it"[..])
        );
    }

    #[tokio::test]
    async fn bad_chunk_is_refused() {
        let (res, _, _, _) = run(Framing::Chunked, b"zz\r\n").await;
        assert!(matches!(res, Err(BodyError::BadChunk(_))));
    }
}
