#!/usr/bin/env python3
"""A small stand-in for `openstack image create`: token, create, upload,
show, over plain HTTP (standard library only).

usage: image_client.py KEYSTONE_URL GLANCE_URL [--discover]
--discover first asks keystone for its versions (one more call, so the
steps of two recordings are numbered differently).
"""
import json
import sys
import urllib.request


def call(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if isinstance(body, dict):
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as r:
        return r.status, dict(r.headers), r.read()


def main():
    keystone, glance = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/")
    if "--discover" in sys.argv[3:]:
        call("GET", keystone + "/")
    auth = {"auth": {"identity": {"methods": ["password"],
            "password": {"user": {"name": "admin", "password": "asdf", "domain": {"id": "default"}}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    _, headers, _ = call("POST", keystone + "/v3/auth/tokens", auth)
    token = {"X-Auth-Token": headers["X-Subject-Token"]}
    _, _, created = call("POST", glance + "/v2/images",
                         {"name": "cirros", "disk_format": "qcow2", "container_format": "bare"}, token)
    image = json.loads(created)["id"]
    call("PUT", f"{glance}/v2/images/{image}/file", b"QFI\xfb" + bytes(60),
         {**token, "Content-Type": "application/octet-stream"})
    _, _, shown = call("GET", f"{glance}/v2/images/{image}", None, token)
    print(json.loads(shown)["status"])


if __name__ == "__main__":
    main()
