"""Self-test of the end-to-end checks, on real recorded flows
(tests/e2e/data/object-create, and server-delete for the concurrent checks):
unchanged each passes every check; each altered copy below must fail, with a
message naming what is wrong. Needs neither the lab nor tracer."""
import copy
import json
from pathlib import Path

import pytest

import e2elib

DATA = Path(__file__).resolve().parent / "data" / "object-create"
FACTS = json.loads((DATA / "facts.json").read_text())


def flow(facts=None):
    return e2elib.Flow.load(copy.deepcopy(facts or FACTS), DATA)


def test_the_recorded_flow_passes():
    e2elib.check_all(flow())


def _xs(f, method, path_end):
    return next(x for x in f.exchanges if x["method"] == method and x["target"].endswith(path_end))


def caller_wrong_in_list(f):
    _xs(f, "GET", "/v3/auth/tokens")["caller"] = "openstack"


def exchange_lost(f):
    f.exchanges.remove(_xs(f, "GET", "/v3/auth/tokens"))


def request_body_altered(f):
    _xs(f, "PUT", "/hello.txt")["full"]["request"]["body"]["sha256"] = "0" * 64


def a_call_bypassed_tracer(f):
    f.access["keystone"].append(("GET", "/v3/auth/tokens", 200))


def status_differs_from_the_service(f):
    f.access["swift-proxy-server"] = [("PUT", p, 202) for (_, p, _) in f.access["swift-proxy-server"]]


def page_caller_wrong(f):
    next(s for s in f.sections if s.side == "req" and s.path.endswith("/v3/auth/tokens") and s.caller != "openstack").caller = "openstack"


def header_case_changed(f):
    hs = _xs(f, "PUT", "/hello.txt")["full"]["response"]["headers"]
    hs[0] = [hs[0][0].lower(), hs[0][1]]


def page_json_keys_reordered(f):
    def rev(v):
        if isinstance(v, dict):
            return {k: rev(v[k]) for k in reversed(list(v))}
        return [rev(i) for i in v] if isinstance(v, list) else v
    s = next(s for s in f.sections if s.side == "resp" and s.body_text.lstrip().startswith("{"))
    s.body_text = json.dumps(rev(json.loads(s.body_text)), indent=2)


def page_nesting_broken(f):
    # the validation's answer printed after the PUT's answer
    i = next(i for i, s in enumerate(f.sections) if s.side == "resp" and s.status == 200 and s.path == "/v3/auth/tokens")
    f.sections[i], f.sections[i + 1] = f.sections[i + 1], f.sections[i]
    f.sections[i].n, f.sections[i + 1].n = f.sections[i + 1].n, f.sections[i].n


def stamp_missing(f):
    _xs(f, "GET", "/v3")["full"]["request"]["headers"].pop()


def cli_got_other_bytes(f):
    c = f.client[-1]
    c["response_body"] = {"size": 3, "sha256": "x", "b64": "YWJj"}


def reference_missing(f):
    next(s for s in f.sections if s.reference is not None).reference = None


def reference_to_another_method(f):
    s = next(s for s in f.sections if s.side == "req" and s.method == "PUT" and s.reference)
    get = next(url for url, method in e2elib.api_ref_methods().items() if method == "GET" and "object-store" in url)
    s.reference = (s.reference[0], get)


@pytest.mark.parametrize("alter", [
    reference_missing, reference_to_another_method, caller_wrong_in_list, exchange_lost, request_body_altered, a_call_bypassed_tracer,
    status_differs_from_the_service, page_caller_wrong, header_case_changed, page_json_keys_reordered,
    page_nesting_broken, stamp_missing, cli_got_other_bytes,
], ids=lambda f: f.__name__)
def test_an_altered_flow_fails(alter):
    f = flow()
    alter(f)
    with pytest.raises(AssertionError) as e:
        e2elib.check_all(f)
    assert str(e.value).startswith("[object-create] "), str(e.value)[:300]


# ----------------------------------------------------------------- a flow with concurrent calls

# tests/e2e/data/server-delete: `openstack server delete --wait e2e-server`, where
# nova-compute deletes the port while the CLI polls nova-api: the page cannot
# nest it under the poll, so it is checked event by event (nested=False).
CONCURRENT = Path(__file__).resolve().parent / "data" / "server-delete"
CONCURRENT_FACTS = json.loads((CONCURRENT / "facts.json").read_text())


def concurrent_flow():
    return e2elib.Flow.load(copy.deepcopy(CONCURRENT_FACTS), CONCURRENT)


def test_the_concurrent_flow_passes_event_by_event():
    e2elib.check_all(concurrent_flow(), nested=False)


def test_the_concurrent_flow_is_no_nesting():
    with pytest.raises(AssertionError, match=r"caller \(the page\)"):
        e2elib.check_all(concurrent_flow(), nested=True)


def test_calls_after_the_flow_stopped_are_no_part_of_it():
    f = concurrent_flow()
    stop_ms = f.window[1] // 1000
    # neutron's batched notification, 2 s after the CLI returned
    f.access["nova-api"].append(("POST", "/v2.1/os-server-external-events", 200, stop_ms + 2000))
    e2elib.check_all(f, nested=False)


def _xs_of(f, caller, method):
    return next(x for x in f.exchanges if x["caller"] == caller and x["method"] == method)


def caller_not_from_the_process(f):
    _xs_of(f, "nova-compute", "DELETE")["caller_source"] = "token"


def a_call_in_the_window_bypassed_tracer(f):
    f.access["placement-api"].append(("GET", "/allocations/x", 200, f.window[0] // 1000 + 10))


def events_out_of_order(f):
    a, b = _xs_of(f, "nova-compute", "DELETE"), _xs_of(f, "nova-compute", "GET")
    ta, tb = a["full"]["timing"], b["full"]["timing"]
    ta["request_seq"], tb["request_seq"] = tb["request_seq"], ta["request_seq"]


def page_caller_differs(f):
    f.sections[next(i for i, s in enumerate(f.sections) if s.caller == "nova-compute")].caller = "nova-api"


@pytest.mark.parametrize("alter", [
    caller_not_from_the_process, a_call_in_the_window_bypassed_tracer, events_out_of_order, page_caller_differs,
], ids=lambda f: f.__name__)
def test_an_altered_concurrent_flow_fails(alter):
    f = concurrent_flow()
    alter(f)
    with pytest.raises(AssertionError) as e:
        e2elib.check_all(f, nested=False)
    assert str(e.value).startswith("[server-delete] "), str(e.value)[:300]
