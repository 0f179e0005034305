//! Byte plumbing shared by both sides of the proxy: a read buffer that can be
//! searched for a head and consumed piecewise, an output buffer that coalesces
//! small writes, and the stream type of an accepted or upstream connection.

use bytes::BytesMut;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Reads are done in pieces this large; also the point where output is flushed.
pub const IO_CHUNK: usize = 64 * 1024;

/// A plain or TLS stream, on either side.
pub enum Stream {
    Plain(TcpStream),
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::TlsServer(s) => Pin::new(s).poll_read(cx, buf),
            Stream::TlsClient(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::TlsServer(s) => Pin::new(s).poll_write(cx, buf),
            Stream::TlsClient(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::TlsServer(s) => Pin::new(s).poll_flush(cx),
            Stream::TlsClient(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::TlsServer(s) => Pin::new(s).poll_shutdown(cx),
            Stream::TlsClient(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::TlsServer(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::TlsClient(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::TlsServer(s) => s.is_write_vectored(),
            Stream::TlsClient(s) => s.is_write_vectored(),
        }
    }
}

/// The TCP socket under a stream (a duplicate descriptor: the socket closes
/// when this and the stream's halves are all dropped).
pub struct Socket(OwnedFd);

impl Socket {
    /// Makes the coming close a reset: SO_LINGER with a zero timeout, so the
    /// kernel sends RST instead of FIN once every handle is dropped.
    pub fn reset_on_close(&self) {
        let _ = socket2::SockRef::from(&self.0).set_linger(Some(Duration::ZERO));
    }
}

/// The read half of a [`Stream`]: plain TCP splits without a lock.
pub enum ReadHalf {
    Plain(tokio::net::tcp::OwnedReadHalf),
    Tls(tokio::io::ReadHalf<Stream>),
}

/// The write half of a [`Stream`].
pub enum WriteHalf {
    Plain(tokio::net::tcp::OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<Stream>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::TlsServer(s) => s.get_ref().0,
            Stream::TlsClient(s) => s.get_ref().0,
        }
    }

    /// A second handle on the TCP socket, kept to reset the connection
    /// (RST) where a peer of ours reset it, after the stream was split.
    pub fn socket(&self) -> Option<Socket> {
        self.tcp().as_fd().try_clone_to_owned().ok().map(Socket)
    }

    pub fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                (ReadHalf::Plain(r), WriteHalf::Plain(w))
            }
            tls => {
                let (r, w) = tokio::io::split(tls);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ReadHalf::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl WriteHalf {
    /// Lets go of the half without the FIN that dropping a TCP write half
    /// sends: a connection that is to be reset must not look closed first.
    pub fn abandon(self) {
        match self {
            WriteHalf::Plain(w) => w.forget(),
            WriteHalf::Tls(w) => drop(w),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_write(cx, buf),
            WriteHalf::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_flush(cx),
            WriteHalf::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_shutdown(cx),
            WriteHalf::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The read side of a connection with its buffer: heads are parsed out of
/// `buf`, body bytes are taken from it before more is read.
pub struct Reader<R> {
    inner: R,
    pub buf: BytesMut,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: BytesMut::with_capacity(IO_CHUNK),
        }
    }

    /// Reads more bytes into the buffer; Ok(0) at end of stream.
    pub async fn read_more(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < IO_CHUNK / 4 {
            self.buf.reserve(IO_CHUNK);
        }
        self.inner.read_buf(&mut self.buf).await
    }

    /// Like `read_more`, failing with `TimedOut` when no byte comes for `idle`.
    pub async fn read_more_within(&mut self, idle: Duration) -> io::Result<usize> {
        within(idle, "read", self.read_more()).await
    }

    /// True if the peer has closed (or sent something unasked for) while idle:
    /// checked without waiting, before a kept-alive connection is reused.
    pub async fn is_stale(&mut self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        // One poll, no timer: anything but "nothing to read yet" means the
        // peer closed or spoke out of turn.
        std::future::poll_fn(|cx| {
            let mut probe = [0u8; 1];
            let mut probe = ReadBuf::new(&mut probe);
            Poll::Ready(
                Pin::new(&mut self.inner)
                    .poll_read(cx, &mut probe)
                    .is_ready(),
            )
        })
        .await
    }
}

/// Output waiting to be written: small pieces (a head, a short body) leave in
/// one write; a flush happens before any wait for input, so nothing waits on
/// bytes we are holding back.
///
/// Every write has a deadline (`idle`): a peer that takes nothing for that
/// long fails the write with `TimedOut` instead of holding the exchange.
pub struct Writer<W> {
    inner: W,
    pending: Vec<u8>,
    idle: Duration,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub fn new(inner: W, idle: Duration) -> Self {
        Self {
            inner,
            pending: Vec::with_capacity(8 * 1024),
            idle,
        }
    }

    pub async fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.pending.len() + bytes.len() > IO_CHUNK {
            self.flush().await?;
            if bytes.len() >= IO_CHUNK {
                return self.write_within(bytes).await;
            }
        }
        self.pending.extend_from_slice(bytes);
        Ok(())
    }

    async fn write_within(&mut self, bytes: &[u8]) -> io::Result<()> {
        within(self.idle, "written", self.inner.write_all(bytes)).await
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            let written = self.write_within(&pending).await;
            self.pending = pending;
            self.pending.clear();
            written?;
        }
        self.inner.flush().await
    }

    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Flushes (bounded) and sends FIN.
    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = tokio::time::timeout(self.idle, self.inner.shutdown()).await;
    }
}

/// `io` bounded by `idle`. Most reads and writes complete at once: the
/// timer (a lock on the runtime's timer wheel) is armed only for one that
/// has to wait.
async fn within<T>(
    idle: Duration,
    what: &str,
    io: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let mut io = std::pin::pin!(io);
    if let Poll::Ready(done) = std::future::poll_fn(|cx| Poll::Ready(io.as_mut().poll(cx))).await {
        return done;
    }
    match tokio::time::timeout(idle, io).await {
        Ok(done) => done,
        Err(_) => Err(idle_error(what, idle)),
    }
}

fn idle_error(what: &str, idle: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no byte could be {what} for {} s", idle.as_secs()),
    )
}
