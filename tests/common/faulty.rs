//! Upstreams that fail the way real ones do: close without answering,
//! reset, drip a head byte by byte, stall in the middle of a body, refuse
//! to accept at all. Each is a real socket on 127.0.0.1.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Handler = Arc<dyn Fn(TcpStream) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A listener that hands every connection to `handler`.
pub struct Faulty {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
}

impl Faulty {
    pub async fn start<F, Fut>(handler: F) -> Faulty
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |s| Box::pin(handler(s)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(handler(stream));
            }
        });
        Faulty { addr, connections }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Reads until a whole request head is in (bounded), returns it.
pub async fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 1 << 20 {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    head
}

/// Reads a request, then closes without a byte of answer.
pub async fn close_after_request(mut s: TcpStream) {
    read_head(&mut s).await;
}

/// Reads a request, then resets the connection (RST).
pub async fn reset_after_request(mut s: TcpStream) {
    read_head(&mut s).await;
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
}

/// Sends `bytes` one at a time, `every` apart, then waits for the peer to go.
pub async fn drip(mut s: TcpStream, bytes: &'static [u8], every: Duration) {
    read_head(&mut s).await;
    for b in bytes {
        if s.write_all(&[*b]).await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
    let _ = s.read(&mut [0u8; 1]).await;
}

/// Sends `bytes` at once, then stalls until the peer goes away; returns
/// through `closed` how long that took.
pub async fn send_then_stall(
    mut s: TcpStream,
    bytes: &'static [u8],
    closed: Arc<tokio::sync::Notify>,
) {
    read_head(&mut s).await;
    let _ = s.write_all(bytes).await;
    let mut sink = [0u8; 1024];
    while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
    closed.notify_one();
}

/// A port nobody listens on.
pub fn dead_port() -> u16 {
    super::free_port()
}

/// A listener whose accept queue is full and never drained: a connect to
/// it hangs (the kernel drops the SYN) until the connector gives up.
pub struct Unaccepting {
    pub addr: SocketAddr,
    _listener: socket2::Socket,
    _fillers: Vec<std::net::TcpStream>,
}

impl Unaccepting {
    pub fn start() -> Unaccepting {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        // Fill the queue: connects that complete until one does not.
        let mut fillers = Vec::new();
        for _ in 0..8 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => fillers.push(s),
                Err(_) => break,
            }
        }
        Unaccepting {
            addr,
            _listener: listener,
            _fillers: fillers,
        }
    }
}

/// What the client saw of a connection: everything it read, and how it ended.
#[derive(Debug)]
pub struct Seen {
    pub bytes: Vec<u8>,
    pub ending: Ending,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// FIN: read returned 0.
    Closed,
    /// RST: read failed with ECONNRESET.
    Reset,
    /// Still open after the bound.
    Open,
}

/// Sends `request` on a fresh connection and reads until it ends (bounded).
pub async fn send_and_watch(addr: SocketAddr, request: &[u8], bound: Duration) -> Seen {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    watch(&mut s, bound).await
}

/// Reads until the connection ends (bounded).
pub async fn watch(s: &mut TcpStream, bound: Duration) -> Seen {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => {
                return Seen {
                    bytes,
                    ending: Ending::Open,
                }
            }
            Ok(Ok(0)) => {
                return Seen {
                    bytes,
                    ending: Ending::Closed,
                }
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Seen {
                    bytes,
                    ending: Ending::Reset,
                }
            }
            Ok(Err(e)) => panic!("unexpected read error: {e}"),
        }
    }
}
