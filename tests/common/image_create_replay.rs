//! The image-create flow of seed 004 (22 events, 11 exchanges between
//! `openstack`, `glance-api`, `keystone` and `swift-proxy-server`) as replay
//! data: every header as the seed shows it minus `X-Requestshook-*`, JSON
//! bodies re-serialised the way Python's `json.dumps` wrote them (their
//! lengths equal the seed's `Content-Length`), binary bodies as the 32 bytes
//! the seed shows plus their full length. `expected_caller` is the caller the
//! seed's `X-Requestshook-Request-From` named.

/// A message body of the replay.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    Empty,
    Text(&'static str),
    /// A binary body of `len` bytes whose first bytes are `prefix` (the rest
    /// is zeros when replayed; only its first 32 bytes are in the seed).
    Binary {
        prefix: &'static [u8],
        len: u64,
    },
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Text(t) => t.len() as u64,
            Body::Binary { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body (binary bodies padded with zeros to their length).
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Empty => Vec::new(),
            Body::Text(t) => t.as_bytes().to_vec(),
            Body::Binary { prefix, len } => {
                let mut v = prefix.to_vec();
                v.resize(*len as usize, 0);
                v
            }
        }
    }

    /// At most `max` bytes of the body (what a capture keeping `max` bytes holds).
    pub fn prefix(&self, max: usize) -> Vec<u8> {
        match self {
            Body::Binary { prefix, .. } => prefix[..prefix.len().min(max)].to_vec(),
            _ => {
                let mut v = self.bytes();
                v.truncate(max);
                v
            }
        }
    }
}

/// One request/response pair of the flow.
#[derive(Debug, Clone, Copy)]
pub struct ReplayExchange {
    /// Event numbers in the seed: the request head and the response head.
    pub request_event: u32,
    pub response_event: u32,
    /// The service the request went to ("to").
    pub service: &'static str,
    pub method: &'static str,
    pub target: &'static str,
    pub request_headers: &'static [(&'static str, &'static str)],
    pub request_body: Body,
    pub status: u16,
    pub reason: &'static str,
    pub response_headers: &'static [(&'static str, &'static str)],
    pub response_body: Body,
    /// The caller the seed names.
    pub expected_caller: &'static str,
}

/// What happens at one event of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The request head of `IMAGE_CREATE[i]` arrives.
    Request(usize),
    /// The response head of `IMAGE_CREATE[i]` arrives.
    Response(usize),
}

/// The 22 events in the order the seed numbers them.
pub fn image_create_events() -> Vec<(u32, Event)> {
    let mut events: Vec<(u32, Event)> = IMAGE_CREATE
        .iter()
        .enumerate()
        .flat_map(|(i, x)| {
            [
                (x.request_event, Event::Request(i)),
                (x.response_event, Event::Response(i)),
            ]
        })
        .collect();
    events.sort_by_key(|(n, _)| *n);
    events
}

pub const IMAGE_CREATE: &[ReplayExchange] = &[
    ReplayExchange {
        request_event: 1,
        response_event: 2,
        service: "keystone",
        method: "GET",
        target: "/identity/",
        request_headers: &[
            ("Host", "182.161.114.101"),
            ("User-Agent", "openstacksdk/0.101.0 keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Accept", "application/json"),
            ("Connection", "keep-alive"),
        ],
        request_body: Body::Empty,
        status: 300,
        reason: "MULTIPLE CHOICES",
        response_headers: &[
            ("Content-Type", "application/json"),
            ("Content-Length", "274"),
            ("Location", "http://182.161.114.101/identity/v3/"),
            ("Vary", "X-Auth-Token"),
        ],
        response_body: Body::Text(r#"{"versions": {"values": [{"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z", "links": [{"rel": "self", "href": "http://182.161.114.101/identity/v3/"}], "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}]}}"#),
        expected_caller: "openstack",
    },
    ReplayExchange {
        request_event: 3,
        response_event: 4,
        service: "keystone",
        method: "POST",
        target: "/identity/v3/auth/tokens",
        request_headers: &[
            ("Host", "182.161.114.101"),
            ("User-Agent", "openstacksdk/0.101.0 keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Accept", "application/json"),
            ("Connection", "keep-alive"),
            ("Content-Type", "application/json"),
            ("Content-Length", "209"),
        ],
        request_body: Body::Text(r#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"password": "asdf", "name": "admin", "domain": {"id": "default"}}}}, "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}"#),
        status: 201,
        reason: "CREATED",
        response_headers: &[
            ("Content-Type", "application/json"),
            ("Content-Length", "3952"),
            ("X-Subject-Token", "gAAAAABjrkD9cqBlaLtF1_FlWZfHjo2u7cJvLXX1HNPG-aFEylyLg7rBQwXEckDcnO__Yjj7akLG-xtxDVRk3zfTJPFdMYJ1MjeZJLaLbOD_Cbx4_D57F_EBR7g-QEmJdvXqN8GADYgNslbXm8cxCBhl3ww4_VJQBWEVQtav4_vVRW_E9vKAkxc"),
            ("Vary", "X-Auth-Token"),
        ],
        response_body: Body::Text(r#"{"token": {"methods": ["password"], "user": {"domain": {"id": "default", "name": "Default"}, "id": "f7a842b4104247debd7589051c5321fc", "name": "admin", "password_expires_at": null}, "audit_ids": ["9U94bbR7Tu6vPiWuThd6Gg"], "expires_at": "2022-12-30T04:38:05.000000Z", "issued_at": "2022-12-30T01:38:05.000000Z", "project": {"domain": {"id": "default", "name": "Default"}, "id": "de5af600557d44d0996e667499376dbb", "name": "admin"}, "is_domain": false, "roles": [{"id": "3e1adda493764db8921e97d68a5c8bc7", "name": "admin"}, {"id": "5f0594b46c8346d2996759ed1f5014f4", "name": "member"}, {"id": "28dea0246b6f47df9d99b5b33b423c8b", "name": "reader"}], "catalog": [{"endpoints": [{"id": "6fbbbec7587e4989a4de6e7a43c7205f", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/placement", "region": "RegionOne"}], "id": "10304edc7ec942d282567b8c4f5610d6", "type": "placement", "name": "placement"}, {"endpoints": [{"id": "366c8616c77243d38971272e0eaf4a9f", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/compute/v2.1", "region": "RegionOne"}], "id": "117766093c004578b95a185ecf2a5bbf", "type": "compute", "name": "nova"}, {"endpoints": [{"id": "0c0d6e47d833442f8da165ada8ad43a3", "interface": "internal", "region_id": "RegionOne", "url": "http://182.161.114.101:8779/v1.0/de5af600557d44d0996e667499376dbb", "region": "RegionOne"}, {"id": "9440e2831cc84d4da9f7d20c7b42638e", "interface": "admin", "region_id": "RegionOne", "url": "http://182.161.114.101:8779/v1.0/de5af600557d44d0996e667499376dbb", "region": "RegionOne"}, {"id": "c812ae1a5a3e40449f3c61edae4a6bcb", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101:8779/v1.0/de5af600557d44d0996e667499376dbb", "region": "RegionOne"}], "id": "22844f546aa941798f06e4978be9ab94", "type": "database", "name": "trove"}, {"endpoints": [{"id": "fad6bb86523b4f3aba4a6a6fb25cda0e", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/image", "region": "RegionOne"}], "id": "3b7aead421ce4611a82e684ab8c2ad2f", "type": "image", "name": "glance"}, {"endpoints": [{"id": "82c559324ad244beacb2fd0406f0298b", "interface": "admin", "region_id": "RegionOne", "url": "http://182.161.114.101:8080", "region": "RegionOne"}, {"id": "d1029ab4d5bf4cd6843a5b819966c2ea", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101:8080/v1/AUTH_de5af600557d44d0996e667499376dbb", "region": "RegionOne"}], "id": "628d3cea8d3b4615a4b047bae6112d0e", "type": "object-store", "name": "swift"}, {"endpoints": [{"id": "a7eecf5314434aca81e5feaa8bf7521e", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/identity", "region": "RegionOne"}], "id": "7055978143b74523b826bae1a9c0aabf", "type": "identity", "name": "keystone"}, {"endpoints": [{"id": "30dd85ebed584c54ba849ca0e2a4c825", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101:9696/networking", "region": "RegionOne"}], "id": "b3b850a4ec574d16a0cbece3c172a701", "type": "network", "name": "neutron"}, {"endpoints": [{"id": "871e0e3393974f9b9071342b59f62090", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/compute/v2/de5af600557d44d0996e667499376dbb", "region": "RegionOne"}], "id": "cb1921a9c779492484907683bb447e84", "type": "compute_legacy", "name": "nova_legacy"}, {"endpoints": [{"id": "b6a779acd3e04ed480847d4cb99ca710", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/volume/v3/de5af600557d44d0996e667499376dbb", "region": "RegionOne"}], "id": "d5345b92210c49aa975a873d04921780", "type": "block-storage", "name": "cinder"}, {"endpoints": [{"id": "8c624f7ed1e44096b8f0413866a11b1b", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/volume/v3/de5af600557d44d0996e667499376dbb", "region": "RegionOne"}], "id": "e559802e75824163a070bd92dd143476", "type": "volumev3", "name": "cinderv3"}]}}"#),
        expected_caller: "openstack",
    },
    ReplayExchange {
        request_event: 5,
        response_event: 12,
        service: "glance-api",
        method: "POST",
        target: "/v2/images",
        request_headers: &[
            ("Host", "127.0.0.1:60999"),
            ("User-Agent", "openstacksdk/0.101.0 keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Accept", "*/*"),
            ("X-Auth-Token", "gAAAAABjrkD9cqBlaLtF1_FlWZfHjo2u7cJvLXX1HNPG-aFEylyLg7rBQwXEckDcnO__Yjj7akLG-xtxDVRk3zfTJPFdMYJ1MjeZJLaLbOD_Cbx4_D57F_EBR7g-QEmJdvXqN8GADYgNslbXm8cxCBhl3ww4_VJQBWEVQtav4_vVRW_E9vKAkxc"),
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", "182.161.114.101"),
            ("X-Forwarded-Host", "182.161.114.101"),
            ("X-Forwarded-Server", "127.0.0.1"),
            ("Content-Length", "260"),
            ("Connection", "Keep-Alive"),
        ],
        request_body: Body::Text(r#"{"container_format": "bare", "visibility": "public", "disk_format": "qcow2", "name": "cirros-0.6.1-x86_64-disk", "owner_specified.openstack.md5": "", "owner_specified.openstack.sha256": "", "owner_specified.openstack.object": "images/cirros-0.6.1-x86_64-disk"}"#),
        status: 201,
        reason: "Created",
        response_headers: &[
            ("Content-Length", "781"),
            ("Content-Type", "application/json"),
            ("Location", "http://127.0.0.1:60999/v2/images/a42bfade-78ec-4c95-b7b4-272ba265072c"),
            ("OpenStack-image-import-methods", "glance-direct,web-download,copy-image"),
            ("x-openstack-request-id", "req-d15c0fbc-c5c3-44b5-af20-005b8b7d96e8"),
        ],
        response_body: Body::Text(r#"{"owner_specified.openstack.md5": "", "owner_specified.openstack.sha256": "", "owner_specified.openstack.object": "images/cirros-0.6.1-x86_64-disk", "name": "cirros-0.6.1-x86_64-disk", "disk_format": "qcow2", "container_format": "bare", "visibility": "public", "size": null, "virtual_size": null, "status": "queued", "checksum": null, "protected": false, "min_ram": 0, "min_disk": 0, "owner": "de5af600557d44d0996e667499376dbb", "os_hidden": false, "os_hash_algo": null, "os_hash_value": null, "id": "a42bfade-78ec-4c95-b7b4-272ba265072c", "created_at": "2022-12-30T01:38:06Z", "updated_at": "2022-12-30T01:38:06Z", "tags": [], "self": "/v2/images/a42bfade-78ec-4c95-b7b4-272ba265072c", "file": "/v2/images/a42bfade-78ec-4c95-b7b4-272ba265072c/file", "schema": "/v2/schemas/image"}"#),
        expected_caller: "openstack",
    },
    ReplayExchange {
        request_event: 6,
        response_event: 7,
        service: "keystone",
        method: "GET",
        target: "/identity/",
        request_headers: &[
            ("Host", "182.161.114.101"),
            ("User-Agent", "glance/25.0.1.dev4 keystonemiddleware.auth_token/10.1.0 keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Accept", "application/json"),
            ("Connection", "keep-alive"),
        ],
        request_body: Body::Empty,
        status: 300,
        reason: "MULTIPLE CHOICES",
        response_headers: &[
            ("Content-Type", "application/json"),
            ("Content-Length", "274"),
            ("Location", "http://182.161.114.101/identity/v3/"),
            ("Vary", "X-Auth-Token"),
        ],
        response_body: Body::Text(r#"{"versions": {"values": [{"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z", "links": [{"rel": "self", "href": "http://182.161.114.101/identity/v3/"}], "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}]}}"#),
        expected_caller: "glance-api",
    },
    ReplayExchange {
        request_event: 8,
        response_event: 9,
        service: "keystone",
        method: "POST",
        target: "/identity/v3/auth/tokens",
        request_headers: &[
            ("Host", "182.161.114.101"),
            ("User-Agent", "glance/25.0.1.dev4 keystonemiddleware.auth_token/10.1.0 keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Accept", "application/json"),
            ("Connection", "keep-alive"),
            ("Content-Type", "application/json"),
            ("Content-Length", "216"),
        ],
        request_body: Body::Text(r#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"password": "asdf", "name": "glance", "domain": {"name": "Default"}}}}, "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}}}"#),
        status: 201,
        reason: "CREATED",
        response_headers: &[
            ("Content-Type", "application/json"),
            ("Content-Length", "3833"),
            ("X-Subject-Token", "gAAAAABjrkD9tCni_jA0hswR8965Hg5cRQxRe2cGhOniDRLEUEmRQxBC-JAqhVkPyuvpyYOoVOGEg8Keb8P5JRmqes6F3eHkt2dDJd5E66TCFDpbWnNMjHfzzp9j2UCD-uVcwz30bKCrIbQUGSW_-VFDdDrHnbApFBKazs7_U8HR4YB3Hj8hWHA"),
            ("Vary", "X-Auth-Token"),
        ],
        response_body: Body::Text(r#"{"token": {"methods": ["password"], "user": {"domain": {"id": "default", "name": "Default"}, "id": "e65d5173dc4c4883a9f3a7252d6c007c", "name": "glance", "password_expires_at": null}, "audit_ids": ["20tUnWnaQ6ScGFzUNIjAlQ"], "expires_at": "2022-12-30T04:38:05.000000Z", "issued_at": "2022-12-30T01:38:05.000000Z", "project": {"domain": {"id": "default", "name": "Default"}, "id": "7c4cda7e4807414bbdfcb22b535a9802", "name": "service"}, "is_domain": false, "roles": [{"id": "8305567cb70b4087babffa9c7e9a185f", "name": "service"}], "catalog": [{"endpoints": [{"id": "6fbbbec7587e4989a4de6e7a43c7205f", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/placement", "region": "RegionOne"}], "id": "10304edc7ec942d282567b8c4f5610d6", "type": "placement", "name": "placement"}, {"endpoints": [{"id": "366c8616c77243d38971272e0eaf4a9f", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/compute/v2.1", "region": "RegionOne"}], "id": "117766093c004578b95a185ecf2a5bbf", "type": "compute", "name": "nova"}, {"endpoints": [{"id": "0c0d6e47d833442f8da165ada8ad43a3", "interface": "internal", "region_id": "RegionOne", "url": "http://182.161.114.101:8779/v1.0/7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}, {"id": "9440e2831cc84d4da9f7d20c7b42638e", "interface": "admin", "region_id": "RegionOne", "url": "http://182.161.114.101:8779/v1.0/7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}, {"id": "c812ae1a5a3e40449f3c61edae4a6bcb", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101:8779/v1.0/7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}], "id": "22844f546aa941798f06e4978be9ab94", "type": "database", "name": "trove"}, {"endpoints": [{"id": "fad6bb86523b4f3aba4a6a6fb25cda0e", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/image", "region": "RegionOne"}], "id": "3b7aead421ce4611a82e684ab8c2ad2f", "type": "image", "name": "glance"}, {"endpoints": [{"id": "82c559324ad244beacb2fd0406f0298b", "interface": "admin", "region_id": "RegionOne", "url": "http://182.161.114.101:8080", "region": "RegionOne"}, {"id": "d1029ab4d5bf4cd6843a5b819966c2ea", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101:8080/v1/AUTH_7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}], "id": "628d3cea8d3b4615a4b047bae6112d0e", "type": "object-store", "name": "swift"}, {"endpoints": [{"id": "a7eecf5314434aca81e5feaa8bf7521e", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/identity", "region": "RegionOne"}], "id": "7055978143b74523b826bae1a9c0aabf", "type": "identity", "name": "keystone"}, {"endpoints": [{"id": "30dd85ebed584c54ba849ca0e2a4c825", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101:9696/networking", "region": "RegionOne"}], "id": "b3b850a4ec574d16a0cbece3c172a701", "type": "network", "name": "neutron"}, {"endpoints": [{"id": "871e0e3393974f9b9071342b59f62090", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/compute/v2/7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}], "id": "cb1921a9c779492484907683bb447e84", "type": "compute_legacy", "name": "nova_legacy"}, {"endpoints": [{"id": "b6a779acd3e04ed480847d4cb99ca710", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/volume/v3/7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}], "id": "d5345b92210c49aa975a873d04921780", "type": "block-storage", "name": "cinder"}, {"endpoints": [{"id": "8c624f7ed1e44096b8f0413866a11b1b", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/volume/v3/7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}], "id": "e559802e75824163a070bd92dd143476", "type": "volumev3", "name": "cinderv3"}]}}"#),
        expected_caller: "glance-api",
    },
    ReplayExchange {
        request_event: 10,
        response_event: 11,
        service: "keystone",
        method: "GET",
        target: "/identity/v3/auth/tokens",
        request_headers: &[
            ("Host", "182.161.114.101"),
            ("User-Agent", "python-keystoneclient"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Accept", "application/json"),
            ("Connection", "keep-alive"),
            ("X-Subject-Token", "gAAAAABjrkD9cqBlaLtF1_FlWZfHjo2u7cJvLXX1HNPG-aFEylyLg7rBQwXEckDcnO__Yjj7akLG-xtxDVRk3zfTJPFdMYJ1MjeZJLaLbOD_Cbx4_D57F_EBR7g-QEmJdvXqN8GADYgNslbXm8cxCBhl3ww4_VJQBWEVQtav4_vVRW_E9vKAkxc"),
            ("Openstack-Identity-Access-Rules", "1"),
            ("X-Auth-Token", "gAAAAABjrkD9tCni_jA0hswR8965Hg5cRQxRe2cGhOniDRLEUEmRQxBC-JAqhVkPyuvpyYOoVOGEg8Keb8P5JRmqes6F3eHkt2dDJd5E66TCFDpbWnNMjHfzzp9j2UCD-uVcwz30bKCrIbQUGSW_-VFDdDrHnbApFBKazs7_U8HR4YB3Hj8hWHA"),
        ],
        request_body: Body::Empty,
        status: 200,
        reason: "OK",
        response_headers: &[
            ("Content-Type", "application/json"),
            ("Content-Length", "3952"),
            ("X-Subject-Token", "gAAAAABjrkD9cqBlaLtF1_FlWZfHjo2u7cJvLXX1HNPG-aFEylyLg7rBQwXEckDcnO__Yjj7akLG-xtxDVRk3zfTJPFdMYJ1MjeZJLaLbOD_Cbx4_D57F_EBR7g-QEmJdvXqN8GADYgNslbXm8cxCBhl3ww4_VJQBWEVQtav4_vVRW_E9vKAkxc"),
            ("Vary", "X-Auth-Token"),
        ],
        response_body: Body::Text(r#"{"token": {"methods": ["password"], "user": {"domain": {"id": "default", "name": "Default"}, "id": "f7a842b4104247debd7589051c5321fc", "name": "admin", "password_expires_at": null}, "audit_ids": ["9U94bbR7Tu6vPiWuThd6Gg"], "expires_at": "2022-12-30T04:38:05.000000Z", "issued_at": "2022-12-30T01:38:05.000000Z", "project": {"domain": {"id": "default", "name": "Default"}, "id": "de5af600557d44d0996e667499376dbb", "name": "admin"}, "is_domain": false, "roles": [{"id": "3e1adda493764db8921e97d68a5c8bc7", "name": "admin"}, {"id": "5f0594b46c8346d2996759ed1f5014f4", "name": "member"}, {"id": "28dea0246b6f47df9d99b5b33b423c8b", "name": "reader"}], "catalog": [{"endpoints": [{"id": "6fbbbec7587e4989a4de6e7a43c7205f", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/placement", "region": "RegionOne"}], "id": "10304edc7ec942d282567b8c4f5610d6", "type": "placement", "name": "placement"}, {"endpoints": [{"id": "366c8616c77243d38971272e0eaf4a9f", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/compute/v2.1", "region": "RegionOne"}], "id": "117766093c004578b95a185ecf2a5bbf", "type": "compute", "name": "nova"}, {"endpoints": [{"id": "0c0d6e47d833442f8da165ada8ad43a3", "interface": "internal", "region_id": "RegionOne", "url": "http://182.161.114.101:8779/v1.0/de5af600557d44d0996e667499376dbb", "region": "RegionOne"}, {"id": "9440e2831cc84d4da9f7d20c7b42638e", "interface": "admin", "region_id": "RegionOne", "url": "http://182.161.114.101:8779/v1.0/de5af600557d44d0996e667499376dbb", "region": "RegionOne"}, {"id": "c812ae1a5a3e40449f3c61edae4a6bcb", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101:8779/v1.0/de5af600557d44d0996e667499376dbb", "region": "RegionOne"}], "id": "22844f546aa941798f06e4978be9ab94", "type": "database", "name": "trove"}, {"endpoints": [{"id": "fad6bb86523b4f3aba4a6a6fb25cda0e", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/image", "region": "RegionOne"}], "id": "3b7aead421ce4611a82e684ab8c2ad2f", "type": "image", "name": "glance"}, {"endpoints": [{"id": "82c559324ad244beacb2fd0406f0298b", "interface": "admin", "region_id": "RegionOne", "url": "http://182.161.114.101:8080", "region": "RegionOne"}, {"id": "d1029ab4d5bf4cd6843a5b819966c2ea", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101:8080/v1/AUTH_de5af600557d44d0996e667499376dbb", "region": "RegionOne"}], "id": "628d3cea8d3b4615a4b047bae6112d0e", "type": "object-store", "name": "swift"}, {"endpoints": [{"id": "a7eecf5314434aca81e5feaa8bf7521e", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/identity", "region": "RegionOne"}], "id": "7055978143b74523b826bae1a9c0aabf", "type": "identity", "name": "keystone"}, {"endpoints": [{"id": "30dd85ebed584c54ba849ca0e2a4c825", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101:9696/networking", "region": "RegionOne"}], "id": "b3b850a4ec574d16a0cbece3c172a701", "type": "network", "name": "neutron"}, {"endpoints": [{"id": "871e0e3393974f9b9071342b59f62090", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/compute/v2/de5af600557d44d0996e667499376dbb", "region": "RegionOne"}], "id": "cb1921a9c779492484907683bb447e84", "type": "compute_legacy", "name": "nova_legacy"}, {"endpoints": [{"id": "b6a779acd3e04ed480847d4cb99ca710", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/volume/v3/de5af600557d44d0996e667499376dbb", "region": "RegionOne"}], "id": "d5345b92210c49aa975a873d04921780", "type": "block-storage", "name": "cinder"}, {"endpoints": [{"id": "8c624f7ed1e44096b8f0413866a11b1b", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/volume/v3/de5af600557d44d0996e667499376dbb", "region": "RegionOne"}], "id": "e559802e75824163a070bd92dd143476", "type": "volumev3", "name": "cinderv3"}]}}"#),
        expected_caller: "glance-api",
    },
    ReplayExchange {
        request_event: 13,
        response_event: 22,
        service: "glance-api",
        method: "PUT",
        target: "/v2/images/a42bfade-78ec-4c95-b7b4-272ba265072c/file",
        request_headers: &[
            ("Host", "127.0.0.1:60999"),
            ("User-Agent", "openstacksdk/0.101.0 keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Accept", ""),
            ("Content-Type", "application/octet-stream"),
            ("X-Auth-Token", "gAAAAABjrkD9cqBlaLtF1_FlWZfHjo2u7cJvLXX1HNPG-aFEylyLg7rBQwXEckDcnO__Yjj7akLG-xtxDVRk3zfTJPFdMYJ1MjeZJLaLbOD_Cbx4_D57F_EBR7g-QEmJdvXqN8GADYgNslbXm8cxCBhl3ww4_VJQBWEVQtav4_vVRW_E9vKAkxc"),
            ("X-Forwarded-For", "182.161.114.101"),
            ("X-Forwarded-Host", "182.161.114.101"),
            ("X-Forwarded-Server", "127.0.0.1"),
            ("Content-Length", "21233664"),
            ("Connection", "Keep-Alive"),
        ],
        request_body: Body::Binary {
            prefix: b"\x51\x46\x49\xfb\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x07\x00\x00\x00",
            len: 21233664,
        },
        status: 204,
        reason: "No Content",
        response_headers: &[
            ("Content-Type", "text/html; charset=UTF-8"),
            ("Content-Length", "0"),
            ("x-openstack-request-id", "req-74f0320e-e525-48c8-b989-5366de6d304b"),
        ],
        response_body: Body::Empty,
        expected_caller: "openstack",
    },
    ReplayExchange {
        request_event: 14,
        response_event: 15,
        service: "keystone",
        method: "POST",
        target: "/identity/v3/auth/tokens",
        request_headers: &[
            ("Host", "182.161.114.101"),
            ("User-Agent", "uwsgi keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Accept", "application/json"),
            ("Connection", "keep-alive"),
            ("Content-Type", "application/json"),
            ("Content-Length", "218"),
        ],
        request_body: Body::Text(r#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"password": "asdf", "name": "glance-swift", "domain": {"id": "default"}}}}, "scope": {"project": {"name": "service", "domain": {"id": "default"}}}}}"#),
        status: 201,
        reason: "CREATED",
        response_headers: &[
            ("Content-Type", "application/json"),
            ("Content-Length", "3908"),
            ("X-Subject-Token", "gAAAAABjrkD_e5s9lpQ1vHif6SROJFWbCUa7ySvxD0YfrBS2P3BwgwC-AhPppfXs5uRQoknWTZHWrnm5x2sC5C-B9JUyIgsUDKlQvE3PT5ro7Xm9MdhSpjkYfSu_5YNLizd26s9Zfm7Ctoi7OKG5vpx30vORbQHqtAHx09wbko5g-QSDNSjSIM8"),
            ("Vary", "X-Auth-Token"),
        ],
        response_body: Body::Text(r#"{"token": {"methods": ["password"], "user": {"domain": {"id": "default", "name": "Default"}, "id": "e4cc1d4770e748e985de1fef90bdca3b", "name": "glance-swift", "password_expires_at": null}, "audit_ids": ["OPHYuaAhRvCBHzKKmJku7A"], "expires_at": "2022-12-30T04:38:07.000000Z", "issued_at": "2022-12-30T01:38:07.000000Z", "project": {"domain": {"id": "default", "name": "Default"}, "id": "7c4cda7e4807414bbdfcb22b535a9802", "name": "service"}, "is_domain": false, "roles": [{"id": "fb02fd084500496fad9b29fd8c376f65", "name": "ResellerAdmin"}, {"id": "8305567cb70b4087babffa9c7e9a185f", "name": "service"}], "catalog": [{"endpoints": [{"id": "6fbbbec7587e4989a4de6e7a43c7205f", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/placement", "region": "RegionOne"}], "id": "10304edc7ec942d282567b8c4f5610d6", "type": "placement", "name": "placement"}, {"endpoints": [{"id": "366c8616c77243d38971272e0eaf4a9f", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/compute/v2.1", "region": "RegionOne"}], "id": "117766093c004578b95a185ecf2a5bbf", "type": "compute", "name": "nova"}, {"endpoints": [{"id": "0c0d6e47d833442f8da165ada8ad43a3", "interface": "internal", "region_id": "RegionOne", "url": "http://182.161.114.101:8779/v1.0/7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}, {"id": "9440e2831cc84d4da9f7d20c7b42638e", "interface": "admin", "region_id": "RegionOne", "url": "http://182.161.114.101:8779/v1.0/7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}, {"id": "c812ae1a5a3e40449f3c61edae4a6bcb", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101:8779/v1.0/7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}], "id": "22844f546aa941798f06e4978be9ab94", "type": "database", "name": "trove"}, {"endpoints": [{"id": "fad6bb86523b4f3aba4a6a6fb25cda0e", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/image", "region": "RegionOne"}], "id": "3b7aead421ce4611a82e684ab8c2ad2f", "type": "image", "name": "glance"}, {"endpoints": [{"id": "82c559324ad244beacb2fd0406f0298b", "interface": "admin", "region_id": "RegionOne", "url": "http://182.161.114.101:8080", "region": "RegionOne"}, {"id": "d1029ab4d5bf4cd6843a5b819966c2ea", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101:8080/v1/AUTH_7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}], "id": "628d3cea8d3b4615a4b047bae6112d0e", "type": "object-store", "name": "swift"}, {"endpoints": [{"id": "a7eecf5314434aca81e5feaa8bf7521e", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/identity", "region": "RegionOne"}], "id": "7055978143b74523b826bae1a9c0aabf", "type": "identity", "name": "keystone"}, {"endpoints": [{"id": "30dd85ebed584c54ba849ca0e2a4c825", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101:9696/networking", "region": "RegionOne"}], "id": "b3b850a4ec574d16a0cbece3c172a701", "type": "network", "name": "neutron"}, {"endpoints": [{"id": "871e0e3393974f9b9071342b59f62090", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/compute/v2/7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}], "id": "cb1921a9c779492484907683bb447e84", "type": "compute_legacy", "name": "nova_legacy"}, {"endpoints": [{"id": "b6a779acd3e04ed480847d4cb99ca710", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/volume/v3/7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}], "id": "d5345b92210c49aa975a873d04921780", "type": "block-storage", "name": "cinder"}, {"endpoints": [{"id": "8c624f7ed1e44096b8f0413866a11b1b", "interface": "public", "region_id": "RegionOne", "url": "http://182.161.114.101/volume/v3/7c4cda7e4807414bbdfcb22b535a9802", "region": "RegionOne"}], "id": "e559802e75824163a070bd92dd143476", "type": "volumev3", "name": "cinderv3"}]}}"#),
        expected_caller: "glance-api",
    },
    ReplayExchange {
        request_event: 16,
        response_event: 19,
        service: "swift-proxy-server",
        method: "HEAD",
        target: "/v1/AUTH_7c4cda7e4807414bbdfcb22b535a9802/glance",
        request_headers: &[
            ("Content-Type", ""),
            ("Host", "182.161.114.101:8080"),
            ("Accept-Encoding", "identity"),
            ("X-Auth-Token", "gAAAAABjrkD_e5s9lpQ1vHif6SROJFWbCUa7ySvxD0YfrBS2P3BwgwC-AhPppfXs5uRQoknWTZHWrnm5x2sC5C-B9JUyIgsUDKlQvE3PT5ro7Xm9MdhSpjkYfSu_5YNLizd26s9Zfm7Ctoi7OKG5vpx30vORbQHqtAHx09wbko5g-QSDNSjSIM8"),
            ("User-Agent", "python-swiftclient-4.1.0"),
        ],
        request_body: Body::Empty,
        status: 204,
        reason: "No Content",
        response_headers: &[
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Backend-Timestamp", "1671683363.84851"),
            ("X-Backend-Put-Timestamp", "1671683363.83052"),
            ("X-Backend-Delete-Timestamp", "0000000000.00000"),
            ("X-Backend-Status-Changed-At", "1671683363.83052"),
            ("X-Backend-Storage-Policy-Index", "0"),
            ("X-Container-Object-Count", "6"),
            ("X-Container-Bytes-Used", "1134410240"),
            ("X-Timestamp", "1671683363.84851"),
            ("X-Backend-Sharding-State", "unsharded"),
            ("Last-Modified", "Thu, 22 Dec 2022 04:29:24 GMT"),
            ("Accept-Ranges", "bytes"),
            ("X-Storage-Policy", "Policy-0"),
            ("X-Backend-Recheck-Container-Existence", "60"),
            ("X-Container-Sharding", "False"),
            ("Vary", "Accept"),
        ],
        response_body: Body::Empty,
        expected_caller: "glance-api",
    },
    ReplayExchange {
        request_event: 17,
        response_event: 18,
        service: "keystone",
        method: "GET",
        target: "/identity/v3/auth/tokens",
        request_headers: &[
            ("Host", "182.161.114.101"),
            ("User-Agent", "python-keystoneclient"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Accept", "application/json"),
            ("Connection", "keep-alive"),
            ("X-Subject-Token", "gAAAAABjrkD_e5s9lpQ1vHif6SROJFWbCUa7ySvxD0YfrBS2P3BwgwC-AhPppfXs5uRQoknWTZHWrnm5x2sC5C-B9JUyIgsUDKlQvE3PT5ro7Xm9MdhSpjkYfSu_5YNLizd26s9Zfm7Ctoi7OKG5vpx30vORbQHqtAHx09wbko5g-QSDNSjSIM8"),
            ("Openstack-Identity-Access-Rules", "1"),
            ("X-Auth-Token", "gAAAAABjrjJGaF5Q7tx3oVja4UAOY53wgd7ltBWAfsYXHJH3w4XwhdecBvGgfQR5qtuFW3PbnACXZKs_t9XgYG0q9cCCXOllAkzAMgbPkAHknHuINTQ3t0sPKEoJLawZ95y1jznIFcb-oQGXqGQKScS6qKwToz3Qc39csvxir7YStSBYOTw4E1U"),
        ],
        request_body: Body::Empty,
        status: 200,
        reason: "OK",
        response_headers: &[
            ("Content-Type", "application/json"),
            ("Content-Length", "604"),
            ("X-Subject-Token", "gAAAAABjrkD_e5s9lpQ1vHif6SROJFWbCUa7ySvxD0YfrBS2P3BwgwC-AhPppfXs5uRQoknWTZHWrnm5x2sC5C-B9JUyIgsUDKlQvE3PT5ro7Xm9MdhSpjkYfSu_5YNLizd26s9Zfm7Ctoi7OKG5vpx30vORbQHqtAHx09wbko5g-QSDNSjSIM8"),
            ("Vary", "X-Auth-Token"),
        ],
        response_body: Body::Text(r#"{"token": {"methods": ["password"], "user": {"domain": {"id": "default", "name": "Default"}, "id": "e4cc1d4770e748e985de1fef90bdca3b", "name": "glance-swift", "password_expires_at": null}, "audit_ids": ["OPHYuaAhRvCBHzKKmJku7A"], "expires_at": "2022-12-30T04:38:07.000000Z", "issued_at": "2022-12-30T01:38:07.000000Z", "project": {"domain": {"id": "default", "name": "Default"}, "id": "7c4cda7e4807414bbdfcb22b535a9802", "name": "service"}, "is_domain": false, "roles": [{"id": "fb02fd084500496fad9b29fd8c376f65", "name": "ResellerAdmin"}, {"id": "8305567cb70b4087babffa9c7e9a185f", "name": "service"}]}}"#),
        expected_caller: "swift-proxy-server",
    },
    ReplayExchange {
        request_event: 20,
        response_event: 21,
        service: "swift-proxy-server",
        method: "PUT",
        target: "/v1/AUTH_7c4cda7e4807414bbdfcb22b535a9802/glance/a42bfade-78ec-4c95-b7b4-272ba265072c",
        request_headers: &[
            ("Content-Type", ""),
            ("Content-Length", "21233664"),
            ("Host", "182.161.114.101:8080"),
            ("Accept-Encoding", "identity"),
            ("X-Auth-Token", "gAAAAABjrkD_e5s9lpQ1vHif6SROJFWbCUa7ySvxD0YfrBS2P3BwgwC-AhPppfXs5uRQoknWTZHWrnm5x2sC5C-B9JUyIgsUDKlQvE3PT5ro7Xm9MdhSpjkYfSu_5YNLizd26s9Zfm7Ctoi7OKG5vpx30vORbQHqtAHx09wbko5g-QSDNSjSIM8"),
            ("User-Agent", "python-swiftclient-4.1.0"),
        ],
        request_body: Body::Binary {
            prefix: b"\x51\x46\x49\xfb\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x07\x00\x00\x00",
            len: 21233664,
        },
        status: 201,
        reason: "Created",
        response_headers: &[
            ("Content-Type", "text/html; charset=UTF-8"),
            ("Content-Length", "0"),
            ("Etag", "0c839612eb3f2469420f2ccae990827f"),
            ("Last-Modified", "Fri, 30 Dec 2022 01:38:09 GMT"),
        ],
        response_body: Body::Empty,
        expected_caller: "glance-api",
    },
];

impl ReplayExchange {
    /// The request headers as (name, value) header fields, in order.
    pub fn request_header_fields(&self) -> Vec<tracer::model::HeaderField> {
        fields(self.request_headers)
    }

    pub fn response_header_fields(&self) -> Vec<tracer::model::HeaderField> {
        fields(self.response_headers)
    }
}

fn fields(pairs: &[(&str, &str)]) -> Vec<tracer::model::HeaderField> {
    pairs
        .iter()
        .map(|(k, v)| tracer::model::HeaderField::new(*k, *v))
        .collect()
}
