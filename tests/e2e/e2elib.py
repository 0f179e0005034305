"""Helpers of the end-to-end suite: run tracer and the CLI, read what they wrote.

Nothing here knows a particular flow; test_flows.py says what each flow must
contain. Every check raises AssertionError with the flow's name, the section
or call concerned, what was expected and what was found, and the flow's calls.
"""
from __future__ import annotations

import base64
import collections
import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SERVICES = ("keystone", "glance-api", "swift-proxy-server", "trove-api", "placement-api", "nova-api",
            "neutron-server")
CLI = "openstack"  # the caller name of the openstack CLI's own requests


# ----------------------------------------------------------------- environment

@dataclasses.dataclass
class Env:
    tracer_bin: str
    config: str
    db: str
    tmp: Path
    lab: Path
    examples_out: Path | None

    @classmethod
    def from_environ(cls) -> "Env | None":
        e = os.environ
        need = ("TRACER_BIN", "TRACER_E2E_CONFIG", "TRACER_E2E_DB", "E2E_TMP", "LAB")
        if not all(e.get(k) for k in need):
            return None
        out = e.get("E2E_EXAMPLES_OUT")
        return cls(e["TRACER_BIN"], e["TRACER_E2E_CONFIG"], e["TRACER_E2E_DB"],
                   Path(e["E2E_TMP"]), Path(e["LAB"]), Path(out) if out else None)

    def client_env(self, client_log: Path | None = None) -> dict:
        """The environment of an openstack command: the lab's adminrc, the
        client venv first on PATH, and the witness (clientlog/sitecustomize.py)."""
        env = dict(os.environ)
        for line in (self.lab / "adminrc").read_text().splitlines():
            m = re.match(r"export (\w+)=(.*)$", line.strip())
            if m:
                env[m.group(1)] = m.group(2).replace("$PATH", os.environ.get("PATH", ""))
        env["PYTHONWARNINGS"] = "ignore"
        env["CLIFF_MAX_TERM_WIDTH"] = "110"   # the CLI's tables fit the pages (cliff wraps them)
        env.pop("PYTHONPATH", None)
        if client_log is not None:
            env["PYTHONPATH"] = str(HERE / "clientlog")
            env["TRACER_E2E_CLIENT_LOG"] = str(client_log)
        return env


def run(argv, *, env=None, cwd=None, timeout=300, check=True) -> subprocess.CompletedProcess:
    p = subprocess.run([str(a) for a in argv], env=env, cwd=cwd, timeout=timeout,
                       capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(
            f"command failed (exit {p.returncode}): {' '.join(map(str, argv))}\n"
            f"--- stdout\n{tail(p.stdout)}\n--- stderr\n{tail(p.stderr)}")
    return p


def tail(text: str, n: int = 40) -> str:
    lines = text.rstrip("\n").splitlines()
    return "\n".join((["..."] if len(lines) > n else []) + lines[-n:])


class Tracer:
    def __init__(self, env: Env):
        self.env = env

    def argv(self, *args) -> list:
        return [self.env.tracer_bin, "--config", self.env.config, "--db", self.env.db, *args]

    def __call__(self, *args, **kw) -> subprocess.CompletedProcess:
        return run(self.argv(*args), **kw)

    def flow_window(self, flow: str) -> tuple[int, int]:
        """(started_at_us, stopped_at_us) of a closed flow."""
        for line in self("flow", "list", "--json").stdout.splitlines():
            f = json.loads(line)
            if f["name"] == flow:
                return f["started_at_us"], f["stopped_at_us"]
        raise AssertionError(f"tracer flow list has no flow {flow}")

    def list_flow(self, flow: str) -> list[dict]:
        out = self("list", "--flow", flow, "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def show(self, ident) -> dict:
        return json.loads(self("show", str(ident), "--json").stdout)


# ----------------------------------------------------------------- the pages

@dataclasses.dataclass
class Section:
    """One `### (N) ...` section of body.md."""
    n: int
    side: str               # "req" | "resp"
    title: str
    method: str | None
    status: int | None
    reason: str | None
    path: str
    caller: str
    arrow: str
    service: str
    header_lines: list
    body_lang: str
    body_text: str
    exchange: dict | None = None   # filled in by Flow
    reference: tuple | None = None  # (title, url) of its `!!! reference`


SECTION_RE = re.compile(r"^### \((\d+)\) (.*)$")
REQ_TITLE_RE = re.compile(r"^([A-Z][A-Z-]*) (\S+)$")
RESP_TITLE_RE = re.compile(r"^(\d{3})(?: (.*?))? (\S+)$")
PARTIES_RE = re.compile(r"^`([^`]+)` (-->|<--) `([^`]+)`$")
REFERENCE_RE = re.compile(r"^ {4}\[(.+)\]\((https://docs\.openstack\.org/api-ref/[^)\s]+)\)$")
FENCE_RE = re.compile(r"^ {4}(`{3,}|~{3,}) ?(\w*)(.*)$")


def _tab_block(lines: list, tab: str) -> tuple[str, list]:
    """The code block under `=== "tab"`: (language, lines without the indent)."""
    try:
        i = lines.index(f'=== "{tab}"')
    except ValueError:
        raise AssertionError(f'no === "{tab}" tab') from None
    m = FENCE_RE.match(lines[i + 1])
    if not m:
        raise AssertionError(f'=== "{tab}" is not followed by an indented code fence: {lines[i + 1]!r}')
    fence, lang = m.group(1), m.group(2)
    body = []
    for line in lines[i + 2:]:
        if line.strip() == fence:
            return lang, body
        body.append(line[4:] if line.startswith("    ") else line.lstrip())
    raise AssertionError(f'=== "{tab}": code fence {fence} never closed')


def parse_body_md(text: str) -> list[Section]:
    chunks, cur = [], None
    for line in text.splitlines():
        if SECTION_RE.match(line):
            cur = [line]
            chunks.append(cur)
        elif cur is not None:
            cur.append(line)
    sections = []
    for chunk in chunks:
        m = SECTION_RE.match(chunk[0])
        n, title = int(m.group(1)), m.group(2)
        where = f"body.md section ({n}) {title!r}"
        parties = next((PARTIES_RE.match(x) for x in chunk[1:3] if PARTIES_RE.match(x)), None)
        if not parties:
            raise AssertionError(f"{where}: no `caller` --> `service` line after the title")
        try:
            _, headers = _tab_block(chunk, "Header")
            lang, body = _tab_block(chunk, "Body")
        except AssertionError as e:
            raise AssertionError(f"{where}: {e}") from None
        if parties.group(2) == "-->":
            t = REQ_TITLE_RE.match(title)
            if not t:
                raise AssertionError(f"{where}: a request title is `METHOD PATH`")
            method, status, reason, path = t.group(1), None, None, t.group(2)
        else:
            t = RESP_TITLE_RE.match(title)
            if not t:
                raise AssertionError(f"{where}: a response title is `STATUS REASON PATH`")
            method, status, reason, path = None, int(t.group(1)), t.group(2) or "", t.group(3)
        reference = None
        for k, line in enumerate(chunk):
            if line.startswith("!!! reference ") and k + 1 < len(chunk):
                m = REFERENCE_RE.match(chunk[k + 1])
                if not m:
                    raise AssertionError(f"{where}: a reference admonition without its [title](url) line")
                reference = (m.group(1), m.group(2))
        sections.append(Section(n, "req" if method else "resp", title, method, status, reason, path,
                                parties.group(1), parties.group(2), parties.group(3),
                                headers, lang, "\n".join(body), None, reference))
    return sections


DIAGRAM_RE = re.compile(r"^\s*(\S+?)(--?>>)(\S+?):\s*(.*)$")


def parse_diagram(text: str) -> list[tuple]:
    """The message lines of the mermaid diagram: (from, arrow, to, label)."""
    out = []
    for line in text.splitlines():
        m = DIAGRAM_RE.match(line)
        if m:
            out.append((m.group(1).strip(), m.group(2), m.group(3).strip(), m.group(4).strip()))
    return out


# ----------------------------------------------------------------- the services' access logs

class AccessLogs:
    """What each service itself says it received: the ground truth for
    "every exchange present". Lines written while a flow was recorded."""

    # lab.sh's uwsgi log format; t= is when uwsgi started the request (ms)
    UWSGI = re.compile(r"^\[pid: \d+\] \S+ ([A-Z]+) (\S+) => (\d{3}) .*?(?: t=(\d+))?$")
    # swift proxy-logging: client_ip remote_addr datetime METHOD PATH PROTO STATUS ...
    # (client_ip "-" marks swift's own subrequests, not calls that reached the proxy)
    SWIFT = re.compile(r"proxy-server: (\S+) (\S+) \S+ ([A-Z]+) (\S+) HTTP/[\d.]+ (\d{3}) ")
    TROVE = re.compile(r'eventlet\.wsgi .*"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3}) ')

    def __init__(self, lab: Path):
        logs = lab / "logs"
        self.files = {
            "keystone": (logs / "keystone-uwsgi.log", self._uwsgi),
            "glance-api": (logs / "glance-uwsgi.log", self._uwsgi),
            "swift-proxy-server": (logs / "swift-proxy.log", self._swift),
            "trove-api": (logs / "trove-api.log", self._trove),
            "placement-api": (logs / "placement-uwsgi.log", self._uwsgi),
            "nova-api": (logs / "nova-api-uwsgi.log", self._uwsgi),
            "neutron-server": (logs / "neutron-api-uwsgi.log", self._uwsgi),
        }

    def mark(self) -> dict:
        return {s: (f.stat().st_size if f.exists() else 0) for s, (f, _) in self.files.items()}

    def settle(self, quiet: float = 0.6, timeout: float = 5.0) -> None:
        """Waits until no log grows for `quiet` seconds (a service logs a
        call after it has answered it)."""
        last, stable, end = self.mark(), 0, time.time() + timeout
        while time.time() < end and stable < round(quiet / 0.2):
            time.sleep(0.2)
            now = self.mark()
            stable = stable + 1 if now == last else 0
            last = now

    def since(self, marks: dict) -> dict:
        out = {}
        for service, (f, parse) in self.files.items():
            calls = []
            if f.exists():
                with open(f, "rb") as fh:
                    fh.seek(marks.get(service, 0))
                    for raw in fh.read().decode("utf-8", "replace").splitlines():
                        c = parse(raw)
                        if c:
                            calls.append(c)
            out[service] = calls
        return out

    def _uwsgi(self, line):
        m = self.UWSGI.match(line)
        if not m:
            return None
        call = (m.group(1), path_of(m.group(2)), int(m.group(3)))
        return call + (int(m.group(4)),) if m.group(4) else call

    def _swift(self, line):
        m = self.SWIFT.search(line)
        if not m or m.group(1) == "-":
            return None
        return (m.group(3), path_of(urllib.parse.unquote(m.group(4))), int(m.group(5)))

    def _trove(self, line):
        m = self.TROVE.search(line)
        return (m.group(1), path_of(m.group(2)), int(m.group(3))) if m else None


def path_of(target: str) -> str:
    return urllib.parse.unquote(target.split("?", 1)[0])


# ----------------------------------------------------------------- one recorded flow

def body_bytes(b: dict) -> bytes:
    if b.get("encoding") == "base64":
        return base64.b64decode(b["data"])
    return (b.get("data") or "").encode("utf-8")


def header(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def json_pairs(text):
    """JSON with every object as a list of (key, value) pairs: equality then
    also checks the key order."""
    return json.loads(text, object_pairs_hook=list)


@dataclasses.dataclass
class Flow:
    name: str
    argv: list
    returncode: int
    stdout: str
    stderr: str
    exchanges: list          # tracer list --json, each with "full" (show --json), "req_n", "resp_n"
    sections: list
    diagram: list
    log_md: str
    index_md: str
    pages: Path
    client: list             # the witness's records
    access: dict             # service -> [(method, path, status[, start ms])]
    window: tuple | None = None   # the flow's (started_at_us, stopped_at_us) in tracer

    @classmethod
    def load(cls, facts: dict, pages: Path) -> "Flow":
        """A flow from what Recorder.record gathered (or saved) and its pages."""
        return cls(facts["name"], facts["argv"], facts["returncode"], facts["stdout"], facts["stderr"],
                   facts["exchanges"],
                   parse_body_md((pages / "body.md").read_text()),
                   parse_diagram((pages / "diagram.md").read_text()),
                   (pages / "log.md").read_text(), (pages / "index.md").read_text(), pages,
                   facts["client"], {s: [tuple(c) for c in calls] for s, calls in facts["access"].items()},
                   tuple(facts["window"]) if facts.get("window") else None)

    # -- presentation for failure messages
    def calls(self) -> str:
        rows = []
        for x in self.exchanges:
            rows.append(f"  ({x.get('req_n', '?')}-{x.get('resp_n', '?')}) {x['caller']} --> {x['service']} "
                        f"{x['method']} {x['target']} -> {x['status']} {x['reason']}"
                        f"  [caller_source={x['caller_source']}]")
        return "\n".join(rows) or "  (no exchange)"

    def fail(self, what: str, expected, got) -> AssertionError:
        return AssertionError(f"[{self.name}] {what}\n  expected: {expected}\n  got:      {got}\n"
                              f"the flow's calls (request-response section numbers):\n{self.calls()}")

    def check(self, ok: bool, what: str, expected, got):
        if not ok:
            raise self.fail(what, expected, got)

    # -- lookups
    def find(self, caller, service, method, path_re, status=None, inside=None, many=False):
        """The exchange(s) caller --> service METHOD path (regex on the path,
        no query) [-> status] [whose sections lie inside `inside`'s]."""
        rx = re.compile(path_re)
        hits = [x for x in self.exchanges
                if x["caller"] == caller and x["service"] == service and x["method"] == method
                and rx.fullmatch(path_of(x["target"]))
                and (status is None or x["status"] in (status if isinstance(status, tuple) else (status,)))
                and (inside is None or nested(x, inside))]
        want = (f"{caller} --> {service} {method} {path_re}" + (f" -> {status}" if status else "")
                + (f" inside ({inside['req_n']}-{inside['resp_n']}) {inside['method']} {inside['target']}"
                   if inside else ""))
        if many:
            self.check(bool(hits), "a call is missing", want, "no such call")
            return hits
        self.check(len(hits) == 1, "expected exactly one such call", want, f"{len(hits)} such calls")
        return hits[0]


def nested(x: dict, parent: dict) -> bool:
    return parent["req_n"] < x["req_n"] and x["resp_n"] < parent["resp_n"]


class Recorder:
    """Records each flow once (`tracer record`), then reads everything about it."""

    def __init__(self, env: Env, work: Path):
        self.env = env
        self.tracer = Tracer(env)
        self.access = AccessLogs(env.lab)
        self.work = work
        self.flows: dict[str, Flow] = {}

    def openstack(self, *args, check=True) -> subprocess.CompletedProcess:
        """An openstack command outside any flow (set-up, not recorded in a flow)."""
        return run(["openstack", *args], env=self.env.client_env(), cwd=self.work, check=check)

    def record(self, name: str, argv: list, title: str | None = None, quiet: float = 0.6) -> Flow:
        """`quiet`: how long no service log may grow before the flow's logs
        are read (nova-compute's last calls and neutron's notifications,
        batched for 2 s, come after the CLI returned: 3 s for those flows)."""
        if name in self.flows:
            return self.flows[name]
        client_log = self.env.tmp / "client" / f"{name}.jsonl"
        client_log.parent.mkdir(parents=True, exist_ok=True)
        client_log.unlink(missing_ok=True)
        marks = self.access.mark()
        p = run(self.tracer.argv("record", name, "--title", title or " ".join(argv), "--", *argv),
                env=self.env.client_env(client_log), cwd=self.work, check=False)
        # calls the flow started may still run: wait for all to end, so the
        # next flow starts on a quiet lab
        self.access.settle(quiet=quiet, timeout=60.0)
        access = self.access.since(marks)
        window = self.tracer.flow_window(name)

        exchanges = self.tracer.list_flow(name)
        for x in exchanges:
            x["full"] = self.tracer.show(x["id"])
        pages = self.env.tmp / "flows" / name
        if pages.exists():
            shutil.rmtree(pages)
        self.tracer("export", "--flow", name, "--out", pages)
        missing = [f for f in ("body.md", "diagram.md", "index.md", "log.md") if not (pages / f).is_file()]
        if missing:
            raise AssertionError(f"[{name}] tracer export wrote no {', '.join(missing)} in {pages}")
        client = []
        if client_log.exists():
            client = [json.loads(line) for line in client_log.read_text().splitlines() if line.strip()]
        facts = {"name": name, "argv": argv, "returncode": p.returncode, "stdout": p.stdout,
                 "stderr": p.stderr, "exchanges": exchanges, "client": client, "access": access,
                 "window": window}
        # everything the checks read, beside the pages (tests/e2e/data holds one such flow)
        (self.env.tmp / "record").mkdir(exist_ok=True)
        (self.env.tmp / "record" / f"{name}.json").write_text(json.dumps(facts))
        flow = Flow.load(facts, pages)
        self.flows[name] = flow
        return flow


# ----------------------------------------------------------------- checks every flow gets

def check_recorded(flow: Flow) -> None:
    flow.check(flow.returncode == 0, "the recorded command failed",
               "exit 0", f"exit {flow.returncode}\n--- stdout\n{tail(flow.stdout)}\n--- stderr\n{tail(flow.stderr)}")
    flow.check(bool(flow.exchanges), "tracer list --flow", "the flow's exchanges", "none")
    for x in flow.exchanges:
        where = f"call {x['method']} {x['target']} to {x['service']}"
        flow.check(x["service"] in SERVICES, f"{where}: service", f"one of {SERVICES}", x["service"])
        flow.check(x["status"] is not None and x["error"] is None and x["status"] < 500,
                   f"{where}: answered by the service", "a status < 500 and no error",
                   f"status {x['status']}, error {x['error']!r}")


def number_events(flow: Flow) -> None:
    """Each exchange's section numbers as tracer's own event order gives them
    (the rank of its request_seq / response_seq in the flow)."""
    seqs = sorted([(x["full"]["timing"]["request_seq"], x, "req_n") for x in flow.exchanges]
                  + [(x["full"]["timing"]["response_seq"], x, "resp_n") for x in flow.exchanges
                     if x["full"]["timing"]["response_seq"] is not None], key=lambda t: t[0])
    for n, (_, x, key) in enumerate(seqs, 1):
        x[key] = n


def check_sections(flow: Flow) -> None:
    """Pages: every exchange present twice (request, response), numbered 1..2N
    in event order, properly nested; each call's caller is the service whose
    call is being served (or the CLI at the top level); list, show and the
    pages agree."""
    secs, xs = flow.sections, flow.exchanges
    number_events(flow)
    flow.check([s.n for s in secs] == list(range(1, len(secs) + 1)), "body.md section numbers",
               f"1..{len(secs)} in order", [s.n for s in secs])
    flow.check(len(secs) == 2 * len(xs), "body.md sections", f"2 per exchange = {2 * len(xs)}", len(secs))
    reqs = iter(xs)
    stack = []
    for s in secs:
        where = f"body.md ({s.n}) {s.title}"
        if s.side == "req":
            x = next(reqs)
            s.exchange = x
            flow.check(x["req_n"] == s.n, f"{where}: number = rank of the request in tracer's event order "
                       "(request_seq/response_seq)", x["req_n"], s.n)
            flow.check((s.method, s.service) == (x["method"], x["service"])
                       and s.path in (x["target"], x["target"].split("?")[0]),
                       f"{where}: the next request in event order (list --json)",
                       f"{x['method']} {x['target']} to {x['service']}", f"{s.method} {s.path} to {s.service}")
            expected_caller = stack[-1]["service"] if stack else CLI
            flow.check(s.caller == expected_caller, f"{where}: caller (the page)",
                       f"`{expected_caller}` ("
                       + (f"its request lies inside ({stack[-1]['req_n']}) {stack[-1]['method']} "
                          f"{stack[-1]['target']} to {stack[-1]['service']}" if stack else "a top-level call: the CLI's")
                       + ")", f"`{s.caller}`")
            flow.check(x["caller"] == s.caller, f"{where}: caller in list --json agrees with the page",
                       s.caller, x["caller"])
            flow.check(x["full"]["caller"] == s.caller, f"{where}: caller in show --json", s.caller,
                       x["full"]["caller"])
            stack.append(x)
        else:
            flow.check(bool(stack), f"{where}: a response", "an open request to answer", "none open")
            x = stack.pop()
            s.exchange = x
            flow.check(x.get("resp_n") == s.n, f"{where}: number = rank of the response in tracer's event order",
                       x.get("resp_n"), s.n)
            flow.check((s.status, s.reason, s.caller, s.service) == (x["status"], x["reason"], x["caller"], x["service"])
                       and s.path in (x["target"], x["target"].split("?")[0]),
                       f"{where}: answers the innermost open request (nesting)",
                       f"{x['status']} {x['reason']} {x['target']} {x['caller']} <-- {x['service']}",
                       f"{s.status} {s.reason} {s.path} {s.caller} <-- {s.service}")
    flow.check(not stack, "body.md: every request answered", "no open request",
               [f"{x['method']} {x['target']}" for x in stack])
    check_diagram_and_log(flow)


def check_diagram_and_log(flow: Flow) -> None:
    secs, xs = flow.sections, flow.exchanges
    # diagram.md: one message per event, same order and parties
    flow.check(len(flow.diagram) == len(secs), "diagram.md messages", f"{len(secs)} (one per section)",
               len(flow.diagram))
    for s, (frm, arrow, to, label) in zip(secs, flow.diagram):
        # ids in paths may be shown as placeholders, so only the start of the label is compared
        want = (s.caller, "->>", s.service) if s.side == "req" else (s.service, "-->>", s.caller)
        first = s.method if s.side == "req" else str(s.status)
        flow.check((frm, arrow, to) == want and label.split(" ")[0] == first, f"diagram.md message for ({s.n})",
                   f"{want[0]}{want[1]}{want[2]}: {first} ...", f"{frm}{arrow}{to}: {label}")

    # log.md: one REQ and one RESP heading per exchange
    req = len(re.findall(r"^### \(.+?\) REQ >>> \(.+?\) : ", flow.log_md, re.M))
    resp = len(re.findall(r"^### \(.+?\) RESP <<< \(.+?\) : ", flow.log_md, re.M))
    flow.check((req, resp) == (len(xs), len(xs)), "log.md REQ/RESP headings",
               f"{len(xs)} each", f"{req} REQ, {resp} RESP")


def check_pages_show_what_was_stored(flow: Flow) -> None:
    """Each section's Header tab is the stored header list (as it crossed the
    proxy, stamps included) and its Body tab is the stored body: JSON equal,
    key order kept; empty bodies `none`."""
    for s in flow.sections:
        x = s.exchange["full"]
        side = x["request"] if s.side == "req" else x["response"]
        where = f"body.md ({s.n}) {s.title}"
        stored = [f"{k}: {v}" for k, v in side["headers"] if isinstance(v, str)]
        flow.check(s.header_lines == stored, f"{where}: Header tab", "\n    " + "\n    ".join(stored),
                   "\n    " + "\n    ".join(s.header_lines))
        for stamp in ("X-Requestshook-Request-Id", "X-Requestshook-Request-From"):
            flow.check(header(side["headers"], stamp) is not None, f"{where}: stamped header",
                       stamp, "absent")
        flow.check(header(side["headers"], "X-Requestshook-Request-Id") == x["request_id"],
                   f"{where}: X-Requestshook-Request-Id", x["request_id"],
                   header(side["headers"], "X-Requestshook-Request-Id"))
        body = side["body"]
        if not body["truncated"]:
            data = body_bytes(body)
            flow.check((len(data), hashlib.sha256(data).hexdigest()) == (body["size"], body["sha256"]),
                       f"{where}: the stored body's size and sha256 are those of its bytes",
                       (body["size"], body["sha256"]), (len(data), hashlib.sha256(data).hexdigest()))
        if body["size"] == 0:
            flow.check(s.body_text.strip() == "none", f"{where}: empty body", "none", s.body_text[:200])
            continue
        ctype = (header(side["headers"], "Content-Type") or "").lower()
        if "json" in ctype and not body["truncated"] and not header(side["headers"], "Content-Encoding"):
            try:
                want = json_pairs(body_bytes(body))
            except ValueError:
                continue
            try:
                got = json_pairs(s.body_text)
            except ValueError as e:
                raise flow.fail(f"{where}: Body tab is JSON", "valid JSON", f"{e}: {s.body_text[:300]}") from None
            flow.check(got == want, f"{where}: Body tab equals the stored body (keys in their order)",
                       json.dumps(want)[:600], json.dumps(got)[:600])


# A call that reached tracer just before the flow stopped may reach the
# service a little after: logged starts this close past the end may be in it.
EDGE_MS = 100


def logged_calls(flow: Flow, service: str) -> tuple[collections.Counter, collections.Counter]:
    """The calls the service logged in the flow's window, and those logged
    just past its end. Lines without a start time (swift, trove) all count."""
    inside, edge = collections.Counter(), collections.Counter()
    for c in flow.access.get(service, []):
        call, t = tuple(c[:3]), (c[3] if len(c) > 3 else None)
        if t is None or flow.window is None or flow.window[0] // 1000 <= t <= flow.window[1] // 1000:
            inside[call] += 1
        elif flow.window[1] // 1000 < t <= flow.window[1] // 1000 + EDGE_MS:
            edge[call] += 1
    return inside, edge


def check_against_services(flow: Flow) -> None:
    """Every call each service logged while the flow ran is in the flow, and
    nothing else is: nothing bypassed tracer, nothing was invented or lost.
    (Calls a service made after the flow stopped, such as neutron's batched
    notifications to nova, belong to no flow.)"""
    for service in SERVICES:
        logged, edge = logged_calls(flow, service)
        stored = collections.Counter((x["method"], path_of(x["target"]), x["status"])
                                     for x in flow.exchanges if x["service"] == service)
        ok = not (logged - stored) and not (stored - logged - edge)
        flow.check(ok, f"{service}'s own access log vs the flow's calls to it",
                   f"{sorted(logged.elements())} (logged by {service})",
                   f"{sorted(stored.elements())} (in the flow); logged-only: "
                   f"{sorted((logged - stored).elements())}, flow-only: {sorted((stored - logged).elements())}")


def check_against_client(flow: Flow) -> None:
    """What the CLI itself sent and received (the witness) is what tracer
    stored: one exchange per CLI call, same method/target/status/reason,
    request and response bodies byte for byte."""
    errors = [c for c in flow.client if "witness_error" in c]
    flow.check(not errors, "the CLI witness", "no error", errors)
    by_rid = {x["request_id"]: x for x in flow.exchanges}
    cli_calls = [x for x in flow.exchanges if x["caller"] == CLI]
    flow.check(len(flow.client) == len(cli_calls), "calls the CLI made (witness) vs calls tracer "
               "attributed to the CLI", len(flow.client), len(cli_calls))
    for c in flow.client:
        u = urllib.parse.urlsplit(c["url"])
        target = u.path + (f"?{u.query}" if u.query else "")
        where = f"the CLI's {c['method']} {target}"
        rid = header(c["response_headers"], "X-Requestshook-Request-Id")
        flow.check(rid in by_rid, f"{where}: X-Requestshook-Request-Id in the response the CLI got",
                   "the id of an exchange of the flow", rid)
        x = by_rid[rid]
        flow.check((x["caller"], x["method"], x["target"], x["status"], x["reason"])
                   == (CLI, c["method"], target, c["status"], c["reason"]),
                   f"{where}: the stored exchange", (CLI, c["method"], target, c["status"], c["reason"]),
                   (x["caller"], x["method"], x["target"], x["status"], x["reason"]))
        for side in ("request", "response"):
            seen = c[f"{side}_body"]
            if "sha256" not in seen:
                continue   # an upload from a file or a streamed download: checked by the flow's test
            b = x["full"][side]["body"]
            flow.check((b["size"], b["sha256"]) == (seen["size"], seen["sha256"]),
                       f"{where}: stored {side} body (size, sha256) vs what the CLI "
                       + ("sent" if side == "request" else "received"),
                       (seen["size"], seen["sha256"]), (b["size"], b["sha256"]))
            if not b["truncated"]:
                flow.check(body_bytes(b) == base64.b64decode(seen["b64"]), f"{where}: stored {side} body bytes",
                           base64.b64decode(seen["b64"])[:300], body_bytes(b)[:300])
        # the response headers the CLI got are the stored ones: names in their case, in order
        got = [list(h) for h in c["response_headers"]]
        stored = [list(h) for h in x["full"]["response"]["headers"]]
        flow.check(got == stored, f"{where}: response headers the CLI got vs stored", stored, got)
        # and the request headers the CLI sent are the forwarded ones, with the Host that
        # http.client puts first and tracer's two stamps after them
        sent = [list(h) for h in c["request_headers"]]
        fwd = [list(h) for h in x["full"]["request"]["headers"]
               if h[0].lower() not in ("host", "x-requestshook-request-id", "x-requestshook-request-from")]
        flow.check(sent == fwd, f"{where}: request headers the CLI sent vs forwarded (less Host and stamps)",
                   sent, fwd)
        names = [h[0].lower() for h in x["full"]["request"]["headers"]]
        flow.check(names[-2:] == ["x-requestshook-request-id", "x-requestshook-request-from"],
                   f"{where}: tracer's stamps come after the client's own headers", "…, Id, From", names[-3:])


def check_events(flow: Flow) -> None:
    """Pages of a flow with concurrent calls (nova-compute working while the
    CLI polls nova-api): every exchange present twice, numbered 1..2N in the
    order tracer saw the events, each section the event of that rank; the
    diagram and the log say the same. Nesting is not required there: the
    callers are checked against the peer process instead (check_callers)."""
    secs, xs = flow.sections, flow.exchanges
    number_events(flow)
    flow.check([s.n for s in secs] == list(range(1, len(secs) + 1)), "body.md section numbers",
               f"1..{len(secs)} in order", [s.n for s in secs])
    flow.check(len(secs) == 2 * len(xs), "body.md sections", f"2 per exchange = {2 * len(xs)}", len(secs))
    by_rank = {x["req_n"]: x for x in xs} | {x["resp_n"]: x for x in xs if "resp_n" in x}
    for s in secs:
        where = f"body.md ({s.n}) {s.title}"
        x = by_rank.get(s.n)
        flow.check(x is not None, f"{where}: an event of that rank", "an exchange", "none")
        s.exchange = x
        side = "req" if x["req_n"] == s.n else "resp"
        flow.check(s.side == side, f"{where}: request or response, as the event of that rank", side, s.side)
        flow.check(s.path in (x["target"], x["target"].split("?")[0]) and (s.caller, s.service)
                   == (x["caller"], x["service"]) and x["full"]["caller"] == x["caller"],
                   f"{where}: the exchange of that rank (list --json, show --json)",
                   f"{x['caller']} {x['service']} {x['method']} {x['target']}",
                   f"{s.caller} {s.service} {s.method or s.status} {s.path}")
        if side == "req":
            flow.check(s.method == x["method"], f"{where}: method", x["method"], s.method)
        else:
            flow.check((s.status, s.reason) == (x["status"], x["reason"]), f"{where}: status",
                       (x["status"], x["reason"]), (s.status, s.reason))
    check_diagram_and_log(flow)


def check_callers(flow: Flow) -> None:
    """On one host tracer names every caller by the process that owns the
    client socket: no caller of the flow may come from weaker evidence."""
    weak = [f"{x['method']} {x['target']} to {x['service']}: {x['caller']} ({x['caller_source']})"
            for x in flow.exchanges if x["caller_source"] != "process"]
    flow.check(not weak, "callers named by the peer process", "every one", weak)


@functools.cache
def api_ref_methods() -> dict:
    """URL -> method of every operation of the bundled index (assets/api-ref.json),
    the URLs built as tracer builds them (page, then ?expanded=ID-detail#ID)."""
    index = json.loads((Path(__file__).resolve().parents[2] / "assets" / "api-ref.json").read_text())
    urls = {}
    for api in index["apis"]:
        for op in api["operations"]:
            page = api["pages"][op["page"]]
            a = op["anchor"]
            urls[page if a is None else f"{page}?expanded={a}-detail#{a}"] = op["method"]
    return urls


# Calls no api-ref documents: keystone's has no version document (the CLI
# and keystonemiddleware discover it with GET /v3).
UNDOCUMENTED = {("keystone", "GET", "/v3")}


def check_references(flow: Flow) -> None:
    """Every request section of a documented operation carries its API
    reference, one of the bundled index of the same method; no response
    section carries one."""
    urls = api_ref_methods()
    for s in flow.sections:
        where = f"body.md ({s.n}) {s.title}"
        if s.side == "resp":
            flow.check(s.reference is None, f"{where}: no reference on a response", None, s.reference)
        elif s.reference is None:
            call = (s.service, s.method, path_of(s.path))
            flow.check(call in UNDOCUMENTED, f"{where}: an API reference", "a reference (or a known undocumented call)",
                       "none")
        else:
            flow.check(urls.get(s.reference[1]) == s.method, f"{where}: the reference is an operation of the index",
                       f"a {s.method} operation", f"{s.reference} ({urls.get(s.reference[1])})")


def check_all(flow: Flow, nested: bool = True) -> None:
    check_recorded(flow)
    check_references(flow)
    if nested:
        check_sections(flow)
    else:
        check_events(flow)
    check_callers(flow)
    check_pages_show_what_was_stored(flow)
    check_against_services(flow)
    check_against_client(flow)
    flow.check(flow.name in flow.index_md or flow.argv[0] in flow.index_md, "index.md",
               "the flow's title or command", tail(flow.index_md, 5))


# ----------------------------------------------------------------- the site

MKDOCS_YML = """\
site_name: {name}
docs_dir: {docs}
site_dir: {site}
theme:
  name: material
markdown_extensions:
  - admonition
  - pymdownx.details
  - pymdownx.highlight
  - pymdownx.superfences:
      custom_fences:
        - name: mermaid
          class: mermaid
          format: !!python/name:pymdownx.superfences.fence_code_format
  - pymdownx.tabbed:
      alternate_style: true
"""


def mkdocs_build(docs: Path, work: Path, name: str) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` of a site whose docs are `docs`, with exactly the
    extensions SPEC.md names (not tracer's own `site` config)."""
    work.mkdir(parents=True, exist_ok=True)
    yml = work / "mkdocs.yml"
    yml.write_text(MKDOCS_YML.format(name=json.dumps(name), docs=json.dumps(str(docs)),
                                     site=json.dumps(str(work / "site"))))
    mkdocs = Path(os.environ.get("E2E_MKDOCS", REPO / ".venv" / "bin" / "mkdocs"))
    # NO_MKDOCS_2_WARNING: material's end-of-life banner is not about our pages
    return run([mkdocs, "build", "--strict", "-f", yml], timeout=300, check=False,
               env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"})


def mkdocs_problems(p: subprocess.CompletedProcess) -> list:
    """mkdocs' WARNING/ERROR log lines (with --strict a warning fails the build)."""
    return [line for line in (p.stdout + p.stderr).splitlines() if re.match(r"^(WARNING|ERROR)\b", line)]
