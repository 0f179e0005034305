//! Golden tests: the exchanges the seed pages show, rendered again, must
//! give the seeds' sections (titles, caller lines, header lines, bodies).

mod common;

use common::seeds::{self, differences, parse};
use tracer::model::Flow;
use tracer::render::{self, RenderOptions};

fn check_seed(name: &str, events: usize) -> Vec<tracer::model::Exchange> {
    let seed = parse(&seeds::read_seed(name));
    assert_eq!(seed.len(), events, "sections in {name}");
    let exchanges = seeds::exchanges(&seed);
    let body = render::sections::body_md(&exchanges, &RenderOptions::default());
    let diffs = differences(&parse(&body), &seed);
    assert!(
        diffs.is_empty(),
        "{name}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    exchanges
}

#[test]
fn image_show_matches_seed() {
    let xs = check_seed(seeds::IMAGE_SHOW, 8);
    let (lines, names) = render::diagram::diagram(&xs);
    let messages: Vec<&String> = lines.iter().filter(|l| l.contains(">>")).collect();
    assert_eq!(
        messages,
        vec![
            "openstack->>keystone: GET /identity/",
            "keystone-->>openstack: 300 MULTIPLE CHOICES /identity/",
            "openstack->>keystone: POST /identity/v3/auth/tokens",
            "keystone-->>openstack: 201 CREATED /identity/v3/auth/tokens",
            "openstack->>glance-api: GET /v2/images/{image_id}",
            "glance-api->>keystone: GET /identity/v3/auth/tokens",
            "keystone-->>glance-api: 200 OK /identity/v3/auth/tokens",
            "glance-api-->>openstack: 200 OK /v2/images/{image_id}",
        ]
    );
    // The image id shows its origin: the body of the response to the call itself.
    let used = names.used();
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].value, "a42bfade-78ec-4c95-b7b4-272ba265072c");
    assert_eq!(
        used[0].origin,
        "`id` in the body of (8) `200 OK /v2/images/a42bfade-78ec-4c95-b7b4-272ba265072c`"
    );
}

#[test]
fn image_create_matches_seed() {
    let xs = check_seed(seeds::IMAGE_CREATE, 22);
    let diagram = render::diagram::diagram_md(&xs, &RenderOptions::default());
    let messages: Vec<&str> = diagram.lines().filter(|l| l.contains(">>")).collect();
    assert_eq!(
        messages,
        vec![
            "openstack->>keystone: GET /identity/",
            "keystone-->>openstack: 300 MULTIPLE CHOICES /identity/",
            "openstack->>keystone: POST /identity/v3/auth/tokens",
            "keystone-->>openstack: 201 CREATED /identity/v3/auth/tokens",
            "openstack->>glance-api: POST /v2/images",
            "glance-api->>keystone: GET /identity/",
            "keystone-->>glance-api: 300 MULTIPLE CHOICES /identity/",
            "glance-api->>keystone: POST /identity/v3/auth/tokens",
            "keystone-->>glance-api: 201 CREATED /identity/v3/auth/tokens",
            "glance-api->>keystone: GET /identity/v3/auth/tokens",
            "keystone-->>glance-api: 200 OK /identity/v3/auth/tokens",
            "glance-api-->>openstack: 201 Created /v2/images",
            "openstack->>glance-api: PUT /v2/images/{image_id}/file",
            "glance-api->>keystone: POST /identity/v3/auth/tokens",
            "keystone-->>glance-api: 201 CREATED /identity/v3/auth/tokens",
            "glance-api->>swift-proxy-server: HEAD /v1/{account}/glance",
            "swift-proxy-server->>keystone: GET /identity/v3/auth/tokens",
            "keystone-->>swift-proxy-server: 200 OK /identity/v3/auth/tokens",
            "swift-proxy-server-->>glance-api: 204 No Content /v1/{account}/glance",
            "glance-api->>swift-proxy-server: PUT /v1/{account}/glance/{image_id}",
            "swift-proxy-server-->>glance-api: 201 Created /v1/{account}/glance/{image_id}",
            "glance-api-->>openstack: 204 No Content /v2/images/{image_id}/file",
        ]
    );
    // glance-api is active from (5) to (12): its calls to keystone sit inside.
    let lines: Vec<&str> = diagram.lines().collect();
    let at = |l: &str| lines.iter().position(|x| *x == l).unwrap();
    assert_eq!(
        lines[at("openstack->>glance-api: POST /v2/images") + 1],
        "activate glance-api"
    );
    assert_eq!(
        lines[at("glance-api-->>openstack: 201 Created /v2/images") + 1],
        "deactivate glance-api"
    );

    let flow = Flow {
        name: "image-create".into(),
        title: Some("openstack image create".into()),
        started_at: 1_672_642_000_000_000,
        stopped_at: Some(1_672_642_100_000_000),
        command: None,
    };
    let index = render::index::index_md(&flow, &xs, &RenderOptions::default());
    assert!(index.contains(
        "``` mermaid\nsequenceDiagram\nautonumber\nopenstack->>keystone: GET /identity/\n"
    ));
    assert!(index.contains(
        "| `{image_id}` | `a42bfade-78ec-4c95-b7b4-272ba265072c` | `id` in the body of (12) `201 Created /v2/images` |\n"
    ), "{index}");
    assert!(index.contains(
        "| `{account}` | `AUTH_7c4cda7e4807414bbdfcb22b535a9802` | seen in the body of (9) `201 CREATED /identity/v3/auth/tokens` |\n"
    ), "{index}");
    // The sections in index.md are body.md's, real values kept.
    let body = render::sections::body_md(&xs, &RenderOptions::default());
    assert!(index.ends_with(&body));
}

#[test]
fn redacted_seed_hides_every_token_and_password() {
    let seed = parse(&seeds::read_seed(seeds::IMAGE_CREATE));
    let xs = seeds::exchanges(&seed);
    let flow = Flow {
        name: "image-create".into(),
        ..Default::default()
    };
    let opts = RenderOptions {
        redact: true,
        har_link: true,
        ..Default::default()
    };
    let pages = render::flow_pages(&flow, &xs, &opts);
    let har = render::har::har_json(&flow, &xs, &opts);
    let token = "gAAAAABjrkD9cqBlaLtF1_FlWZfHjo2u7cJvLXX1HNPG-aFEylyLg7rBQwXEckDcnO__Yjj7akLG-xtxDVRk3zfTJPFdMYJ1MjeZJLaLbOD_Cbx4_D57F_EBR7g-QEmJdvXqN8GADYgNslbXm8cxCBhl3ww4_VJQBWEVQtav4_vVRW_E9vKAkxc";
    for (name, text) in [
        ("body.md", &pages.body_md),
        ("index.md", &pages.index_md),
        ("log.md", &pages.log_md),
        ("flow.har", &har),
    ] {
        assert!(!text.contains(token), "{name} shows the token");
        assert!(text.contains("gAAAAABj***"), "{name} lacks the short token");
        // Passwords go entirely: no prefix, no length.
        assert!(!text.contains("asdf"), "{name} shows the password");
    }
    assert!(pages.body_md.contains("\"password\": \"***\""));
}

#[test]
fn seed_payloads_have_their_content_length() {
    for name in [seeds::IMAGE_SHOW, seeds::IMAGE_CREATE] {
        for section in parse(&seeds::read_seed(name)) {
            let headers = seeds::header_fields(&section.header_lines);
            let Some(length) = tracer::model::header_str(&headers, "content-length") else {
                continue;
            };
            let length: usize = length.parse().unwrap();
            // Bodies are shown in full but for a cut binary one; a HEAD or 204
            // response may announce a length it does not send.
            let body = seeds::wire_body(&section);
            if section.body_lines == ["none"] {
                continue;
            }
            assert_eq!(body.len(), length, "{name} ({})", section.number);
        }
    }
}
