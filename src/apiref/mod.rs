//! The OpenStack API reference of a request: which operation of the
//! published api-ref (docs.openstack.org/api-ref) a recorded call is, with
//! its title and link.
//!
//! The operations are `assets/api-ref.json`, generated from the services'
//! own api-ref sources by `scripts/gen-api-ref.py` (docs/api-ref.md) and
//! loaded once. Matching is [`matcher`]'s: pure, no I/O.

mod matcher;

use serde::Deserialize;
use serde_json::Value;
use std::str::FromStr;
use std::sync::OnceLock;

/// An OpenStack API with a bundled api-ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    Identity,
    Image,
    ObjectStore,
    Compute,
    Network,
    Placement,
    BlockStorage,
    Database,
}

impl Api {
    pub const ALL: [Api; 8] = [
        Api::Identity,
        Api::Image,
        Api::ObjectStore,
        Api::Compute,
        Api::Network,
        Api::Placement,
        Api::BlockStorage,
        Api::Database,
    ];

    /// The service type, as the index and the api-ref URLs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Identity => "identity",
            Api::Image => "image",
            Api::ObjectStore => "object-store",
            Api::Compute => "compute",
            Api::Network => "network",
            Api::Placement => "placement",
            Api::BlockStorage => "block-storage",
            Api::Database => "database",
        }
    }

    /// The API a tracer service is most likely in front of, from its name:
    /// a service type (`identity`, `volumev3`, ...) or the OpenStack project
    /// that serves it (`keystone`, `glance-api`, `swift-proxy-server`,
    /// `nova-api`, `neutron-server`, `placement-api`, `cinder-api`,
    /// `trove-api`).
    pub fn guess_from_service(name: &str) -> Option<Api> {
        if let Ok(api) = name.parse() {
            return Some(api);
        }
        let name = name.to_ascii_lowercase();
        let projects = [
            ("keystone", Api::Identity),
            ("glance", Api::Image),
            ("swift", Api::ObjectStore),
            ("nova", Api::Compute),
            ("neutron", Api::Network),
            ("placement", Api::Placement),
            ("cinder", Api::BlockStorage),
            ("trove", Api::Database),
        ];
        projects
            .iter()
            .find(|(project, _)| name.starts_with(project))
            .map(|&(_, api)| api)
    }
}

impl std::fmt::Display for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown API {0:?}: expected identity, image, object-store, compute, network, placement, block-storage or database")]
pub struct UnknownApi(pub String);

impl FromStr for Api {
    type Err = UnknownApi;

    /// A service type or one of its aliases in the service catalog.
    fn from_str(s: &str) -> Result<Api, UnknownApi> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "identity" => Api::Identity,
            "image" => Api::Image,
            "object-store" => Api::ObjectStore,
            "compute" => Api::Compute,
            "network" => Api::Network,
            "placement" => Api::Placement,
            "block-storage" | "block-store" | "volumev3" | "volumev2" | "volume" => {
                Api::BlockStorage
            }
            "database" => Api::Database,
            _ => return Err(UnknownApi(s.to_string())),
        })
    }
}

/// One documented operation of an api-ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub api: Api,
    pub method: String,
    /// The path template as the api-ref writes it: `/v2/images/{image_id}`.
    pub path: String,
    /// The section title: `Create image`.
    pub title: String,
    /// The published link: the page with `?expanded=ID-detail#ID`, or the
    /// page alone when the section's id is not known (a title repeated on
    /// its page gets an automatic id, see scripts/gen-api-ref.py).
    pub url: String,
}

/// The documented operation a request is, or `None` when the api-ref does
/// not document it or several operations fit and the request cannot tell
/// them apart. `target` is the request target as the client sent it (path
/// and query: `/identity/v3/auth/tokens`, `/v2.0/networks?name=x`); `body`
/// the request body when it is JSON.
pub fn find(
    api: Api,
    method: &str,
    target: &str,
    body: Option<&Value>,
) -> Option<&'static Operation> {
    let apis = &index().apis[api as usize];
    matcher::find(api, &apis.entries, method, target, body).map(|i| &apis.operations[i])
}

/// Every bundled operation of an API, in the order of its api-ref pages.
pub fn operations(api: Api) -> &'static [Operation] {
    &index().apis[api as usize].operations
}

struct Index {
    /// In the order of [`Api::ALL`].
    apis: Vec<ApiIndex>,
}

#[derive(Default)]
struct ApiIndex {
    operations: Vec<Operation>,
    /// What the matcher needs of each operation, in the same order.
    entries: Vec<matcher::Entry>,
}

#[derive(Deserialize)]
struct RawIndex {
    apis: Vec<RawApi>,
}

#[derive(Deserialize)]
struct RawApi {
    api: String,
    pages: Vec<String>,
    operations: Vec<RawOperation>,
}

#[derive(Deserialize)]
struct RawOperation {
    page: usize,
    method: String,
    path: String,
    title: String,
    anchor: Option<String>,
    #[serde(default)]
    examples: Vec<Value>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        parse_index(include_str!("../../assets/api-ref.json"))
            .unwrap_or_else(|e| panic!("assets/api-ref.json: {e}"))
    })
}

fn parse_index(text: &str) -> Result<Index, String> {
    let raw: RawIndex = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut apis: Vec<ApiIndex> = Api::ALL.iter().map(|_| ApiIndex::default()).collect();
    for raw_api in raw.apis {
        let api: Api = raw_api.api.parse().map_err(|e: UnknownApi| e.to_string())?;
        let out = &mut apis[api as usize];
        for op in raw_api.operations {
            let page = raw_api
                .pages
                .get(op.page)
                .ok_or_else(|| format!("{api}: {} {} on no page", op.method, op.path))?;
            let url = match &op.anchor {
                Some(id) => format!("{page}?expanded={id}-detail#{id}"),
                None => page.clone(),
            };
            out.entries.push(matcher::Entry::new(
                api,
                &op.method,
                &op.path,
                &op.title,
                op.examples,
            ));
            out.operations.push(Operation {
                api,
                method: op.method,
                path: op.path,
                title: op.title,
                url,
            });
        }
    }
    Ok(Index { apis })
}

#[cfg(test)]
mod tests;
