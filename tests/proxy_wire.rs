//! What crosses the proxy, checked byte for byte on real sockets: what the
//! upstream received, what the client received, and what the database holds.

mod common;

use common::*;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracer::model::{header_str, CallerSource};

const KEYSTONE_VERSIONS: &str = r#"{"versions": {"values": [{"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z", "links": [{"rel": "self", "href": "http://127.0.0.1/identity/v3/"}]}]}}"#;

fn keystone() -> Script {
    Arc::new(|_req| {
        response(
            "300 MULTIPLE CHOICES",
            &[
                ("Content-Type", "application/json"),
                ("Location", "http://127.0.0.1/identity/v3/"),
                ("Vary", "X-Auth-Token"),
                ("x-openstack-request-id", "req-7c5f10e2"),
            ],
            KEYSTONE_VERSIONS.as_bytes(),
        )
    })
}

fn is_request_id(s: &str) -> bool {
    s.len() == 32
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

#[tokio::test]
async fn keystone_exchange_is_forwarded_and_stored_exactly() {
    let upstream = Upstream::start(keystone()).await;
    let t = Tracer::start(&[("keystone", upstream.url("/identity"))], "");
    let request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nUser-Agent: openstacksdk/0.101.0 keystoneauth1/5.0.0\r\naccept-encoding: gzip, deflate\r\nAccept: application/json\r\nX-Dup: one\r\nX-Dup: two\r\nConnection: keep-alive\r\n\r\n";
    let (head, body) = raw_roundtrip(t.addr("keystone"), request).await;

    // Upstream got the client's bytes, the prefix joined, and the two stamps last.
    let got = upstream.received();
    assert_eq!(got.len(), 1);
    let raw = String::from_utf8(got[0].raw.clone()).unwrap();
    let stamped_id = header_value(&got[0].headers, "X-Requestshook-Request-Id");
    assert!(is_request_id(&stamped_id), "{raw}");
    let expected = format!(
        "GET /identity/ HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nUser-Agent: openstacksdk/0.101.0 keystoneauth1/5.0.0\r\naccept-encoding: gzip, deflate\r\nAccept: application/json\r\nX-Dup: one\r\nX-Dup: two\r\nConnection: keep-alive\r\nX-Requestshook-Request-Id: {stamped_id}\r\nX-Requestshook-Request-From: openstack\r\n\r\n"
    );
    assert_eq!(raw, expected);

    // Client got the upstream's head unchanged (reason phrase, case, order) plus the stamps.
    let head = String::from_utf8(head).unwrap();
    let expected_head = format!(
        "HTTP/1.1 300 MULTIPLE CHOICES\r\nContent-Type: application/json\r\nLocation: http://127.0.0.1/identity/v3/\r\nVary: X-Auth-Token\r\nx-openstack-request-id: req-7c5f10e2\r\nContent-Length: {}\r\nX-Requestshook-Request-Id: {stamped_id}\r\nX-Requestshook-Request-From: openstack\r\n\r\n",
        KEYSTONE_VERSIONS.len()
    );
    assert_eq!(head, expected_head);
    assert_eq!(body, KEYSTONE_VERSIONS.as_bytes());

    // The database holds exactly that.
    let stored = wait_for_exchanges(&t, 1).await;
    assert_eq!(stored.len(), 1);
    let ex = &stored[0];
    assert_eq!((ex.method.as_str(), ex.target.as_str()), ("GET", "/"));
    assert_eq!(ex.upstream_url, format!("{}/", upstream.url("/identity")));
    assert_eq!(ex.service, "keystone");
    assert_eq!(ex.request_id, stamped_id);
    assert_eq!(ex.status, Some(300));
    assert_eq!(ex.reason.as_deref(), Some("MULTIPLE CHOICES"));
    // This test binary is in no process table: the SDK's User-Agent tells.
    assert_eq!(
        (ex.caller.as_str(), ex.caller_source),
        ("openstack", CallerSource::UserAgent)
    );
    let names: Vec<&str> = ex.request_headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Host",
            "User-Agent",
            "accept-encoding",
            "Accept",
            "X-Dup",
            "X-Dup",
            "Connection",
            "X-Requestshook-Request-Id",
            "X-Requestshook-Request-From"
        ]
    );
    let resp_names: Vec<&str> = ex
        .response_headers
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(
        resp_names,
        [
            "Content-Type",
            "Location",
            "Vary",
            "x-openstack-request-id",
            "Content-Length",
            "X-Requestshook-Request-Id",
            "X-Requestshook-Request-From"
        ]
    );
    assert_eq!(ex.response_body.kept, KEYSTONE_VERSIONS.as_bytes());
    assert_eq!(ex.response_body.size, KEYSTONE_VERSIONS.len() as u64);
    assert!(ex.request_body.is_empty());
    assert!(ex.response_seq.unwrap() > ex.request_seq);
    assert!(ex.error.is_none());
}

fn header_value(headers: &[(String, Vec<u8>)], name: &str) -> String {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| String::from_utf8_lossy(v).to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn existing_stamps_are_kept_and_not_duplicated() {
    let upstream = Upstream::start(keystone()).await;
    let t = Tracer::start(&[("keystone", upstream.url(""))], "");
    let request = b"GET /v3 HTTP/1.1\r\nHost: h\r\nX-Requestshook-Request-Id: fbb232c41ed24c67a1bdcf571f97f425\r\nX-Requestshook-Request-From: glance-api\r\nConnection: close\r\n\r\n";
    let (head, _) = raw_roundtrip(t.addr("keystone"), request).await;
    let got = upstream.received();
    assert_eq!(got[0].raw.len(), request.len(), "forwarded unchanged");
    let head = String::from_utf8(head).unwrap();
    assert!(head.contains("X-Requestshook-Request-Id: fbb232c41ed24c67a1bdcf571f97f425\r\nX-Requestshook-Request-From: glance-api\r\n\r\n"), "{head}");
    let ex = &wait_for_exchanges(&t, 1).await[0];
    assert_eq!(
        (ex.caller.as_str(), ex.caller_source),
        ("glance-api", CallerSource::Header)
    );
    assert_eq!(ex.request_id, "fbb232c41ed24c67a1bdcf571f97f425");
}

#[tokio::test]
async fn keep_alive_chunked_both_ways_and_pipelined() {
    let script: Script = Arc::new(|req| {
        let mut out = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let payload = format!("{{\"got\": {}}}", req.body.len());
        out.extend_from_slice(format!("{:x}\r\n{payload}\r\n0\r\n\r\n", payload.len()).as_bytes());
        out
    });
    let upstream = Upstream::start(script).await;
    let t = Tracer::start(&[("glance-api", upstream.url(""))], "");
    let mut stream = TcpStream::connect(t.addr("glance-api")).await.unwrap();
    // Two requests written at once: the second waits in the buffer (pipelining).
    let first = b"PUT /v2/images/x/file HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n5\r\nQFI\xfb\x00\r\n3\r\nabc\r\n0\r\n\r\n";
    let second = b"GET /v2/images HTTP/1.1\r\nHost: h\r\n\r\n";
    stream
        .write_all(&[&first[..], &second[..]].concat())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let (h1, b1) = read_response(&mut stream, &mut buf, "PUT").await;
    let (h2, b2) = read_response(&mut stream, &mut buf, "GET").await;
    assert!(h1.starts_with(b"HTTP/1.1 201 Created\r\n"));
    assert_eq!(b1, b"{\"got\": 8}");
    assert_eq!(b2, b"{\"got\": 0}");
    assert!(String::from_utf8_lossy(&h2).contains("Transfer-Encoding: chunked"));
    assert_eq!(
        *upstream.connections.lock().unwrap(),
        1,
        "one upstream connection, kept alive"
    );
    // The chunk framing crossed unchanged.
    let got = upstream.received();
    assert!(got[0]
        .raw
        .ends_with(b"5\r\nQFI\xfb\x00\r\n3\r\nabc\r\n0\r\n\r\n"));
    let stored = wait_for_exchanges(&t, 2).await;
    assert_eq!(
        stored[0].request_body.kept, b"QFI\xfb\x00abc",
        "payload stored without chunk framing"
    );
    assert_eq!(stored[0].request_body.size, 8);
    assert_eq!(stored[0].response_body.kept, b"{\"got\": 8}");
    assert!(stored[0].request_seq < stored[0].response_seq.unwrap());
    assert!(
        stored[0].response_seq.unwrap() < stored[1].request_seq
            || stored[1].request_seq > stored[0].request_seq
    );
}

#[tokio::test]
async fn expect_100_continue_passes_through() {
    let script: Script =
        Arc::new(|req| response("201 Created", &[], format!("{}", req.body.len()).as_bytes()));
    let upstream = Upstream::start_with(script, true).await;
    let t = Tracer::start(&[("swift-proxy-server", upstream.url(""))], "");
    let mut stream = TcpStream::connect(t.addr("swift-proxy-server"))
        .await
        .unwrap();
    stream
        .write_all(b"PUT /v1/AUTH_x/c/o HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    // Wait for the interim response before sending the body, as curl does.
    let mut interim = vec![0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"data").await.unwrap();
    let mut buf = Vec::new();
    let (head, body) = read_response(&mut stream, &mut buf, "PUT").await;
    assert!(head.starts_with(b"HTTP/1.1 201 Created"));
    assert_eq!(body, b"4");
    let ex = &wait_for_exchanges(&t, 1).await[0];
    assert_eq!((ex.status, ex.request_body.size), (Some(201), 4));
}

#[tokio::test]
async fn head_204_304_have_no_body() {
    let script: Script = Arc::new(|req| match req.method.as_str() {
        "HEAD" => b"HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n".to_vec(),
        "DELETE" => b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".to_vec(),
        _ => b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n".to_vec(),
    });
    let upstream = Upstream::start(script).await;
    let t = Tracer::start(&[("swift-proxy-server", upstream.url(""))], "");
    let mut stream = TcpStream::connect(t.addr("swift-proxy-server"))
        .await
        .unwrap();
    let mut buf = Vec::new();
    for method in ["HEAD", "DELETE", "GET"] {
        stream
            .write_all(format!("{method} /v1/AUTH_a/glance HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let (head, body) = read_response(&mut stream, &mut buf, method).await;
        assert!(
            body.is_empty(),
            "{method}: {}",
            String::from_utf8_lossy(&head)
        );
    }
    let stored = wait_for_exchanges(&t, 3).await;
    let statuses: Vec<_> = stored.iter().map(|e| e.status.unwrap()).collect();
    assert_eq!(statuses, [200, 204, 304]);
}

#[tokio::test]
async fn refused_upstream_gives_502_when_explaining_and_is_stored() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let t = Tracer::start(
        &[("nova-api", dead)],
        "[proxy]\nupstream_errors = \"explain\"\n",
    );
    let (head, body) = raw_roundtrip(
        t.addr("nova-api"),
        b"GET /v2.1/servers HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    .await;
    assert!(
        head.starts_with(b"HTTP/1.1 502 Bad Gateway\r\n"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    assert!(String::from_utf8_lossy(&body).starts_with("tracer: upstream of nova-api"));
    let ex = &wait_for_exchanges(&t, 1).await[0];
    assert_eq!(ex.status, Some(502));
    assert!(
        ex.error_message().unwrap().contains("refused"),
        "{:?}",
        ex.error
    );
    assert!(header_str(&ex.response_headers, "X-Requestshook-Request-Id").is_some());
}

#[tokio::test]
async fn silent_upstream_gives_504_when_explaining() {
    // Accepts, reads, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut sink = vec![0u8; 1024];
        while s.read(&mut sink).await.map(|n| n > 0).unwrap_or(false) {}
    });
    let t = Tracer::start(
        &[("trove-api", format!("http://{addr}"))],
        "[proxy]\nresponse_timeout_secs = 1\nupstream_errors = \"explain\"\n",
    );
    let (head, _) = raw_roundtrip(
        t.addr("trove-api"),
        b"GET /v1.0/x/instances HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    .await;
    assert!(head.starts_with(b"HTTP/1.1 504 Gateway Timeout\r\n"));
    let ex = &wait_for_exchanges(&t, 1).await[0];
    assert_eq!(ex.status, Some(504));
    assert!(ex.error.is_some());
}

#[tokio::test]
async fn malformed_absolute_form_and_connect_are_refused_and_not_forwarded() {
    let upstream = Upstream::start(keystone()).await;
    let t = Tracer::start(&[("keystone", upstream.url(""))], "");
    let cases: [(&[u8], &str); 4] = [
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", "HTTP/1.1 400 "),
        (b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", "HTTP/1.1 400 "),
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "HTTP/1.1 405 "),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 400 "),
    ];
    for (request, status) in cases {
        let answer = raw_until_close(t.addr("keystone"), request).await;
        assert!(
            answer.starts_with(status.as_bytes()),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert_eq!(upstream.received().len(), 0, "nothing forwarded");
    assert_eq!(*upstream.connections.lock().unwrap(), 0);
    let stored = wait_for_exchanges(&t, 4).await;
    assert_eq!(stored.len(), 4, "refusals are stored too");
    assert!(stored.iter().all(|e| e.error.is_some()));
}

#[tokio::test]
async fn client_gone_mid_upload_is_stored_and_upstream_closed() {
    let upstream = Upstream::start(Arc::new(|_| response("201 Created", &[], b""))).await;
    let t = Tracer::start(&[("glance-api", upstream.url(""))], "");
    {
        let mut stream = TcpStream::connect(t.addr("glance-api")).await.unwrap();
        stream
            .write_all(
                b"PUT /v2/images/i/file HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n",
            )
            .await
            .unwrap();
        stream.write_all(&[7u8; 1000]).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    } // dropped: the client goes away
    let stored = wait_for_exchanges(&t, 1).await;
    let ex = &stored[0];
    assert!(
        ex.error_message().unwrap().contains("client closed"),
        "{:?}",
        ex.error
    );
    assert_eq!(ex.request_body.size, 1000);
    assert_eq!(ex.status, None);
    assert_eq!(
        upstream.received().len(),
        0,
        "the upstream never saw a whole request"
    );
}

#[tokio::test]
async fn large_body_streams_with_prefix_kept_and_full_hash() {
    use sha2::{Digest, Sha256};
    let upstream = Upstream::start(Arc::new(|req| {
        response(
            "201 Created",
            &[],
            format!("{:x}", Sha256::digest(&req.body)).as_bytes(),
        )
    }))
    .await;
    let t = Tracer::start(
        &[("swift-proxy-server", upstream.url(""))],
        "[storage]\nmax_body_bytes = 1024\n",
    );
    let body: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut request = format!(
        "PUT /v1/AUTH_a/glance/img HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let (head, answer) = raw_roundtrip(t.addr("swift-proxy-server"), &request).await;
    assert!(head.starts_with(b"HTTP/1.1 201"));
    let digest = format!("{:x}", Sha256::digest(&body));
    assert_eq!(answer, digest.as_bytes(), "upstream got every byte");
    let ex = &wait_for_exchanges(&t, 1).await[0];
    assert_eq!(ex.request_body.size, body.len() as u64);
    assert_eq!(ex.request_body.kept, &body[..1024]);
    assert_eq!(ex.request_body.sha256, digest);
}

#[tokio::test]
async fn https_upstream_and_tls_listener() {
    use tokio_rustls::rustls;
    // A CA, a server certificate for 127.0.0.1/localhost signed by it.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ca_path, cert_path, key_path) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    // A TLS stand-in upstream.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config);
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut tls = acceptor.accept(tcp).await.unwrap();
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = tls.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                tls.write_all(&response("200 OK", &[], b"secure"))
                    .await
                    .unwrap();
                tls.shutdown().await.ok();
            });
        }
    });
    let extra = format!("[proxy]\nca_file = \"{}\"\n", ca_path.display());
    let mut t = Tracer::start(&[("keystone", format!("https://localhost:{port}"))], &extra);
    let (head, body) = raw_roundtrip(
        t.addr("keystone"),
        b"GET /v3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        head.starts_with(b"HTTP/1.1 200 OK"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    assert_eq!(body, b"secure");
    assert_eq!(t.terminate().code(), Some(0));

    // The listener side with a certificate: a TLS client through tracer.
    let upstream = Upstream::start(keystone()).await;
    let tls_port = free_port();
    let config = format!(
        "[[service]]\nname = \"keystone\"\nlisten = \"127.0.0.1:{tls_port}\"\nupstream = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        upstream.url(""),
        cert_path.display(),
        key_path.display()
    );
    let t = Tracer::start(&[], &config);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let tcp = loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", tls_port)).await {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let mut tls = connector
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    assert!(answer.starts_with(b"HTTP/1.1 300 MULTIPLE CHOICES\r\n"));
    let stored = wait_for_exchanges(&t, 1).await;
    assert_eq!(stored[0].status, Some(300));
}
