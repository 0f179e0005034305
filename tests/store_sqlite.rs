//! The SQLite store on a real file in a temporary directory.

use std::os::unix::fs::PermissionsExt;
use tracer::model::{BodyRecord, CallerSource, Exchange, HeaderField, RecordedCommand};
use tracer::store::{self, ExchangeFilter, Loss, SharedStore, StoreError, TokenOwner};

async fn open(dir: &tempfile::TempDir) -> SharedStore {
    store::open(&format!("sqlite://{}/t.db", dir.path().display()))
        .await
        .unwrap()
}

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

#[tokio::test]
async fn exchanges_round_trip_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir).await;
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

#[tokio::test]
async fn a_retried_batch_is_not_stored_twice() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir).await;
    let batch: Vec<_> = (0..3).map(|n| exchange(n, n as i64, n as i64)).collect();
    s.insert_exchanges(&batch).await.unwrap();
    s.insert_exchanges(&batch).await.unwrap();
    s.insert_exchanges(&[]).await.unwrap();
    let all = s.list_exchanges(&ExchangeFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
}

#[tokio::test]
async fn limit_keeps_the_newest_oldest_first_and_filters_apply() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir).await;
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

#[tokio::test]
async fn flow_rules() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir).await;
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

#[tokio::test]
async fn flow_list_counts_services_and_losses_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir).await;
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
    for (at, count) in [(99, 7), (120, 2), (200, 3), (500, 4)] {
        s.record_loss(Loss { at, count }).await.unwrap();
    }
    let flows = s.list_flows().await.unwrap();
    assert_eq!(flows.len(), 2);
    let (a, b) = (&flows[0], &flows[1]);
    assert_eq!(a.flow.name, "a");
    assert_eq!(a.exchanges, 3);
    assert_eq!(a.services, ["keystone", "glance", "swift"]);
    assert_eq!(a.lost, 5);
    assert_eq!(b.flow.name, "b");
    assert!(b.flow.is_open());
    assert_eq!(b.exchanges, 1);
    assert_eq!(b.services, ["glance"]);
    assert_eq!(b.lost, 4);
}

#[tokio::test]
async fn tokens_upsert_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir).await;
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

#[tokio::test]
async fn file_is_private_and_shared_between_handles() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = open(&dir).await;
    let cli = open(&dir).await; // a second process's view of the same file
    let mode = std::fs::metadata(dir.path().join("t.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    cli.start_flow("f", None, 1).await.unwrap();
    daemon.insert_exchanges(&[exchange(1, 5, 5)]).await.unwrap();
    cli.stop_flow(None, 10).await.unwrap();
    assert_eq!(cli.list_flows().await.unwrap()[0].exchanges, 1);
}

#[tokio::test]
async fn opening_fails_clearly() {
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
    assert!(matches!(
        store::open("mysql://x").await.err().unwrap(),
        StoreError::UnsupportedUrl(_)
    ));
}

#[tokio::test]
async fn two_thousand_exchanges_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir).await;
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
