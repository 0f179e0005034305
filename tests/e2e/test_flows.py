"""End to end: the real openstack CLI against real keystone, glance, swift and
trove (tests/lab), every call through tracer, each command recorded as a flow
with `tracer record` and read back with `tracer list/show/export`.

Every flow gets the checks of e2elib.check_all (the pages number every
exchange in event order and nest the services' calls inside the call they
serve; callers; list/show/pages agree; the services' own access logs hold
exactly the flow's calls; what the CLI sent and got is what tracer stored).
Each test then checks what is particular to its command, from what the real
services were seen to do (tests/e2e/notes/traffic.md).

The tests run in file order: image-create makes the image the next image flows
use and image-delete removes it; fixtures make what a test needs when it runs
alone.
"""
import hashlib
import json
import re

import e2elib
from conftest import CONTAINER, IMAGE, OBJECT
from e2elib import CLI, body_bytes, header

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ACCOUNT = r"/v1/AUTH_[0-9a-f]{32}"
SMALL_IMG_SIZE = 196616   # tests/lab/lab.sh make_qcow2

FLOW_NAMES = ["image-create", "image-list", "image-show", "image-save", "image-set", "image-delete",
              "container-create", "object-create", "object-list", "database-instance-list"]


def sha256_file(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record(recorder, name, *args):
    flow = recorder.record(name, ["openstack", *args], title=f"openstack {' '.join(args)}")
    e2elib.check_all(flow)
    check_cli_login(flow)
    return flow


def check_cli_login(flow):
    """Each openstack command discovers keystone's version and logs in first."""
    first = flow.exchanges[:2]
    got = [(x["caller"], x["service"], x["method"], e2elib.path_of(x["target"]), x["status"]) for x in first]
    want = [(CLI, "keystone", "GET", "/v3", 200), (CLI, "keystone", "POST", "/v3/auth/tokens", 201)]
    flow.check(got == want, "the CLI's first two calls (version discovery, login)", want, got)


def json_body(flow, x, side="response"):
    b = x["full"][side]["body"]
    flow.check(not b["truncated"], f"{x['method']} {x['target']}: {side} body kept whole", "not truncated",
               f"{b['size']} bytes, truncated")
    return json.loads(body_bytes(b))


def check_body_is_file(flow, x, side, path, what):
    b = x["full"][side]["body"]
    want = (path.stat().st_size, sha256_file(path))
    flow.check((b["size"], b["sha256"]) == want, f"{what}: stored {side} body (size, sha256) = the file's",
               want, (b["size"], b["sha256"]))
    if not b["truncated"]:
        flow.check(body_bytes(b) == path.read_bytes(), f"{what}: stored {side} bytes = the file's bytes",
                   "equal", "different")


def validation_inside(flow, service, call):
    """keystonemiddleware in `service` validates the token of `call` while serving it."""
    return flow.find(service, "keystone", "GET", "/v3/auth/tokens", 200, inside=call, many=True)


# ----------------------------------------------------------------- glance

def test_image_create(recorder):
    assert recorder.openstack("image", "show", IMAGE, check=False).returncode != 0, \
        f"image {IMAGE} exists before image-create: the lab is not fresh"
    img = recorder.work / "small.img"
    flow = record(recorder, "image-create", "image", "create", "--disk-format", "qcow2",
                  "--file", "small.img", "--public", IMAGE)

    flow.find(CLI, "glance-api", "GET", "/", 300)                       # version discovery
    create = flow.find(CLI, "glance-api", "POST", "/v2/images", 201)
    validation_inside(flow, "glance-api", create)
    image_id = json_body(flow, create)["id"]
    flow.check(re.fullmatch(UUID, image_id) is not None, "POST /v2/images: the new image's id", "a uuid", image_id)
    sent = json_body(flow, create, "request")
    flow.check((sent.get("name"), sent.get("disk_format"), sent.get("visibility")) == (IMAGE, "qcow2", "public"),
               "POST /v2/images: request body", (IMAGE, "qcow2", "public"),
               (sent.get("name"), sent.get("disk_format"), sent.get("visibility")))

    upload = flow.find(CLI, "glance-api", "PUT", f"/v2/images/{image_id}/file", 204)
    flow.check(create["resp_n"] < upload["req_n"], "order", "POST /v2/images answered before the upload",
               f"({create['resp_n']}) answer, ({upload['req_n']}) upload")
    check_body_is_file(flow, upload, "request", img, "the CLI's upload")

    # glance stores the image in swift while serving the upload, as its service user
    flow.find("glance-api", "keystone", "POST", "/v3/auth/tokens", 201, inside=upload)
    head = flow.find("glance-api", "swift-proxy-server", "HEAD", f"{ACCOUNT}/glance", (204, 404), inside=upload)
    validation_inside(flow, "swift-proxy-server", head)
    if head["status"] == 404:   # the lab's first image: glance makes its container
        flow.find("glance-api", "swift-proxy-server", "PUT", f"{ACCOUNT}/glance", 201, inside=upload)
    put = flow.find("glance-api", "swift-proxy-server", "PUT", f"{ACCOUNT}/glance/{image_id}", 201, inside=upload)
    check_body_is_file(flow, put, "request", img, "glance's object PUT to swift")

    show = flow.find(CLI, "glance-api", "GET", f"/v2/images/{image_id}", 200)
    flow.check(upload["resp_n"] < show["req_n"], "order", "the upload answered before the final GET",
               f"({upload['resp_n']}) answer, ({show['req_n']}) GET")
    got = json_body(flow, show)
    flow.check((got["status"], got["size"]) == ("active", SMALL_IMG_SIZE), "the image after the upload",
               ("active", SMALL_IMG_SIZE), (got["status"], got["size"]))


def test_image_list(recorder, image):
    flow = record(recorder, "image-list", "image", "list")
    lst = flow.find(CLI, "glance-api", "GET", "/v2/images", 200)
    validation_inside(flow, "glance-api", lst)
    names = [i["name"] for i in json_body(flow, lst)["images"]]
    flow.check(image in names, "GET /v2/images: the images", f"{image} among them", names)
    flow.check(image in flow.stdout, "the command's output", image, e2elib.tail(flow.stdout, 10))


def test_image_show(recorder, image):
    flow = record(recorder, "image-show", "image", "show", image)
    # the CLI tries the name as an id first, then looks it up by name
    calls = flow.find(CLI, "glance-api", "GET", r"/v2/images(/.*)?", many=True)
    validation_inside(flow, "glance-api", calls[0])
    by_name = [x for x in calls if x["target"] == f"/v2/images?name={image}" and x["status"] == 200]
    flow.check(len(by_name) == 1, "the lookup by name", f"GET /v2/images?name={image} -> 200",
               [f"{x['target']} -> {x['status']}" for x in calls])
    found = json_body(flow, by_name[0])["images"]
    flow.check([i["name"] for i in found] == [image], "the lookup's answer", [image], [i["name"] for i in found])


def test_image_save(recorder, image):
    out = recorder.work / "saved.img"
    out.unlink(missing_ok=True)
    flow = record(recorder, "image-save", "image", "save", "--file", "saved.img", image)
    img = recorder.work / "small.img"
    flow.check(out.read_bytes() == img.read_bytes(), "the saved file", "equal to the uploaded one", "different")
    download = flow.find(CLI, "glance-api", "GET", rf"/v2/images/{UUID}/file", 200)
    check_body_is_file(flow, download, "response", img, "the CLI's download")
    # glance reads the object from swift while serving the download
    flow.find("glance-api", "keystone", "POST", "/v3/auth/tokens", 201, inside=download)
    get = flow.find("glance-api", "swift-proxy-server", "GET", rf"{ACCOUNT}/glance/{UUID}", 200, inside=download)
    validation_inside(flow, "swift-proxy-server", get)
    check_body_is_file(flow, get, "response", img, "swift's answer to glance")


def test_image_set(recorder, image):
    flow = record(recorder, "image-set", "image", "set", "--property", "e2e=yes", image)
    patch = flow.find(CLI, "glance-api", "PATCH", rf"/v2/images/{UUID}", 200)
    req = patch["full"]["request"]
    flow.check(header(req["headers"], "Content-Type") == "application/openstack-images-v2.1-json-patch",
               "PATCH Content-Type", "application/openstack-images-v2.1-json-patch",
               header(req["headers"], "Content-Type"))
    ops = json_body(flow, patch, "request")
    flow.check({"op": "add", "path": "/e2e", "value": "yes"} in ops, "PATCH body (JSON patch)",
               'an {"op": "add", "path": "/e2e", "value": "yes"}', ops)
    flow.check(json_body(flow, patch).get("e2e") == "yes", "the image after the PATCH", "e2e: yes",
               json_body(flow, patch).get("e2e"))


def test_image_delete(recorder, image):
    flow = record(recorder, "image-delete", "image", "delete", image)
    delete = flow.find(CLI, "glance-api", "DELETE", rf"/v2/images/{UUID}", 204)
    image_id = e2elib.path_of(delete["target"]).rsplit("/", 1)[1]
    # glance removes the object from swift while serving the delete
    flow.find("glance-api", "keystone", "POST", "/v3/auth/tokens", 201, inside=delete)
    flow.find("glance-api", "swift-proxy-server", "DELETE", f"{ACCOUNT}/glance/{image_id}", 204, inside=delete)
    assert recorder.openstack("image", "show", image, check=False).returncode != 0, "the image is still there"


# ----------------------------------------------------------------- swift

def test_container_create(recorder):
    flow = record(recorder, "container-create", "container", "create", CONTAINER)
    put = flow.find(CLI, "swift-proxy-server", "PUT", f"{ACCOUNT}/{CONTAINER}", 201)
    validation_inside(flow, "swift-proxy-server", put)


def test_object_create(recorder, container):
    flow = record(recorder, "object-create", "object", "create", container, OBJECT)
    put = flow.find(CLI, "swift-proxy-server", "PUT", f"{ACCOUNT}/{container}/{OBJECT}", 201)
    validation_inside(flow, "swift-proxy-server", put)
    check_body_is_file(flow, put, "request", recorder.work / OBJECT, "the object upload")


def test_object_list(recorder, stored_object):
    flow = record(recorder, "object-list", "object", "list", CONTAINER)
    get = flow.find(CLI, "swift-proxy-server", "GET", f"{ACCOUNT}/{CONTAINER}", 200)
    validation_inside(flow, "swift-proxy-server", get)
    names = [o["name"] for o in json_body(flow, get)]
    flow.check(names == [stored_object], "the container listing", [stored_object], names)


# ----------------------------------------------------------------- trove

def test_database_instance_list(recorder):
    flow = record(recorder, "database-instance-list", "database", "instance", "list")
    get = flow.find(CLI, "trove-api", "GET", r"/v1\.0/[0-9a-f]{32}/instances", 200)
    validation_inside(flow, "trove-api", get)
    flow.check(json_body(flow, get) == {"instances": []}, "trove's answer", {"instances": []}, json_body(flow, get))
