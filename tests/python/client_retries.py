#!/usr/bin/env python3
"""What a real client library makes of an upstream that fails: one request
per method with urllib3's default retries (as the OpenStack clients have
them), printing the outcome of each as JSON: the status, or the name of the
exception it ended in.

usage: client_retries.py BASE_URL [METHOD...]
BASE_URL is used as a prefix: the request for METHOD goes to BASE_URL/METHOD.
"""
import json
import sys

import urllib3


def main() -> int:
    base = sys.argv[1].rstrip("/")
    methods = sys.argv[2:] or ["GET", "HEAD", "PUT", "DELETE", "POST", "PATCH"]
    pool = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=10))
    outcome = {}
    for method in methods:
        body = b"{}" if method in ("PUT", "POST", "PATCH") else None
        try:
            r = pool.request(method, f"{base}/{method.lower()}", body=body)
            outcome[method] = r.status
        except Exception as e:  # the class is the outcome
            outcome[method] = type(e).__name__
    print(json.dumps(outcome, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
