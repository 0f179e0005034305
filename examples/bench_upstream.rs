//! The upstream of `benches/proxy_bench.sh`: a small, fast HTTP/1.1 server.
//!
//! - Any request without a body gets `200 OK` with a small JSON body.
//! - A request with a body (`Content-Length` or `Transfer-Encoding: chunked`)
//!   has its body read and thrown away as it arrives, and gets `201 Created`
//!   with `{"received":N}`, N being the payload bytes (chunk framing removed).
//! - Keep-alive as HTTP/1.1 says; `Expect: 100-continue` is answered.
//!
//! Usage: `bench_upstream [ADDR] [THREADS]` (default `127.0.0.1:0`, tokio's
//! default thread count). Prints `listening on IP:PORT` once it accepts.
//!
//! Only tokio and httparse, so it costs as little as possible next to the
//! proxies it measures.

use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The read buffer of a connection; a request head must fit in it.
const BUF_SIZE: usize = 256 * 1024;
/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;
const MAX_HEADERS: usize = 64;

const SMALL_BODY: &[u8] = br#"{"service":"bench-upstream","status":"ok","items":[1,2,3],"message":"hello from the upstream"}"#;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_string());
    let threads: Option<usize> = match args.next() {
        Some(t) => Some(t.parse().map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("bad THREADS {t:?}"))
        })?),
        None => None,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = threads {
        builder.worker_threads(t.max(1));
    }
    builder.enable_all().build()?.block_on(serve(&addr))
}

async fn serve(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            // A client that goes away mid-request is normal under load.
            let _ = Conn::new(stream).run().await;
        });
    }
}

/// How the body of the current request is framed.
enum Framing {
    None,
    Length(u64),
    Chunked,
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..len]`.
    pos: usize,
    len: usize,
    out: Vec<u8>,
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "client closed mid-request")
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: vec![0; BUF_SIZE],
            pos: 0,
            len: 0,
            out: Vec::with_capacity(512),
        }
    }

    fn available(&self) -> usize {
        self.len - self.pos
    }

    /// Reads more bytes after the unread ones; 0 at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        } else if self.len == self.buf.len() {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            return Err(bad("request head too large"));
        }
        let n = self.stream.read(&mut self.buf[self.len..]).await?;
        self.len += n;
        Ok(n)
    }

    async fn run(mut self) -> io::Result<()> {
        loop {
            // Parse the next request head (there may be none: the client is done).
            let (head_len, framing, keep_alive, expect_continue) = loop {
                if self.available() > 0 {
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut req = httparse::Request::new(&mut headers);
                    match req
                        .parse(&self.buf[self.pos..self.len])
                        .map_err(|e| bad(&e.to_string()))?
                    {
                        httparse::Status::Complete(n) => {
                            break (n, framing_of(&req)?, keep_alive_of(&req), expects(&req))
                        }
                        httparse::Status::Partial => {}
                    }
                }
                if self.fill().await? == 0 {
                    return if self.available() == 0 {
                        Ok(())
                    } else {
                        Err(eof())
                    };
                }
            };
            self.pos += head_len;

            let received = match framing {
                Framing::None => None,
                framing => {
                    if expect_continue {
                        self.stream
                            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                            .await?;
                    }
                    Some(match framing {
                        Framing::Length(n) => {
                            self.skip(n).await?;
                            n
                        }
                        _ => self.skip_chunked().await?,
                    })
                }
            };

            self.out.clear();
            match received {
                None => {
                    self.out.extend_from_slice(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ",
                    );
                    self.out
                        .extend_from_slice(SMALL_BODY.len().to_string().as_bytes());
                    self.out.extend_from_slice(b"\r\n");
                    if !keep_alive {
                        self.out.extend_from_slice(b"Connection: close\r\n");
                    }
                    self.out.extend_from_slice(b"\r\n");
                    self.out.extend_from_slice(SMALL_BODY);
                }
                Some(n) => {
                    let body = format!("{{\"received\":{n}}}");
                    self.out.extend_from_slice(
                        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: ",
                    );
                    self.out
                        .extend_from_slice(body.len().to_string().as_bytes());
                    self.out.extend_from_slice(b"\r\n");
                    if !keep_alive {
                        self.out.extend_from_slice(b"Connection: close\r\n");
                    }
                    self.out.extend_from_slice(b"\r\n");
                    self.out.extend_from_slice(body.as_bytes());
                }
            }
            self.stream.write_all(&self.out).await?;
            if !keep_alive {
                self.stream.shutdown().await?;
                return Ok(());
            }
        }
    }

    /// Reads and throws away `n` body bytes.
    async fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            if self.available() == 0 && self.fill().await? == 0 {
                return Err(eof());
            }
            let take = (self.available() as u64).min(n);
            self.pos += take as usize;
            n -= take;
        }
        Ok(())
    }

    /// Takes one CRLF-terminated line off the buffer; returns it without the CRLF.
    async fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            let unread = &self.buf[self.pos..self.len];
            if let Some(i) = unread.windows(2).position(|w| w == b"\r\n") {
                let line = unread[..i].to_vec();
                self.pos += i + 2;
                return Ok(line);
            }
            if unread.len() > MAX_LINE {
                return Err(bad("chunk line too long"));
            }
            if self.fill().await? == 0 {
                return Err(eof());
            }
        }
    }

    /// Reads and throws away a chunked body; returns the payload size.
    async fn skip_chunked(&mut self) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            let line = self.line().await?;
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| bad("bad chunk size"))?;
            if size == 0 {
                // Trailer fields, up to the empty line.
                while !self.line().await?.is_empty() {}
                return Ok(total);
            }
            self.skip(size).await?;
            total += size;
            if !self.line().await?.is_empty() {
                return Err(bad("chunk not followed by CRLF"));
            }
        }
    }
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn framing_of(req: &httparse::Request<'_, '_>) -> io::Result<Framing> {
    let mut framing = Framing::None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") && has_token(h.value, "chunked") {
            return Ok(Framing::Chunked);
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| bad("bad Content-Length"))?;
            if n > 0 {
                framing = Framing::Length(n);
            }
        }
    }
    Ok(framing)
}

fn keep_alive_of(req: &httparse::Request<'_, '_>) -> bool {
    let connection = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("connection"));
    match (req.version, connection) {
        (_, Some(h)) if has_token(h.value, "close") => false,
        (Some(0), Some(h)) => has_token(h.value, "keep-alive"),
        (Some(0), None) => false,
        _ => true,
    }
}

fn expects(req: &httparse::Request<'_, '_>) -> bool {
    req.headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("expect") && has_token(h.value, "100-continue"))
}
