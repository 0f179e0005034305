//! One TCP socket's inode and owner from the kernel's sock_diag netlink
//! interface (the one `ss` uses): an exact 4-tuple query that the kernel
//! answers from its hash table in microseconds, where reading
//! `/proc/net/tcp` walks every bucket of the established table (~10 ms on a
//! devstack, whatever the number of sockets).

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, TCP_LISTEN};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket};

use super::rules::canonical_ip;

/// `idiag_cookie` all ones: "any socket with this 4-tuple".
const NO_COOKIE: [u8; 8] = [0xff; 8];
const ENOENT: i32 = 2;

/// Netlink sockets to the kernel's sock_diag, each used by one query at a
/// time: lookups run on several blocking threads at once.
pub(super) struct SockDiag {
    idle: Mutex<Vec<Socket>>,
    seq: AtomicU32,
}

impl SockDiag {
    /// A sock_diag that has found a loopback connection of its own, or why
    /// not: the kernel may lack `inet_diag`/`tcp_diag` (which then answers
    /// every query "no such socket"), or the sandbox may forbid netlink.
    pub fn probe() -> io::Result<Self> {
        let diag = Self {
            idle: Mutex::new(Vec::new()),
            seq: AtomicU32::new(1),
        };
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let client = TcpStream::connect(listener.local_addr()?)?;
        let _server = listener.accept()?;
        let want = rustix::fs::fstat(&client)?.st_ino;
        match diag.lookup(client.local_addr()?, client.peer_addr()?)? {
            Some((inode, _)) if inode == want => Ok(diag),
            Some((inode, _)) => Err(io::Error::other(format!(
                "it answered inode {inode} for a socket whose inode is {want}"
            ))),
            None => Err(io::Error::other(
                "it does not know TCP sockets (no tcp_diag module?)",
            )),
        }
    }

    /// The inode and owner uid of the TCP socket whose local end is `src`
    /// and remote end `dst`; `None` if there is no such socket (or only its
    /// TIME_WAIT ghost, which nobody holds).
    pub fn lookup(&self, src: SocketAddr, dst: SocketAddr) -> io::Result<Option<(u64, u32)>> {
        let socket = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let socket = match socket {
            Some(s) => s,
            None => {
                let mut s = Socket::new(NETLINK_SOCK_DIAG)?;
                s.bind_auto()?;
                s.connect(&netlink_sys::SocketAddr::new(0, 0))?;
                // The kernel answers within send(2): an empty queue after
                // it is an error, never a wait.
                s.set_non_blocking(true)?;
                s
            }
        };
        // A socket that failed mid-query may hold a stale answer: drop it.
        let found = self.query(&socket, src, dst)?;
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(socket);
        Ok(found)
    }

    fn query(
        &self,
        socket: &Socket,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> io::Result<Option<(u64, u32)>> {
        let src = SocketAddr::new(canonical_ip(src.ip()), src.port());
        let dst = SocketAddr::new(canonical_ip(dst.ip()), dst.port());
        // An IPv4 query finds IPv4-mapped IPv6 sockets too: the kernel looks
        // IPv4 addresses up in the one established table, whatever the
        // socket's family.
        let (family, src_ip, dst_ip, interface_id) = match (src, dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                (AF_INET, IpAddr::V4(*s.ip()), IpAddr::V4(*d.ip()), 0)
            }
            // A link-local peer's socket is bound to its interface.
            (s, d) => (
                AF_INET6,
                IpAddr::V6(v6(s.ip())),
                IpAddr::V6(v6(d.ip())),
                match s {
                    SocketAddr::V6(s) => s.scope_id(),
                    SocketAddr::V4(_) => 0,
                },
            ),
        };
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut header = NetlinkHeader::default();
        // No NLM_F_DUMP: one socket, found by its 4-tuple.
        header.flags = NLM_F_REQUEST;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::all(),
                socket_id: SocketId {
                    source_port: src.port(),
                    destination_port: dst.port(),
                    source_address: src_ip,
                    destination_address: dst_ip,
                    interface_id,
                    cookie: NO_COOKIE,
                },
            })
            .into(),
        );
        packet.finalize();
        let mut out = [0u8; 128];
        let out = out
            .get_mut(..packet.buffer_len())
            .ok_or_else(|| io::Error::other("sock_diag request too long"))?;
        packet.serialize(out);
        socket.send(out, 0)?;

        let mut buf = [0u8; 8192];
        loop {
            let n = socket.recv(&mut &mut buf[..], 0)?;
            let mut at = 0;
            while at < n {
                let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&buf[at..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                at += len.next_multiple_of(4);
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                        let h = &r.header;
                        let id = &h.socket_id;
                        let same = SocketAddr::new(canonical_ip(id.source_address), id.source_port)
                            == src
                            && SocketAddr::new(
                                canonical_ip(id.destination_address),
                                id.destination_port,
                            ) == dst;
                        return Ok((same && h.state != TCP_LISTEN && h.inode != 0)
                            .then_some((u64::from(h.inode), h.uid)));
                    }
                    NetlinkPayload::Error(e) if e.raw_code() == -ENOENT => return Ok(None),
                    NetlinkPayload::Error(e) => return Err(e.to_io()),
                    NetlinkPayload::Done(_) => return Ok(None),
                    _ => {}
                }
            }
        }
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}
