//! What every `Store` backend must do, run once per backend: SQLite on a
//! real file in a temporary directory, PostgreSQL in a fresh schema of the
//! server `TRACER_TEST_POSTGRES_URL` names (skipped without it, except
//! under CI). Each check is an `async fn(Db)`; `both!` makes the two tests
//! `CHECK::sqlite` and `CHECK::postgres` of it. Backend-specific checks
//! (file mode, open errors) follow at the end.

mod common;

use common::db::{self, Db, PgSchema};
use std::os::unix::fs::PermissionsExt;
use tracer::model::{BodyRecord, CallerSource, Exchange, HeaderField, RecordedCommand};
use tracer::model::{ErrorKind, ErrorSide, ExchangeError};
use tracer::store::{self, ExchangeFilter, Loss, LossCause, LossTally, StoreError, TokenOwner};

macro_rules! both {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[tokio::test]
            async fn sqlite() {
                crate::db::on_sqlite(super::$check).await
            }
            #[tokio::test]
            async fn postgres() {
                crate::db::on_postgres(stringify!($check), super::$check).await
            }
        }
    )*};
}

both!(
    exchanges_round_trip_byte_for_byte,
    a_retried_batch_is_not_stored_twice,
    limit_keeps_the_newest_oldest_first_and_filters_apply,
    flow_rules,
    flows_are_listed_by_start_then_name_bytewise,
    flow_list_counts_services_and_losses_in_the_window,
    tokens_upsert_and_expire,
    handles_share_one_database,
    several_writers_open_and_insert_at_once,
    a_nul_in_text_does_not_lose_the_batch,
    two_thousand_exchanges_in_one_batch,
);

fn body(bytes: &[u8]) -> BodyRecord {
    BodyRecord {
        kept: bytes.to_vec(),
        size: bytes.len() as u64,
        sha256: format!("sha-of-{}", bytes.len()),
    }
}

/// An exchange whose request head arrived at `at` (µs), with `seq` as its event number.
fn exchange(n: usize, at: i64, seq: i64) -> Exchange {
    Exchange {
        id: 0,
        uuid: format!("{n:032x}"),
        request_id: format!("req-{n}"),
        service: "glance".into(),
        caller: "openstack".into(),
        caller_source: CallerSource::UserAgent,
        client_addr: "127.0.0.1:40000".into(),
        upstream_url: "http://127.0.0.1:60999/v2/images".into(),
        method: "GET".into(),
        target: "/v2/images?limit=20".into(),
        request_version: "HTTP/1.1".into(),
        request_headers: vec![HeaderField::new("Host", "127.0.0.1:9292")],
        request_body: BodyRecord::default(),
        status: Some(200),
        reason: Some("OK".into()),
        response_version: Some("HTTP/1.1".into()),
        response_headers: vec![HeaderField::new("Content-Type", "application/json")],
        response_body: body(b"{\"images\": []}"),
        request_seq: seq,
        response_seq: Some(seq + 1),
        started_at: at,
        response_at: Some(at + 10),
        finished_at: at + 20,
        error: None,
        ignored: false,
    }
}

fn stored(mut ex: Exchange, id: i64) -> Exchange {
    ex.id = id;
    ex
}

async fn exchanges_round_trip_byte_for_byte(db: Db) {
    let s = db.open().await;
    let mut a = exchange(1, 1_000, 1_000);
    a.method = "POST".into();
    a.request_headers = vec![
        HeaderField::new("Host", "127.0.0.1:9292"),
        HeaderField::new("X-Auth-Token", "gAAAA"),
        HeaderField::new("x-dup", "first"),
        HeaderField::new("X-Dup", "second"),
        HeaderField::new("X-Latin1", vec![b'c', b'a', b'f', 0xe9, 0xff]),
        HeaderField::new("X-Empty", ""),
    ];
    a.request_body = BodyRecord {
        kept: vec![0x51, 0x46, 0x49, 0xfb, 0x00, 0x00],
        size: 1 << 33,
        sha256: "a".repeat(64),
    };
    a.reason = Some("MULTIPLE CHOICES".into());
    a.status = Some(300);
    let mut b = exchange(2, 2_000, 2_000);
    b.caller_source = CallerSource::SubjectToken;
    b.status = None;
    b.reason = None;
    b.response_version = None;
    b.response_headers = vec![];
    b.response_body = BodyRecord::default();
    b.response_seq = None;
    b.response_at = None;
    b.error = Some("upstream refused the connection".into());
    s.insert_exchanges(&[a.clone(), b.clone()]).await.unwrap();

    let all = s.list_exchanges(&ExchangeFilter::default()).await.unwrap();
    assert_eq!(all, vec![stored(a.clone(), 1), stored(b.clone(), 2)]);

    assert_eq!(
        s.get_exchange("1").await.unwrap(),
        Some(stored(a.clone(), 1))
    );
    assert_eq!(
        s.get_exchange(&b.uuid).await.unwrap(),
        Some(stored(b.clone(), 2))
    );
    assert_eq!(
        s.get_exchange("req-1").await.unwrap(),
        Some(stored(a.clone(), 1))
    );
    let hyphenated = "00000000-0000-0000-0000-000000000002";
    assert_eq!(s.get_exchange(hyphenated).await.unwrap().unwrap().id, 2);
    assert_eq!(s.get_exchange("999").await.unwrap(), None);
    assert_eq!(s.get_exchange("nope").await.unwrap(), None);
    assert_eq!(
        s.get_exchange("99999999999999999999999").await.unwrap(),
        None
    );

    // Heads carry sizes and hashes, not the bytes.
    let heads = s
        .list_exchange_heads(&ExchangeFilter::default())
        .await
        .unwrap();
    assert!(heads[0].request_body.kept.is_empty());
    assert_eq!(heads[0].request_body.size, 1 << 33);
    assert_eq!(heads[0].request_headers, a.request_headers);
}

async fn a_retried_batch_is_not_stored_twice(db: Db) {
    let s = db.open().await;
    let batch: Vec<_> = (0..3).map(|n| exchange(n, n as i64, n as i64)).collect();
    s.insert_exchanges(&batch).await.unwrap();
    s.insert_exchanges(&batch).await.unwrap();
    s.insert_exchanges(&[]).await.unwrap();
    let all = s.list_exchanges(&ExchangeFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
}

async fn limit_keeps_the_newest_oldest_first_and_filters_apply(db: Db) {
    let s = db.open().await;
    // Inserted out of event order: listing follows request_seq, not insertion.
    let seqs = [50, 10, 40, 20, 30, 60];
    let mut batch: Vec<_> = seqs
        .iter()
        .enumerate()
        .map(|(n, &seq)| exchange(n, seq, seq))
        .collect();
    batch[5].ignored = true; // seq 60
    batch[2].method = "DELETE".into(); // seq 40
    batch[2].status = Some(204);
    batch[3].service = "keystone".into(); // seq 20
    s.insert_exchanges(&batch).await.unwrap();

    let seq_of = |v: Vec<Exchange>| v.into_iter().map(|e| e.request_seq).collect::<Vec<_>>();
    let f = ExchangeFilter::default();
    assert_eq!(
        seq_of(s.list_exchanges(&f).await.unwrap()),
        [10, 20, 30, 40, 50]
    );
    let f = ExchangeFilter {
        include_ignored: true,
        ..Default::default()
    };
    assert_eq!(
        seq_of(s.list_exchanges(&f).await.unwrap()),
        [10, 20, 30, 40, 50, 60]
    );
    let f = ExchangeFilter {
        limit: Some(3),
        ..Default::default()
    };
    assert_eq!(seq_of(s.list_exchanges(&f).await.unwrap()), [30, 40, 50]);
    let f = ExchangeFilter {
        limit: Some(0),
        ..Default::default()
    };
    assert!(s.list_exchanges(&f).await.unwrap().is_empty());
    let f = ExchangeFilter {
        from: Some(20),
        to: Some(40),
        ..Default::default()
    };
    assert_eq!(seq_of(s.list_exchanges(&f).await.unwrap()), [20, 30, 40]);
    let f = ExchangeFilter {
        method: Some("delete".into()),
        ..Default::default()
    };
    assert_eq!(seq_of(s.list_exchanges(&f).await.unwrap()), [40]);
    let f = ExchangeFilter {
        status: Some(200),
        service: Some("glance".into()),
        ..Default::default()
    };
    assert_eq!(seq_of(s.list_exchanges(&f).await.unwrap()), [10, 30, 50]);
}

async fn flow_rules(db: Db) {
    let s = db.open().await;
    assert!(matches!(
        s.start_flow("Bad Name", None, 1).await,
        Err(StoreError::BadFlowName(_))
    ));
    assert!(matches!(
        s.stop_flow(None, 2).await,
        Err(StoreError::NoOpenFlow)
    ));
    let f = s.start_flow("one", Some("First"), 10).await.unwrap();
    assert!(f.is_open() && f.title.as_deref() == Some("First"));
    assert!(matches!(
        s.start_flow("one", None, 11).await,
        Err(StoreError::FlowAlreadyOpen(n)) if n == "one"
    ));
    s.start_flow("two", None, 12).await.unwrap();
    match s.stop_flow(None, 13).await {
        Err(StoreError::SeveralOpenFlows(names)) => assert_eq!(names, "one, two"),
        other => panic!("{other:?}"),
    }
    let one = s.stop_flow(Some("one"), 20).await.unwrap();
    assert_eq!(one.stopped_at, Some(20));
    // Stopping again changes nothing.
    assert_eq!(
        s.stop_flow(Some("one"), 30).await.unwrap().stopped_at,
        Some(20)
    );
    assert!(matches!(
        s.start_flow("one", None, 31).await,
        Err(StoreError::FlowExists(n)) if n == "one"
    ));
    assert_eq!(s.stop_flow(None, 40).await.unwrap().name, "two");
    assert!(matches!(
        s.stop_flow(Some("nope"), 41).await,
        Err(StoreError::UnknownFlow(_))
    ));
    assert!(matches!(
        s.get_flow("nope").await,
        Err(StoreError::UnknownFlow(_))
    ));
    assert!(matches!(
        s.delete_flow("nope").await,
        Err(StoreError::UnknownFlow(_))
    ));
    assert!(matches!(
        s.set_flow_command("nope", &RecordedCommand::default())
            .await,
        Err(StoreError::UnknownFlow(_))
    ));

    let cmd = RecordedCommand {
        argv: vec!["openstack".into(), "image list".into()],
        stdout: b"| id |\n".to_vec(),
        stderr: vec![0xff, b'\n'],
        exit_status: Some(3),
    };
    s.set_flow_command("two", &cmd).await.unwrap();
    assert_eq!(s.get_flow("two").await.unwrap().command, Some(cmd));
    assert_eq!(s.get_flow("one").await.unwrap().command, None);

    s.delete_flow("one").await.unwrap();
    assert!(matches!(
        s.get_flow("one").await,
        Err(StoreError::UnknownFlow(_))
    ));
    s.start_flow("one", None, 50).await.unwrap();
}

async fn flow_list_counts_services_and_losses_in_the_window(db: Db) {
    let s = db.open().await;
    s.start_flow("a", None, 100).await.unwrap();
    s.stop_flow(Some("a"), 200).await.unwrap();
    s.start_flow("b", None, 300).await.unwrap(); // left open
    let mut batch = vec![
        exchange(1, 50, 50),   // before a
        exchange(2, 100, 100), // a's first instant
        exchange(3, 150, 150),
        exchange(4, 200, 200), // a's last instant
        exchange(5, 250, 250), // between flows
        exchange(6, 400, 400), // in b
        exchange(7, 410, 410), // in b, ignored
    ];
    batch[1].service = "keystone".into();
    batch[3].service = "swift".into();
    batch[6].ignored = true;
    batch[6].service = "nova".into();
    s.insert_exchanges(&batch).await.unwrap();
    for (at, count, cause) in [
        (99, 7, LossCause::QueueFull),
        (120, 2, LossCause::QueueFull),
        (200, 3, LossCause::WriteFailed),
        (500, 4, LossCause::QueueBytes),
    ] {
        let detail = (cause == LossCause::WriteFailed).then(|| "database or disk is full".into());
        s.record_loss(Loss {
            at,
            count,
            cause,
            detail,
        })
        .await
        .unwrap();
    }
    let flows = s.list_flows().await.unwrap();
    assert_eq!(flows.len(), 2);
    let (a, b) = (&flows[0], &flows[1]);
    assert_eq!(a.flow.name, "a");
    assert_eq!(a.exchanges, 3);
    assert_eq!(a.services, ["keystone", "glance", "swift"]);
    assert_eq!(a.lost, 5);
    assert_eq!(
        s.losses(a.flow.started_at, a.flow.stopped_at.unwrap())
            .await
            .unwrap(),
        [
            LossTally {
                cause: LossCause::QueueFull,
                count: 2,
                detail: None
            },
            LossTally {
                cause: LossCause::WriteFailed,
                count: 3,
                detail: Some("database or disk is full".into())
            },
        ]
    );
    assert_eq!(b.flow.name, "b");
    assert!(b.flow.is_open());
    assert_eq!(b.exchanges, 1);
    assert_eq!(b.services, ["glance"]);
    assert_eq!(b.lost, 4);
}

async fn tokens_upsert_and_expire(db: Db) {
    let s = db.open().await;
    let tok = |sha: &str, user: &str, exp: Option<i64>| TokenOwner {
        token_sha256: sha.into(),
        user_name: user.into(),
        user_id: Some("uid".into()),
        project_id: None,
        expires_at: exp,
    };
    s.put_token(&tok("a", "admin", Some(100))).await.unwrap();
    s.put_token(&tok("b", "demo", None)).await.unwrap();
    s.put_token(&tok("c", "glance", Some(50))).await.unwrap();
    s.put_token(&tok("a", "admin2", Some(300))).await.unwrap();
    let live = s.live_tokens(100).await.unwrap();
    assert_eq!(
        live,
        vec![tok("a", "admin2", Some(300)), tok("b", "demo", None)]
    );
    let live = s.live_tokens(300).await.unwrap();
    assert_eq!(live, vec![tok("b", "demo", None)]);
}

async fn flows_are_listed_by_start_then_name_bytewise(db: Db) {
    let s = db.open().await;
    // Same start: names order bytewise ('-' < '.' < '_' < letters), whatever
    // the database's collation would say.
    for name in ["ab", "a_b", "a.b", "a-b", "0"] {
        s.start_flow(name, None, 100).await.unwrap();
    }
    s.start_flow("z", None, 50).await.unwrap();
    let names: Vec<_> = s
        .list_flows()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.flow.name)
        .collect();
    assert_eq!(names, ["z", "0", "a-b", "a.b", "a_b", "ab"]);
    match s.stop_flow(None, 200).await {
        Err(StoreError::SeveralOpenFlows(names)) => {
            assert_eq!(names, "z, 0, a-b, a.b, a_b, ab")
        }
        other => panic!("{other:?}"),
    }
}

/// A daemon and a CLI command (or daemons on several hosts) hold handles of
/// their own on one database.
async fn handles_share_one_database(db: Db) {
    let daemon = db.open().await;
    let cli = db.open().await;
    cli.start_flow("f", None, 1).await.unwrap();
    daemon.insert_exchanges(&[exchange(1, 5, 5)]).await.unwrap();
    cli.stop_flow(None, 10).await.unwrap();
    assert_eq!(cli.list_flows().await.unwrap()[0].exchanges, 1);
    assert_eq!(daemon.get_flow("f").await.unwrap().stopped_at, Some(10));
}

/// Daemons starting together on a fresh database: one migrates, all write,
/// and listing interleaves them by event number.
async fn several_writers_open_and_insert_at_once(db: Db) {
    const WRITERS: usize = 3;
    const BATCHES: usize = 5;
    const PER_BATCH: usize = 10;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move {
                let s = db.open().await;
                for b in 0..BATCHES {
                    let batch: Vec<_> = (0..PER_BATCH)
                        .map(|i| {
                            // Writer w owns the event numbers ≡ w (mod WRITERS).
                            let n = (b * PER_BATCH + i) * WRITERS + w;
                            let mut e = exchange(n, n as i64, n as i64);
                            e.service = format!("svc{w}");
                            e
                        })
                        .collect();
                    s.insert_exchanges(&batch).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let all = db
        .open()
        .await
        .list_exchanges(&ExchangeFilter::default())
        .await
        .unwrap();
    let total = WRITERS * BATCHES * PER_BATCH;
    assert_eq!(all.len(), total);
    let seqs: Vec<i64> = all.iter().map(|e| e.request_seq).collect();
    assert_eq!(seqs, (0..total as i64).collect::<Vec<_>>());
    assert_eq!(all[4].service, "svc1");
}

/// PostgreSQL's TEXT cannot hold U+0000; it must not cost the batch.
async fn a_nul_in_text_does_not_lose_the_batch(db: Db) {
    let s = db.open().await;
    let mut a = exchange(1, 1, 1);
    a.error = Some(ExchangeError::new(
        ErrorKind::Reset,
        ErrorSide::Upstream,
        "upstream said \0 here",
    ));
    a.reason = Some("O\u{0}K".into());
    let b = exchange(2, 2, 2);
    s.insert_exchanges(&[a, b.clone()]).await.unwrap();
    let all = s.list_exchanges(&ExchangeFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0].error,
        Some(ExchangeError::new(
            ErrorKind::Reset,
            ErrorSide::Upstream,
            "upstream said \u{fffd} here"
        ))
    );
    assert_eq!(all[0].reason.as_deref(), Some("O\u{fffd}K"));
    assert_eq!(all[1], stored(b, all[1].id));
}

async fn two_thousand_exchanges_in_one_batch(db: Db) {
    let s = db.open().await;
    let batch: Vec<_> = (0..2000)
        .map(|n| {
            let mut e = exchange(n, n as i64, n as i64);
            e.response_body = body(&vec![b'x'; 2048]);
            e
        })
        .collect();
    let t = std::time::Instant::now();
    s.insert_exchanges(&batch).await.unwrap();
    let took = t.elapsed();
    eprintln!("2000 exchanges stored in {took:?}");
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    let all = s.list_exchanges(&ExchangeFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2000);
    assert_eq!(all[1999], stored(batch[1999].clone(), 2000));
}

// ---- SQLite only ----

#[tokio::test]
async fn sqlite_file_is_private() {
    let db = Db::sqlite();
    let _store = db.open().await;
    let path = db.url.strip_prefix("sqlite://").unwrap();
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn sqlite_opening_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}/no/such/dir/t.db", dir.path().display());
    let err = store::open(&missing).await.err().unwrap().to_string();
    assert!(
        err.contains("does not exist") && err.contains("no/such/dir"),
        "{err}"
    );
    let a_dir = format!("sqlite:{}", dir.path().display());
    let err = store::open(&a_dir).await.err().unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    std::fs::write(dir.path().join("junk.db"), vec![b'x'; 4096]).unwrap();
    let junk = format!("sqlite://{}/junk.db", dir.path().display());
    let err = store::open(&junk).await.err().unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");
}

// ---- no backend ----

#[tokio::test]
async fn other_schemes_are_refused_without_their_password() {
    let err = store::open("mysql://root:s3cr3t-pw@db/x")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err}");
    assert!(!err.to_string().contains("s3cr3t-pw"), "{err}");
}

// ---- PostgreSQL only ----

/// Asserts an `Open` error in one line that does not show `password`.
fn assert_open_error(err: Option<StoreError>, password: &str, expect: &str) {
    let err = err.expect("opening should fail");
    let text = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{text}");
    assert!(!text.contains('\n'), "{text}");
    assert!(!text.contains(password), "password shown: {text}");
    assert!(
        text.to_lowercase().contains(&expect.to_lowercase()),
        "{text:?} should say {expect:?}"
    );
}

/// Needs no server: nothing listens on the port.
#[tokio::test]
async fn postgres_unreachable_server_fails_clearly() {
    let port = common::free_port();
    let url = format!("postgres://tracer:s3cr3t-pw@127.0.0.1:{port}/tracer");
    let t = std::time::Instant::now();
    assert_open_error(store::open(&url).await.err(), "s3cr3t-pw", "refused");
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    let err = store::open(&url).await.err().unwrap().to_string();
    assert!(err.contains("postgres://tracer:***@127.0.0.1"), "{err}");
    let bad = "postgresql://tracer:s3cr3t-pw@127.0.0.1:notaport/tracer";
    assert_open_error(store::open(bad).await.err(), "s3cr3t-pw", "port");
}

#[tokio::test]
async fn postgres_wrong_password_or_database_fails_clearly() {
    let Some(server) = db::postgres_url("postgres_wrong_password_or_database_fails_clearly") else {
        return;
    };
    let mut url = url::Url::parse(&server).unwrap();
    url.set_password(Some("s3cr3t-pw")).unwrap();
    assert_open_error(
        store::open(url.as_str()).await.err(),
        "s3cr3t-pw",
        "password authentication failed",
    );
    let mut url = url::Url::parse(&server).unwrap();
    url.set_path("/no_such_database_here");
    // The right password may well be the user name: look for it in place.
    let password = format!(":{}@", url.password().unwrap_or("\u{0}"));
    assert_open_error(
        store::open(url.as_str()).await.err(),
        &password,
        "does not exist",
    );
}

/// `postgresql://` is the same as `postgres://`, and a schema chosen with
/// `options=-c search_path=…` keeps tracer's tables apart from others'.
#[tokio::test]
async fn postgres_scheme_alias_and_schema_option() {
    let Some(schema) = PgSchema::create("postgres_scheme_alias_and_schema_option").await else {
        return;
    };
    let url = schema.url().replacen("postgres://", "postgresql://", 1);
    let s = store::open(&url).await.unwrap();
    s.start_flow("x", None, 1).await.unwrap();
    let again = store::open(&schema.url()).await.unwrap();
    assert_eq!(again.get_flow("x").await.unwrap().started_at, 1);
    schema.drop().await;
}

/// Remote databases want TLS: `sslmode=require` must work (the test server
/// of scripts/setup-postgres.sh has a self-signed certificate).
#[tokio::test]
async fn postgres_over_tls() {
    let Some(schema) = PgSchema::create("postgres_over_tls").await else {
        return;
    };
    let mut url = url::Url::parse(&schema.url()).unwrap();
    url.query_pairs_mut().append_pair("sslmode", "require");
    let s = store::open(url.as_str())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.insert_exchanges(&[exchange(1, 1, 1)]).await.unwrap();
    assert_eq!(
        s.get_exchange("1").await.unwrap().unwrap().uuid,
        exchange(1, 1, 1).uuid
    );
    schema.drop().await;
}

/// The WAL is bounded: after writing several times its old 16 MiB
/// checkpoint size, the `-wal` file stays near the 4 MiB bound instead of
/// keeping its high-water size (which a disk-full spell would then need).
#[tokio::test]
async fn sqlite_wal_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mut n = 0;
    for _ in 0..48 {
        let batch: Vec<Exchange> = (0..32)
            .map(|_| {
                n += 1;
                let mut x = exchange(n, n as i64, n as i64);
                x.response_body = BodyRecord {
                    kept: vec![b'z'; 32 * 1024],
                    size: 32 * 1024,
                    sha256: String::new(),
                };
                x
            })
            .collect();
        s.insert_exchanges(&batch).await.unwrap();
    }
    let wal = std::fs::metadata(dir.path().join("t.db-wal"))
        .unwrap()
        .len();
    assert!(
        wal <= 6 << 20,
        "the WAL is {wal} bytes after 48 MiB of writes"
    );
}
