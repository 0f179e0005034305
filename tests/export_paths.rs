//! Where `tracer export` and `tracer site` write: flow names read from the
//! database become directory names only when they are valid flow names,
//! and nothing inside `--out` is written through a symbolic link. The real
//! binary against a real SQLite file; the bad names are put into the
//! `flows` table directly, past the CLI's own check.

use sqlx::Connection as _;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        // A real flow, made the ordinary way (this also creates the schema).
        env.ok(&["flow", "start", "good", "--title", "Good"]);
        env.ok(&["flow", "stop", "good"]);
        env
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}", self.path("t.db").display())
    }

    fn run(&self, args: &[&str]) -> Output {
        let config = self.path("tracer.toml");
        // A closed admin port: `flow stop` finds no daemon to wait for.
        std::fs::write(&config, "[admin]\nlisten = \"127.0.0.1:9\"\n").unwrap();
        Command::new(env!("CARGO_BIN_EXE_tracer"))
            .current_dir(self.dir.path())
            .env_remove("TRACER_CONFIG")
            .env_remove("TRACER_LOG")
            .env_remove("RUST_LOG")
            .arg("--config")
            .arg(&config)
            .arg("--db")
            .arg(self.db_url())
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Fails with exactly one line on stderr, and returns it.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
        err
    }

    async fn insert_flow(&self, name: &str) {
        let mut db = sqlx::SqliteConnection::connect(&self.db_url())
            .await
            .unwrap();
        sqlx::query("INSERT INTO flows (name, title, started_at, stopped_at) VALUES (?, ?, 1, 2)")
            .bind(name)
            .bind("Planted")
            .execute(&mut db)
            .await
            .unwrap();
        db.close().await.unwrap();
    }
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn flow_names_that_are_paths_are_refused() {
    let env = Env::new();
    let long = "a".repeat(129);
    for bad in ["../../x", "..", "a/b", "/tmp/abs", &long] {
        env.insert_flow(bad).await;
    }
    // Whole site: refused before anything is written, naming the flow.
    let root = env.path("work");
    std::fs::create_dir(&root).unwrap();
    let out = root.join("site");
    let err = env.fails(&["site", "--out", out.to_str().unwrap()]);
    assert!(
        err.contains("flow name \"") && err.contains("cannot be written as a directory"),
        "{err}"
    );
    assert!(!out.exists(), "{:?}", files(&root));
    // `../../x` from DIR/docs would land beside the work folder.
    assert!(!env.path("x").exists());

    for bad in ["../../x", "a/b", &long] {
        let err = env.fails(&["site", "--out", out.to_str().unwrap(), bad]);
        assert!(err.contains(&format!("{bad:?}")), "{err}");
        assert!(err.contains("at most 128 characters"), "{err}");
        let err = env.fails(&["export", "--flow", bad, "--out", out.to_str().unwrap()]);
        assert!(err.contains(&format!("{bad:?}")), "{err}");
    }
    assert!(!out.exists());
    assert!(!env.path("x").exists());

    // The good one alone is fine.
    env.ok(&["site", "--out", out.to_str().unwrap(), "good"]);
    assert!(out.join("docs/good/index.md").is_file());
    // And the CLI refuses such names when a flow is made.
    env.fails(&["flow", "start", &long]);
}

#[test]
fn nothing_is_written_through_a_symlink_in_out() {
    let env = Env::new();
    let victim = env.path("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();

    // export: a page planted as a link to a file outside.
    let out = env.path("export");
    std::fs::create_dir(&out).unwrap();
    symlink(&victim, out.join("index.md")).unwrap();
    let err = env.fails(&["export", "--flow", "good", "--out", out.to_str().unwrap()]);
    assert!(
        err.contains("symbolic link") && err.contains("index.md"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");

    // site: a folder planted as a link to a folder outside.
    let site = env.path("site");
    std::fs::create_dir(&site).unwrap();
    symlink(&elsewhere, site.join("docs")).unwrap();
    let err = env.fails(&["site", "--out", site.to_str().unwrap()]);
    assert!(
        err.contains("symbolic link") && err.contains("docs"),
        "{err}"
    );
    assert!(files(&elsewhere).is_empty(), "{:?}", files(&elsewhere));

    // A flow's folder planted as a link, and mkdocs.yml as one.
    let site2 = env.path("site2");
    std::fs::create_dir_all(site2.join("docs")).unwrap();
    symlink(&elsewhere, site2.join("docs/good")).unwrap();
    let err = env.fails(&["site", "--out", site2.to_str().unwrap()]);
    assert!(err.contains("docs/good"), "{err}");
    std::fs::remove_file(site2.join("docs/good")).unwrap();
    symlink(&victim, site2.join("mkdocs.yml")).unwrap();
    let err = env.fails(&["site", "--out", site2.to_str().unwrap()]);
    assert!(err.contains("mkdocs.yml"), "{err}");
    assert!(files(&elsewhere).is_empty());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");

    // --out itself may be a link the user made: it is followed.
    let real = env.path("real");
    std::fs::create_dir(&real).unwrap();
    symlink(&real, env.path("out-link")).unwrap();
    env.ok(&["export", "--flow", "good", "--out", "out-link"]);
    assert!(real.join("index.md").is_file());
}
