//! The order of evidence, one rule at a time.

use super::*;
use crate::config::Config;
use crate::model::BodyRecord;
use crate::model::{Flow, FlowSummary, RecordedCommand};
use crate::store::{ExchangeFilter, Loss, Store};
use std::sync::Mutex;

pub(super) const ADMIN: &str = "gAAAAABjrkD9cqBlaLtF1_admin";
pub(super) const GLANCE: &str = "gAAAAABjrkD9tCni_glance";
pub(super) const SWIFT: &str = "gAAAAABjrjJGaF5Q_swift";
pub(super) const SDK_UA: &str =
    "openstacksdk/0.101.0 keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10";

pub(super) fn t(s: &str) -> Micros {
    crate::timefmt::parse_user_time(s, 0).unwrap()
}

pub(super) fn attributor(toml: &str) -> Attributor {
    let config = Config::parse(toml).unwrap();
    config.validate().unwrap();
    Attributor::new(&config).with_clock(|| t("2022-12-30T01:38:06Z"))
}

pub(super) fn h(pairs: &[(&str, &str)]) -> Vec<HeaderField> {
    pairs
        .iter()
        .map(|(k, v)| HeaderField::new(*k, *v))
        .collect()
}

pub(super) fn view<'a>(
    service: &'a str,
    method: &'a str,
    target: &'a str,
    headers: &'a [HeaderField],
) -> RequestView<'a> {
    RequestView {
        service,
        peer: "127.0.0.1:40000".parse().unwrap(),
        local: "127.0.0.1:15000".parse().unwrap(),
        method,
        target,
        headers,
    }
}

pub(super) fn token_response(user: &str, token: &str) -> Exchange {
    let body = format!(
        r#"{{"token": {{"methods": ["password"], "user": {{"domain": {{"id": "default", "name": "Default"}}, "id": "id-{user}", "name": "{user}", "password_expires_at": null}}, "expires_at": "2022-12-30T04:38:05.000000Z", "issued_at": "2022-12-30T01:38:05.000000Z", "project": {{"id": "p1", "name": "service"}}, "catalog": []}}}}"#
    );
    Exchange {
        id: 0,
        uuid: String::new(),
        request_id: String::new(),
        service: "keystone".into(),
        caller: "x".into(),
        caller_source: CallerSource::Unknown,
        client_addr: "127.0.0.1:40000".into(),
        upstream_url: "http://127.0.0.1/identity/v3/auth/tokens".into(),
        method: "POST".into(),
        target: "/identity/v3/auth/tokens".into(),
        request_version: "HTTP/1.1".into(),
        request_headers: vec![],
        request_body: BodyRecord::default(),
        status: Some(201),
        reason: Some("CREATED".into()),
        response_version: Some("HTTP/1.1".into()),
        response_headers: h(&[
            ("Content-Type", "application/json"),
            ("X-Subject-Token", token),
        ]),
        response_body: BodyRecord {
            kept: body.clone().into_bytes(),
            size: body.len() as u64,
            sha256: String::new(),
        },
        request_seq: 1,
        response_seq: Some(2),
        started_at: 0,
        response_at: None,
        finished_at: 0,
        error: None,
        ignored: false,
    }
}

pub(super) fn decide(
    a: &Attributor,
    conn: &ConnectionCaller,
    req: &RequestView<'_>,
    body: Option<&[u8]>,
) -> (String, CallerSource) {
    let d = a.decide(conn, req, body);
    (d.caller, d.source)
}

pub(super) const NO_PROCESS: ConnectionCaller = ConnectionCaller {
    process: None,
    pid: None,
    program: None,
};

#[test]
fn header_wins_over_everything() {
    let a = attributor("[[caller]]\nname = \"ruled\"\nsource = \"127.0.0.0/8\"\n");
    let hs = h(&[
        ("X-Requestshook-Request-From", "nova-compute"),
        ("User-Agent", SDK_UA),
    ]);
    let conn = ConnectionCaller {
        process: Some("glance-api".into()),
        ..Default::default()
    };
    assert_eq!(
        decide(
            &a,
            &conn,
            &view("glance-api", "GET", "/v2/images", &hs),
            None
        ),
        ("nova-compute".into(), CallerSource::Header)
    );
    // An empty header says nothing.
    let hs = h(&[("X-Requestshook-Request-From", " ")]);
    assert_eq!(
        decide(&a, &conn, &view("glance-api", "GET", "/", &hs), None).1,
        CallerSource::Rule
    );
}

#[test]
fn rules_win_over_process_token_and_user_agent() {
    let a = attributor(
        r#"
[[service]]
name = "trove"
listen = "127.0.0.1:18779"
upstream = "http://127.0.0.1:8779"
[[caller]]
name = "trove-client"
user_agent = "^go-troveclient"
listener = "trove"
"#,
    );
    a.learn(&token_response("glance", GLANCE));
    let conn = ConnectionCaller {
        process: Some("openstack".into()),
        ..Default::default()
    };
    let hs = h(&[
        ("User-Agent", "go-troveclient/0.2"),
        ("X-Auth-Token", GLANCE),
    ]);
    assert_eq!(
        decide(
            &a,
            &conn,
            &view("trove", "GET", "/v1.0/p/instances", &hs),
            None
        ),
        ("trove-client".into(), CallerSource::Rule)
    );
    // Another listener: the rule does not apply; the process does.
    assert_eq!(
        decide(&a, &conn, &view("keystone", "GET", "/v3", &hs), None),
        ("openstack".into(), CallerSource::Process)
    );
}

#[test]
fn process_wins_over_tokens_unless_forwarded() {
    let a = attributor("");
    a.learn(&token_response("admin", ADMIN));
    let conn = ConnectionCaller {
        process: Some("nova-compute".into()),
        pid: Some(42),
        program: Some("nova-compute".into()),
    };
    // nova-compute downloads an image with the user's token: the token alone would say the CLI.
    let hs = h(&[
        ("User-Agent", "python-glanceclient"),
        ("X-Auth-Token", ADMIN),
    ]);
    let req = view("glance-api", "GET", "/v2/images/x/file", &hs);
    assert_eq!(
        decide(&a, &conn, &req, None),
        ("nova-compute".into(), CallerSource::Process)
    );
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("openstack".into(), CallerSource::Token)
    );
    // Through a forwarding proxy the socket's owner is that proxy.
    let hs = h(&[("X-Auth-Token", ADMIN), ("X-Forwarded-For", "10.0.0.1")]);
    let req = view("glance-api", "GET", "/v2/images", &hs);
    assert_eq!(
        decide(&a, &conn, &req, None),
        ("openstack".into(), CallerSource::Token)
    );
}

#[test]
fn token_owners_map_service_users_and_people() {
    let a = attributor("[attribution]\ndefault_user_caller = \"cli\"\n[attribution.service_users]\nsvc-heat = \"heat-api\"\n");
    for (user, token) in [("admin", ADMIN), ("glance", GLANCE), ("svc-heat", SWIFT)] {
        a.learn(&token_response(user, token));
    }
    assert_eq!(a.known_tokens(), 3);
    let cases = [
        (ADMIN, None, ("cli", CallerSource::Token)),
        (ADMIN, Some(SDK_UA), ("cli", CallerSource::Token)),
        // The token says "a person"; the User-Agent says which client.
        (
            ADMIN,
            Some("go-troveclient/1"),
            ("trove-client", CallerSource::UserAgent),
        ),
        // The CLI keeps the configured name.
        (
            ADMIN,
            Some("python-troveclient"),
            ("cli", CallerSource::Token),
        ),
        (
            GLANCE,
            Some("python-swiftclient-4.1.0"),
            ("glance-api", CallerSource::Token),
        ),
        // A service user's token is definitive, whatever the User-Agent.
        (GLANCE, Some(SDK_UA), ("glance-api", CallerSource::Token)),
        (SWIFT, None, ("heat-api", CallerSource::Token)),
    ];
    for (token, ua, want) in cases {
        let mut hs = h(&[("X-Auth-Token", token)]);
        if let Some(ua) = ua {
            hs.push(HeaderField::new("User-Agent", ua));
        }
        let got = decide(
            &a,
            &NO_PROCESS,
            &view("swift", "PUT", "/v1/AUTH_p/c/o", &hs),
            None,
        );
        assert_eq!(got, (want.0.to_string(), want.1), "{token} {ua:?}");
    }
}

#[test]
fn expired_tokens_are_forgotten() {
    let now = Arc::new(Mutex::new(t("2022-12-30T01:38:06Z")));
    let clock = now.clone();
    let a = Attributor::new(&Config::default()).with_clock(move || *clock.lock().unwrap());
    a.learn(&token_response("glance", GLANCE));
    let hs = h(&[("X-Auth-Token", GLANCE)]);
    let req = view("swift", "HEAD", "/v1/AUTH_p/glance", &hs);
    assert_eq!(decide(&a, &NO_PROCESS, &req, None).1, CallerSource::Token);
    *now.lock().unwrap() = t("2022-12-30T04:38:07Z");
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("unknown".into(), CallerSource::Unknown)
    );
    // A validation answer about a token that already expired teaches nothing.
    let mut validation = token_response("nova", ADMIN);
    validation.method = "GET".into();
    validation.status = Some(200);
    a.learn(&validation);
    let hs = h(&[("X-Auth-Token", ADMIN)]);
    assert_eq!(
        decide(&a, &NO_PROCESS, &view("glance-api", "GET", "/", &hs), None).1,
        CallerSource::Unknown
    );
}

#[test]
fn auth_request_bodies_name_the_service() {
    let a = attributor("");
    let hs = h(&[
        (
            "User-Agent",
            "uwsgi keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10",
        ),
        ("Content-Type", "application/json"),
    ]);
    let req = view("keystone", "POST", "/identity/v3/auth/tokens", &hs);
    assert_eq!(a.wants_body(&req), Some(AUTH_BODY_MAX));
    let body = br#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"password": "asdf", "name": "glance-swift", "domain": {"id": "default"}}}}, "scope": {"project": {"name": "service", "domain": {"id": "default"}}}}}"#;
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, Some(body)),
        ("glance-api".into(), CallerSource::Token)
    );
    // Without the body: nothing tells.
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("unknown".into(), CallerSource::Unknown)
    );
    // A person's password: the CLI.
    let hs = h(&[("User-Agent", SDK_UA)]);
    let req = view("keystone", "POST", "/v3/auth/tokens", &hs);
    let body = br#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"password": "asdf", "name": "admin", "domain": {"id": "default"}}}}}}"#;
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, Some(body)),
        ("openstack".into(), CallerSource::Token)
    );
    // Users named by id or by a token to rescope are known once learned.
    a.learn(&token_response("trove", SWIFT));
    let by_id = br#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "id-trove", "password": "x"}}}}}"#;
    assert_eq!(decide(&a, &NO_PROCESS, &req, Some(by_id)).0, "trove-api");
    let by_token = format!(
        r#"{{"auth": {{"identity": {{"methods": ["token"], "token": {{"id": "{SWIFT}"}}}}}}}}"#
    );
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, Some(by_token.as_bytes())).0,
        "trove-api"
    );
    // Bodies are only wanted where they tell something.
    assert_eq!(
        a.wants_body(&view("glance-api", "POST", "/v2/images", &hs)),
        None
    );
    let stamped = h(&[("X-Requestshook-Request-From", "openstack")]);
    assert_eq!(
        a.wants_body(&view("keystone", "POST", "/v3/auth/tokens", &stamped)),
        None
    );
}

#[test]
fn validation_belongs_to_the_service_the_call_is_in_flight_to() {
    let a = attributor("");
    let validate = h(&[
        ("User-Agent", "python-keystoneclient"),
        ("X-Subject-Token", ADMIN),
        ("X-Auth-Token", GLANCE),
    ]);
    let req = view("keystone", "GET", "/identity/v3/auth/tokens", &validate);
    // Nothing in flight and the validator's token unknown: nothing tells.
    assert_eq!(decide(&a, &NO_PROCESS, &req, None).1, CallerSource::Unknown);
    {
        let _call = a.in_flight("glance-api", &h(&[("X-Auth-Token", ADMIN)]));
        assert_eq!(
            decide(&a, &NO_PROCESS, &req, None),
            ("glance-api".into(), CallerSource::SubjectToken)
        );
        let head = view("keystone", "HEAD", "/v3/auth/tokens", &validate);
        assert_eq!(
            decide(&a, &NO_PROCESS, &head, None).1,
            CallerSource::SubjectToken
        );
        // Not a validation: a POST, or another path.
        assert_ne!(
            decide(
                &a,
                &NO_PROCESS,
                &view("keystone", "GET", "/v3/users", &validate),
                None
            )
            .1,
            CallerSource::SubjectToken
        );
    }
    // The call finished: the validation is no longer explained by it.
    assert_eq!(decide(&a, &NO_PROCESS, &req, None).1, CallerSource::Unknown);
    // The validator's own token, once known, tells too (and is no subject-token).
    a.learn(&token_response("glance", GLANCE));
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("glance-api".into(), CallerSource::Token)
    );
}

#[test]
fn validation_with_the_token_in_flight_twice() {
    let a = attributor("");
    a.learn(&token_response("swift", SWIFT));
    let _to_glance = a.in_flight("glance-api", &h(&[("X-Auth-Token", ADMIN)]));
    let _to_swift = a.in_flight("swift-proxy-server", &h(&[("X-Auth-Token", ADMIN)]));
    let _to_trove = a.in_flight("trove-api", &h(&[("X-Auth-Token", ADMIN)]));
    // swift's own token says it is swift validating.
    let hs = h(&[("X-Subject-Token", ADMIN), ("X-Auth-Token", SWIFT)]);
    assert_eq!(
        decide(
            &a,
            &NO_PROCESS,
            &view("keystone", "GET", "/v3/auth/tokens", &hs),
            None
        )
        .0,
        "swift-proxy-server"
    );
    // Unknown validator: the latest call is the one waiting for it.
    let hs = h(&[("X-Subject-Token", ADMIN), ("X-Auth-Token", GLANCE)]);
    assert_eq!(
        decide(
            &a,
            &NO_PROCESS,
            &view("keystone", "GET", "/v3/auth/tokens", &hs),
            None
        )
        .0,
        "trove-api"
    );
}

#[test]
fn a_users_token_passed_on_belongs_to_the_service_passing_it() {
    let a = attributor("");
    a.learn(&token_response("admin", ADMIN));
    let user_call = h(&[("X-Auth-Token", ADMIN), ("User-Agent", SDK_UA)]);
    let call = a.in_flight("trove-api", &user_call);
    let hs = h(&[("X-Auth-Token", ADMIN), ("User-Agent", "python-novaclient")]);
    let req = view("nova-api", "GET", "/v2.1/servers/detail", &hs);
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("trove-api".into(), CallerSource::Token)
    );
    // The same service seeing its own call's token is not a hand-over.
    let same = view("trove-api", "GET", "/v1.0/p/instances", &hs);
    assert_eq!(decide(&a, &NO_PROCESS, &same, None).0, "openstack");
    drop(call);
    // No call of the user is open any more and a library sends the token:
    // the work trove-api accepted goes on in its worker.
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("trove-taskmanager".into(), CallerSource::Token)
    );
    // The CLI's own User-Agent: the CLI.
    let cli = h(&[("X-Auth-Token", ADMIN), ("User-Agent", SDK_UA)]);
    let req = view("nova-api", "GET", "/v2.1/servers/detail", &cli);
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("openstack".into(), CallerSource::Token)
    );
    // Requests without a token hold nothing.
    let none = a.in_flight("glance-api", &h(&[("User-Agent", SDK_UA)]));
    assert!(none.tokens.is_empty());
    drop(none);
    assert!(a.flights.is_empty());
}

#[test]
fn user_agent_defaults_are_last() {
    let a = attributor("");
    let cases = [
        (SDK_UA, "openstack", CallerSource::UserAgent),
        ("glance/25.0.1.dev4 keystonemiddleware.auth_token/10.1.0 keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10", "glance-api", CallerSource::UserAgent),
        ("python-keystoneclient", "unknown", CallerSource::Unknown),
    ];
    for (ua, want, source) in cases {
        let hs = h(&[("User-Agent", ua)]);
        assert_eq!(
            decide(
                &a,
                &NO_PROCESS,
                &view("keystone", "GET", "/identity/", &hs),
                None
            ),
            (want.to_string(), source)
        );
    }
}

#[test]
fn ignore_rules_mark_or_drop() {
    let a = attributor(
        r#"
[[ignore]]
from = "nova-compute"
to = "placement-api"
method = "GET"
urls = ["/placement/resource_providers/{uuid}/(inventories|aggregates|allocations|traits)"]
[[ignore]]
from = "placement-api"
to = "keystone"
urls = ["/identity/"]
[[ignore]]
to = "keystone"
urls = ["^/healthcheck$"]
drop = true
"#,
    );
    let mut ex = token_response("admin", ADMIN);
    assert_eq!(a.keep(&ex), Keep::Store);
    ex.caller = "placement-api".into();
    assert_eq!(a.keep(&ex), Keep::StoreIgnored);
    // The client's target has no prefix; the upstream path has it.
    ex.target = "/v3/auth/tokens".into();
    assert_eq!(a.keep(&ex), Keep::StoreIgnored);
    ex.upstream_url = "http://127.0.0.1:5000/v3/auth/tokens".into();
    assert_eq!(a.keep(&ex), Keep::Store);
    ex.target = "/healthcheck".into();
    assert_eq!(a.keep(&ex), Keep::Drop);
    let mut p = token_response("nova", ADMIN);
    p.caller = "nova-compute".into();
    p.service = "placement-api".into();
    p.method = "GET".into();
    p.target =
        "/placement/resource_providers/a42bfade-78ec-4c95-b7b4-272ba265072c/inventories".into();
    assert_eq!(a.keep(&p), Keep::StoreIgnored);
    p.method = "PUT".into();
    assert_eq!(a.keep(&p), Keep::Store);
}

/// A store that keeps tokens in memory; the rest of the trait answers empty.
#[derive(Default)]
struct TokenStore {
    tokens: Mutex<Vec<TokenOwner>>,
}

#[async_trait::async_trait]
impl Store for TokenStore {
    async fn insert_exchanges(&self, _: &[Exchange]) -> crate::store::Result<()> {
        Ok(())
    }
    async fn record_loss(&self, _: Loss) -> crate::store::Result<()> {
        Ok(())
    }
    async fn list_exchanges(&self, _: &ExchangeFilter) -> crate::store::Result<Vec<Exchange>> {
        Ok(vec![])
    }
    async fn get_exchange(&self, _: &str) -> crate::store::Result<Option<Exchange>> {
        Ok(None)
    }
    async fn start_flow(
        &self,
        name: &str,
        _: Option<&str>,
        at: Micros,
    ) -> crate::store::Result<Flow> {
        Ok(Flow {
            name: name.into(),
            started_at: at,
            ..Default::default()
        })
    }
    async fn stop_flow(&self, _: Option<&str>, _: Micros) -> crate::store::Result<Flow> {
        Err(crate::store::StoreError::NoOpenFlow)
    }
    async fn set_flow_command(&self, _: &str, _: &RecordedCommand) -> crate::store::Result<()> {
        Ok(())
    }
    async fn delete_flow(&self, _: &str) -> crate::store::Result<()> {
        Ok(())
    }
    async fn get_flow(&self, name: &str) -> crate::store::Result<Flow> {
        Err(crate::store::StoreError::UnknownFlow(name.into()))
    }
    async fn list_flows(&self) -> crate::store::Result<Vec<FlowSummary>> {
        Ok(vec![])
    }
    async fn put_token(&self, token: &TokenOwner) -> crate::store::Result<()> {
        self.tokens.lock().unwrap().push(token.clone());
        Ok(())
    }
    async fn live_tokens(&self, now: Micros) -> crate::store::Result<Vec<TokenOwner>> {
        let all = self.tokens.lock().unwrap();
        Ok(all
            .iter()
            .filter(|t| t.expires_at.is_none_or(|e| e > now))
            .cloned()
            .collect())
    }
}

#[tokio::test]
async fn learned_tokens_survive_a_restart() {
    let store = Arc::new(TokenStore::default());
    let real_now = crate::timefmt::now_micros();
    {
        let a = Attributor::load(&Config::default(), store.clone()).await;
        // A token keystone issued a second ago, valid for an hour.
        let mut ex = token_response("glance", GLANCE);
        let issued = crate::timefmt::rfc3339(real_now - 1_000_000);
        let expires = crate::timefmt::rfc3339(real_now + 3_600_000_000);
        let body = String::from_utf8(ex.response_body.kept.clone())
            .unwrap()
            .replace("2022-12-30T01:38:05.000000Z", &issued)
            .replace("2022-12-30T04:38:05.000000Z", &expires);
        ex.response_body.kept = body.into_bytes();
        a.learn(&ex);
        // And one that expired long ago, as persisted by an earlier run.
        store.tokens.lock().unwrap().push(TokenOwner {
            token_sha256: hex::encode(tokens::token_key(ADMIN.as_bytes())),
            user_name: "admin".into(),
            user_id: None,
            project_id: None,
            expires_at: Some(real_now - 1),
        });
    }
    // The writer task runs on this runtime: let it drain.
    for _ in 0..100 {
        if store.tokens.lock().unwrap().len() == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let saved = store.tokens.lock().unwrap().clone();
    assert_eq!(saved.len(), 2);
    let glance = saved.iter().find(|t| t.user_name == "glance").unwrap();
    assert_eq!(
        glance.token_sha256,
        hex::encode(tokens::token_key(GLANCE.as_bytes()))
    );
    assert_eq!(glance.user_id.as_deref(), Some("id-glance"));
    assert!(!saved.iter().any(|t| t.token_sha256.contains("gAAAA")));

    let b = Attributor::load(&Config::default(), store.clone()).await;
    assert_eq!(b.known_tokens(), 1);
    let hs = h(&[("X-Auth-Token", GLANCE)]);
    assert_eq!(
        decide(
            &b,
            &NO_PROCESS,
            &view("swift", "HEAD", "/v1/AUTH_p/glance", &hs),
            None
        ),
        ("glance-api".into(), CallerSource::Token)
    );
    let hs = h(&[("X-Auth-Token", ADMIN)]);
    assert_eq!(
        decide(&b, &NO_PROCESS, &view("swift", "HEAD", "/", &hs), None).1,
        CallerSource::Unknown
    );
}

#[test]
fn peer_process_can_be_turned_off() {
    let a = attributor("[attribution]\npeer_process = false\n");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let local = l.local_addr().unwrap();
    let _c = std::net::TcpStream::connect(local).unwrap();
    let (_s, peer) = l.accept().unwrap();
    let conn = a.connection("keystone", peer, local);
    assert!(conn.pid.is_none() && conn.process.is_none());
}

#[test]
fn the_example_rules_are_valid_with_the_sample_config() {
    let text = format!(
        "{}\n{}",
        include_str!("../../config/tracer.toml"),
        include_str!("../../config/tracer.example-rules.toml")
    );
    let config = Config::parse(&text).unwrap();
    config.validate().unwrap();
    let a = Attributor::new(&config);
    assert_eq!(a.rules().service_user("heat"), Some("heat-api"));
    assert_eq!(
        a.rules()
            .process_caller(&[
                "uwsgi".into(),
                "--module".into(),
                "heat.wsgi.api:application".into()
            ])
            .as_deref(),
        Some("heat-api")
    );
    let hs = h(&[("User-Agent", "go-troveclient/0.3")]);
    assert_eq!(
        decide(
            &a,
            &NO_PROCESS,
            &view("trove-api", "GET", "/v1.0/p/instances", &hs),
            None
        ),
        ("trove-client".into(), CallerSource::Rule)
    );
    let mut ex = token_response("nova", ADMIN);
    (ex.caller, ex.service, ex.method) =
        ("nova-compute".into(), "placement-api".into(), "GET".into());
    ex.target = "/resource_providers/a42bfade-78ec-4c95-b7b4-272ba265072c/allocations".into();
    ex.upstream_url = format!("http://127.0.0.1:80/placement{}", ex.target);
    assert_eq!(a.keep(&ex), Keep::StoreIgnored);
    (ex.caller, ex.service, ex.target) = (
        "x".into(),
        "swift-proxy-server".into(),
        "/healthcheck".into(),
    );
    assert_eq!(a.keep(&ex), Keep::Drop);
}
