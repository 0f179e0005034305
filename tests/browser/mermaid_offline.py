#!/usr/bin/env python3
"""Opens a built mkdocs page (or a page of tracer's admin UI) in headless
Chromium with the network shut and reports whether the mermaid diagram was
rendered to an SVG.

mkdocs-material puts the rendered SVG in a *closed* shadow root, which
neither `--dump-dom` nor page JavaScript can see, so this talks to Chromium
over the DevTools protocol (`--remote-debugging-pipe`, standard library
only) and asks for the DOM with shadow roots pierced. It also records every
request the page made: with `--offline` sites, all of them must be local.

usage: mermaid_offline.py PAGE.html|URL [--expect rendered|not-rendered]
                                        [--contains TEXT]... [--timeout S]
                                        [--svg-id PREFIX] [--allow-origin ORIGIN]...
                                        [--page-contains TEXT]...
PAGE.html is a file; an http:// URL is loaded as it is (the admin UI on
127.0.0.1: loopback is reached directly, everything else stays shut), and
requests to an --allow-origin count as local. --page-contains: text the
page's final DOM must hold (e.g. the rows of the event table).
Exit 0 when the expectation holds; prints a one-line JSON summary.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import pathlib
import queue

LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "chrome-extension:", "devtools:")


class Chromium:
    def __init__(self, binary, profile, loopback=False):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def wire_fds():
            # The DevTools pipe is fds 3 (commands in) and 4 (replies out).
            a, b = os.dup(cmd_r), os.dup(res_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            # No network at all: every host unresolvable (but 127.0.0.1 when
            # the page is served from there), any proxied request sent to a
            # closed local port (loopback bypasses the proxy).
            "--host-resolver-rules=MAP * ~NOTFOUND" + (", EXCLUDE 127.0.0.1" if loopback else ""),
            "--proxy-server=http://127.0.0.1:9",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args,
            preexec_fn=wire_fds,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(res_w)
        self._next_id = 0
        # send() may be called from more than one thread (no_script.py
        # answers dialogs from the reader's side).
        self._send_lock = threading.Lock()
        self._replies = {}
        self._cond = threading.Condition()
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            chunk = os.read(self._res_r, 1 << 16)
            if not chunk:
                with self._cond:
                    self._replies[None] = "closed"
                    self._cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self._replies[msg["id"]] = msg
                        self._cond.notify_all()
                else:
                    self.events.put(msg)

    def send(self, method, params=None, session=None, timeout=30):
        with self._send_lock:
            self._next_id += 1
            mid = self._next_id
            msg = {"id": mid, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        with self._cond:
            while mid not in self._replies:
                if None in self._replies:
                    raise RuntimeError("chromium closed the DevTools pipe")
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError(method)
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def attrs(node):
    a = node.get("attributes", [])
    return dict(zip(a[::2], a[1::2]))


def find_diagrams(root, prefix="__mermaid_"):
    """The mermaid SVGs (material renders them with ids __mermaid_N, the
    admin UI with id flow-diagram) and whether they sit in a shadow root."""
    found = []

    def visit(node, in_shadow):
        if node.get("nodeName", "").lower() == "svg" and attrs(node).get("id", "").startswith(prefix):
            found.append((node["nodeId"], in_shadow))
        for child in node.get("children", []):
            visit(child, in_shadow)
        for child in node.get("shadowRoots", []):
            visit(child, True)
        if "contentDocument" in node:
            visit(node["contentDocument"], in_shadow)

    visit(root, False)
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--expect", choices=["rendered", "not-rendered"], default="rendered")
    ap.add_argument("--contains", action="append", default=[], help="text the SVG must hold")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--svg-id", default="__mermaid_", help="id prefix of the rendered SVG")
    ap.add_argument("--allow-origin", action="append", default=[], help="origin whose requests count as local")
    ap.add_argument("--page-contains", action="append", default=[], help="text the page's DOM must hold")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", shutil.which("chromium") or "chromium"))
    args = ap.parse_args()

    if args.page.startswith(("http://", "https://")):
        url = args.page
    else:
        url = pathlib.Path(args.page).resolve().as_uri()
    local = LOCAL_SCHEMES + tuple(o.rstrip("/") + "/" for o in args.allow_origin)
    profile = tempfile.mkdtemp(prefix="tracer-chromium-")
    browser = Chromium(args.chromium, profile, loopback=url.startswith("http://127.0.0.1:"))
    summary = {"page": url, "rendered": False, "in_shadow_root": None, "svg_bytes": 0,
               "missing_text": [], "missing_page_text": [], "remote_requests": [], "requests": 0}
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Network.enable", session=session)
        browser.send("Page.enable", session=session)
        browser.send("Page.navigate", {"url": url}, session=session)
        # A page that is not meant to render gets long enough for a local
        # script to have run, not the whole timeout.
        wait = args.timeout if args.expect == "rendered" else min(args.timeout, 8.0)
        deadline = time.time() + wait
        svg = None
        while time.time() < deadline:
            root = browser.send("DOM.getDocument", {"depth": -1, "pierce": True}, session=session)["root"]
            found = find_diagrams(root, args.svg_id)
            if found:
                node_id, in_shadow = found[0]
                svg = browser.send("DOM.getOuterHTML", {"nodeId": node_id}, session=session)["outerHTML"]
                summary["in_shadow_root"] = in_shadow
                break
            time.sleep(0.5)
        # Let requests started by the page show up before counting them.
        time.sleep(0.5)
        while not browser.events.empty():
            ev = browser.events.get()
            if ev.get("method") == "Network.requestWillBeSent":
                req_url = ev["params"]["request"]["url"]
                summary["requests"] += 1
                if not req_url.startswith(local):
                    summary["remote_requests"].append(req_url)
        if args.page_contains:
            doc = browser.send("DOM.getDocument", {"depth": 1}, session=session)["root"]
            top = next(n for n in doc.get("children", []) if n.get("nodeName") == "HTML")
            html = browser.send("DOM.getOuterHTML", {"nodeId": top["nodeId"]}, session=session)["outerHTML"]
            summary["missing_page_text"] = [t for t in args.page_contains if t not in html]
        if svg:
            summary["rendered"] = True
            summary["svg_bytes"] = len(svg)
            summary["missing_text"] = [t for t in args.contains if t not in svg]
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)

    print(json.dumps(summary))
    if args.expect == "rendered":
        ok = (summary["rendered"] and not summary["missing_text"] and not summary["remote_requests"]
              and not summary["missing_page_text"])
    else:
        ok = not summary["rendered"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
