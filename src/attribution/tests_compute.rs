//! The rules for compute flows, where no process can tell (a compute node
//! on another host): each as the real nova 34 / neutron 29 lab sends it
//! (tests/data/lab/server-create.jsonl shows them all in one flow).

use super::tests::{attributor, decide, h, token_response, view, ADMIN, NO_PROCESS, SDK_UA};
use super::*;

const NOVA_API_SVC: &str = "gAAAAABrD58c_nova_api_service_token";
const NOVA_COMPUTE_SVC: &str = "gAAAAABrD58c_nova_compute_service_token";
const PLACEMENT: &str = "gAAAAABrD58c_placement_user_token";
const NEUTRON_FOR_NOVA: &str = "gAAAAABrD58c_neutron_user_token_of_nova";
const LOGIN_BY_NAME: fn(&str) -> String = |user| {
    format!(
        r#"{{"auth": {{"identity": {{"methods": ["password"], "password": {{"user": {{"password": "asdf", "name": "{user}", "domain": {{"name": "Default"}}}}}}}}}}}}"#
    )
};

fn issued(a: &Attributor, user: &str, token: &str, caller: &str, source: CallerSource) {
    let mut ex = token_response(user, token);
    ex.caller = caller.into();
    ex.caller_source = source;
    a.learn(&ex);
}

#[test]
fn a_user_agent_naming_a_service_program_outranks_a_shared_service_user() {
    let a = attributor("");
    issued(&a, "placement", PLACEMENT, "x", CallerSource::Unknown);
    let hs = h(&[
        (
            "User-Agent",
            "nova-scheduler keystoneauth1/5.18.1 python-requests/2.34.2 CPython/3.11.7",
        ),
        ("X-Auth-Token", PLACEMENT),
    ]);
    let req = view(
        "placement-api",
        "GET",
        "/allocation_candidates?limit=1000",
        &hs,
    );
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("nova-scheduler".into(), CallerSource::UserAgent)
    );
    // The token is nova-scheduler's from then on, whatever the User-Agent.
    let hs = h(&[("X-Auth-Token", PLACEMENT)]);
    let req = view("placement-api", "GET", "/allocation_candidates", &hs);
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("nova-scheduler".into(), CallerSource::Token)
    );
    // Another placement token never seen with a program: its owner is all there is.
    issued(
        &a,
        "placement",
        NEUTRON_FOR_NOVA,
        "x",
        CallerSource::Unknown,
    );
    let hs = h(&[("X-Auth-Token", NEUTRON_FOR_NOVA)]);
    let req = view("placement-api", "GET", "/allocation_candidates", &hs);
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("placement-api".into(), CallerSource::Token)
    );
}

#[test]
fn the_service_token_names_the_service_and_a_users_idle_token_its_worker() {
    let a = attributor("");
    a.learn(&token_response("admin", ADMIN));
    issued(&a, "nova", NOVA_API_SVC, "x", CallerSource::Unknown);
    issued(&a, "nova", NOVA_COMPUTE_SVC, "x", CallerSource::Unknown);
    let by_nova = |svc: &'static str| {
        h(&[
            ("User-Agent", "python-neutronclient"),
            ("X-Auth-Token", ADMIN),
            ("X-Service-Token", svc),
        ])
    };
    // While the user's POST /servers is open, nova-api reads the network.
    let post = a.in_flight(
        "nova-api",
        &h(&[("X-Auth-Token", ADMIN), ("User-Agent", SDK_UA)]),
    );
    let hs = by_nova(NOVA_API_SVC);
    let req = view("neutron-server", "GET", "/v2.0/networks?id=n1", &hs);
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("nova-api".into(), CallerSource::Token)
    );
    drop(post);
    // nova-api answered 202; nova-compute makes the port with the user's token.
    let hs = by_nova(NOVA_COMPUTE_SVC);
    let req = view("neutron-server", "POST", "/v2.0/ports", &hs);
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("nova-compute".into(), CallerSource::Token)
    );
    // Each process keeps its service token: later calls carrying them
    // are known without the user's token, even under nova-api's own
    // open call (the CLI polling GET /servers/{id}).
    let poll = a.in_flight(
        "nova-api",
        &h(&[("X-Auth-Token", ADMIN), ("User-Agent", SDK_UA)]),
    );
    let hs = h(&[
        ("User-Agent", "python-neutronclient"),
        ("X-Auth-Token", ADMIN),
        ("X-Service-Token", NOVA_COMPUTE_SVC),
    ]);
    let req = view("neutron-server", "GET", "/v2.0/ports?device_id=s1", &hs);
    assert_eq!(decide(&a, &NO_PROCESS, &req, None).0, "nova-compute");
    let hs = by_nova(NOVA_API_SVC);
    let req = view("neutron-server", "GET", "/v2.0/ports?device_id=s1", &hs);
    assert_eq!(decide(&a, &NO_PROCESS, &req, None).0, "nova-api");
    drop(poll);
}

#[test]
fn a_login_as_another_services_user_belongs_to_the_service_serving_a_call() {
    let a = attributor("");
    let lib = h(&[(
        "User-Agent",
        "uwsgi keystoneauth1/5.18.1 python-requests/2.34.2 CPython/3.11.7",
    )]);
    let login = view("keystone", "POST", "/v3/auth/tokens", &lib);
    let as_neutron = LOGIN_BY_NAME("neutron");
    // No call open: the user's own service.
    assert_eq!(
        decide(&a, &NO_PROCESS, &login, Some(as_neutron.as_bytes())),
        ("neutron-server".into(), CallerSource::Token)
    );
    // nova-api serving POST /servers logs in as neutron for its admin calls.
    let post = a.in_flight("nova-api", &h(&[("X-Auth-Token", ADMIN)]));
    let d = a.decide(&NO_PROCESS, &login, Some(as_neutron.as_bytes()));
    assert_eq!(
        (d.caller.as_str(), d.source),
        ("nova-api", CallerSource::Token)
    );
    // The token keystone issues for that login is nova-api's from then on.
    issued(&a, "neutron", NEUTRON_FOR_NOVA, &d.caller, d.source);
    let hs = h(&[
        ("User-Agent", "python-neutronclient"),
        ("X-Auth-Token", NEUTRON_FOR_NOVA),
    ]);
    let req = view("neutron-server", "GET", "/v2.0/extensions", &hs);
    assert_eq!(
        decide(&a, &NO_PROCESS, &req, None),
        ("nova-api".into(), CallerSource::Token)
    );
    drop(post);
    assert_eq!(decide(&a, &NO_PROCESS, &req, None).0, "nova-api");
    // The user's own service serving a call wins (swift logs in as swift
    // while glance's upload is open too).
    let _upload = a.in_flight("glance-api", &h(&[("X-Auth-Token", ADMIN)]));
    let _head = a.in_flight("neutron-server", &h(&[("X-Auth-Token", ADMIN)]));
    let _late = a.in_flight("nova-api", &h(&[("X-Auth-Token", ADMIN)]));
    assert_eq!(
        decide(&a, &NO_PROCESS, &login, Some(as_neutron.as_bytes())).0,
        "neutron-server"
    );
}

#[test]
fn a_library_call_with_nothing_known_is_the_latest_open_calls_service() {
    let a = attributor("");
    let lib = h(&[(
        "User-Agent",
        "uwsgi keystoneauth1/5.18.1 python-requests/2.34.2 CPython/3.11.7",
    )]);
    let discovery = view("keystone", "GET", "/v3", &lib);
    assert_eq!(
        decide(&a, &NO_PROCESS, &discovery, None),
        ("unknown".into(), CallerSource::Unknown)
    );
    let _post = a.in_flight("nova-api", &h(&[("X-Auth-Token", ADMIN)]));
    assert_eq!(
        decide(&a, &NO_PROCESS, &discovery, None),
        ("nova-api".into(), CallerSource::UserAgent)
    );
    // Not for a client that is no OpenStack library.
    let curl = h(&[("User-Agent", "curl/7.88.1")]);
    assert_eq!(
        decide(
            &a,
            &NO_PROCESS,
            &view("keystone", "GET", "/v3", &curl),
            None
        )
        .1,
        CallerSource::Unknown
    );
}

#[test]
fn a_service_token_is_in_flight_for_its_validation() {
    let a = attributor("");
    let call = h(&[("X-Auth-Token", ADMIN), ("X-Service-Token", NOVA_API_SVC)]);
    let _get = a.in_flight("glance-api", &call);
    let hs = h(&[
        ("User-Agent", "python-keystoneclient"),
        ("X-Subject-Token", NOVA_API_SVC),
    ]);
    assert_eq!(
        decide(
            &a,
            &NO_PROCESS,
            &view("keystone", "GET", "/v3/auth/tokens", &hs),
            None
        ),
        ("glance-api".into(), CallerSource::SubjectToken)
    );
}

#[test]
fn nova_workers_are_known_by_the_titles_cotyledon_gives_them() {
    let a = attributor("");
    let argv = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    let cases = [
        ("nova-scheduler: SchedulerService worker(0)", "nova-scheduler"),
        ("nova-conductor: ConductorService worker(0)", "nova-conductor"),
        (
            "nova-scheduler: master process [/lab/venv/bin/nova-scheduler --config-file /lab/etc/nova/nova.conf]",
            "nova-scheduler",
        ),
        (
            "/lab/venv/bin/python3 /lab/venv/bin/nova-compute --config-file /lab/etc/nova/nova.conf",
            "nova-compute",
        ),
        ("trove-taskmanager: TaskService worker(0)", "trove-taskmanager"),
    ];
    for (cmdline, want) in cases {
        assert_eq!(
            a.rules().process_caller(&argv(cmdline)).as_deref(),
            Some(want),
            "{cmdline}"
        );
    }
}
