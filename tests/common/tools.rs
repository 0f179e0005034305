//! The outside tools some tests drive (mkdocs, Chromium, Python): found, or
//! skipped loudly, or, under `CI=true`, a failure.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv of `scripts/setup-python.sh` (or `$TRACER_VENV`).
pub fn venv() -> PathBuf {
    std::env::var_os("TRACER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"))
}

/// `Some(path)` when the tool is there; otherwise skips (or fails in CI).
pub fn tool(path: PathBuf, how: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let msg = format!("{} is missing: run {how}", path.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg} (CI=true: a missing tool fails the test)");
    }
    // Straight to stderr: libtest hides eprintln! output of passing tests.
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {msg} ***\n");
    None
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.exists())
    })
}

/// Debian's chromium (`scripts/setup-browser.sh`).
pub fn chromium() -> Option<PathBuf> {
    tool(
        on_path("chromium").unwrap_or_else(|| PathBuf::from("/usr/bin/chromium")),
        "scripts/setup-browser.sh",
    )
}

/// A Python for the standard-library-only scripts: the venv's, else the
/// system's python3.
pub fn python() -> Option<PathBuf> {
    let venv = venv().join("bin/python");
    if venv.exists() {
        return Some(venv);
    }
    tool(
        on_path("python3").unwrap_or(venv),
        "scripts/setup-python.sh",
    )
}

/// Runs a command that must succeed; its stdout and stderr.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}
