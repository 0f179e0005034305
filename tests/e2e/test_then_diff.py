"""`tracer diff` on real recordings, after every other flow (so the lab is in
the state a second `image create` meets: glance's swift container exists and
its own token is cached): two recordings of the same command differ only in
ids, tokens and times, so diff finds nothing; a recording with one call more
shows exactly that call, and the diff's page builds with mkdocs --strict."""
import shlex
import subprocess
import sys

import e2elib

CREATE = ["openstack", "image", "create", "--disk-format", "qcow2", "--file", "small.img", "--public"]


def diff(recorder, a, b, *more):
    return subprocess.run(recorder.tracer.argv("diff", a, b, *more), capture_output=True, text=True)


def test_two_recordings_of_image_create_differ_only_in_ids(recorder):
    for name in ("diff-image-a", "diff-image-b"):
        f = recorder.record(name, [*CREATE, "e2e-diff-image"])
        assert f.returncode == 0, f.stderr
    p = diff(recorder, "diff-image-a", "diff-image-b")
    assert p.returncode == 0 and "no differences" in p.stdout, f"exit {p.returncode}:\n{p.stdout}{p.stderr}"


def test_one_call_more_is_exactly_that_call(recorder, env):
    # The same command, then one more call through tracer (glance's versions).
    extra = [sys.executable, "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:19292/versions').read()"]
    script = shlex.join([*CREATE, "e2e-diff-image"]) + " && " + shlex.join(extra)
    f = recorder.record("diff-image-c", ["sh", "-c", script])
    assert f.returncode == 0, f.stderr
    out = env.tmp / "diff-page"
    p = diff(recorder, "diff-image-a", "diff-image-c", "--out", out / "docs")
    lines = [line for line in p.stdout.splitlines() if line[:2] in ("+ ", "- ", "~ ")]
    assert p.returncode == 1, f"exit {p.returncode}:\n{p.stdout}{p.stderr}"
    assert len(lines) == 1 and lines[0].startswith("+ ") and "glance-api GET /versions" in lines[0], p.stdout
    build = e2elib.mkdocs_build(out / "docs", out / "work", "tracer diff")
    assert build.returncode == 0 and not e2elib.mkdocs_problems(build), f"{build.stdout}{build.stderr}"
