//! The process on this host that owns the client end of a connection:
//! the kernel's sock_diag (or, without it, `/proc/net/tcp{,6}`) gives the
//! socket's inode, `/proc/PID/fd` who holds it, `/proc/PID/cmdline` what
//! that process is. Blocking; called once per connection on a blocking
//! thread.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};

use super::rules::canonical_ip;
use super::sockdiag::SockDiag;

/// What /proc says about the client end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerProcess {
    pub pid: u32,
    pub argv: Vec<String>,
}

/// Remembers what is worth remembering between connections.
pub(crate) struct PeerLookup {
    root: PathBuf,
    /// sock_diag, once probed; never for a /proc other than this host's.
    diag: OnceLock<Option<SockDiag>>,
    use_diag: bool,
    /// Processes found lately: the next connection most likely comes from one.
    recent: Mutex<VecDeque<u32>>,
    /// Whether an address is one of this host's.
    local_ips: Mutex<HashMap<IpAddr, bool>>,
    warned_unreadable: AtomicBool,
    warned_denied: AtomicBool,
    warned_diag: AtomicBool,
}

const RECENT: usize = 32;

impl Default for PeerLookup {
    fn default() -> Self {
        Self::new("/proc")
    }
}

impl PeerLookup {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            use_diag: root == Path::new("/proc"),
            root,
            diag: OnceLock::new(),
            recent: Mutex::new(VecDeque::new()),
            local_ips: Mutex::new(HashMap::new()),
            warned_unreadable: AtomicBool::new(false),
            warned_denied: AtomicBool::new(false),
            warned_diag: AtomicBool::new(false),
        }
    }

    /// Reads `/proc/net/tcp{,6}` only, as where netlink is unavailable.
    #[cfg(test)]
    fn without_sock_diag(mut self) -> Self {
        self.use_diag = false;
        self
    }

    /// Is `peer` on this host: loopback, the address it connected to, or
    /// an address this host can bind.
    pub fn is_local(&self, peer: IpAddr, local: IpAddr) -> bool {
        let (peer, local) = (canonical_ip(peer), canonical_ip(local));
        if peer.is_loopback() || peer == local {
            return true;
        }
        if peer.is_unspecified() || peer.is_multicast() {
            return false;
        }
        let mut cache = self.local_ips.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&known) = cache.get(&peer) {
            return known;
        }
        // Binding succeeds only for an address assigned to this host.
        let mine = UdpSocket::bind(SocketAddr::new(peer, 0)).is_ok();
        if cache.len() > 1024 {
            cache.clear();
        }
        cache.insert(peer, mine);
        mine
    }

    /// The process holding the client end of `peer` -> `local`, preferring one
    /// for which `wanted` says yes (several processes may share a socket).
    pub fn find(
        &self,
        peer: SocketAddr,
        local: SocketAddr,
        wanted: impl Fn(&[String]) -> bool,
    ) -> Option<PeerProcess> {
        let (inode, uid) = match self.socket_inode(peer, local) {
            Ok(found) => found?,
            Err(e) => {
                if !self.warned_unreadable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "peer process attribution is off: cannot read {}/net/tcp ({e}); callers come from tokens, User-Agent and rules",
                        self.root.display()
                    );
                }
                return None;
            }
        };
        let mut scan = match FdScan::new(&self.root, inode) {
            Ok(scan) => scan,
            Err(e) => {
                if !self.warned_unreadable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "peer process attribution is off: cannot read {} ({e})",
                        self.root.display()
                    );
                }
                return None;
            }
        };

        let recent: Vec<u32> = {
            let r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            r.iter().copied().collect()
        };
        let mut holder = recent.iter().copied().find(|&pid| scan.holds(pid));
        if holder.is_none() {
            // Processes of the socket's owner first, then the others, newest
            // first: a long-running service is soon in `recent`, so the full
            // scan is mostly for new processes (a CLI just started). Owners
            // are looked up on the way: the holder is mostly among the
            // newest, the older ones then cost nothing.
            let mut pids = scan.pids();
            pids.retain(|p| !recent.contains(p));
            pids.sort_unstable_by(|a, b| b.cmp(a));
            let mut other = Vec::new();
            holder = pids.into_iter().find(|&pid| {
                if scan.uid(pid) == Some(uid) {
                    scan.holds(pid)
                } else {
                    other.push(pid);
                    false
                }
            });
            if holder.is_none() {
                holder = other.into_iter().find(|&pid| scan.holds(pid));
            }
        }
        let Some(pid) = holder else {
            if scan.denied && !self.warned_denied.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "cannot read the open files of some processes under {} (permission denied): run tracer as the services' user or root to attribute their calls by process",
                    self.root.display()
                );
            }
            return None;
        };
        let mut found = PeerProcess {
            pid,
            argv: self.cmdline(pid).unwrap_or_default(),
        };
        if !wanted(&found.argv) {
            // A socket is shared only through fork: a parent or child that
            // holds it too may be the one the table knows (a shell and the
            // program it runs, a server and its workers). The parent first:
            // listing the children reads a file per thread.
            let relatives = self
                .parent(pid)
                .into_iter()
                .chain(std::iter::once_with(|| self.children(pid)).flatten());
            for rel in relatives {
                if scan.holds(rel) {
                    let argv = self.cmdline(rel).unwrap_or_default();
                    if wanted(&argv) {
                        found = PeerProcess { pid: rel, argv };
                        break;
                    }
                }
            }
        }
        let mut r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|&x| x != found.pid);
        r.push_front(found.pid);
        r.truncate(RECENT);
        Some(found)
    }

    /// The parent of a process, unless it is init.
    fn parent(&self, pid: u32) -> Option<u32> {
        // stat: "pid (comm) state ppid ...", comm may hold spaces and ')'.
        let stat = std::fs::read_to_string(self.root.join(pid.to_string()).join("stat")).ok()?;
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|&p| p > 1)
    }

    /// The children of a process, of all its threads.
    fn children(&self, pid: u32) -> Vec<u32> {
        let mut out = Vec::new();
        if let Ok(tasks) = std::fs::read_dir(self.root.join(pid.to_string()).join("task")) {
            for task in tasks.flatten() {
                if let Ok(children) = std::fs::read_to_string(task.path().join("children")) {
                    out.extend(
                        children
                            .split_whitespace()
                            .filter_map(|c| c.parse::<u32>().ok()),
                    );
                }
            }
        }
        out
    }

    /// The inode and owner uid of the socket whose local end is `peer` and
    /// remote end `local`: the client's socket, not ours.
    fn socket_inode(&self, peer: SocketAddr, local: SocketAddr) -> io::Result<Option<(u64, u32)>> {
        if let Some(diag) = self.sock_diag() {
            match diag.lookup(peer, local) {
                Ok(found) => return Ok(found),
                Err(e) => {
                    if !self.warned_diag.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "netlink sock_diag query failed ({e}): reading {}/net/tcp instead, which costs milliseconds",
                            self.root.display()
                        );
                    }
                }
            }
        }
        self.socket_inode_proc(peer, local)
    }

    fn sock_diag(&self) -> Option<&SockDiag> {
        if !self.use_diag {
            return None;
        }
        self.diag
            .get_or_init(|| match SockDiag::probe() {
                Ok(diag) => Some(diag),
                Err(e) => {
                    tracing::warn!(
                        "netlink sock_diag is unavailable ({e}): reading {}/net/tcp for each local connection instead, which costs milliseconds",
                        self.root.display()
                    );
                    None
                }
            })
            .as_ref()
    }

    fn socket_inode_proc(
        &self,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> io::Result<Option<(u64, u32)>> {
        let peer = SocketAddr::new(canonical_ip(peer.ip()), peer.port());
        let local = SocketAddr::new(canonical_ip(local.ip()), local.port());
        let tables: [&str; 2] = if peer.is_ipv4() {
            ["net/tcp", "net/tcp6"]
        } else {
            ["net/tcp6", "net/tcp"]
        };
        let mut read_any = false;
        let mut last_err = None;
        for t in tables {
            match read_proc_table(&self.root.join(t)) {
                Ok(text) => {
                    read_any = true;
                    if let Some(found) = find_in_table(&text, peer, local) {
                        return Ok(Some(found));
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        match (read_any, last_err) {
            (false, Some(e)) => Err(e),
            _ => Ok(None),
        }
    }

    fn cmdline(&self, pid: u32) -> Option<Vec<String>> {
        let raw = std::fs::read(self.root.join(pid.to_string()).join("cmdline")).ok()?;
        Some(
            raw.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
        )
    }
}

/// Looks for the processes holding one socket: paths relative to an open
/// /proc, buffers reused, no allocation per open file.
struct FdScan {
    proc: OwnedFd,
    /// `socket:[INODE]`, as /proc/PID/fd/N links read.
    target: Vec<u8>,
    path: String,
    /// Some process's open files could not be read.
    denied: bool,
}

impl FdScan {
    fn new(root: &Path, inode: u64) -> io::Result<Self> {
        let proc = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            proc,
            target: format!("socket:[{inode}]").into_bytes(),
            path: String::with_capacity(32),
            denied: false,
        })
    }

    /// Whether `pid` holds the socket; notes a permission error.
    fn holds(&mut self, pid: u32) -> bool {
        match self.try_holds(pid) {
            Ok(h) => h,
            Err(e) => {
                self.denied |= e == rustix::io::Errno::ACCESS || e == rustix::io::Errno::PERM;
                false
            }
        }
    }

    fn try_holds(&mut self, pid: u32) -> rustix::io::Result<bool> {
        use std::fmt::Write;
        self.path.clear();
        let _ = write!(self.path, "{pid}/fd");
        let fd_dir = rustix::fs::openat(
            &self.proc,
            self.path.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut dir = RawDir::new(&fd_dir, &mut buf);
        // Longer than any `socket:[N]`: a longer link reads truncated, so
        // differs.
        let mut link = [0u8; 64];
        while let Some(entry) = dir.next() {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_bytes().starts_with(b".") {
                continue;
            }
            // The fd may have been closed since the listing: skip it.
            if let Ok(n) = rustix::fs::readlinkat_raw(&fd_dir, name, &mut link[..]) {
                if link[..n] == *self.target {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The processes under /proc.
    fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::with_capacity(1024);
        let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
        let mut dir = RawDir::new(&self.proc, &mut buf);
        while let Some(Ok(entry)) = dir.next() {
            if !matches!(entry.file_type(), FileType::Directory | FileType::Unknown) {
                continue;
            }
            if let Some(pid) = std::str::from_utf8(entry.file_name().to_bytes())
                .ok()
                .and_then(|n| n.parse::<u32>().ok())
            {
                pids.push(pid);
            }
        }
        pids
    }

    /// The uid a process runs as (its /proc directory's owner).
    fn uid(&mut self, pid: u32) -> Option<u32> {
        use std::fmt::Write;
        self.path.clear();
        let _ = write!(self.path, "{pid}");
        rustix::fs::statat(&self.proc, self.path.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|st| st.st_uid)
    }
}

/// Reads a /proc/net table in large chunks: the kernel walks the socket
/// table again for every read(2), so small reads cost O(n²).
fn read_proc_table(path: &std::path::Path) -> io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = Vec::with_capacity(256 * 1024);
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Finds the established socket `local == want_local && remote == want_remote`
/// in a `/proc/net/tcp{,6}` table; returns its inode and uid.
fn find_in_table(
    text: &str,
    want_local: SocketAddr,
    want_remote: SocketAddr,
) -> Option<(u64, u32)> {
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Some(l), Some(r)) = (parse_addr(f[1]), parse_addr(f[2])) else {
            continue;
        };
        if l != want_local || r != want_remote {
            continue;
        }
        let (Ok(uid), Ok(inode)) = (f[7].parse::<u32>(), f[9].parse::<u64>()) else {
            continue;
        };
        // inode 0: the socket is gone (TIME_WAIT), nobody holds it.
        if inode != 0 {
            return Some((inode, uid));
        }
    }
    None
}

/// `0100007F:9C40` (IPv4) or 32 hex digits + port (IPv6): the kernel prints
/// each 32-bit word of the network-order address as a native integer.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(canonical_ip(ip), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Words as a little-endian kernel prints them.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:3AA7 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:9C40 0100007F:3AA7 01 00000000:00000000 00:00000000 00000000  1001        0 5151 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:3AA7 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 6161 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:9C41 0100007F:3AA7 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0000000000000000
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:9C40 00000000000000000000000001000000:3AA7 01 00000000:00000000 00:00000000 00000000  1002        0 7171 1 0000000000000000 20 4 30 10 -1
   1: 0000000000000000FFFF00000100007F:9C42 0000000000000000FFFF00000100007F:3AA7 01 00000000:00000000 00:00000000 00000000  1003        0 8181 1 0000000000000000 20 4 30 10 -1
";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn reads_proc_net_tables() {
        // The client end (40000 -> 15015), not the server end.
        assert_eq!(
            find_in_table(TCP, sa("127.0.0.1:40000"), sa("127.0.0.1:15015")),
            Some((5151, 1001))
        );
        // TIME_WAIT entries have no inode.
        assert_eq!(
            find_in_table(TCP, sa("127.0.0.1:40001"), sa("127.0.0.1:15015")),
            None
        );
        assert_eq!(
            find_in_table(TCP6, sa("[::1]:40000"), sa("[::1]:15015")),
            Some((7171, 1002))
        );
        // IPv4-mapped addresses compare as IPv4.
        assert_eq!(
            find_in_table(TCP6, sa("127.0.0.1:40002"), sa("127.0.0.1:15015")),
            Some((8181, 1003))
        );
    }

    #[test]
    fn fake_proc_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("net")).unwrap();
        std::fs::write(root.join("net/tcp"), TCP).unwrap();
        std::fs::write(root.join("net/tcp6"), TCP6).unwrap();
        let proc_with = |pid: u32, cmd: &[&str], sockets: &[u64]| {
            let p = root.join(pid.to_string());
            std::fs::create_dir_all(p.join("fd")).unwrap();
            let mut raw = cmd.join("\0").into_bytes();
            raw.push(0);
            std::fs::write(p.join("cmdline"), raw).unwrap();
            for (i, s) in sockets.iter().enumerate() {
                std::os::unix::fs::symlink(
                    format!("socket:[{s}]"),
                    p.join("fd").join(i.to_string()),
                )
                .unwrap();
            }
        };
        proc_with(10, &["/usr/sbin/apache2", "-k", "start"], &[1, 2]);
        // A shell and the program it started share the socket; the one that
        // matches wins whichever comes first.
        proc_with(
            11,
            &[
                "/usr/bin/python3",
                "/usr/local/bin/openstack",
                "image",
                "list",
            ],
            &[5151],
        );
        proc_with(12, &["bash", "-c", "x"], &[5151]);
        std::fs::write(root.join("12/stat"), "12 (ba) sh) S 11 12 12 0").unwrap();
        let lookup = PeerLookup::new(root);
        let wanted = |argv: &[String]| argv.iter().any(|a| a.ends_with("/openstack"));
        if cfg!(target_endian = "little") {
            let p = lookup
                .find(sa("127.0.0.1:40000"), sa("127.0.0.1:15015"), wanted)
                .unwrap();
            assert_eq!(p.pid, 11);
            assert_eq!(p.argv[1], "/usr/local/bin/openstack");
            // Nobody wanted: the holder found is still reported.
            let p = lookup
                .find(sa("127.0.0.1:40000"), sa("127.0.0.1:15015"), |_| false)
                .unwrap();
            assert!(p.pid == 11 || p.pid == 12);
            // The newest holder is found first, its parent is the one wanted.
            let fresh = PeerLookup::new(root);
            let p = fresh
                .find(sa("127.0.0.1:40000"), sa("127.0.0.1:15015"), wanted)
                .unwrap();
            assert_eq!(p.pid, 11);
        }
        assert!(lookup
            .find(sa("127.0.0.1:45555"), sa("127.0.0.1:15015"), wanted)
            .is_none());
        // No /proc at all: None (and one warning in the log).
        let none = PeerLookup::new(root.join("missing"));
        assert!(none
            .find(sa("127.0.0.1:40000"), sa("127.0.0.1:15015"), wanted)
            .is_none());
    }

    #[test]
    fn local_addresses() {
        let l = PeerLookup::default();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(l.is_local(ip("127.0.0.1"), ip("127.0.0.1")));
        assert!(l.is_local(ip("::ffff:127.0.0.1"), ip("::ffff:127.0.0.1")));
        assert!(l.is_local(ip("10.1.2.3"), ip("10.1.2.3")));
        // TEST-NET-3 is never assigned to a host.
        assert!(!l.is_local(ip("203.0.113.9"), ip("127.0.0.1")));
    }

    /// The inode of a socket of this process, as /proc/self/fd shows it.
    fn inode_of(s: &std::net::TcpStream) -> u64 {
        rustix::fs::fstat(s).unwrap().st_ino
    }

    /// Connects to `listen` and returns the client and both ends' addresses
    /// as the server's accept sees them.
    fn pair(
        l: &std::net::TcpListener,
        to: SocketAddr,
    ) -> (
        std::net::TcpStream,
        std::net::TcpStream,
        SocketAddr,
        SocketAddr,
    ) {
        let c = std::net::TcpStream::connect(to).unwrap();
        let (s, peer) = l.accept().unwrap();
        let local = s.local_addr().unwrap();
        (c, s, peer, local)
    }

    #[test]
    fn sock_diag_finds_real_sockets() {
        use std::net::TcpListener;
        let diag = SockDiag::probe().expect("netlink sock_diag on this host");
        let proc_only = PeerLookup::default().without_sock_diag();
        let mut cases = Vec::new();
        let l4 = TcpListener::bind("127.0.0.1:0").unwrap();
        cases.push((l4.local_addr().unwrap(), "IPv4"));
        let l6 = TcpListener::bind("[::1]:0").ok();
        if let Some(l6) = &l6 {
            cases.push((l6.local_addr().unwrap(), "IPv6"));
        } else {
            eprintln!("no ::1 on this host: IPv6 skipped");
        }
        // A dual-stack listener: IPv4 peers arrive as ::ffff:a.b.c.d, from
        // an IPv4 client or an IPv6 one connecting to a mapped address.
        let dual = TcpListener::bind("[::]:0").ok();
        if let Some(dual) = &dual {
            let port = dual.local_addr().unwrap().port();
            cases.push((sa(&format!("127.0.0.1:{port}")), "IPv4 to dual-stack"));
            cases.push((
                sa(&format!("[::ffff:127.0.0.1]:{port}")),
                "mapped to dual-stack",
            ));
        }
        for (to, what) in cases {
            let l = match to.port() {
                p if p == l4.local_addr().unwrap().port() => &l4,
                p if l6
                    .as_ref()
                    .is_some_and(|l| l.local_addr().unwrap().port() == p) =>
                {
                    l6.as_ref().unwrap()
                }
                _ => dual.as_ref().unwrap(),
            };
            let (c, s, peer, local) = pair(l, to);
            let found = diag.lookup(peer, local).unwrap();
            assert_eq!(
                found.map(|f| f.0),
                Some(inode_of(&c)),
                "{what}: {peer} -> {local}"
            );
            // The same answer as /proc/net/tcp{,6}.
            assert_eq!(
                found,
                proc_only.socket_inode(peer, local).unwrap(),
                "{what}"
            );
            // The server's end is another socket.
            assert_eq!(
                diag.lookup(local, peer).unwrap().map(|f| f.0),
                Some(inode_of(&s)),
                "{what}"
            );
            // Closed by the client first: TIME_WAIT, which nobody holds.
            drop(c);
            drop(s);
            assert_eq!(diag.lookup(peer, local).unwrap(), None, "{what}");
        }
        // No such connection.
        let local = l4.local_addr().unwrap();
        assert_eq!(diag.lookup(sa("127.0.0.1:1"), local).unwrap(), None);
    }

    /// A bash child connected to a fresh loopback listener, and the
    /// connection as the listener sees it.
    fn child_connection() -> (
        std::process::Child,
        std::net::TcpStream,
        SocketAddr,
        SocketAddr,
    ) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let child = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("exec 3<>/dev/tcp/127.0.0.1/{port}; read -u 3 x"))
            .spawn()
            .unwrap();
        let (s, peer) = l.accept().unwrap();
        let local = s.local_addr().unwrap();
        (child, s, peer, local)
    }

    #[test]
    fn finds_a_child_with_sock_diag_and_without() {
        let (mut child, s, peer, local) = child_connection();
        let pid = child.id();
        let with = PeerLookup::default();
        let without = PeerLookup::default().without_sock_diag();
        let a = with.find(peer, local, |_| true).map(|p| p.pid);
        let b = without.find(peer, local, |_| true).map(|p| p.pid);
        assert!(with.sock_diag().is_some(), "sock_diag unavailable");
        assert!(without.sock_diag().is_none());
        // Found again through `recent`.
        let c = with.find(peer, local, |_| true).map(|p| p.pid);
        drop(s);
        let _ = child.wait();
        assert_eq!((a, b, c), (Some(pid), Some(pid), Some(pid)));
    }

    /// Timing harness against the real /proc, in a release build:
    /// `cargo test --release --lib find_timing -- --ignored --nocapture`.
    /// A bash child opens `TRACER_FIND_N` (200) connections one after the
    /// other; each is looked up cold (`recent` emptied: full scan) and
    /// warm (the child in `recent`). `TRACER_FIND_IDLE` (0) idle loopback
    /// connections fill the socket table first, as on a busy devstack.
    #[test]
    #[ignore]
    fn find_timing() {
        use std::net::{TcpListener, TcpStream};
        use std::time::Instant;
        let env = |k: &str, d: usize| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        let (n, idle) = (env("TRACER_FIND_N", 200), env("TRACER_FIND_IDLE", 0));
        let filler = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut keep = Vec::with_capacity(idle * 2);
        for _ in 0..idle {
            keep.push(TcpStream::connect(filler.local_addr().unwrap()).unwrap());
            keep.push(filler.accept().unwrap().0);
        }
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = l.local_addr().unwrap();
        let script = format!(
            "for i in $(seq {n}); do exec 3<>/dev/tcp/127.0.0.1/{}; read -u 3 x; exec 3<&-; done",
            local.port()
        );
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .spawn()
            .unwrap();
        let pid = child.id();
        let warm = PeerLookup::default();
        let cold = PeerLookup::default();
        let (mut inode, mut cold_us, mut hot) = (Vec::new(), Vec::new(), Vec::new());
        let mut proc_net = Vec::new();
        let us = |t: Instant| t.elapsed().as_secs_f64() * 1e6;
        for _ in 0..n {
            let (s, peer) = l.accept().unwrap();
            let t = Instant::now();
            assert!(warm.socket_inode(peer, local).unwrap().is_some());
            inode.push(us(t));
            let t = Instant::now();
            assert!(warm.socket_inode_proc(peer, local).unwrap().is_some());
            proc_net.push(us(t));
            let t = Instant::now();
            cold.recent.lock().unwrap().clear();
            let p = cold.find(peer, local, |_| true);
            cold_us.push(us(t));
            assert_eq!(p.map(|p| p.pid), Some(pid));
            let t = Instant::now();
            let p = warm.find(peer, local, |_| true);
            hot.push(us(t));
            assert_eq!(p.map(|p| p.pid), Some(pid));
            drop(s);
        }
        assert!(child.wait().unwrap().success());
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let procs = std::fs::read_dir("/proc").unwrap().count();
        println!(
            "{n} lookups, {} sockets in the table, ~{procs} /proc entries: median socket_inode {:.1} us (/proc/net/tcp {:.1} us), find cold {:.1} us, find warm {:.1} us",
            idle * 2 + 2,
            median(&mut inode),
            median(&mut proc_net),
            median(&mut cold_us),
            median(&mut hot)
        );
    }
}
