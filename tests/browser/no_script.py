#!/usr/bin/env python3
"""Opens every page of built mkdocs sites in headless Chromium (network
shut) and proves that no script planted in the captured data ran.

The hostile inputs carry a MARKER (e.g. `XSS-`) in everything they would
execute (`alert('XSS-3')`, `onerror=...`). A page fails when
- a JavaScript dialog opened (alert/confirm/prompt), or
- an event handler attribute (`onerror`, `onclick`, ...) holds the marker,
  or an attribute is named after a payload (a broken-out attribute), or a
  `<script>` holds the marker, or
- a link, image or frame points at `javascript:`.
With `--visible TEXT` the pages' text (shadow roots and the mermaid SVG
included, scripts left out) must hold TEXT on at least one page: the
hostile text is shown literally, not dropped.

usage: no_script.py SITE_DIR... --marker XSS- [--visible TEXT]... [--chromium PATH]
Prints one JSON line per page and a summary; exit 0 when nothing ran.
Reuses the DevTools pipe client of mermaid_offline.py (standard library only).
"""
import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mermaid_offline import Chromium, attrs  # noqa: E402


class DialogWatch:
    """Accepts every dialog at once (a page blocked on alert() answers no
    DevTools call) and remembers its message."""

    def __init__(self, browser):
        self.browser = browser
        self.seen = []
        self._lock = threading.Lock()
        original = browser.events.put

        def put(msg):
            if msg.get("method") == "Page.javascriptDialogOpening":
                with self._lock:
                    self.seen.append(msg["params"].get("message", ""))
                threading.Thread(target=self._accept, args=(msg.get("sessionId"),), daemon=True).start()
            original(msg)

        browser.events.put = put

    def _accept(self, session):
        try:
            self.browser.send("Page.handleJavaScriptDialog", {"accept": True}, session=session, timeout=5)
        except Exception:
            pass

    def take(self):
        with self._lock:
            seen, self.seen = self.seen, []
        return seen


def inspect(root, marker):
    """Injected elements and the page's text, shadow roots pierced."""
    injected = []
    texts = []

    def visit(node, parent_tag):
        name = node.get("nodeName", "").lower()
        if node.get("nodeType") == 3 and parent_tag not in ("script", "style"):
            texts.append(node.get("nodeValue", ""))
        if node.get("nodeType") == 1:
            for k, v in attrs(node).items():
                handler = k.lower().startswith("on") and marker in v
                # An attribute named after a payload: an attribute breakout.
                broken_out = marker.lower() in k.lower()
                js_url = k.lower() in ("href", "src", "action", "formaction", "xlink:href") and \
                    v.strip().lower().startswith("javascript:")
                if handler or broken_out or js_url:
                    injected.append(f"<{name} {k}={v!r}>")
            if name == "script":
                body = "".join(c.get("nodeValue", "") for c in node.get("children", []))
                if marker in body:
                    injected.append(f"<script>{body[:80]!r}")
        for child in node.get("children", []):
            visit(child, name)
        for child in node.get("shadowRoots", []):
            visit(child, name)
        if "contentDocument" in node:
            visit(node["contentDocument"], name)

    visit(root, "")
    return injected, "".join(texts)


def pages(site):
    site = pathlib.Path(site)
    for p in sorted(site.rglob("*.html")):
        rel = p.relative_to(site).as_posix()
        if rel.startswith("assets/"):
            continue
        yield p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sites", nargs="+")
    ap.add_argument("--marker", required=True)
    ap.add_argument("--visible", action="append", default=[])
    ap.add_argument("--settle", type=float, default=2.0, help="seconds a page gets to run its scripts")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", shutil.which("chromium") or "chromium"))
    args = ap.parse_args()

    profile = tempfile.mkdtemp(prefix="tracer-chromium-")
    browser = Chromium(args.chromium, profile)
    dialogs = DialogWatch(browser)
    failures = 0
    count = 0
    all_text = []
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Page.enable", session=session)
        for site in args.sites:
            for page in pages(site):
                count += 1
                browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
                # Mermaid renders after load; give every page the same time.
                deadline = time.time() + args.settle
                root = None
                while time.time() < deadline:
                    time.sleep(0.25)
                root = browser.send("DOM.getDocument", {"depth": -1, "pierce": True}, session=session)["root"]
                injected, text = inspect(root, args.marker)
                ran = dialogs.take()
                all_text.append(text)
                ok = not injected and not ran
                failures += 0 if ok else 1
                print(json.dumps({"page": str(page), "ok": ok, "dialogs": ran, "injected": injected[:10]}))
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)

    joined = "\n".join(all_text)
    missing = [t for t in args.visible if t not in joined]
    print(json.dumps({"pages": count, "failed": failures, "missing_text": missing}))
    return 0 if count and not failures and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
