#!/usr/bin/env python3
"""Regenerate assets/api-ref.json, the bundled index of OpenStack api-ref operations.

Usage:
    scripts/gen-api-ref.py CHECKOUTS_DIR [-o assets/api-ref.json] [--check-html HTML_DIR]

CHECKOUTS_DIR holds one directory per repository, named as the repository:
keystone, glance, swift, nova, neutron-lib, placement, cinder, trove. Each is a
git work tree (the commit is read with `git rev-parse HEAD`) or a plain tree
with a file COMMIT holding the commit id (what `git archive` leaves out). Only
`api-ref/` is read, plus the request samples the api-ref includes from
elsewhere (nova's `doc/api_samples/`). For example:

    for r in keystone glance swift nova neutron-lib placement cinder trove; do
        git clone --depth 1 https://opendev.org/openstack/$r /tmp/apiref/$r
    done
    scripts/gen-api-ref.py /tmp/apiref

The page of every operation is the api-ref page (index.rst and the files it
includes) its section is on; its anchor is docutils' make_id of the section
title, the id Sphinx gives the section and os-api-ref puts in the page's URL
(`#create-image`, `?expanded=create-image-detail`). A title whose id is
already taken on its page gets an automatic id (`id42`) that depends on
everything docutils numbered before it; that cannot be known without
building the page, so such an operation is recorded with "anchor": null and
linked to its page only.

--check-html DIR compares the index with api-ref pages built by Sphinx and
os-api-ref (DIR/<repo>/<page>.html, e.g. `sphinx-build -b html
api-ref/source DIR/keystone`; versions in scripts/requirements-api-ref.txt):
every operation must be on its page with the same method, path, title and
anchor, and every operation on the built pages must be in the index.

Only the standard library is needed (Python 3.11).
"""

from __future__ import annotations

import argparse
import html
import json
import pathlib
import re
import subprocess
import sys
import unicodedata

DOCS = "https://docs.openstack.org/api-ref/"

# (api, repository, [(page source, published URL of the page)]): the pages
# of each API's reference. Pages in a directory are linked as .../index.html,
# the root page as the directory (the seeds' links do both).
APIS = [
    ("identity", "keystone", [
        ("api-ref/source/v3/index.rst", DOCS + "identity/v3/index.html"),
        ("api-ref/source/v3-ext/index.rst", DOCS + "identity/v3-ext/index.html"),
    ]),
    ("image", "glance", [
        ("api-ref/source/v2/index.rst", DOCS + "image/v2/index.html"),
        ("api-ref/source/v2/metadefs-index.rst", DOCS + "image/v2/metadefs-index.html"),
        ("api-ref/source/versions/index.rst", DOCS + "image/versions/index.html"),
    ]),
    ("object-store", "swift", [
        ("api-ref/source/index.rst", DOCS + "object-store/"),
    ]),
    ("compute", "nova", [
        ("api-ref/source/index.rst", DOCS + "compute/"),
    ]),
    ("network", "neutron-lib", [
        ("api-ref/source/v2/index.rst", DOCS + "network/v2/index.html"),
    ]),
    ("placement", "placement", [
        ("api-ref/source/index.rst", DOCS + "placement/"),
    ]),
    ("block-storage", "cinder", [
        ("api-ref/source/v3/index.rst", DOCS + "block-storage/v3/index.html"),
    ]),
    ("database", "trove", [
        ("api-ref/source/index.rst", DOCS + "database/"),
    ]),
]

# docutils.nodes.make_id, copied (docutils is public domain) so that the
# generator needs nothing outside the standard library.
_non_id_chars = re.compile("[^a-z0-9]+")
_non_id_at_ends = re.compile("^[-0-9]+|-+$")
_non_id_translate = {
    0x00F8: "o", 0x0111: "d", 0x0127: "h", 0x0131: "i", 0x0142: "l",
    0x0167: "t", 0x0180: "b", 0x0183: "b", 0x0188: "c", 0x018C: "d",
    0x0192: "f", 0x0199: "k", 0x019A: "l", 0x019E: "n", 0x01A5: "p",
    0x01AB: "t", 0x01AD: "t", 0x01B4: "y", 0x01B6: "z", 0x01E5: "g",
    0x0225: "z", 0x0234: "l", 0x0235: "n", 0x0236: "t", 0x0237: "j",
    0x023C: "c", 0x023F: "s", 0x0240: "z", 0x0247: "e", 0x0249: "j",
    0x024B: "q", 0x024D: "r", 0x024F: "y",
}
_non_id_translate_digraphs = {
    0x00DF: "sz", 0x00E6: "ae", 0x0153: "oe", 0x0238: "db", 0x0239: "qp",
}


def make_id(string: str) -> str:
    id_ = string.lower()
    id_ = id_.translate(_non_id_translate_digraphs)
    id_ = id_.translate(_non_id_translate)
    id_ = unicodedata.normalize("NFKD", id_).encode("ascii", "ignore").decode("ascii")
    id_ = _non_id_chars.sub("-", " ".join(id_.split()))
    return _non_id_at_ends.sub("", id_)


# Inline markup as it renders in a title: ``literal``, :role:`text <target>`,
# `text <url>`_, *emphasis*, **strong**, and backslash escapes.
_INLINE = [
    (re.compile(r"``(.+?)``"), r"\1"),
    (re.compile(r":[\w.:+-]+:`([^`<]*?)\s*<[^`>]*>`"), r"\1"),
    (re.compile(r":[\w.:+-]+:`([^`]*)`"), r"\1"),
    (re.compile(r"`([^`<]*?)\s*<[^`>]*>`__?"), r"\1"),
    (re.compile(r"`([^`]*)`__?"), r"\1"),
    (re.compile(r"\*\*(.+?)\*\*"), r"\1"),
    (re.compile(r"\*(.+?)\*"), r"\1"),
]
_ESCAPE = re.compile(r"\\(.)")


def title_text(raw: str) -> str:
    # Escaped characters are set aside first: `\*` is no emphasis.
    escaped = []

    def keep(m):
        escaped.append(m.group(1))
        return f"\0{len(escaped) - 1}\0"

    text = _ESCAPE.sub(keep, raw)
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    text = re.sub("\0(\\d+)\0", lambda m: escaped[int(m.group(1))], text)
    return " ".join(text.split())


def smart_quotes(text: str) -> str:
    """The title as the page shows it: Sphinx's smartquotes curl ' and "."""
    out = []
    for i, c in enumerate(text):
        prev = text[i - 1] if i else " "
        opening = prev.isspace() or prev in "([{"
        if c == "'":
            out.append("\u2018" if opening else "\u2019")
        elif c == '"':
            out.append("\u201c" if opening else "\u201d")
        else:
            out.append(c)
    return "".join(out)


_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1*$")
_INCLUDE = re.compile(r"^\.\. include::\s*(\S+)\s*$")
# The method and path are the directive's first content line, on the line of
# the directive or the next one.
_REST_METHOD = re.compile(r"^\.\. rest_method::\s*(.*?)\s*$")
_METHOD_PATH = re.compile(r"^([A-Z]+)\s+(\S+)$")
_LITERALINCLUDE = re.compile(r"^\s*\.\. literalinclude::\s*(\S+)\s*$")
_TARGET = re.compile(r"^\.\. _([^:`]+|`[^`]+`):")


def page_lines(path: pathlib.Path, source_root: pathlib.Path, depth: int = 0):
    """Lines of a page with its includes expanded, each with its file."""
    if depth > 20:
        raise SystemExit(f"{path}: includes nested too deep")
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _INCLUDE.match(line)
        if m:
            target = m.group(1)
            inc = source_root / target.lstrip("/") if target.startswith("/") else path.parent / target
            yield from page_lines(inc, source_root, depth + 1)
        else:
            yield path, line


def is_adornment(line: str) -> bool:
    return bool(_ADORNMENT.match(line))


def titles_and_lines(lines):
    """Walk a page: ("title", text, style) for section titles, ("line", file, line) otherwise.

    The style (adornment character, overlined or not) gives the level: the
    order styles first appear on the page, as docutils nests sections.
    """
    i = 0
    while i < len(lines):
        path, line = lines[i]
        nxt = lines[i + 1][1] if i + 1 < len(lines) else ""
        third = lines[i + 2][1] if i + 2 < len(lines) else ""
        # Overline, title, underline of the same character.
        if is_adornment(line) and nxt.strip() and not is_adornment(nxt) and third.rstrip() == line.rstrip():
            yield ("title", nxt.strip(), (line[0], True))
            i += 3
            continue
        # Title, underline: text at the margin, then a line of one character
        # at least as long as the title (or of 4 and more: docutils only warns).
        if (line.strip() and not line[0].isspace() and not is_adornment(line)
                and is_adornment(nxt) and (len(nxt) >= len(line.rstrip()) or len(nxt) >= 4)
                and (i == 0 or not lines[i - 1][1].strip())):
            yield ("title", line.strip(), (nxt[0], False))
            i += 2
            continue
        yield ("line", path, line)
        i += 1


def load_example(path: pathlib.Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def parse_page(page: pathlib.Path, source_root: pathlib.Path, index: int):
    lines = list(page_lines(page, source_root))
    taken = set()  # ids on the page so far, in document order
    ops = []
    styles = []  # adornment styles in order of appearance: index = level
    stack = []  # (level, text, anchor) of the titles enclosing the line
    op = None  # the operation whose section we are in, with its level
    pending = None  # a rest_method waiting for its content line
    for item in titles_and_lines(lines):
        if item[0] == "title":
            _, raw, style = item
            if style not in styles:
                styles.append(style)
            level = styles.index(style)
            text = title_text(raw)
            id_ = make_id(text)
            anchor = id_ if id_ and id_ not in taken else None
            taken.add(id_)
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text, anchor))
            if op is not None and level <= op[1]:
                op = None
            continue
        _, path, line = item
        if pending is not None and line.strip():
            line, pending = pending + line.strip(), None
        m = _TARGET.match(line)
        if m:
            taken.add(make_id(m.group(1).strip("`")))
            continue
        m = _REST_METHOD.match(line)
        if m and not m.group(1):
            pending = line.rstrip() + " "
            continue
        if m:
            if not stack:
                raise SystemExit(f"{path}: rest_method before any title")
            mp = _METHOD_PATH.match(m.group(1))
            if not mp:
                raise SystemExit(f"{path}: rest_method without METHOD /path: {line}")
            method, target = mp.groups()
            if not target.startswith("/"):
                target = "/" + target
            level, text, anchor = stack[-1]
            op = ({
                "page": index,
                "method": method,
                "path": target,
                "title": smart_quotes(text),
                "anchor": anchor,
                "examples": [],
            }, level)
            ops.append(op[0])
            continue
        m = _LITERALINCLUDE.match(line)
        if m and op is not None and m.group(1).endswith(".json") and is_request(m.group(1), stack, op[1]):
            example = load_example(path.parent / m.group(1))
            if example is not None:
                op[0]["examples"].append(example)
    return ops


def is_request(sample: str, stack, op_level: int) -> bool:
    """A sample under a "Request" subsection of the operation, or named so."""
    for level, text, _ in reversed(stack):
        if level <= op_level:
            break
        words = text.lower()
        if "response" in words:
            return False
        if "request" in words:
            return True
    name = pathlib.PurePath(sample).name.lower()
    return "req" in name and "resp" not in name


def commit_of(checkout: pathlib.Path) -> str:
    marker = checkout / "COMMIT"
    if marker.is_file():
        return marker.read_text().strip()
    out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{checkout}: not a git work tree and no COMMIT file")
    return out.stdout.strip()


def shape(path: str) -> str:
    path = path.split("?")[0].rstrip("/")
    return re.sub(r"\{[^}]*\}", "{}", path)


def build(checkouts: pathlib.Path):
    apis = []
    for api, repo, pages in APIS:
        root = checkouts / repo
        ops = []
        for index, (source, _) in enumerate(pages):
            ops += parse_page(root / source, root / "api-ref/source", index)
        # A file included twice (nova's internal APIs) repeats its
        # operations under automatic ids: keep the first.
        seen, unique = set(), []
        for op in ops:
            key = (op["page"], op["method"], op["path"], op["title"])
            if key not in seen:
                seen.add(key)
                unique.append(op)
        # Request examples are kept only where one method and path has
        # several operations: they are what tells those apart. A sample
        # shown again under a later operation (keystone's multi-step
        # authentication starts with the password example) says nothing
        # about the later one.
        groups = {}
        for op in unique:
            groups.setdefault((op["method"], shape(op["path"])), []).append(op)
        for group in groups.values():
            shown = []
            for op in group:
                op["examples"] = [e for e in op["examples"] if e not in shown]
                shown += op["examples"]
                if len(group) < 2 or not op["examples"]:
                    del op["examples"]
        apis.append({
            "api": api,
            "repository": f"openstack/{repo}",
            "commit": commit_of(root),
            "pages": [url for _, url in pages],
            "operations": unique,
        })
    return apis


def write(apis, out):
    """One operation a line, in document order: regeneration diffs cleanly."""
    def dumps(value):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    parts = ['{"generator":"scripts/gen-api-ref.py","apis":[\n']
    for n, api in enumerate(apis):
        head = {k: v for k, v in api.items() if k != "operations"}
        parts.append(dumps(head)[:-1] + ',"operations":[\n')
        parts.append(",\n".join(dumps(op) for op in api["operations"]))
        parts.append("\n]}" + (",\n" if n + 1 < len(apis) else "\n"))
    parts.append("]}\n")
    out.write("".join(parts))


_HTML_OP = re.compile(
    r'<section class="detail-control" id="([^"]*)">.*?<span class="badge label-([A-Z]+)">'
    r'.*?<div class="endpoint-url">(.*?)</div>.*?<p class="url-subtitle">(.*?)</p>', re.S)


def check_html(apis, html_dir: pathlib.Path) -> int:
    problems = 0
    for (api_name, repo, pages), api in zip(APIS, apis):
        for index, (source, _) in enumerate(pages):
            rel = pathlib.PurePath(source).relative_to("api-ref/source").with_suffix(".html")
            text = (html_dir / repo / rel).read_text(encoding="utf-8")
            built = set()
            for m in _HTML_OP.finditer(text):
                anchor, method, path, title = m.groups()
                strip = lambda s: html.unescape(re.sub(r"<[^>]+>", "", s)).strip()
                path = strip(path)
                built.add((method, path if path.startswith("/") else "/" + path, strip(title), anchor))
            ours = [op for op in api["operations"] if op["page"] == index]
            by_text = {(m, p, t) for m, p, t, _ in built}
            for op in ours:
                key = (op["method"], op["path"], op["title"])
                ok = (key + (op["anchor"],) in built) if op["anchor"] else key in by_text
                if not ok:
                    problems += 1
                    print(f"{api_name} {rel}: not on the built page: {key + (op['anchor'],)}")
            indexed = {(op["method"], op["path"], op["title"]) for op in ours}
            for method, path, title, anchor in sorted(built):
                if (method, path, title) not in indexed:
                    problems += 1
                    print(f"{api_name} {rel}: missing from the index: {(method, path, title, anchor)}")
            print(f"{api_name} {rel}: {len(ours)} operations, {len(built)} on the built page")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", type=pathlib.Path)
    parser.add_argument("-o", "--output", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parent.parent / "assets/api-ref.json")
    parser.add_argument("--check-html", type=pathlib.Path)
    args = parser.parse_args()
    apis = build(args.checkouts)
    if args.check_html:
        problems = check_html(apis, args.check_html)
        if problems:
            raise SystemExit(f"{problems} differences with the built pages")
    with open(args.output, "w", encoding="utf-8") as out:
        write(apis, out)
    total = sum(len(a["operations"]) for a in apis)
    print(f"wrote {args.output}: {total} operations", file=sys.stderr)


if __name__ == "__main__":
    main()
