"""The e2e suite's witness inside the openstack CLI (not part of tracer).

tests/e2e puts this directory on PYTHONPATH of the `openstack` command it
records, with TRACER_E2E_CLIENT_LOG=<file>. Python imports `sitecustomize` at
start-up; this one wraps requests.Session.send and appends one JSON line per
HTTP exchange the CLI made: what it sent and what it got back, as the CLI saw
them. The suite compares that with what tracer stored, so "the body tracer
kept is the body the service sent" is checked against an independent record.
It only observes: the request and the response pass through unchanged.
"""
import base64
import hashlib
import json
import os
import threading

_PATH = os.environ.get("TRACER_E2E_CLIENT_LOG")
_LOCK = threading.Lock()


def _body(data):
    """A body as the suite wants it: size, sha256 and the bytes (base64)."""
    if data is None:
        data = b""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray)):
        # a file or a generator (an upload): not read here, tracer's stored
        # hash is checked against the file itself instead
        return {"kind": type(data).__name__}
    return {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "b64": base64.b64encode(bytes(data)).decode("ascii"),
    }


def _install():
    try:
        import requests
    except ImportError:
        return
    original = requests.Session.send

    def send(self, request, **kwargs):
        response = original(self, request, **kwargs)
        try:
            streamed = bool(kwargs.get("stream"))
            record = {
                "method": request.method,
                "url": request.url,
                "request_headers": [[k, v] for k, v in request.headers.items()],
                "request_body": _body(request.body),
                "status": response.status_code,
                "reason": response.reason,
                # the raw urllib3 headers keep the names' case and order
                "response_headers": [[k, v] for k, v in response.raw.headers.items()]
                if response.raw is not None and hasattr(response.raw, "headers")
                else [[k, v] for k, v in response.headers.items()],
                # a streamed body (image download) is not read here
                "response_body": {"kind": "streamed"} if streamed else _body(response.content),
            }
            line = json.dumps(record)
            with _LOCK, open(_PATH, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except Exception as e:  # never break the CLI because of the witness
            with _LOCK, open(_PATH, "a", encoding="utf-8") as f:
                f.write(json.dumps({"witness_error": repr(e)}) + "\n")
        return response

    requests.Session.send = send


if _PATH:
    _install()
