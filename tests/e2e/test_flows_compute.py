"""End to end, compute and network: the real openstack CLI against real
keystone, placement, nova (api, conductor, scheduler, compute with the fake
driver) and neutron (ML2, tests/lab/shims binds the ports), every call
through tracer, each command recorded as a flow.

Every flow gets e2elib.check_all. The server flows have concurrent calls
(nova-scheduler and nova-compute call placement and neutron while the CLI
polls nova-api, neutron notifies nova when a port changes): their pages are
checked event by event in tracer's order (check_events) instead of as a
nesting, and every caller is the peer process tracer found.

Runs after test_flows.py (file order): the network flows make what the
server flows use; fixtures make what a test needs when it runs alone.
"""
import re

import e2elib
from conftest import FLAVOR, NETWORK, SERVER, SERVER_IMAGE, SUBNET, SUBNET_RANGE, USER
from e2elib import CLI

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
HEX32 = r"[0-9a-f]{32}"

FLOW_NAMES = ["user-create", "user-list", "flavor-list", "network-create", "subnet-create", "network-list",
              "security-group-list", "server-create", "server-list", "server-show", "port-list",
              "server-delete"]


def record(recorder, name, *args, nested=True):
    flow = recorder.record(name, ["openstack", *args], title=f"openstack {' '.join(args)}", quiet=3.0)
    e2elib.check_all(flow, nested=nested)
    first = [(x["caller"], x["service"], x["method"], e2elib.path_of(x["target"])) for x in flow.exchanges[:2]]
    want = [(CLI, "keystone", "GET", "/v3"), (CLI, "keystone", "POST", "/v3/auth/tokens")]
    flow.check(first == want, "the CLI's first two calls (version discovery, login)", want, first)
    return flow


def json_body(flow, x, side="response"):
    b = x["full"][side]["body"]
    flow.check(not b["truncated"], f"{x['method']} {x['target']}: {side} body kept whole", "not truncated",
               f"{b['size']} bytes, truncated")
    return e2elib.json.loads(e2elib.body_bytes(b))


def validated_in(flow, service, call):
    """keystonemiddleware in `service` validates the CLI's token while serving `call`."""
    return flow.find(service, "keystone", "GET", "/v3/auth/tokens", 200, inside=call, many=True)


def calls_of(flow, caller, service=None):
    return [x for x in flow.exchanges if x["caller"] == caller and (service is None or x["service"] == service)]


# ----------------------------------------------------------------- keystone (seed 001's user calls)

def test_user_create(recorder):
    flow = record(recorder, "user-create", "user", "create", "--password", "e2e-pass", "--domain", "default", USER)
    post = flow.find(CLI, "keystone", "POST", "/v3/users", 201)
    sent = json_body(flow, post, "request")["user"]
    flow.check((sent.get("name"), sent.get("password")) == (USER, "e2e-pass"), "POST /v3/users: request body",
               (USER, "e2e-pass"), (sent.get("name"), sent.get("password")))
    flow.check(json_body(flow, post)["user"]["name"] == USER, "POST /v3/users: the new user", USER,
               json_body(flow, post)["user"])


def test_user_list(recorder, user):
    flow = record(recorder, "user-list", "user", "list")
    get = flow.find(CLI, "keystone", "GET", "/v3/users", 200)
    names = [u["name"] for u in json_body(flow, get)["users"]]
    flow.check(user in names and "nova" in names, "GET /v3/users", f"{user} and the service users", names)


# ----------------------------------------------------------------- nova and neutron, no server yet

def test_flavor_list(recorder):
    flow = record(recorder, "flavor-list", "flavor", "list")
    get = flow.find(CLI, "nova-api", "GET", "/v2.1/flavors/detail", 200)
    validated_in(flow, "nova-api", get)
    names = [f["name"] for f in json_body(flow, get)["flavors"]]
    flow.check(FLAVOR in names, "the flavors", FLAVOR, names)


def test_network_create(recorder):
    flow = record(recorder, "network-create", "network", "create", NETWORK)
    post = flow.find(CLI, "neutron-server", "POST", "/v2.0/networks", 201)
    validated_in(flow, "neutron-server", post)
    net = json_body(flow, post)["network"]
    flow.check((net["name"], net["provider:network_type"]) == (NETWORK, "vlan"), "the new network",
               (NETWORK, "vlan"), (net["name"], net.get("provider:network_type")))


def test_subnet_create(recorder, network):
    flow = record(recorder, "subnet-create", "subnet", "create", "--network", network,
                  "--subnet-range", SUBNET_RANGE, SUBNET)
    flow.find(CLI, "neutron-server", "GET", r"/v2\.0/networks(/.*)?", 200, many=True)   # the name lookup
    post = flow.find(CLI, "neutron-server", "POST", "/v2.0/subnets", 201)
    sub = json_body(flow, post)["subnet"]
    flow.check((sub["name"], sub["cidr"]) == (SUBNET, SUBNET_RANGE), "the new subnet", (SUBNET, SUBNET_RANGE),
               (sub["name"], sub["cidr"]))


def test_network_list(recorder, subnet):
    flow = record(recorder, "network-list", "network", "list")
    get = flow.find(CLI, "neutron-server", "GET", "/v2.0/networks", 200)
    validated_in(flow, "neutron-server", get)
    nets = {n["name"]: n for n in json_body(flow, get)["networks"]}
    flow.check(NETWORK in nets and nets[NETWORK]["subnets"], "the networks", f"{NETWORK} with its subnet",
               sorted(nets))


def test_security_group_list(recorder):
    flow = record(recorder, "security-group-list", "security", "group", "list")
    get = flow.find(CLI, "neutron-server", "GET", "/v2.0/security-groups", 200)
    names = [g["name"] for g in json_body(flow, get)["security_groups"]]
    flow.check("default" in names, "the security groups", "default", names)


# ----------------------------------------------------------------- the server

def test_server_create(recorder, server_image, subnet):
    flow = record(recorder, "server-create", "server", "create", "--image", server_image, "--flavor", FLAVOR,
                  "--network", NETWORK, "--wait", SERVER, nested=False)
    flow.check("ACTIVE" in flow.stdout, "the command's output", "status ACTIVE", e2elib.tail(flow.stdout, 30))
    create = flow.find(CLI, "nova-api", "POST", "/v2.1/servers", 202)
    server_id = json_body(flow, create)["server"]["id"]
    inside = lambda x: e2elib.nested(x, create)   # noqa: E731
    # nova-api checks the image, the flavor and the network while it serves the POST
    flow.check(any(inside(x) for x in flow.find("nova-api", "glance-api", "GET", rf"/v2/images/{UUID}", 200,
                                                 many=True)), "nova-api reads the image", "inside the POST", "outside")
    flow.check(any(inside(x) for x in flow.find("nova-api", "neutron-server", "GET", "/v2.0/networks", 200,
                                                 many=True)), "nova-api reads the network", "inside the POST", "outside")
    # after nova-api answered 202, the scheduler claims resources in placement...
    candidates = flow.find("nova-scheduler", "placement-api", "GET", "/allocation_candidates", 200)
    claim = flow.find("nova-scheduler", "placement-api", "PUT", f"/allocations/{server_id}", 204)
    # ...and nova-compute makes the port and binds it to its host
    port = flow.find("nova-compute", "neutron-server", "POST", "/v2.0/ports", 201)
    bind = flow.find("nova-compute", "neutron-server", "PUT", rf"/v2\.0/ports/{UUID}", 200)
    flow.check(json_body(flow, bind)["port"]["binding:vif_type"] == "ovs", "the port binding (the lab's driver)",
               "binding:vif_type ovs", json_body(flow, bind)["port"].get("binding:vif_type"))
    for x in (candidates, claim, port, bind):
        flow.check(create["resp_n"] < x["req_n"], "the work after nova-api answered",
                   f"POST /v2.1/servers answered ({create['resp_n']}) before", f"({x['req_n']}) {x['method']} {x['target']}")
    flow.check(candidates["resp_n"] < claim["req_n"] < port["req_n"] < bind["req_n"], "order of the build",
               "candidates, claim, port, binding", [candidates["req_n"], claim["req_n"], port["req_n"], bind["req_n"]])
    # these calls are nobody's nested calls: no call of their caller is open
    for x in (candidates, port, bind):
        open_calls = [y for y in flow.exchanges if y["service"] == x["caller"] and e2elib.nested(x, y)]
        flow.check(not open_calls, f"{x['method']} {x['target']}: made by {x['caller']} on its own",
                   "inside no call to it", [f"{y['method']} {y['target']}" for y in open_calls])
    # neutron notifies nova of the port's changes (batched; may fall after the flow)
    for x in calls_of(flow, "neutron-server", "nova-api"):
        flow.check(e2elib.path_of(x["target"]) == "/v2.1/os-server-external-events" and x["status"] == 200,
                   "neutron's calls to nova", "POST /v2.1/os-server-external-events -> 200", x["target"])
    # the CLI polls the server until it is ACTIVE
    polls = flow.find(CLI, "nova-api", "GET", f"/v2.1/servers/{server_id}", 200, many=True)
    flow.check(json_body(flow, polls[-1])["server"]["status"] == "ACTIVE", "the last poll", "ACTIVE",
               json_body(flow, polls[-1])["server"]["status"])
    # (whether nova-compute's calls overlap one of the CLI's polls depends on
    # timing; when they do, check_events has checked they are numbered in
    # the order tracer saw them, not nested under the poll)


def test_server_list(recorder, server):
    flow = record(recorder, "server-list", "server", "list", nested=False)
    get = flow.find(CLI, "nova-api", "GET", "/v2.1/servers/detail", 200)
    validated_in(flow, "nova-api", get)
    servers = {s["name"]: s for s in json_body(flow, get)["servers"]}
    flow.check(servers.get(server, {}).get("status") == "ACTIVE", "the servers", f"{server} ACTIVE", servers.keys())


def test_server_show(recorder, server):
    flow = record(recorder, "server-show", "server", "show", server, nested=False)
    # the CLI tries the name as an id, then looks it up by name
    flow.find(CLI, "nova-api", "GET", f"/v2.1/servers/{server}", 404)
    got = flow.find(CLI, "nova-api", "GET", "/v2.1/servers/detail", 200)
    flow.check(got["target"].endswith(f"?name={server}"), "the lookup by name", f"?name={server}", got["target"])
    found = [(s["name"], s["status"]) for s in json_body(flow, got)["servers"]]
    flow.check(found == [(server, "ACTIVE")], "the server", [(server, "ACTIVE")], found)
    # nova-api asks neutron for the server's security groups while it answers
    flow.find("nova-api", "neutron-server", "GET", "/v2.0/security-groups", 200, inside=got)


def test_port_list(recorder, server):
    flow = record(recorder, "port-list", "port", "list")
    get = flow.find(CLI, "neutron-server", "GET", "/v2.0/ports", 200)
    validated_in(flow, "neutron-server", get)
    # the CLI asks for its columns only (fields=...); the server's port is the only one
    ports = [(p["status"], [ip["ip_address"].startswith("192.0.2.") for ip in p["fixed_ips"]])
             for p in json_body(flow, get)["ports"]]
    flow.check(ports == [("ACTIVE", [True])], "the ports", "the server's, ACTIVE, an address of the subnet", ports)


def test_server_delete(recorder, server):
    flow = record(recorder, "server-delete", "server", "delete", "--wait", server, nested=False)
    delete = flow.find(CLI, "nova-api", "DELETE", rf"/v2\.1/servers/{UUID}", 204)
    server_id = e2elib.path_of(delete["target"]).rsplit("/", 1)[1]
    # nova-compute deletes the port it made and frees the allocation
    port = flow.find("nova-compute", "neutron-server", "DELETE", rf"/v2\.0/ports/{UUID}", 204)
    free = flow.find("nova-compute", "placement-api", "DELETE", f"/allocations/{server_id}", 204)
    for x in (port, free):
        flow.check(delete["resp_n"] < x["req_n"], "the work after nova-api answered", "after the 204",
                   f"({x['req_n']}) {x['method']} {x['target']}")
    gone = flow.find(CLI, "nova-api", "GET", f"/v2.1/servers/{server_id}", (200, 404), many=True)
    flow.check(gone[-1]["status"] == 404, "the CLI waits until the server is gone", "a last 404", gone[-1]["status"])
    left = recorder.openstack("port", "list", "--device-owner", "compute:nova", "-f", "value", "-c", "ID").stdout
    flow.check(left.strip() == "", "ports left", "none", left)
    assert re.fullmatch(UUID, server_id)
