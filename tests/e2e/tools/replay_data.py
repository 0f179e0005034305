#!/usr/bin/env python3
"""Turns flows that tests/e2e recorded through tracer into the replay data of
tests/attribution_lab.rs (tests/data/lab/*.jsonl): per exchange a `req`
event (service, method, target, the headers as the client sent them, the
body), `resp_head` (status, reason, headers) and `resp_end` (body), in the
order tracer saw them (request_seq, response_seq, finished_at), with tracer's
stamps removed. `process` is the caller tracer named from the peer process
(every exchange of a one-host lab is attributed that way): the truth the
replay without process information is scored against.

    replay_data.py OUT_DIR RECORD.json...   (E2E_KEEP=1 tests/e2e/run.sh keeps <tmp>/record/)
"""
import base64
import json
import sys
from pathlib import Path

STAMPS = ("x-requestshook-request-id", "x-requestshook-request-from")


def headers(side):
    return [[k, v] for k, v in side["headers"] if isinstance(v, str) and k.lower() not in STAMPS]


def body(side):
    b = side["body"]
    if b["size"] == 0:
        return None
    if b.get("encoding") == "base64":
        data = base64.b64decode(b["data"])
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None   # binary (an image): attribution reads no such body
    return b.get("data")


def events(facts):
    out = []
    for x in facts["exchanges"]:
        full = x["full"]
        if full["caller_source"] != "process":
            raise SystemExit(f"{facts['name']}: exchange {x['id']} was attributed by "
                             f"{full['caller_source']}, not by its process: no truth to score against")
        t = full["timing"]
        req, resp = full["request"], full["response"]
        out.append((t["request_seq"], {
            "ev": "req", "xid": x["id"], "service": full["service"], "method": x["method"],
            "target": x["target"], "headers": headers(req), "body": body(req),
            "body_len": req["body"]["size"], "process": full["caller"], "expected": full["caller"]}))
        out.append((t["response_seq"], {"ev": "resp_head", "xid": x["id"], "status": x["status"],
                                        "reason": x["reason"], "headers": headers(resp)}))
        out.append((t["finished_at_us"], {"ev": "resp_end", "xid": x["id"], "body": body(resp),
                                          "body_len": resp["body"]["size"]}))
    out.sort(key=lambda e: e[0])
    return [e for _, e in out]


def main(argv):
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for path in argv[2:]:
        facts = json.loads(Path(path).read_text())
        evs = events(facts)
        (out / f"{facts['name']}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evs))
        print(f"{facts['name']}: {len(evs) // 3} exchanges")


if __name__ == "__main__":
    main(sys.argv)
