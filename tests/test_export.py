# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Acceptance: `pyleakctl sites` exports are read by real tools.

`--format folded` is rendered by Brendan Gregg's flamegraph.pl (Debian ships it in
ruby-stackprof, vendor/FlameGraph/) and `--format pprof` is read back by `go tool pprof`
(Debian's golang-go). Both are in the Makefile's APT_PACKAGES: `make deps` (which `make test`
runs) installs them, and a fixture runs it when one is missing; the tests skip only when that
install fails (no network).

The stub tests feed a known reply through a stand-in socket, so the exports are checked
exactly whatever the daemon can do; test_live_exports attaches the real daemon to a program
that allocates instances of one class from three known functions.
"""
import html
import json
import os
import pty
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import PROGRAMS, PYLEAKCTL, ROOT, _pyenv_python, require

PROGRAM = os.path.join(PROGRAMS, "three_sites.py")
TYPE = "Item"

# A sites reply: shared outer frames, one function at two lines, a site without a stack, a
# path with a space and a non-ASCII name (both legal in Python).
STUB_REPLY = {
    "pid": 4242, "type": TYPE, "sampled": "stub: every allocation",
    "sites": [
        {"function": "alpha", "file": "/srv/my app/m.py", "line": 12, "live": 3000,
         "stack": [{"function": "alpha", "file": "/srv/my app/m.py", "line": 12},
                   {"function": "build", "file": "/srv/my app/m.py", "line": 30},
                   {"function": "<module>", "file": "/srv/my app/m.py", "line": 40}]},
        {"function": "zähle", "file": "/srv/lib.py", "line": 5, "live": 1000,
         "stack": [{"function": "zähle", "file": "/srv/lib.py", "line": 5},
                   {"function": "build", "file": "/srv/my app/m.py", "line": 31},
                   {"function": "<module>", "file": "/srv/my app/m.py", "line": 40}]},
        {"function": "beta", "file": "/srv/lib.py", "line": 9, "live": 7},
    ],
}


# --- the readers -----------------------------------------------------------------------------

def _flamegraph_pl():
    r = subprocess.run(["dpkg", "-L", "ruby-stackprof"], capture_output=True, text=True)
    paths = [p for p in r.stdout.splitlines() if p.endswith("/vendor/FlameGraph/flamegraph.pl")]
    return paths[0] if paths and shutil.which("perl") else None


def _go():
    go = shutil.which("go")
    if go and subprocess.run([go, "tool", "-n", "pprof"], capture_output=True).returncode == 0:
        return go
    return None


_installed = {}


def _tool(what, find):
    """The tool find() locates; if missing, `make deps` once; skip if that cannot install it."""
    path = find()
    if path:
        return path
    if "deps" not in _installed:
        if os.geteuid() != 0:
            pytest.skip("%s missing and not root: run `make deps` as root" % what)
        r = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "deps"],
                           capture_output=True, text=True, timeout=1200)
        _installed["deps"] = r
    path = find()
    if not path:
        r = _installed["deps"]
        pytest.skip("%s: `make deps` could not install it (network down?): exit %s %s" %
                    (what, r.returncode, (r.stdout + r.stderr)[-500:]))
    return path


@pytest.fixture(scope="session")
def flamegraph():
    return _tool("flamegraph.pl (Debian ruby-stackprof)", _flamegraph_pl)


@pytest.fixture(scope="session")
def go():
    return _tool("go tool pprof (Debian golang-go)", _go)


def frame_text(frame):
    return "%s (%s:%s)" % (frame["function"], frame["file"], frame["line"])


def site_stack(site):
    """The stack innermost first, as the exports show it: a site without one is its frame."""
    return site.get("stack") or [site]


def render_svg(flamegraph, folded, tmp_path):
    """flamegraph.pl's SVG of the folded text: {frame text: objects} over all its boxes."""
    path = tmp_path / "sites.folded"
    path.write_bytes(folded.encode())
    r = subprocess.run(["perl", flamegraph, "--title", "live %s objects" % TYPE,
                        "--countname", "objects", "--minwidth", "0", str(path)],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    svg = r.stdout.decode()
    (tmp_path / "sites.svg").write_text(svg)
    assert svg.lstrip().startswith("<?xml") and svg.rstrip().endswith("</svg>"), svg[:300]
    boxes = {}
    for name, count in re.findall(r"<title>(.*?) \(([\d,]+) objects, [\d.]+%\)</title>", svg):
        name = html.unescape(name)
        boxes[name] = boxes.get(name, 0) + int(count.replace(",", ""))
    return svg, boxes


def check_svg(flamegraph, folded, sites, tmp_path):
    svg, boxes = render_svg(flamegraph, folded, tmp_path)
    assert boxes.get("all") == sum(s["live"] for s in sites), boxes
    for site in sites:
        for frame in site_stack(site):
            assert frame_text(frame) in boxes, (frame, sorted(boxes))
            assert html.escape(frame["function"], quote=False) in svg
    # A frame's boxes hold the live objects of every site whose stack holds it.
    for text in boxes.keys() - {"all"}:
        want = sum(s["live"] for s in sites if text in map(frame_text, site_stack(s)))
        assert boxes[text] == want, (text, boxes[text], want)


def pprof_raw(go, path):
    """`go tool pprof -raw`: (sample types line, [(value, [(function, file, line)])])."""
    r = subprocess.run([go, "tool", "pprof", "-raw", str(path)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    section, types, samples, locations = None, None, [], {}
    for line in r.stdout.splitlines():
        if line in ("Samples:", "Locations", "Mappings"):
            section = line
        elif section == "Samples:" and types is None:
            types = line.strip()
        elif section == "Samples:":
            value, ids = line.split(":", 1)
            samples.append((int(value), [int(i) for i in ids.split()]))
        elif section == "Locations":
            m = re.match(r"\s*(\d+): 0x[0-9a-f]+ M=\d+ (\S+) (.*):(-?\d+) s=\d+", line)
            assert m, line
            locations[int(m[1])] = (m[2], m[3], int(m[4]))
    return types, r.stdout, [(v, [locations[i] for i in ids]) for v, ids in samples]


def check_pprof(go, path, sites):
    types, raw, samples = pprof_raw(go, path)
    assert types == "live_objects/count[dflt]", raw
    want = sorted((s["live"], [(f["function"], f["file"], f["line"]) for f in site_stack(s)])
                  for s in sites)
    assert sorted(samples) == want, raw
    assert sum(v for v, _ in samples) == sum(s["live"] for s in sites)
    # -traces: the same stacks by function name, as people read them.
    r = subprocess.run([go, "tool", "pprof", "-traces", str(path)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Type: live_objects" in r.stdout, r.stdout
    for site in sites:
        for frame in site_stack(site):
            assert frame["function"] in r.stdout, r.stdout


def folded_expected(sites):
    return "".join(";".join(frame_text(f) for f in reversed(site_stack(s))) + " %d\n" % s["live"]
                   for s in sites)


# --- the CLI against a stand-in daemon -------------------------------------------------------

class StubDaemon:
    """Answers every request on a Unix socket with one fixed reply; keeps the requests."""

    def __init__(self, path, reply):
        self.path = path
        self.reply = (json.dumps(reply) + "\n").encode()
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stopped = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            conn.settimeout(30)
            with conn, conn.makefile("rwb") as f:
                for line in f:
                    self.requests.append(json.loads(line))
                    f.write(self.reply)
                    f.flush()

    def ctl(self, *args, stdout=subprocess.PIPE):
        env = dict(os.environ, PYLEAKD_SOCKET=self.path)
        return subprocess.run([PYLEAKCTL] + list(args), env=env, stdout=stdout,
                              stderr=subprocess.PIPE, timeout=60)

    def stop(self):
        self.stopped = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def stub(tmp_path):
    s = StubDaemon(str(tmp_path / "stub.sock"), STUB_REPLY)
    yield s
    s.stop()


def test_stub_folded_renders(stub, flamegraph, tmp_path):
    r = stub.ctl("sites", "-p", "4242", "--type", TYPE, "--format", "folded")
    assert r.returncode == 0, r.stderr
    assert stub.requests == [{"cmd": "sites", "pid": 4242, "type": TYPE, "n": 20}]
    folded = r.stdout.decode()
    assert folded == folded_expected(STUB_REPLY["sites"])
    check_svg(flamegraph, folded, STUB_REPLY["sites"], tmp_path)


def test_stub_pprof_reads_back(stub, go, tmp_path):
    path = tmp_path / "sites.pb.gz"
    r = stub.ctl("sites", "-p", "4242", "--type", TYPE, "--format", "pprof", "-n", "5",
                 "-o", str(path))
    assert r.returncode == 0, r.stderr
    assert r.stdout == b""
    assert stub.requests[0]["n"] == 5
    check_pprof(go, path, STUB_REPLY["sites"])
    # The same profile on stdout when it is not a terminal.
    r = stub.ctl("sites", "-p", "4242", "--type", TYPE, "--format", "pprof")
    assert r.returncode == 0, r.stderr
    assert r.stdout[:2] == b"\x1f\x8b"
    (tmp_path / "stdout.pb.gz").write_bytes(r.stdout)
    check_pprof(go, tmp_path / "stdout.pb.gz", STUB_REPLY["sites"])


def test_stub_pprof_refuses_a_terminal(stub):
    leader, follower = pty.openpty()
    try:
        r = stub.ctl("sites", "-p", "4242", "--type", TYPE, "--format", "pprof",
                     stdout=follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert r.returncode == 1
    assert b"terminal" in r.stderr and b"-o FILE" in r.stderr, r.stderr
    assert stub.requests == []


def test_stub_output_file_not_created_on_error(tmp_path):
    path = tmp_path / "never.pb.gz"
    env = dict(os.environ, PYLEAKD_SOCKET=str(tmp_path / "nobody.sock"))
    r = subprocess.run([PYLEAKCTL, "sites", "-p", "1", "--type", TYPE, "--format", "pprof",
                        "-o", str(path)], env=env, capture_output=True, timeout=60)
    assert r.returncode == 1 and b"cannot connect" in r.stderr, r.stderr
    assert not path.exists()


# --- the real daemon -------------------------------------------------------------------------

def sites_exports(daemon, pid, tmp_path):
    """The JSON, folded text and pprof file of one census: retried until two JSON agree."""
    args = ["sites", "-p", str(pid), "--type", TYPE, "-n", "100"]
    pprof = tmp_path / "live.pb.gz"
    for _ in range(20):
        before = daemon.ok(*args)
        code, folded, err = daemon.ctl(*args, "--format", "folded")
        assert code == 0, err
        code, _, err = daemon.ctl(*args, "--format", "pprof", "-o", str(pprof))
        assert code == 0, err
        after = daemon.ok(*args)
        if before["sites"] == after["sites"]:
            return after, folded, pprof
        time.sleep(0.5)
    raise AssertionError("sites never stood still: %s\n%s" % (before, after))


def test_live_exports(daemon, target_factory, flamegraph, go, tmp_path):
    python = require(_pyenv_python("3.12"), "pyenv-3.12")
    t = target_factory([python, PROGRAM])
    pid = t.read()["pid"]
    # Sites of births since attach (precise mode): every Item the program makes has its stack.
    daemon.ok("attach", "-p", str(pid), "--mode", "precise", "--force")
    truth = t.send("go")["sites"]
    code, doc = daemon.json("sites", "-p", str(pid), "--type", TYPE)
    if code and doc.get("error", {}).get("code") == "not_implemented":
        pytest.skip("this pyleakd has no sites yet: %s" % doc)
    assert code == 0, doc
    doc, folded, pprof = sites_exports(daemon, pid, tmp_path)
    sites = doc["sites"]
    assert sites, doc
    leaves = {s["stack"][0]["function"] for s in sites if s.get("stack")}
    assert set(truth) <= leaves, sites
    for site in sites:
        names = [f["function"] for f in site_stack(site)]
        if names[0] in truth:
            assert names[1] == truth[names[0]]["caller"] and "main" in names, site

    assert folded == folded_expected(sites)
    check_svg(flamegraph, folded, sites, tmp_path)
    check_pprof(go, pprof, sites)
