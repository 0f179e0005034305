//! The peer-process rule against the real /proc: a listener on loopback,
//! clients that are child processes (or this test itself), and
//! `Attributor::connection` must name the process at the other end.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tracer::attribution::{Attributor, ConnectionCaller, RequestView};
use tracer::config::Config;
use tracer::model::{CallerSource, HeaderField};

fn attributor(extra: &str) -> Attributor {
    let config = Config::parse(extra).unwrap();
    config.validate().unwrap();
    Attributor::new(&config)
}

/// Kills the child when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Accepts one connection, giving up after 10 s.
fn accept(l: &TcpListener) -> (TcpStream, SocketAddr) {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match l.accept() {
            Ok((s, peer)) => return (s, peer),
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("no client connected: {e}"),
        }
    }
}

/// A bash child that opens a connection to `port` on fd 3, then runs `then`.
fn bash_client(port: u16, then: &str) -> Reaped {
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} || exit 1; {then}");
    Reaped(
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .spawn()
            .expect("bash"),
    )
}

fn timed(a: &Attributor, peer: SocketAddr, local: SocketAddr) -> ConnectionCaller {
    let t = Instant::now();
    let c = a.connection("keystone", peer, local);
    println!("connection() took {:?}: {c:?}", t.elapsed());
    c
}

#[test]
fn finds_a_child_process_by_its_command_line() {
    let a = attributor("");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = l.local_addr().unwrap();
    // argv[0] as uwsgi's --procname-prefix writes it for glance.
    let child = bash_client(local.port(), "exec -a 'glance-apiuWSGI worker 1' sleep 30");
    let (_s, peer) = accept(&l);
    // exec -a happens right after the connect: wait for the new command line.
    let pid = child.0.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .starts_with(b"glance-api")
    {
        assert!(Instant::now() < deadline, "child never exec'd");
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = timed(&a, peer, local);
    assert_eq!(c.pid, Some(pid));
    assert_eq!(c.process.as_deref(), Some("glance-api"));

    // The proxy then decides by process, before tokens and User-Agent.
    let headers = [HeaderField::new("User-Agent", "python-keystoneclient")];
    let view = RequestView {
        service: "keystone",
        peer,
        local,
        method: "GET",
        target: "/v3/auth/tokens",
        headers: &headers,
    };
    let d = a.decide(&c, &view, None);
    assert_eq!(
        (d.caller.as_str(), d.source),
        ("glance-api", CallerSource::Process)
    );
}

#[test]
fn a_socket_shared_by_a_shell_and_its_child_goes_to_the_one_in_the_table() {
    let a = attributor("");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = l.local_addr().unwrap();
    // The shell renames itself swift-proxy-server and keeps a `sleep` child
    // (the `; :` stops bash from exec'ing it): both hold fd 3.
    let child = bash_client(
        local.port(),
        "exec -a swift-proxy-server bash -c 'sleep 30; :' proxy-server.conf",
    );
    let (_s, peer) = accept(&l);
    let pid = child.0.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        // The child has exec'd `sleep`: until then it is a copy of the shell,
        // named swift-proxy-server too, and the newest holder.
        let sleeping = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| {
                std::fs::read(format!("/proc/{c}/cmdline"))
                    .unwrap_or_default()
                    .starts_with(b"sleep")
            });
        if cmd.starts_with(b"swift-proxy-server") && sleeping {
            break;
        }
        assert!(Instant::now() < deadline, "child never exec'd");
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = timed(&a, peer, local);
    assert_eq!(c.pid, Some(pid));
    assert_eq!(c.process.as_deref(), Some("swift-proxy-server"));
}

#[test]
fn finds_the_openstack_cli_run_by_python() {
    let Ok(out) = Command::new("python3").arg("-c").arg("print(1)").output() else {
        eprintln!("python3 not found: skipped");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    // A stand-in for .../bin/openstack: it connects and waits.
    let script = dir.path().join("openstack");
    std::fs::write(
        &script,
        "import os, socket, time\ns = socket.create_connection(('127.0.0.1', int(os.environ['PORT'])))\ntime.sleep(30)\n",
    )
    .unwrap();
    let a = attributor("");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = l.local_addr().unwrap();
    let child = Reaped(
        Command::new("python3")
            .arg(&script)
            .args(["image", "create", "--disk-format", "qcow2", "glance-api"])
            .env("PORT", local.port().to_string())
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (_s, peer) = accept(&l);
    let c = timed(&a, peer, local);
    // pyenv-style shims exec the real interpreter: same pid.
    assert_eq!(c.pid, Some(child.0.id()));
    assert_eq!(c.process.as_deref(), Some("openstack"));
    assert_eq!(c.program.as_deref(), Some("openstack"));
}

#[test]
fn finds_this_test_process() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = l.local_addr().unwrap();
    let _client = TcpStream::connect(local).unwrap();
    let (_s, peer) = accept(&l);
    // This binary is in no table: found, but no caller.
    let c = timed(&attributor(""), peer, local);
    assert_eq!(c.pid, Some(std::process::id()));
    assert_eq!(c.process, None);
    // Known since: found among the recent processes.
    let a = attributor("");
    timed(&a, peer, local);
    let t = Instant::now();
    assert_eq!(
        a.connection("keystone", peer, local).pid,
        Some(std::process::id())
    );
    println!("again: {:?}", t.elapsed());
    // A config entry names it.
    let a = attributor(
        "[[attribution.process]]\nname = \"the-test\"\ncmdline = \"attribution_proc\"\n",
    );
    let c = timed(&a, peer, local);
    assert_eq!(c.process.as_deref(), Some("the-test"));
    // Connections from elsewhere are not looked up (TEST-NET-3 is never local).
    let far: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    assert_eq!(a.connection("keystone", far, local).pid, None);
}

#[test]
fn finds_this_test_process_over_ipv6_and_dual_stack() {
    let entry = "[[attribution.process]]\nname = \"the-test\"\ncmdline = \"attribution_proc\"\n";
    if let Ok(l) = TcpListener::bind("[::1]:0") {
        let local = l.local_addr().unwrap();
        let _client = TcpStream::connect(local).unwrap();
        let (_s, peer) = accept(&l);
        let c = timed(&attributor(entry), peer, local);
        assert_eq!(c.pid, Some(std::process::id()));
        assert_eq!(c.process.as_deref(), Some("the-test"));
    } else {
        eprintln!("no IPv6 loopback: skipped");
    }
    // A dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1.
    if let Ok(l) = TcpListener::bind("[::]:0") {
        let port = l.local_addr().unwrap().port();
        let Ok(_client) = TcpStream::connect(("127.0.0.1", port)) else {
            eprintln!("listener is IPv6 only: skipped");
            return;
        };
        let (s, peer) = accept(&l);
        let local = s.local_addr().unwrap();
        let c = timed(&attributor(entry), peer, local);
        assert_eq!(c.pid, Some(std::process::id()));
    }
}
