//! The process on this host that owns the client end of a connection:
//! `/proc/net/tcp{,6}` gives the socket's inode, `/proc/PID/fd` who holds it,
//! `/proc/PID/cmdline` what that process is. Blocking; called once per
//! connection on a blocking thread.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::rules::canonical_ip;

/// What /proc says about the client end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerProcess {
    pub pid: u32,
    pub argv: Vec<String>,
}

/// Remembers what is worth remembering between connections.
pub(crate) struct PeerLookup {
    root: PathBuf,
    /// Processes found lately: the next connection most likely comes from one.
    recent: Mutex<VecDeque<u32>>,
    /// Whether an address is one of this host's.
    local_ips: Mutex<HashMap<IpAddr, bool>>,
    warned_unreadable: AtomicBool,
    warned_denied: AtomicBool,
}

const RECENT: usize = 32;

impl Default for PeerLookup {
    fn default() -> Self {
        Self::new("/proc")
    }
}

impl PeerLookup {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            recent: Mutex::new(VecDeque::new()),
            local_ips: Mutex::new(HashMap::new()),
            warned_unreadable: AtomicBool::new(false),
            warned_denied: AtomicBool::new(false),
        }
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
        let target = format!("socket:[{inode}]");
        let mut denied = false;
        let mut holds = |pid: u32| match self.holds(pid, &target) {
            Ok(h) => h,
            Err(e) => {
                denied |= e.kind() == io::ErrorKind::PermissionDenied;
                false
            }
        };

        let recent: Vec<u32> = {
            let r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            r.iter().copied().collect()
        };
        let mut holder = recent.iter().copied().find(|&pid| holds(pid));
        if holder.is_none() {
            // Processes of the socket's owner first, then the others, newest
            // first: a long-running service is soon in `recent`, so the full
            // scan is mostly for new processes (a CLI just started).
            let (mut same, mut other) = (Vec::new(), Vec::new());
            if let Ok(dir) = std::fs::read_dir(&self.root) {
                for entry in dir.flatten() {
                    let Some(pid) = entry
                        .file_name()
                        .to_str()
                        .and_then(|n| n.parse::<u32>().ok())
                    else {
                        continue;
                    };
                    if recent.contains(&pid) {
                        continue;
                    }
                    match entry.metadata() {
                        Ok(m) if m.uid() == uid => same.push(pid),
                        _ => other.push(pid),
                    }
                }
            }
            same.sort_unstable_by(|a, b| b.cmp(a));
            other.sort_unstable_by(|a, b| b.cmp(a));
            holder = same.into_iter().chain(other).find(|&pid| holds(pid));
        }
        let Some(pid) = holder else {
            if denied && !self.warned_denied.swap(true, Ordering::Relaxed) {
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
            // program it runs, a server and its workers).
            for rel in self.relatives(pid) {
                if holds(rel) {
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

    /// The parent and the children of a process.
    fn relatives(&self, pid: u32) -> Vec<u32> {
        let dir = self.root.join(pid.to_string());
        let mut out = Vec::new();
        // stat: "pid (comm) state ppid ...", comm may hold spaces and ')'.
        if let Ok(stat) = std::fs::read_to_string(dir.join("stat")) {
            if let Some(ppid) = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok())
                .filter(|&p| p > 1)
            {
                out.push(ppid);
            }
        }
        if let Ok(tasks) = std::fs::read_dir(dir.join("task")) {
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

    fn holds(&self, pid: u32, target: &str) -> io::Result<bool> {
        for fd in std::fs::read_dir(self.root.join(pid.to_string()).join("fd"))? {
            let Ok(fd) = fd else { continue };
            if let Ok(link) = std::fs::read_link(fd.path()) {
                if link.as_os_str() == target {
                    return Ok(true);
                }
            }
        }
        Ok(false)
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
}
