"""Fixtures of the end-to-end suite. Run it with tests/e2e/run.sh: that starts
the lab behind tracer and sets the variables read here; without them every
test is skipped (so a plain `pytest` elsewhere in the repo does no harm)."""
import shutil

import pytest

import e2elib

ENV = e2elib.Env.from_environ()
SKIP_REASON = "the lab and tracer are not running: use tests/e2e/run.sh"

IMAGE = "e2e-image"           # what the flows create, show, save, set and delete
CONTAINER = "e2e-container"
OBJECT = "hello.txt"


def pytest_collection_modifyitems(config, items):
    if ENV is None:
        for item in items:
            if item.module.__name__ != "test_checks":   # test_checks.py needs no lab
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="session")
def env():
    return ENV


@pytest.fixture(scope="session")
def recorder(env):
    """Records the flows; the files the commands use sit in one work folder so
    the recorded command lines are short (`--file small.img`)."""
    work = env.tmp / "work"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(env.lab / "small.img", work / "small.img")
    (work / OBJECT).write_text("hello from the tracer end-to-end suite\n")
    return e2elib.Recorder(env, work)


def made_by(recorder, flow, undone_by=None):
    """Whether a recorded flow already made the thing (and no later flow removed it)."""
    f = recorder.flows.get(flow)
    return f is not None and f.returncode == 0 and (undone_by is None or undone_by not in recorder.flows)


@pytest.fixture
def image(recorder):
    """The image the image flows act on: made by the image-create flow when it
    ran, else here (outside any flow) so each flow is still tested alone."""
    if not made_by(recorder, "image-create", undone_by="image-delete") and \
            recorder.openstack("image", "show", IMAGE, "-f", "value", "-c", "id", check=False).returncode != 0:
        recorder.openstack("image", "create", "--disk-format", "qcow2", "--file", "small.img", "--public", IMAGE)
    return IMAGE


@pytest.fixture
def container(recorder):
    if not made_by(recorder, "container-create") and \
            recorder.openstack("container", "show", CONTAINER, check=False).returncode != 0:
        recorder.openstack("container", "create", CONTAINER)
    return CONTAINER


@pytest.fixture
def stored_object(recorder, container):
    if not made_by(recorder, "object-create") and \
            recorder.openstack("object", "show", container, OBJECT, check=False).returncode != 0:
        recorder.openstack("object", "create", container, OBJECT)
    return OBJECT


USER = "e2e-user"
FLAVOR = "m1.tiny"            # tests/lab/lab.sh register_compute
NETWORK = "e2e-net"
SUBNET = "e2e-subnet"
SUBNET_RANGE = "192.0.2.0/24"  # a documentation range: addresses in neutron's database only
SERVER_IMAGE = "e2e-server-image"
SERVER = "e2e-server"


def exists(recorder, *show):
    return recorder.openstack(*show, "-f", "value", "-c", "id", check=False).returncode == 0


@pytest.fixture
def user(recorder):
    if not made_by(recorder, "user-create") and not exists(recorder, "user", "show", USER):
        recorder.openstack("user", "create", "--password", "e2e-pass", USER)
    return USER


@pytest.fixture
def network(recorder):
    if not made_by(recorder, "network-create") and not exists(recorder, "network", "show", NETWORK):
        recorder.openstack("network", "create", NETWORK)
    return NETWORK


@pytest.fixture
def subnet(recorder, network):
    if not made_by(recorder, "subnet-create") and not exists(recorder, "subnet", "show", SUBNET):
        recorder.openstack("subnet", "create", "--network", network, "--subnet-range", SUBNET_RANGE, SUBNET)
    return SUBNET


@pytest.fixture
def server_image(recorder):
    """The server's image, made outside any flow (the image flows delete theirs)."""
    if not exists(recorder, "image", "show", SERVER_IMAGE):
        recorder.openstack("image", "create", "--disk-format", "qcow2", "--file", "small.img", "--public",
                           SERVER_IMAGE)
    return SERVER_IMAGE


@pytest.fixture
def server(recorder, server_image, subnet):
    if not made_by(recorder, "server-create", undone_by="server-delete") and \
            not exists(recorder, "server", "show", SERVER):
        recorder.openstack("server", "create", "--image", server_image, "--flavor", FLAVOR, "--network",
                           NETWORK, "--wait", SERVER)
    return SERVER
