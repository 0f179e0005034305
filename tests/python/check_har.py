#!/usr/bin/env python3
"""Reads a HAR file written by tracer with an independent reader (haralyzer),
validates it against the HAR 1.2 JSON Schema that har-validator uses
(tests/python/har-schema, with Python's jsonschema), and checks what Chrome's
importer insists on beyond it: numbers for time, sizes, status and timings,
and `_resourceType` on every entry (without it Chrome files JSON calls
under "JS").

usage: check_har.py FILE.har [--entries N] [--failed N] [--base64 N]
Prints one line per problem and exits 1 when there is any.
"""
import argparse
import base64
import json
import pathlib
import sys

from haralyzer import HarParser, HarPage
from jsonschema import Draft6Validator
from referencing import Registry, Resource

SCHEMA_DIR = pathlib.Path(__file__).resolve().parent / "har-schema"

problems = []


def problem(msg):
    problems.append(msg)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def need(obj, key, kind, where):
    if not isinstance(obj, dict) or key not in obj:
        problem(f"{where}.{key} missing")
        return None
    v = obj[key]
    ok = {
        "str": isinstance(v, str),
        "num": is_number(v),
        "int": isinstance(v, int) and not isinstance(v, bool),
        "list": isinstance(v, list),
        "dict": isinstance(v, dict),
    }[kind]
    if not ok:
        problem(f"{where}.{key} is {type(v).__name__} {v!r}, want {kind}")
    return v


def schema_problems(data):
    """Every violation of har-schema's har.json (its files refer to each
    other by name: `log.json#`, `entry.json#`, ...)."""
    resources = []
    for f in sorted(SCHEMA_DIR.glob("*.json")):
        schema = json.loads(f.read_text(encoding="utf-8"))
        resources.append((f.name, Resource.from_contents(schema)))
    registry = Registry().with_resources(resources)
    root = json.loads((SCHEMA_DIR / "har.json").read_text(encoding="utf-8"))
    validator = Draft6Validator(root, registry=registry)
    for err in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        yield f"schema: {path or '.'}: {err.message}"


def name_values(obj, key, where):
    items = need(obj, key, "list", where) or []
    for i, nv in enumerate(items):
        need(nv, "name", "str", f"{where}.{key}[{i}]")
        need(nv, "value", "str", f"{where}.{key}[{i}]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("har")
    ap.add_argument("--entries", type=int, help="expected number of entries")
    ap.add_argument("--failed", type=int, help="expected entries with status 0")
    ap.add_argument("--base64", type=int, help="expected base64 bodies (at least)")
    args = ap.parse_args()

    with open(args.har, encoding="utf-8") as f:
        data = json.load(f)

    schema_count = 0
    for p in schema_problems(data):
        schema_count += 1
        problem(p)

    # The independent reader: haralyzer's own view of the file.
    parser = HarParser(data)
    if parser.version != "1.2":
        problem(f"log.version {parser.version!r}")
    creator = parser.creator
    need(creator, "name", "str", "log.creator")
    need(creator, "version", "str", "log.creator")
    log = data["log"]
    if log.get("pages") != []:
        problem(f"log.pages is {log.get('pages')!r}, want []")
    entries = HarPage("unknown", har_parser=parser).entries
    if len(entries) != len(log["entries"]):
        problem(f"haralyzer sees {len(entries)} entries of {len(log['entries'])}")

    failed = 0
    b64 = 0
    for i, e in enumerate(entries):
        w = f"entries[{i}]"
        raw = e.raw_entry
        if e.startTime is None:
            problem(f"{w}.startedDateTime {raw.get('startedDateTime')!r} unreadable")
        need(raw, "startedDateTime", "str", w)
        need(raw, "time", "num", w)
        need(raw, "cache", "dict", w)
        if raw.get("_resourceType") != "fetch":
            problem(f"{w}._resourceType is {raw.get('_resourceType')!r}, want 'fetch'")
        timings = need(raw, "timings", "dict", w) or {}
        for k in ("send", "wait", "receive"):
            v = need(timings, k, "num", f"{w}.timings")
            if is_number(v) and v < 0:
                problem(f"{w}.timings.{k} = {v} < 0")
        total = sum(timings.get(k, 0) for k in ("blocked", "dns", "connect", "send", "wait", "receive", "ssl")
                    if is_number(timings.get(k)) and timings.get(k) >= 0 and k != "ssl")
        if is_number(raw.get("time")) and abs(total - raw["time"]) > 0.01:
            problem(f"{w}.time {raw['time']} is not the sum of its timings ({total})")

        req = e.request
        rw = f"{w}.request"
        for k, kind in (("method", "str"), ("url", "str"), ("httpVersion", "str"), ("cookies", "list"),
                        ("headersSize", "int"), ("bodySize", "int")):
            need(req.raw_entry, k, kind, rw)
        name_values(req.raw_entry, "headers", rw)
        name_values(req.raw_entry, "queryString", rw)
        if req.method is None or not req.url.startswith(("http://", "https://")):
            problem(f"{rw}.url {req.url!r} is not absolute")
        post = req.raw_entry.get("postData")
        if post is not None:
            need(post, "mimeType", "str", f"{rw}.postData")
            need(post, "text", "str", f"{rw}.postData")
            if post.get("_encoding") == "base64":
                b64 += 1
                base64.b64decode(post["text"], validate=True)

        resp = e.response
        pw = f"{w}.response"
        for k, kind in (("status", "int"), ("statusText", "str"), ("httpVersion", "str"), ("cookies", "list"),
                        ("content", "dict"), ("redirectURL", "str"), ("headersSize", "int"), ("bodySize", "int")):
            need(resp.raw_entry, k, kind, pw)
        name_values(resp.raw_entry, "headers", pw)
        content = resp.raw_entry.get("content", {})
        need(content, "size", "int", f"{pw}.content")
        need(content, "mimeType", "str", f"{pw}.content")
        if content.get("encoding") == "base64":
            b64 += 1
            base64.b64decode(resp.text, validate=True)
        if resp.status == 0:
            failed += 1
            if not isinstance(raw.get("_error"), str) or not raw["_error"]:
                problem(f"{w} has status 0 and no _error")

    if args.entries is not None and len(entries) != args.entries:
        problem(f"{len(entries)} entries, want {args.entries}")
    if args.failed is not None and failed != args.failed:
        problem(f"{failed} entries with status 0, want {args.failed}")
    if args.base64 is not None and b64 < args.base64:
        problem(f"{b64} base64 bodies, want at least {args.base64}")

    for p in problems:
        print(f"check_har: {p}")
    print(f"check_har: {args.har}: {len(entries)} entries, {failed} failed, {b64} base64 bodies, "
          f"{schema_count} schema violations, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
