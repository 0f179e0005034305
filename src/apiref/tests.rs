use super::*;
use serde_json::json;

const PROJECT: &str = "7c4cda7e4807414bbdfcb22b535a9802";
const UUID: &str = "a42bfade-78ec-4c95-b7b4-272ba265072c";

fn title(api: Api, method: &str, target: &str, body: Option<Value>) -> Option<&'static str> {
    find(api, method, target, body.as_ref()).map(|op| op.title.as_str())
}

#[test]
fn the_bundled_index_loads_every_api() {
    for api in Api::ALL {
        let ops = operations(api);
        assert!(ops.len() > 10, "{api}: {} operations", ops.len());
        assert!(ops.iter().all(|op| op.api == api));
        assert!(ops
            .iter()
            .all(|op| op.url.starts_with("https://docs.openstack.org/api-ref/")));
    }
}

#[test]
fn apis_parse_from_service_types_and_guess_from_service_names() {
    for api in Api::ALL {
        assert_eq!(api.as_str().parse::<Api>(), Ok(api));
    }
    assert_eq!("volumev3".parse::<Api>(), Ok(Api::BlockStorage));
    assert!("dns"
        .parse::<Api>()
        .unwrap_err()
        .to_string()
        .contains("\"dns\""));
    let guesses = [
        ("keystone", Api::Identity),
        ("glance-api", Api::Image),
        ("swift-proxy-server", Api::ObjectStore),
        ("nova-api", Api::Compute),
        ("neutron-server", Api::Network),
        ("placement-api", Api::Placement),
        ("cinder-api", Api::BlockStorage),
        ("trove-api", Api::Database),
        ("identity", Api::Identity),
    ];
    for (name, api) in guesses {
        assert_eq!(Api::guess_from_service(name), Some(api), "{name}");
    }
    assert_eq!(Api::guess_from_service("openstack"), None);
}

#[test]
fn urls_have_the_seed_shape() {
    let op = find(Api::Image, "POST", "/v2/images", None).unwrap();
    assert_eq!(
        op.url,
        "https://docs.openstack.org/api-ref/image/v2/index.html?expanded=create-image-detail#create-image"
    );
    let op = find(Api::ObjectStore, "HEAD", "/v1/AUTH_abc/glance", None).unwrap();
    assert_eq!(
        op.url,
        "https://docs.openstack.org/api-ref/object-store/?expanded=show-container-metadata-detail#show-container-metadata"
    );
}

#[test]
fn a_title_repeated_on_its_page_links_the_page_only() {
    // glance documents GET / and GET /versions under the same title; the
    // second section's id is docutils' automatic one.
    let op = find(Api::Image, "GET", "/image/", None).unwrap();
    assert_eq!(op.title, "List API versions");
    assert_eq!(
        op.url,
        "https://docs.openstack.org/api-ref/image/versions/index.html"
    );
    let op = find(Api::Image, "GET", "/versions", None).unwrap();
    assert!(op
        .url
        .ends_with("?expanded=list-api-versions-detail#list-api-versions"));
}

fn auth(methods: &[&str], scope: Option<Value>) -> Value {
    let mut auth = json!({"identity": {"methods": methods}});
    for m in methods {
        auth["identity"][*m] = json!({"user": {"name": "admin", "password": "x"}});
    }
    if let Some(scope) = scope {
        auth["scope"] = scope;
    }
    json!({ "auth": auth })
}

#[test]
fn keystone_token_requests_by_methods_and_scope() {
    let project = json!({"project": {"name": "admin", "domain": {"id": "default"}}});
    let cases = [
        (
            auth(&["password"], None),
            "Password authentication with unscoped authorization",
        ),
        (
            auth(&["password"], Some(project.clone())),
            "Password authentication with scoped authorization",
        ),
        (
            auth(&["password"], Some(json!({"domain": {"id": "default"}}))),
            "Password authentication with scoped authorization",
        ),
        (
            auth(&["password"], Some(json!({"system": {"all": true}}))),
            "Password authentication with scoped authorization",
        ),
        (
            auth(&["password"], Some(json!("unscoped"))),
            "Password authentication with explicit unscoped authorization",
        ),
        (
            auth(&["token"], None),
            "Token authentication with unscoped authorization",
        ),
        (
            auth(&["token"], Some(project.clone())),
            "Token authentication with scoped authorization",
        ),
        (
            auth(&["token"], Some(json!("unscoped"))),
            "Token authentication with explicit unscoped authorization",
        ),
        (
            auth(&["application_credential"], None),
            "Authenticating with an Application Credential",
        ),
        (
            auth(&["totp"], Some(project.clone())),
            "Multi-Step authentication (2-Factor Password and TOTP example)",
        ),
        (
            auth(&["token"], Some(json!({"OS-TRUST:trust": {"id": "x"}}))),
            "Consuming a trust",
        ),
    ];
    for (body, want) in cases {
        let got = title(
            Api::Identity,
            "POST",
            "/identity/v3/auth/tokens",
            Some(body.clone()),
        );
        assert_eq!(got, Some(want), "{body}");
        // keystone on its own port: no /identity.
        assert_eq!(
            title(Api::Identity, "POST", "/v3/auth/tokens", Some(body)),
            Some(want)
        );
    }
    // Nothing that says which variant: none of them.
    assert_eq!(title(Api::Identity, "POST", "/v3/auth/tokens", None), None);
    let unknown = auth(&["kerberos"], None);
    assert_eq!(
        title(Api::Identity, "POST", "/v3/auth/tokens", Some(unknown)),
        None
    );
}

#[test]
fn nova_server_actions_by_the_body_key() {
    let target = format!("/compute/v2.1/servers/{UUID}/action");
    let cases = [
        (json!({"os-start": null}), "Start Server (os-start Action)"),
        (json!({"os-stop": null}), "Stop Server (os-stop Action)"),
        (
            json!({"reboot": {"type": "HARD"}}),
            "Reboot Server (reboot Action)",
        ),
        (
            json!({"rebuild": {"imageRef": UUID}}),
            "Rebuild Server (rebuild Action)",
        ),
        (
            json!({"createImage": {"name": "snap"}}),
            "Create Image (createImage Action)",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            title(Api::Compute, "POST", &target, Some(body.clone())),
            Some(want),
            "{body}"
        );
    }
    // The legacy URL with the project id after the version.
    let legacy = format!("/v2.1/{PROJECT}/servers/{UUID}/action");
    let body = json!({"pause": null});
    assert_eq!(
        title(Api::Compute, "POST", &legacy, Some(body)),
        Some("Pause Server (pause Action)")
    );
    assert_eq!(title(Api::Compute, "POST", &target, None), None);
    assert_eq!(
        title(Api::Compute, "POST", &target, Some(json!({"fly": {}}))),
        None
    );
    let show = format!("/compute/v2.1/servers/{UUID}");
    assert_eq!(
        title(Api::Compute, "GET", &show, None),
        Some("Show Server Details")
    );
}

#[test]
fn trove_instance_updates_and_actions_by_the_body() {
    let instance = format!("/v1.0/{PROJECT}/instances/{UUID}");
    let puts = [
        (
            json!({"instance": {"configuration": UUID}}),
            "Attach configuration group",
        ),
        (
            json!({"instance": {"configuration": null}}),
            "Detach configuration group",
        ),
        (json!({"instance": {}}), "Detach configuration group"),
        (json!({"instance": {"name": "new"}}), "Update instance name"),
        (json!({"instance": {"replica_of": null}}), "Detach replica"),
        (
            json!({"instance": {"datastore_version": "8.0"}}),
            "Upgrade datastore version for instance",
        ),
    ];
    for (body, want) in puts {
        assert_eq!(
            title(Api::Database, "PUT", &instance, Some(body.clone())),
            Some(want),
            "{body}"
        );
    }
    let action = format!("{instance}/action");
    let actions = [
        (json!({"restart": {}}), "Restart instance"),
        (
            json!({"resize": {"flavorRef": "2"}}),
            "Resize instance flavor",
        ),
        (
            json!({"resize": {"volume": {"size": 4}}}),
            "Resize instance volume",
        ),
        (json!({"reset_status": {}}), "Reset instance status"),
    ];
    for (body, want) in actions {
        assert_eq!(
            title(Api::Database, "POST", &action, Some(body.clone())),
            Some(want),
            "{body}"
        );
    }
    let both = json!({"instance": {"name": "new", "configuration": UUID}});
    assert_eq!(title(Api::Database, "PUT", &instance, Some(both)), None);
}

#[test]
fn prefixes_versions_and_project_ids() {
    let cases = [
        (
            Api::Identity,
            "GET",
            "/identity/v3/auth/tokens",
            "Validate and show information for token",
        ),
        (Api::Image, "GET", "/image/v2/images?name=x", "List images"),
        (
            Api::Network,
            "GET",
            "/v2.0/networks?name=x",
            "List networks",
        ),
        (
            Api::Network,
            "GET",
            "/networking/v2.0/networks",
            "List networks",
        ),
        (
            Api::Placement,
            "GET",
            "/placement/resource_providers",
            "List resource providers",
        ),
        (
            Api::Compute,
            "GET",
            "/compute/v2.1/servers/detail",
            "List Servers Detailed",
        ),
        (Api::Compute, "GET", "/v2.1/flavors", "List Flavors"),
        (
            Api::Database,
            "GET",
            "/v1.0/p1/instances?include_clustered=False",
            "List database instances",
        ),
    ];
    for (api, method, target, want) in cases {
        assert_eq!(title(api, method, target, None), Some(want), "{target}");
    }
    // cinder: with the project id or without it (3.67), literal beats param.
    for target in [
        format!("/volume/v3/{PROJECT}/volumes/detail"),
        "/volume/v3/volumes/detail".to_string(),
        format!("/v3/{PROJECT}/volumes/detail"),
    ] {
        let got = title(Api::BlockStorage, "GET", &target, None);
        assert_eq!(
            got,
            Some("List accessible volumes with details"),
            "{target}"
        );
    }
    let show = format!("/volume/v3/volumes/{UUID}");
    assert_eq!(
        title(Api::BlockStorage, "GET", &show, None),
        Some("Show a volume’s details")
    );
    // A query parameter the template names makes it the closer fit.
    let quota = format!("/volume/v3/{PROJECT}/os-quota-sets/{PROJECT}");
    assert_eq!(
        title(Api::BlockStorage, "GET", &quota, None),
        Some("Show quotas for a project")
    );
    let usage = format!("{quota}?usage=True");
    assert_eq!(
        title(Api::BlockStorage, "GET", &usage, None),
        Some("Show quota usage for a project")
    );
}

#[test]
fn swift_object_names_may_hold_slashes() {
    let got = title(
        Api::ObjectStore,
        "PUT",
        "/v1/AUTH_abc/photos/2024/june/a.jpg",
        None,
    );
    assert_eq!(got, Some("Create or replace object"));
    let got = title(
        Api::ObjectStore,
        "GET",
        "/v1/AUTH_abc/photos?format=json",
        None,
    );
    assert_eq!(got, Some("Show container details and list objects"));
}

#[test]
fn version_documents_only_where_the_api_ref_has_them() {
    let documented = [
        (Api::Compute, "/compute/", "List All Major Versions"),
        (
            Api::Compute,
            "/compute/v2.1/",
            "Show Details of Specific API Version",
        ),
        (Api::Network, "/", "List API versions"),
        (Api::Network, "/networking/v2.0/", "Show API v2 details"),
        (Api::BlockStorage, "/volume/", "List All Api Versions"),
        (Api::BlockStorage, "/volume/v3/", "Show API v3 details"),
        (Api::Placement, "/placement/", "List Versions"),
        (Api::Database, "/", "List versions"),
    ];
    for (api, target, want) in documented {
        assert_eq!(
            title(api, "GET", target, None),
            Some(want),
            "{api} {target}"
        );
    }
    // keystone's api-ref documents no version discovery, swift's none either.
    for target in ["/identity/", "/identity/v3", "/v3/", "/"] {
        assert_eq!(title(Api::Identity, "GET", target, None), None, "{target}");
    }
    assert_eq!(title(Api::ObjectStore, "GET", "/", None), None);
}

#[test]
fn several_operations_the_request_cannot_tell_apart_give_none() {
    // neutron's port show and its trunk-details extension: one call.
    let port = format!("/v2.0/ports/{UUID}");
    assert_eq!(title(Api::Network, "GET", &port, None), None);
    // A method the api-ref does not give the path.
    assert_eq!(title(Api::Image, "PATCH", "/v2/images", None), None);
    assert_eq!(title(Api::Image, "GET", "/v2/nothing/here", None), None);
}

#[test]
fn the_index_parser_refuses_an_unknown_api() {
    let text = r#"{"apis":[{"api":"dns","pages":[],"operations":[]}]}"#;
    assert!(parse_index(text).err().unwrap().contains("dns"));
}

#[test]
fn nova_server_create_one_or_many_by_the_counts() {
    // What `openstack server create` sends: counts of 1, which no example shows.
    let cli = json!({"server": {"name": "vm1", "imageRef": UUID, "flavorRef": "1",
        "min_count": 1, "max_count": 1, "networks": [{"uuid": UUID}]}});
    assert_eq!(
        title(Api::Compute, "POST", "/v2.1/servers", Some(cli)),
        Some("Create Server")
    );
    let many = json!({"server": {"name": "vm", "imageRef": UUID, "flavorRef": "1",
        "min_count": 2, "max_count": 3}});
    assert_eq!(
        title(Api::Compute, "POST", "/v2.1/servers", Some(many)),
        Some("Create Multiple Servers")
    );
    let reserved = json!({"server": {"name": "vm", "return_reservation_id": "True"}});
    assert_eq!(
        title(
            Api::Compute,
            "POST",
            "/compute/v2.1/servers",
            Some(reserved)
        ),
        Some("Create Multiple Servers")
    );
}
