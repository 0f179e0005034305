#!/usr/bin/env python3
"""A tiny logging reverse proxy, for studying the lab's traffic (not a test of tracer).

It sits where tracer will sit (the same listeners, the same knobs) and writes one
JSON line per event, numbered in the order seen: a request when its head has
arrived, a response when the upstream's response head has arrived -- the order
tracer's pages use. It buffers bodies (lab bodies are small), makes one upstream
connection per request and tells the peer process of each connection, so the
notes in tests/e2e/notes/ could say who calls whom, with which User-Agent and
which framing (Content-Length vs chunked).

    python peek_proxy.py --log events.jsonl \
        keystone=127.0.0.1:15000=http://127.0.0.1:5000 \
        glance-api=127.0.0.1:19292=http://127.0.0.1:9292 ...

Summarise with: python peek_proxy.py --summary events.jsonl
Needs psutil for the peer process (it is in the lab's client venv).
"""
import argparse
import hashlib
import http.client
import http.server
import itertools
import json
import os
import sys
import threading
import time
from urllib.parse import urlsplit

try:
    import psutil
except ImportError:  # the process column stays empty
    psutil = None

LOCK = threading.Lock()
SEQ = itertools.count(1)
XID = itertools.count(1)
LOG = None


def emit(rec):
    with LOCK:
        rec["seq"] = next(SEQ)
        rec["t"] = round(time.time(), 3)
        LOG.write(json.dumps(rec) + "\n")
        LOG.flush()
        return rec["seq"]


def peer_process(port):
    if psutil is None:
        return None
    for c in psutil.net_connections(kind="tcp"):
        if c.laddr and c.laddr.port == port and c.laddr.ip == "127.0.0.1" and c.pid:
            try:
                p = psutil.Process(c.pid)
                cmd = " ".join(os.path.basename(a) if i < 2 else a for i, a in enumerate(p.cmdline()))
                return {"pid": c.pid, "name": p.name(), "cmdline": cmd[:200]}
            except psutil.Error:
                return {"pid": c.pid}
    return None


def body_info(raw, headers):
    info = {"len": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
    if raw and ("json" in ctype or "text" in ctype) and len(raw) <= 4096:
        info["text"] = raw.decode("utf-8", "replace")
    elif raw:
        info["head"] = repr(raw[:16])
    return info


def read_chunked(rfile):
    out = bytearray()
    while True:
        line = rfile.readline()
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return bytes(out)
        out += rfile.read(size)
        rfile.readline()


def make_handler(name, upstream):
    up = urlsplit(upstream)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def handle_one_request(self):
            if not hasattr(self, "_proc"):
                self._proc = peer_process(self.client_address[1])
            return super().handle_one_request()

        def _any(self):
            xid = next(XID)
            hdrs = list(self.headers.items())
            te = self.headers.get("Transfer-Encoding", "")
            if "chunked" in te.lower():
                body = read_chunked(self.rfile)
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            emit({"ev": "req", "xid": xid, "service": name, "peer": self.client_address[1],
                  "proc": self._proc, "method": self.command, "target": self.path,
                  "headers": hdrs, "framing": "chunked" if te else ("length" if self.headers.get("Content-Length") else "none"),
                  "conn_req": self.request_version, "body": body_info(body, hdrs)})
            conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=600)
            conn.putrequest(self.command, up.path.rstrip("/") + self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in hdrs:
                conn.putheader(k, v)
            conn.endheaders()
            if te:
                if body:
                    conn.send(b"%x\r\n%s\r\n" % (len(body), body))
                conn.send(b"0\r\n\r\n")
            elif body:
                conn.send(body)
            try:
                resp = conn.getresponse()
            except Exception as e:  # noqa: BLE001 - a study tool: show it
                emit({"ev": "resp", "xid": xid, "service": name, "status": 502, "reason": str(e)})
                self.send_error(502)
                return
            rh = resp.getheaders()
            emit({"ev": "resp_head", "xid": xid, "service": name, "status": resp.status,
                  "reason": resp.reason, "headers": rh})
            data = resp.read()
            emit({"ev": "resp_end", "xid": xid, "service": name, "body": body_info(data, rh)})
            self.send_response_only(resp.status, resp.reason)
            for k, v in rh:
                if k.lower() == "transfer-encoding":
                    k, v = "Content-Length", str(len(data))  # we buffered and de-chunked it
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            if any(k.lower() == "connection" and v.lower() == "close" for k, v in rh):
                self.close_connection = True
            conn.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_COPY = do_OPTIONS = _any

    return Handler


def summary(path):
    evs = [json.loads(line) for line in open(path)]
    req = {e["xid"]: e for e in evs if e["ev"] == "req"}
    n = 0
    for e in evs:
        if e["ev"] == "req":
            n += 1
            ua = next((v for k, v in e["headers"] if k.lower() == "user-agent"), "-")
            proc = (e.get("proc") or {}).get("cmdline", "?")
            print(f"({n}) {e['method']} {e['target'][:90]}  -> {e['service']}  [{e['framing']}:{e['body']['len']}]"
                  f"  UA={ua[:60]!r}  proc={proc[:70]!r}")
        elif e["ev"] in ("resp_head", "resp"):
            n += 1
            r = req.get(e["xid"], {})
            print(f"({n}) {e['status']} {e['reason']} {r.get('target', '?')[:90]}  <- {e['service']}")


def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--log")
    ap.add_argument("--summary")
    ap.add_argument("listeners", nargs="*", help="name=host:port=upstream")
    a = ap.parse_args()
    if a.summary:
        return summary(a.summary)
    LOG = open(a.log, "a")
    servers = []
    for spec in a.listeners:
        name, hp, upstream = spec.split("=", 2)
        host, port = hp.rsplit(":", 1)
        srv = http.server.ThreadingHTTPServer((host, int(port)), make_handler(name, upstream))
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    print("peek proxy listening:", ", ".join(a.listeners), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
