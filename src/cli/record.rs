//! `tracer record NAME -- CMD…`: a flow around one command, with the
//! command's output passed through live and kept with the flow.
//!
//! tracer's own messages go to stderr: stdout belongs to CMD (it may be
//! piped into jq).

use super::flow;
use crate::config::Config;
use crate::model::RecordedCommand;
use crate::store::{Store, StoreError};
use crate::timefmt::now_micros;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};

/// Output kept per stream; the rest is passed through but not kept.
pub const KEEP_BYTES: usize = 4 * 1024 * 1024;
/// After CMD exits, how long its output may stay open (a background child
/// holding the pipe) before we stop waiting for it.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

pub async fn run(
    store: &dyn Store,
    config: &Config,
    name: &str,
    title: Option<&str>,
    replace: bool,
    argv: &[String],
) -> anyhow::Result<ExitCode> {
    start(store, name, title, replace).await?;
    let ran = run_command(argv).await;

    // Whatever happened to CMD, the flow is closed and keeps what we know.
    let stopped = flow::stop_and_flush(store, config, Some(name)).await;
    let command = match &ran {
        Ok(r) => RecordedCommand {
            argv: argv.to_vec(),
            stdout: r.stdout.stored(),
            stderr: r.stderr.stored(),
            exit_status: Some(r.status),
        },
        Err(_) => RecordedCommand {
            argv: argv.to_vec(),
            ..Default::default()
        },
    };
    let kept = store.set_flow_command(name, &command).await;
    let (flow, _) = stopped?;
    kept?;

    let code = match &ran {
        Ok(r) => {
            for (stream, out) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
                if out.total > out.data.len() as u64 {
                    eprintln!(
                        "tracer: kept the first {} MiB of {stream} ({} bytes in all)",
                        KEEP_BYTES / (1024 * 1024),
                        out.total
                    );
                }
            }
            if r.output_left_open {
                eprintln!("tracer: {} exited but its output stayed open (a background process?); kept what it wrote until then", argv[0]);
            }
            r.status
        }
        Err(e) => {
            eprintln!("tracer: cannot run {:?}: {e}", argv[0]);
            // The shell's codes: 127 not found, 126 found but not runnable.
            if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            }
        }
    };
    eprintln!("tracer: {}", flow::stopped_line(store, &flow).await?);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Starts the flow. A closed flow of that name is replaced when its
/// recorded command failed (so a retry just works) or when asked to.
async fn start(
    store: &dyn Store,
    name: &str,
    title: Option<&str>,
    replace: bool,
) -> anyhow::Result<()> {
    match store.start_flow(name, title, now_micros()).await {
        Err(StoreError::FlowExists(_)) => {
            let old = store.get_flow(name).await?;
            let failed = old
                .command
                .as_ref()
                .and_then(|c| c.exit_status)
                .map_or(old.command.is_some(), |status| status != 0);
            if !(replace || failed) {
                anyhow::bail!(
                    "flow {name:?} already exists; choose another name, add --replace, or remove it with `tracer flow delete {name}`"
                );
            }
            let why = if failed {
                "its command failed"
            } else {
                "--replace"
            };
            eprintln!("tracer: replacing flow {name} ({why}; its exchanges stay in the database)");
            store.delete_flow(name).await?;
            store.start_flow(name, title, now_micros()).await?;
            Ok(())
        }
        other => other.map(drop).map_err(Into::into),
    }
}

#[derive(Debug, Default, Clone)]
struct Kept {
    data: Vec<u8>,
    total: u64,
}

impl Kept {
    /// What goes into the flow: a cut is marked so pages don't look complete.
    fn stored(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        if self.total > self.data.len() as u64 {
            out.extend_from_slice(
                format!(
                    "\n[tracer: output cut after {} bytes; {} bytes in all]\n",
                    self.data.len(),
                    self.total
                )
                .as_bytes(),
            );
        }
        out
    }
}

struct Ran {
    /// Exit code, or 128+N when killed by signal N.
    status: i32,
    stdout: Kept,
    stderr: Kept,
    output_left_open: bool,
}

async fn run_command(argv: &[String]) -> std::io::Result<Ran> {
    // Registered before the spawn and never unregistered: from here on a
    // Ctrl-C reaches CMD (same process group) but cannot kill tracer
    // before the flow is stopped.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigterm = signal(SignalKind::terminate())?;

    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = Arc::new(Mutex::new(Kept::default()));
    let err = Arc::new(Mutex::new(Kept::default()));
    let mut pumps = Vec::new();
    if let Some(s) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(s, tokio::io::stdout(), out.clone())));
    }
    if let Some(s) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(s, tokio::io::stderr(), err.clone())));
    }

    let mut interrupts = 0;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = sigint.recv() => {
                // The first Ctrl-C is CMD's to handle; a second one insists.
                interrupts += 1;
                if interrupts >= 2 {
                    let _ = child.start_kill();
                }
            }
            _ = sighup.recv() => {}
            // SIGTERM is sent to tracer alone: pass the end on.
            _ = sigterm.recv() => { let _ = child.start_kill(); }
        }
    };

    let mut output_left_open = false;
    let deadline = tokio::time::Instant::now() + DRAIN_GRACE;
    for p in pumps {
        let abort = p.abort_handle();
        if tokio::time::timeout_at(deadline, p).await.is_err() {
            abort.abort();
            output_left_open = true;
        }
    }
    let status = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let take = |k: &Arc<Mutex<Kept>>| k.lock().map(|k| k.clone()).unwrap_or_default();
    Ok(Ran {
        status,
        stdout: take(&out),
        stderr: take(&err),
        output_left_open,
    })
}

/// Copies CMD's stream to ours as it comes and keeps the first KEEP_BYTES.
/// A terminal that goes away does not stop the draining: CMD must never
/// block on a full pipe.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    kept: Arc<Mutex<Kept>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut passing = true;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if passing && (to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err()) {
            passing = false;
        }
        if let Ok(mut k) = kept.lock() {
            let room = KEEP_BYTES.saturating_sub(k.data.len());
            k.data.extend_from_slice(&buf[..n.min(room)]);
            k.total += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_is_marked_in_what_is_stored() {
        let k = Kept {
            data: b"abc".to_vec(),
            total: 10,
        };
        let s = String::from_utf8(k.stored()).unwrap();
        assert!(s.starts_with("abc\n[tracer: output cut after 3 bytes; 10 bytes in all]"));
        let whole = Kept {
            data: b"abc".to_vec(),
            total: 3,
        };
        assert_eq!(whole.stored(), b"abc");
    }

    #[tokio::test]
    async fn pump_keeps_a_prefix_and_counts_all() {
        let data = vec![b'x'; KEEP_BYTES + 10];
        let kept = Arc::new(Mutex::new(Kept::default()));
        pump(&data[..], tokio::io::sink(), kept.clone()).await;
        let k = kept.lock().unwrap();
        assert_eq!(k.data.len(), KEEP_BYTES);
        assert_eq!(k.total, (KEEP_BYTES + 10) as u64);
    }
}
