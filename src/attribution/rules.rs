//! What the config and the built-in tables say, compiled once at start:
//! `[[caller]]` rules, the process table, service users, User-Agent defaults
//! and `[[ignore]]` rules. Everything here is pure and cheap to evaluate.

use crate::config::{Config, IgnoreRuleConfig};
use ipnet::IpNet;
use regex::Regex;
use std::collections::HashMap;
use std::net::IpAddr;

/// One `[[caller]]` rule: every condition given must hold.
#[derive(Debug)]
pub(crate) struct CallerRule {
    pub name: String,
    pub user_agent: Option<Regex>,
    pub source: Option<IpNet>,
    pub listener: Option<String>,
}

impl CallerRule {
    fn matches(&self, service: &str, peer: IpAddr, user_agent: Option<&str>) -> bool {
        if let Some(l) = &self.listener {
            if l != service {
                return false;
            }
        }
        if let Some(net) = &self.source {
            if !net.contains(&canonical_ip(peer)) {
                return false;
            }
        }
        if let Some(re) = &self.user_agent {
            if !user_agent.is_some_and(|ua| re.is_match(ua)) {
                return false;
            }
        }
        true
    }
}

/// A command line pattern naming the caller a process is.
#[derive(Debug)]
pub(crate) struct ProcessRule {
    pub name: String,
    pub cmdline: Regex,
}

/// One `[[ignore]]` rule, its URL patterns with placeholders expanded.
#[derive(Debug)]
pub(crate) struct IgnoreRule {
    pub from: Option<String>,
    pub to: Option<String>,
    pub method: Option<String>,
    pub urls: Vec<Regex>,
    pub drop: bool,
}

impl IgnoreRule {
    /// `paths`: the request target and the upstream path; a URL pattern may match either.
    pub fn matches(&self, from: &str, to: &str, method: &str, paths: &[&str]) -> bool {
        let eq = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| w.eq_ignore_ascii_case(have))
        };
        eq(&self.from, from)
            && eq(&self.to, to)
            && eq(&self.method, method)
            && (self.urls.is_empty()
                || self
                    .urls
                    .iter()
                    .any(|re| paths.iter().any(|p| re.is_match(p))))
    }
}

/// Everything attribution reads from the config, compiled.
#[derive(Debug)]
pub struct Rules {
    pub(crate) callers: Vec<CallerRule>,
    /// Config entries first, then the built-in table.
    pub(crate) process: Vec<ProcessRule>,
    pub(crate) service_users: HashMap<String, String>,
    pub(crate) default_user_caller: String,
    pub(crate) peer_process: bool,
    pub(crate) ignores: Vec<IgnoreRule>,
    ua: UaDefaults,
    /// `<project>-<role>` program names.
    project_program: Regex,
}

/// The service users of a devstack and the service each runs as.
pub const DEFAULT_SERVICE_USERS: &[(&str, &str)] = &[
    ("glance", "glance-api"),
    ("glance-swift", "glance-api"),
    ("nova", "nova-api"),
    ("swift", "swift-proxy-server"),
    ("trove", "trove-api"),
    ("neutron", "neutron-server"),
    ("cinder", "cinder-api"),
    ("placement", "placement-api"),
];

/// The process that carries on a request's work after its API answered
/// (nova-api answers `POST /servers` 202; nova-compute builds the server,
/// calling neutron and glance with the user's token). A service not named
/// here does its own work.
pub const DEFAULT_WORKERS: &[(&str, &str)] = &[
    ("nova-api", "nova-compute"),
    ("cinder-api", "cinder-volume"),
    ("trove-api", "trove-taskmanager"),
    ("manila-api", "manila-share"),
    ("heat-api", "heat-engine"),
    ("octavia-api", "octavia-worker"),
];

/// `{name}` placeholders of `[[ignore]].urls`, as in requestshook's mappings.
pub const DEFAULT_PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "uuid",
        "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
    ),
    ("name", "[^/?]+"),
    ("version", r"v[0-9]+(?:\.[0-9]+)*"),
];

/// The built-in process table: (caller, command line regex), first match wins.
/// The CLI comes first and is anchored on the program, so a CLI argument that
/// happens to name a service (`openstack image create glance-api`) cannot
/// make it look like one; keystone comes last because other services' command
/// lines may carry keystone paths (in the lab glance runs keystone's uwsgi).
/// `W(x)`: x as a whole word, program or argument, optionally with the
/// `uWSGI` suffix uwsgi's `--procname-prefix` appends.
const BUILTIN_PROCESS: &[(&str, &str)] = &[
    (
        "openstack",
        r"^(?:\S*/)?(?:python[0-9.]*\s+(?:-\S+\s+)*)?(?:\S*/)?(?:openstack|swift|glance|nova|cinder|neutron|trove)(?:\s|$)",
    ),
    (
        "glance-api",
        r"W(glance-api|glance-wsgi-api)|glance\.wsgi\.|glance\.cmd\.api|glance[-\w]*uwsgi\.ini",
    ),
    (
        "nova-api-metadata",
        r"W(nova-api-metadata|nova-metadata-wsgi)|nova\.wsgi\.metadata|nova-metadata[-\w]*uwsgi\.ini",
    ),
    (
        "nova-api",
        r"W(nova-api|nova-api-wsgi|nova-api-os-compute|nova-osapi_compute)|nova\.wsgi\.osapi_compute|nova-api[-\w]*uwsgi\.ini",
    ),
    ("nova-compute", r"W(nova-compute)"),
    ("nova-scheduler", r"W(nova-scheduler)"),
    ("nova-conductor", r"W(nova-conductor)"),
    (
        "neutron-server",
        r"W(neutron-server|neutron-api)|neutron\.wsgi\.api|neutron[-\w]*uwsgi\.ini",
    ),
    (
        "swift-proxy-server",
        r"W(swift-proxy-server)|(?:^|[\s/])proxy-server\.conf(?:\s|$)",
    ),
    (
        "trove-api",
        r"W(trove-api)|trove\.cmd\.api|\(wsgi:trove-api\)",
    ),
    (
        "placement-api",
        r"W(placement-api|placement)|placement\.wsgi\.|placement[-\w]*uwsgi\.ini",
    ),
    (
        "cinder-api",
        r"W(cinder-api|cinder-wsgi)|cinder\.wsgi\.|cinder-api[-\w]*uwsgi\.ini",
    ),
    ("horizon", r"\(wsgi:horizon\)|openstack_dashboard\.wsgi"),
    (
        "keystone",
        r"W(keystone|keystone-wsgi-public|keystone-wsgi-admin|keystone-all)|keystone\.wsgi\.|keystone\.server\.wsgi|keystone[-\w]*uwsgi\.ini",
    ),
];

/// OpenStack projects whose `<project>-<role>` programs (nova-compute,
/// trove-taskmanager, swift-object-server, ...) name themselves.
const PROJECTS: &str = "nova|neutron|cinder|glance|trove|swift|placement|heat|octavia|manila|barbican|designate|ironic|magnum|aodh|ceilometer|gnocchi|zaqar|senlin|masakari|watcher|cyborg|tacker|blazar|mistral|zun|kuryr";

fn expand_word_macro(re: &str) -> String {
    // W(a|b) -> a or b as a whole word (after start, space, '/' or '='),
    // optionally followed by uwsgi's procname suffix, or by the colon of
    // the titles cotyledon gives nova's workers ("nova-scheduler:
    // SchedulerService worker(0)").
    let w = Regex::new(r"W\(([^)]*)\)").expect("static regex");
    w.replace_all(re, r"(?:^|[\s/=])(?:$1)(?i:uwsgi)?:?(?:\s|$)")
        .into_owned()
}

/// User-Agent defaults, for what neither process nor token can tell.
#[derive(Debug)]
struct UaDefaults {
    fixed: Vec<(Regex, String)>,
    /// `glance/25.0.1 keystonemiddleware.auth_token/...`: the project runs the middleware.
    middleware: Regex,
    /// `nova-compute keystoneauth1/...`: keystoneauth names the program (sys.argv[0]).
    program: Regex,
}

impl UaDefaults {
    fn new(cli: impl Fn(&str) -> String) -> Self {
        let fixed = [
            (
                r"^(?:openstacksdk|python-openstackclient|osc-lib)/|^openstack(?:/\S+)?\s+keystoneauth1",
                "openstack",
            ),
            (r"^python-troveclient", "openstack"),
            // keystonemiddleware prefixes the project its oslo.config names
            // (glance/33.0.0 keystonemiddleware...); swift's paste pipeline
            // has no oslo.config project, so its UA starts bare.
            (r"^keystonemiddleware\.auth_token/", "swift-proxy-server"),
            (r"^go-troveclient", "trove-client"),
        ];
        Self {
            fixed: fixed
                .iter()
                .map(|(re, name)| (Regex::new(re).expect("static regex"), cli(name)))
                .collect(),
            middleware: Regex::new(r"^([A-Za-z][\w.-]*)/\S+\s+keystonemiddleware")
                .expect("static regex"),
            program: Regex::new(&format!(
                r"^((?:{PROJECTS})-[a-z0-9_-]+)(?:/\S+)?\s+keystoneauth1"
            ))
            .expect("static regex"),
        }
    }
}

fn compile_regex(what: &str, re: &str) -> Result<Regex, String> {
    Regex::new(re).map_err(|e| {
        let msg = e.to_string();
        let last = msg.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        format!("{what}: {re:?} is not a valid regex ({})", last.trim())
    })
}

impl Rules {
    /// The built-in tables alone (a config with no rules of its own).
    pub fn builtin() -> std::sync::Arc<Rules> {
        static BUILTIN: std::sync::LazyLock<std::sync::Arc<Rules>> =
            std::sync::LazyLock::new(|| {
                std::sync::Arc::new(
                    Rules::compile(&Config::default()).expect("the built-in tables compile"),
                )
            });
        BUILTIN.clone()
    }

    /// Compiles the attribution sections of a config; the error is one line
    /// naming the table and the value at fault.
    pub fn compile(config: &Config) -> Result<Rules, String> {
        let mut callers = Vec::new();
        for (i, c) in config.callers.iter().enumerate() {
            let what = format!("[[caller]] #{} ({:?})", i + 1, c.name);
            if c.name.trim().is_empty() {
                return Err(format!("[[caller]] #{} has an empty name", i + 1));
            }
            if c.user_agent.is_none() && c.source.is_none() && c.listener.is_none() {
                return Err(format!(
                    "{what} needs at least one of user_agent, source, listener"
                ));
            }
            let user_agent = c
                .user_agent
                .as_deref()
                .map(|re| compile_regex(&format!("{what} user_agent"), re))
                .transpose()?;
            let source = c
                .source
                .as_deref()
                .map(|s| parse_source(s).map_err(|e| format!("{what} source: {e}")))
                .transpose()?;
            if let Some(l) = &c.listener {
                if !config.services.iter().any(|s| &s.name == l) {
                    return Err(format!(
                        "{what} listener {l:?} is not the name of a [[service]]"
                    ));
                }
            }
            callers.push(CallerRule {
                name: c.name.clone(),
                user_agent,
                source,
                listener: c.listener.clone(),
            });
        }

        let a = &config.attribution;
        if a.default_user_caller.trim().is_empty() {
            return Err("[attribution] default_user_caller is empty".into());
        }
        let mut process = Vec::new();
        for (i, p) in a.process.iter().enumerate() {
            if p.name.trim().is_empty() {
                return Err(format!(
                    "[[attribution.process]] #{} has an empty name",
                    i + 1
                ));
            }
            let what = format!("[[attribution.process]] #{} ({:?}) cmdline", i + 1, p.name);
            process.push(ProcessRule {
                name: p.name.clone(),
                cmdline: compile_regex(&what, &p.cmdline)?,
            });
        }
        // The built-in tables call the CLI "openstack": the config may rename it.
        let cli = |name: &str| {
            if name == "openstack" {
                a.default_user_caller.clone()
            } else {
                name.to_string()
            }
        };
        for (name, re) in BUILTIN_PROCESS {
            process.push(ProcessRule {
                name: cli(name),
                cmdline: Regex::new(&expand_word_macro(re)).expect("static regex"),
            });
        }

        let mut service_users: HashMap<String, String> = DEFAULT_SERVICE_USERS
            .iter()
            .map(|(u, s)| (u.to_string(), s.to_string()))
            .collect();
        for (user, service) in &a.service_users {
            if service.trim().is_empty() {
                return Err(format!(
                    "[attribution.service_users] {user:?} maps to an empty name"
                ));
            }
            service_users.insert(user.clone(), service.clone());
        }

        let mut placeholders: HashMap<String, String> = DEFAULT_PLACEHOLDERS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ident = Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("static regex");
        for (name, re) in &config.ignore_placeholders {
            if !ident.is_match(name) {
                return Err(format!(
                    "[ignore_placeholders] {name:?}: use letters, digits and '_'"
                ));
            }
            compile_regex(&format!("[ignore_placeholders] {name}"), re)?;
            placeholders.insert(name.clone(), re.clone());
        }
        let ignores = config
            .ignores
            .iter()
            .enumerate()
            .map(|(i, r)| compile_ignore(i, r, &placeholders))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Rules {
            callers,
            process,
            service_users,
            default_user_caller: a.default_user_caller.clone(),
            peer_process: a.peer_process,
            ignores,
            ua: UaDefaults::new(cli),
            project_program: Regex::new(&format!(r"^(?:{PROJECTS})-[a-z0-9_-]+$"))
                .expect("static regex"),
        })
    }

    /// The first `[[caller]]` rule that matches.
    pub(crate) fn caller_rule(
        &self,
        service: &str,
        peer: IpAddr,
        user_agent: Option<&str>,
    ) -> Option<&str> {
        self.callers
            .iter()
            .find(|r| r.matches(service, peer, user_agent))
            .map(|r| r.name.as_str())
    }

    /// The caller a command line belongs to: the table (config entries
    /// first), then `<project>-<role>` program names.
    pub fn process_caller(&self, argv: &[String]) -> Option<String> {
        if argv.is_empty() {
            return None;
        }
        let joined = argv.join(" ");
        if let Some(r) = self.process.iter().find(|r| r.cmdline.is_match(&joined)) {
            return Some(r.name.clone());
        }
        let program = program_name(argv)?;
        self.project_program.is_match(&program).then_some(program)
    }

    /// The service a keystone user belongs to, if it is a service user.
    pub(crate) fn service_user(&self, user: &str) -> Option<&str> {
        self.service_users.get(user).map(String::as_str)
    }

    /// The service program a User-Agent names (`nova-compute keystoneauth1/…`:
    /// keystoneauth puts the program first). A program is one process of
    /// one service, so this outranks a token owner that several services
    /// share (nova-scheduler and nova-compute both call placement as user
    /// `placement`).
    pub fn user_agent_program(&self, ua: &str) -> Option<String> {
        self.ua.program.captures(ua).map(|c| c[1].to_string())
    }

    /// Who carries on the work `service` accepted (itself unless the worker table says).
    pub(crate) fn worker<'a>(&self, service: &'a str) -> &'a str {
        DEFAULT_WORKERS
            .iter()
            .find(|(api, _)| *api == service)
            .map_or(service, |(_, w)| *w)
    }

    /// The built-in User-Agent defaults.
    pub fn user_agent_default(&self, ua: &str) -> Option<String> {
        if let Some((_, name)) = self.ua.fixed.iter().find(|(re, _)| re.is_match(ua)) {
            return Some(name.clone());
        }
        if let Some(c) = self.ua.middleware.captures(ua) {
            let project = &c[1];
            return Some(
                self.service_user(project)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{project}-api")),
            );
        }
        self.ua.program.captures(ua).map(|c| c[1].to_string())
    }
}

/// The program a command line runs: argv[0], or the script an interpreter runs.
pub(crate) fn program_name(argv: &[String]) -> Option<String> {
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let first = base(
        argv.first()?
            .split_whitespace()
            .next()?
            .trim_end_matches(':'),
    );
    let interpreter = first.starts_with("python") || first == "uwsgi";
    if first.starts_with("python") {
        if let Some(script) = argv[1..].iter().find(|a| !a.starts_with('-')) {
            return Some(base(script));
        }
    }
    (!interpreter || argv.len() == 1).then_some(first)
}

fn compile_ignore(
    i: usize,
    r: &IgnoreRuleConfig,
    placeholders: &HashMap<String, String>,
) -> Result<IgnoreRule, String> {
    let what = format!("[[ignore]] #{}", i + 1);
    if r.from.is_none() && r.to.is_none() && r.method.is_none() && r.urls.is_empty() {
        return Err(format!(
            "{what} needs at least one of from, to, method, urls (it would match everything)"
        ));
    }
    let placeholder = Regex::new(r"\{([A-Za-z_][A-Za-z0-9_]*)\}").expect("static regex");
    let mut urls = Vec::new();
    for url in &r.urls {
        let mut unknown = None;
        let expanded = placeholder.replace_all(url, |c: &regex::Captures<'_>| {
            match placeholders.get(&c[1]) {
                Some(re) => format!("(?:{re})"),
                None => {
                    unknown.get_or_insert_with(|| c[1].to_string());
                    String::new()
                }
            }
        });
        if let Some(name) = unknown {
            return Err(format!(
                "{what} url {url:?}: unknown placeholder {{{name}}} (define it in [ignore_placeholders])"
            ));
        }
        urls.push(compile_regex(&format!("{what} url"), &expanded)?);
    }
    Ok(IgnoreRule {
        from: r.from.clone(),
        to: r.to.clone(),
        method: r.method.clone(),
        urls,
        drop: r.drop,
    })
}

/// `10.0.0.5`, `10.0.0.0/24`, `::1`, `fd00::/8`.
fn parse_source(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is not an address or CIDR like 10.0.0.0/24"))
}

/// IPv4-mapped IPv6 addresses (a dual-stack listener) as plain IPv4.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(toml: &str) -> Rules {
        Rules::compile(&Config::parse(toml).unwrap()).unwrap()
    }

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn process_table_knows_real_cmdlines() {
        let r = rules("");
        let cases = [
            ("/tmp/devstack-lab/venv-keystone/bin/uwsgi --http-socket 127.0.0.1:9292 --virtualenv /tmp/devstack-lab/venv-glance --module glance.wsgi.api:application --master --processes 1", "glance-api"),
            ("/tmp/devstack-lab/venv-keystone/bin/uwsgi --http-socket 127.0.0.1:5000 --virtualenv /tmp/devstack-lab/venv-keystone --module keystone.wsgi.api:application --master", "keystone"),
            ("/tmp/devstack-lab/venv-keystone/bin/uwsgi --http-socket 127.0.0.1:5000 --mount /identity=keystone.wsgi.api:application --manage-script-name", "keystone"),
            ("uwsgi --procname-prefix glance-api --ini /etc/glance/glance-uwsgi.ini", "glance-api"),
            ("glance-apiuWSGI worker 1", "glance-api"),
            ("keystoneuWSGI master", "keystone"),
            ("nova-apiuWSGI worker 2", "nova-api"),
            ("placementuWSGI worker 1", "placement-api"),
            ("uwsgi --procname-prefix nova-api --ini /etc/nova/nova-api-uwsgi.ini", "nova-api"),
            ("uwsgi --procname-prefix nova-api-meta --ini /etc/nova/nova-metadata-uwsgi.ini", "nova-api-metadata"),
            ("/usr/bin/python3 /usr/local/bin/nova-compute --config-file /etc/nova/nova-cpu.conf", "nova-compute"),
            ("/usr/bin/python3 /usr/local/bin/nova-scheduler --config-file /etc/nova/nova.conf", "nova-scheduler"),
            ("/usr/bin/python3 /usr/local/bin/nova-conductor --config-file /etc/nova/nova.conf", "nova-conductor"),
            ("/usr/bin/python3 /usr/local/bin/neutron-server --config-file /etc/neutron/neutron.conf --config-file /etc/neutron/plugins/ml2/ml2_conf.ini", "neutron-server"),
            ("/tmp/devstack-lab/venv-swift/bin/python3 /tmp/devstack-lab/venv-swift/bin/swift-proxy-server /tmp/devstack-lab/etc/swift/proxy-server.conf -v", "swift-proxy-server"),
            ("/usr/bin/python3 /usr/local/bin/swift-proxy-server proxy-server.conf", "swift-proxy-server"),
            ("/tmp/devstack-lab/venv-trove/bin/python3 /tmp/devstack-lab/venv-trove/bin/trove-api --config-file /tmp/devstack-lab/etc/trove/trove.conf", "trove-api"),
            ("uwsgi --procname-prefix placement --ini /etc/placement/placement-uwsgi.ini", "placement-api"),
            ("uwsgi --procname-prefix cinder-api --ini /etc/cinder/cinder-api-uwsgi.ini", "cinder-api"),
            ("/tmp/devstack-lab/venv-client/bin/python3 /tmp/devstack-lab/venv-client/bin/openstack image create --disk-format qcow2 --file small.img glance-api", "openstack"),
            ("python3 /usr/local/bin/openstack image create cirros", "openstack"),
            ("/usr/local/bin/openstack server list", "openstack"),
            ("/usr/bin/python3 -u /usr/local/bin/trove database instance list", "openstack"),
            // `<project>-<role>` programs not in the table name themselves.
            ("/usr/bin/python3 /usr/local/bin/trove-taskmanager --config-file /etc/trove/trove.conf", "trove-taskmanager"),
            ("/usr/bin/python3 /usr/local/bin/swift-object-server /etc/swift/object-server/1.conf", "swift-object-server"),
        ];
        for (cmd, want) in cases {
            assert_eq!(r.process_caller(&argv(cmd)).as_deref(), Some(want), "{cmd}");
        }
        for cmd in [
            "/usr/sbin/apache2 -k start",
            "curl -s http://127.0.0.1:9292/",
            "/usr/bin/python3 /home/stack/myscript.py --glance",
            "/tmp/devstack-lab/venv-keystone/bin/uwsgi --http-socket 127.0.0.1:9000 --module other.app",
            "target/debug/tracer serve",
        ] {
            assert_eq!(r.process_caller(&argv(cmd)), None, "{cmd}");
        }
    }

    #[test]
    fn config_process_entries_come_first() {
        let r = rules(
            r#"
[[attribution.process]]
name = "my-glance"
cmdline = "glance\\.wsgi"
[[attribution.process]]
name = "heat-api"
cmdline = "heat\\.wsgi\\.api"
"#,
        );
        let glance = argv("uwsgi --module glance.wsgi.api:application");
        assert_eq!(r.process_caller(&glance).as_deref(), Some("my-glance"));
        let heat = argv("uwsgi --module heat.wsgi.api:application");
        assert_eq!(r.process_caller(&heat).as_deref(), Some("heat-api"));
    }

    #[test]
    fn user_agent_defaults() {
        let r = rules("");
        let cases = [
            ("openstacksdk/0.101.0 keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10", Some("openstack")),
            ("python-openstackclient/6.0.0 keystoneauth1/5.0.0", Some("openstack")),
            ("openstack keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10", Some("openstack")),
            ("glance/25.0.1.dev4 keystonemiddleware.auth_token/10.1.0 keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10", Some("glance-api")),
            ("swift/2.38.3 keystonemiddleware.auth_token/10.1.0 keystoneauth1/5.0.0", Some("swift-proxy-server")),
            // What swift's authtoken really sends (lab capture).
            ("keystonemiddleware.auth_token/13.0.1 keystoneauth1/5.18.1 python-requests/2.34.2 CPython/3.11.7", Some("swift-proxy-server")),
            ("trove/26.0.0 keystonemiddleware.auth_token/13.0.1 keystoneauth1/5.18.1 python-requests/2.34.2 CPython/3.11.7", Some("trove-api")),
            ("openstacksdk/4.22.0 keystoneauth1/5.18.1 python-requests/2.34.2 CPython/3.11.7", Some("openstack")),
            ("heat/22.0.0 keystonemiddleware.auth_token/10.1.0 keystoneauth1/5.0.0", Some("heat-api")),
            ("nova-compute keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10", Some("nova-compute")),
            ("trove-api keystoneauth1/5.0.0 python-requests/2.28.1", Some("trove-api")),
            ("go-troveclient/0.1", Some("trove-client")),
            ("python-troveclient", Some("openstack")),
            ("uwsgi keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.8.10", None),
            ("python-keystoneclient", None),
            ("python-swiftclient-4.1.0", None),
            ("curl/8.0.1", None),
        ];
        for (ua, want) in cases {
            assert_eq!(r.user_agent_default(ua).as_deref(), want, "{ua}");
        }
    }

    #[test]
    fn service_users_merge_with_defaults() {
        let r = rules("[attribution.service_users]\nglance = \"glance\"\nheat = \"heat-api\"\n");
        assert_eq!(r.service_user("glance"), Some("glance"));
        assert_eq!(r.service_user("glance-swift"), Some("glance-api"));
        assert_eq!(r.service_user("heat"), Some("heat-api"));
        assert_eq!(r.service_user("admin"), None);
        // The middleware UA uses the same map.
        assert_eq!(
            r.user_agent_default("heat/1 keystonemiddleware.auth_token/1")
                .as_deref(),
            Some("heat-api")
        );
    }

    #[test]
    fn caller_rules_match_all_conditions() {
        let r = rules(
            r#"
[[service]]
name = "trove"
listen = "127.0.0.1:18779"
upstream = "http://127.0.0.1:8779"
[[caller]]
name = "horizon"
source = "10.0.0.0/24"
[[caller]]
name = "trove-client"
user_agent = "^go-troveclient"
listener = "trove"
[[caller]]
name = "lab-box"
source = "192.168.1.7"
"#,
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            r.caller_rule("keystone", ip("10.0.0.9"), None),
            Some("horizon")
        );
        assert_eq!(
            r.caller_rule("keystone", ip("::ffff:10.0.0.9"), None),
            Some("horizon")
        );
        assert_eq!(r.caller_rule("keystone", ip("10.0.1.9"), None), None);
        assert_eq!(
            r.caller_rule("trove", ip("127.0.0.1"), Some("go-troveclient/1.0")),
            Some("trove-client")
        );
        assert_eq!(
            r.caller_rule("keystone", ip("127.0.0.1"), Some("go-troveclient/1.0")),
            None
        );
        assert_eq!(r.caller_rule("trove", ip("127.0.0.1"), None), None);
        assert_eq!(r.caller_rule("x", ip("192.168.1.7"), None), Some("lab-box"));
    }

    #[test]
    fn bad_rules_are_named() {
        // A config with a bad rule does not parse: the rule is named.
        let err = |toml: &str| Config::parse(toml).unwrap_err();
        assert!(err("[[caller]]\nname = \"x\"\n").contains("at least one"));
        let e = err("[[caller]]\nname = \"x\"\nuser_agent = \"(\"\n");
        assert!(
            e.contains("[[caller]] #1") && e.contains("user_agent"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        assert!(err("[[caller]]\nname = \"x\"\nsource = \"10.0.0.300\"\n").contains("source"));
        assert!(err("[[caller]]\nname = \"x\"\nlistener = \"nope\"\n").contains("nope"));
        assert!(err("[[ignore]]\ndrop = true\n").contains("at least one"));
        let e = err("[[ignore]]\nurls = [\"/v2/{image}\"]\n");
        assert!(e.contains("{image}"), "{e}");
        assert!(
            err("[[attribution.process]]\nname = \"a\"\ncmdline = \"[\"\n").contains("cmdline")
        );
        assert!(err("[ignore_placeholders]\n\"a-b\" = \"x\"\n").contains("a-b"));
        // Unknown keys stay errors in every new table.
        for bad in [
            "[[caller]]\nname = \"x\"\nsource = \"::1\"\nport = 1\n",
            "[attribution]\npeer_proces = true\n",
            "[[attribution.process]]\nname = \"a\"\ncmdline = \"a\"\nargv = 1\n",
            "[[ignore]]\nurl = \"/x\"\n",
        ] {
            assert!(Config::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ignore_placeholders_expand() {
        let r = rules(
            r#"
[ignore_placeholders]
project = "[0-9a-f]{32}"
[[ignore]]
from = "nova-compute"
to = "placement-api"
method = "GET"
urls = ["/placement/resource_providers$", "/placement/resource_providers/{uuid}/(inventories|aggregates|allocations|traits)"]
[[ignore]]
to = "swift-proxy-server"
urls = ["^/{version}/AUTH_{project}/{name}$"]
drop = true
"#,
        );
        let a = &r.ignores[0];
        let uuid = "/placement/resource_providers/a42bfade-78ec-4c95-b7b4-272ba265072c/traits";
        assert!(a.matches("nova-compute", "placement-api", "GET", &[uuid]));
        assert!(a.matches("Nova-Compute", "placement-api", "get", &[uuid]));
        assert!(!a.matches("nova-compute", "placement-api", "PUT", &[uuid]));
        assert!(!a.matches("openstack", "placement-api", "GET", &[uuid]));
        assert!(!a.matches(
            "nova-compute",
            "placement-api",
            "GET",
            &["/placement/resource_providers/not-a-uuid/traits"]
        ));
        // Either the client's target or the upstream path may match.
        assert!(a.matches(
            "nova-compute",
            "placement-api",
            "GET",
            &["/resource_providers", "/placement/resource_providers"]
        ));
        let b = &r.ignores[1];
        assert!(b.drop);
        let container = "/v1/AUTH_7c4cda7e4807414bbdfcb22b535a9802/glance";
        assert!(b.matches("glance-api", "swift-proxy-server", "HEAD", &[container]));
        assert!(!b.matches(
            "glance-api",
            "swift-proxy-server",
            "HEAD",
            &["/v1/AUTH_7c4cda7e4807414bbdfcb22b535a9802/glance/a42bfade"]
        ));
    }

    #[test]
    fn program_names() {
        assert_eq!(
            program_name(&argv("/usr/bin/python3 -u /usr/local/bin/nova-compute --x")).as_deref(),
            Some("nova-compute")
        );
        assert_eq!(
            program_name(&argv("/usr/sbin/apache2 -k")).as_deref(),
            Some("apache2")
        );
        assert_eq!(program_name(&argv("uwsgi --ini x")), None);
    }
}
