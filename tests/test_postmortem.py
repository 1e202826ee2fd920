# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Last words: how a tracked process ended (exit code, signal, OOM kill) and its last counts,
written to the state directory, listed and shown by `pyleakctl postmortem`, kept across a
daemon SIGKILL, bounded.  A real OOM kill in a real memory cgroup (v1 here: this machine's
cgroup2 hierarchy has no memory controller; v2 `memory.max` is used where it has one)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import Daemon, any_python, cgroup_remove, top_counts
from test_hostile_clients import GROUP, as_user, ensure_users, start_as

DEADLINE = 60
# Keeps instances of a class of its own, each with a str: 1,500 every 0.2 s (~3 MB/s), and as
# fast as it can once told so on stdin.
HOG = r"""
import json, os, select, sys
class Hog(object):
    def __init__(self, i):
        self.payload = "x" * 200 + str(i)
hogs = []
step = 0.2
print(json.dumps({"pid": os.getpid()}), flush=True)
while True:
    hogs.extend(Hog(i) for i in range(1500))
    if step and select.select([sys.stdin], [], [], step)[0]:
        step = 0
"""
SLEEPER = r"""
import json, os, sys, time
kept = [str(i) for i in range(50000)]
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.exit(int(sys.stdin.readline()))
"""


@pytest.fixture(scope="module")
def pm_daemon():
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF, cgroups)")
    tmp = tempfile.mkdtemp(prefix="pyleak-pm-")
    d = Daemon(tmp, "--sample-interval", "0.5")
    yield d
    code = d.stop()
    shutil.rmtree(tmp)
    assert code == 0


def started(python, code, preexec_fn=None):
    p = subprocess.Popen([python, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, preexec_fn=preexec_fn)
    assert json.loads(p.stdout.readline())["pid"] == p.pid
    return p


def report_of(d, pid):
    """The postmortem report of pid, once the daemon has seen it end."""
    deadline = time.time() + DEADLINE
    while time.time() < deadline:
        code, doc = d.json("postmortem", str(pid))
        if code == 0:
            return doc
        assert doc["error"]["code"] == "no_such_process", doc
        time.sleep(0.1)
    raise AssertionError("no report of pid %d: %s" % (pid, d.log_text()[-3000:]))


class MemoryCgroup:
    """A memory cgroup limited to limit bytes, without swap: v2 if cgroup2 has the memory
    controller, else v1."""

    def __init__(self, limit):
        v2 = "/sys/fs/cgroup/unified"
        name = "pyleak-test-oom-%d" % os.getpid()
        if "memory" in open(os.path.join(v2, "cgroup.controllers")).read().split():
            self.path = os.path.join(v2, name)
            os.mkdir(self.path)
            self.write("memory.max", limit)
            self.write("memory.swap.max", 0)
        else:
            self.path = os.path.join("/sys/fs/cgroup/memory", name)
            os.mkdir(self.path)
            self.write("memory.limit_in_bytes", limit)
            self.write("memory.swappiness", 0)

    def write(self, key, value):
        with open(os.path.join(self.path, key), "w") as f:
            f.write(str(value))

    def enter(self):
        """In the child, before exec: moves it into the cgroup."""
        self.write("cgroup.procs", os.getpid())

    def remove(self):
        cgroup_remove(self.path, 30)


def suspects_of(d, pid):
    code, doc = d.json("leaks", "-p", str(pid))
    return [s["type"] for s in doc.get("suspects", [])]


def test_oom_kill_is_reported_with_the_leaking_type(pm_daemon):
    """The leak is judged while it grows slowly (that takes some 30 s of censuses), then it
    bursts into its cgroup's limit."""
    d = pm_daemon
    cg = MemoryCgroup(400 << 20)
    try:
        p = started(any_python(), HOG, preexec_fn=cg.enter)
        d.ok("attach", "-p", str(p.pid))
        deadline = time.time() + 120
        while "Hog" not in suspects_of(d, p.pid):
            assert time.time() < deadline and p.poll() is None, d.json("leaks", "-p", str(p.pid))
            time.sleep(1)
        p.stdin.write("burst\n")
        p.stdin.flush()
        assert p.wait(timeout=120) == -signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
        cg.remove()
    doc = report_of(d, p.pid)
    assert doc["cause"] == "oom_kill" and doc["signal"] == 9, {k: doc[k] for k in doc if k not in ("top", "leaks")}
    top = {r["type"]: r["live"] for r in doc["top"]["types"]}
    # ~400 MiB of them at ~400 bytes each, with their str
    assert top.get("Hog", 0) > 200000, top
    suspects = [s["type"] for s in doc["leaks"]["suspects"]]
    assert "Hog" in suspects, doc["leaks"]
    listed = {r["pid"]: r for r in d.ok("postmortem")["reports"]}
    assert listed[p.pid]["cause"] == "oom_kill", listed[p.pid]
    st = {t["pid"]: t for t in d.ok("status")["targets"]}
    assert st[p.pid]["state"] == "exited" and st[p.pid]["cause"] == "oom_kill", st[p.pid]
    # for humans: the cause, then top's table
    code, out, err = d.ctl("postmortem", str(p.pid))
    assert code == 0 and "oom_kill (signal 9)" in out and "Hog" in out, (out, err)


# Leaf objects made by grow(), at GROW_LINE of the program, all kept.
GROWER = r"""
import json, os, time
class Leaf(object):
    def __init__(self, i):
        self.payload = "y" * 100 + str(i)
leaves = []
def grow(n):
    for i in range(n):
        leaves.append(Leaf(i))  # the site
print(json.dumps({"pid": os.getpid()}), flush=True)
while True:
    grow(2000)
    time.sleep(0.2)
"""
GROW_LINE = [i for i, line in enumerate(GROWER.splitlines(), 1) if "# the site" in line][0]


def test_report_names_the_sites_of_a_dead_process(pm_daemon):
    """Its code objects are gone with it: the report names its sites from what the daemon kept
    of them while it ran, where it used to say `<code 0x... gone>`."""
    d = pm_daemon
    p = started(any_python(), GROWER)
    try:
        d.ok("attach", "-p", str(p.pid))
        st = {t["pid"]: t for t in d.ok("status")["targets"]}[p.pid]
        if not st["sites"]["enabled"]:
            pytest.skip("no allocation sites on %s" % st["python"])
        deadline = time.time() + 180
        while "Leaf" not in suspects_of(d, p.pid):
            assert time.time() < deadline and p.poll() is None, d.json("leaks", "-p", str(p.pid))
            time.sleep(1)
        memo = {t["pid"]: t for t in d.ok("status")["targets"]}[p.pid]["sites"]["code_memo_bytes"]
        assert 0 < memo <= (1 << 20) + (1 << 20), memo
        p.kill()
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    doc = report_of(d, p.pid)
    suspect = [s for s in doc["leaks"]["suspects"] if s["type"] == "Leaf"]
    assert suspect and suspect[0].get("sites"), doc["leaks"]
    sites = suspect[0]["sites"]
    assert not [s for s in sites for f in [s] + s["stack"] if f["function"].startswith("<code")], sites
    # innermost Leaf.__init__ (the page its str touched first, in sampled mode), called by grow()
    assert ("grow", GROW_LINE) in [(f["function"], f["line"]) for f in sites[0]["stack"]], sites


def test_signal_and_exit_code(pm_daemon):
    d = pm_daemon
    python = any_python()
    term = started(python, SLEEPER)
    three = started(python, SLEEPER)
    for p in (term, three):
        d.ok("attach", "-p", str(p.pid))
        # a census has counted them: the report keeps the last one
        assert top_counts(d, p.pid)[0].get("str", 0) >= 50000
    term.send_signal(signal.SIGTERM)
    three.stdin.write("3\n")
    three.stdin.flush()
    assert term.wait(timeout=30) == -signal.SIGTERM and three.wait(timeout=30) == 3
    doc = report_of(d, term.pid)
    assert doc["cause"] == "signal" and doc["signal"] == 15 and "exit_code" not in doc, doc["cause"]
    assert any(r["type"] == "str" and r["live"] >= 50000 for r in doc["top"]["types"])
    doc = report_of(d, three.pid)
    assert doc["cause"] == "exit" and doc["exit_code"] == 3 and "signal" not in doc, doc["cause"]
    # One file each, 0600, in the daemon's 0700 directory, named for the pid.
    assert os.stat(d.state_dir).st_mode & 0o777 == 0o700
    names = [n for n in os.listdir(d.state_dir) if n.startswith("pyleak-%d-" % three.pid)]
    assert len(names) == 1, os.listdir(d.state_dir)
    assert os.stat(os.path.join(d.state_dir, names[0])).st_mode & 0o777 == 0o600
    with open(os.path.join(d.state_dir, names[0])) as f:
        assert json.load(f) == doc


def test_detach_writes_no_report(pm_daemon):
    d = pm_daemon
    p = started(any_python(), SLEEPER)
    try:
        d.ok("attach", "-p", str(p.pid))
        d.ok("detach", "-p", str(p.pid))
    finally:
        p.kill()
        p.wait()
    time.sleep(1)
    code, doc = d.json("postmortem", str(p.pid))
    assert code == 1 and doc["error"]["code"] == "no_such_process", doc
    assert p.pid not in [r["pid"] for r in d.ok("postmortem")["reports"]]


def valid_report(pid, ended_at, uid=0):
    return {"pid": pid, "exe": "/usr/bin/python3.11", "python": "3.11.2", "mode": "sampled",
            "cause": "exit", "exit_code": 0, "attached_at": ended_at - 5, "ended_at": ended_at,
            "uid": uid, "gid": uid, "top": {"pid": pid, "types": []},
            "leaks": {"pid": pid, "suspects": []}}


def exited_with(d, code):
    """A process attached in d that exits with code, once its report says so."""
    p = started(any_python(), SLEEPER)
    d.ok("attach", "-p", str(p.pid))
    p.stdin.write("%d\n" % code)
    p.stdin.flush()
    assert p.wait(timeout=30) == code
    assert report_of(d, p.pid)["exit_code"] == code
    return p


def test_reports_survive_sigkill_and_stay_bounded(tmp_path):
    """Reports written by one daemon are there after it is SIGKILLed and another starts on the
    same directory; the directory's files are hostile input, and at most 64 reports stay."""
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF)")
    state = str(tmp_path / "state")
    d = Daemon(str(tmp_path), "--state-dir", state)
    try:
        p = exited_with(d, 7)
    finally:
        d.proc.kill()
        d.proc.wait()
        d.log.close()
    # 70 older reports, and files that are not reports: a symlink to one, bad JSON, a huge one.
    for i in range(70):
        with open(os.path.join(state, "pyleak-%d-%d.json" % (100000 + i, 1000 + i)), "w") as f:
            json.dump(valid_report(100000 + i, 1000.0 + i), f)
    secret = str(tmp_path / "secret.json")
    with open(secret, "w") as f:
        json.dump(valid_report(4242, 5e9), f)
    os.symlink(secret, os.path.join(state, "pyleak-4242-1.json"))
    with open(os.path.join(state, "pyleak-4243-1.json"), "w") as f:
        f.write('{"pid": 4243, "pid": 1, "top": ')
    with open(os.path.join(state, "pyleak-4244-1.json"), "w") as f:
        f.write(" " * (2 << 20))
    again = str(tmp_path / "again")
    os.mkdir(again)
    d = Daemon(again, "--state-dir", state)
    try:
        listed = d.ok("postmortem")["reports"]
        pids = [r["pid"] for r in listed]
        # the newest first: the real one, then the 63 newest planted ones; the 7 oldest removed
        assert pids == [p.pid] + [100069 - i for i in range(63)], pids
        assert d.ok("postmortem", str(p.pid))["exit_code"] == 7
        for gone in range(100000, 100007):
            assert not os.path.exists(os.path.join(state, "pyleak-%d-%d.json" % (gone, gone - 99000)))
        assert os.path.exists(secret) and os.path.islink(os.path.join(state, "pyleak-4242-1.json"))
        pm = d.ok("status")["postmortem"]
        assert pm["count"] == 64 and pm["max_count"] == 64 and pm["removed"] == 7 and pm["on_disk"], pm
        code, doc = d.json("postmortem", "4242")
        assert code == 1 and doc["error"]["code"] == "no_such_process", doc
    finally:
        assert d.stop() == 0


def test_unusable_state_dir_keeps_reports_in_memory(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF)")
    state = tmp_path / "shared"
    state.mkdir()
    os.chmod(str(state), 0o777)	# others could plant files: not used
    d = Daemon(str(tmp_path), "--state-dir", str(state))
    try:
        exited_with(d, 5)
        assert os.listdir(str(state)) == []
        assert d.ok("status")["postmortem"]["on_disk"] is False
        assert d.log_text().count("kept in memory only") == 1
    finally:
        assert d.stop() == 0


def test_members_see_only_their_own_reports():
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF, users)")
    ensure_users()
    tmp = tempfile.mkdtemp(prefix="pyleak-pm-group-")
    os.chmod(tmp, 0o755)
    d = Daemon(tmp, "--group", GROUP)
    try:
        python = any_python()
        alice = start_as("pyleak-alice", python)
        bob = start_as("pyleak-bob", python)
        for p in (alice, bob):
            d.ok("attach", "-p", str(p.pid))
        for p in (alice, bob):
            p.kill()
            p.wait()
        for p in (alice, bob):
            assert report_of(d, p.pid)["cause"] == "signal"
        code, doc = as_user("pyleak-alice", d, "postmortem")
        assert code == 0 and [r["pid"] for r in doc["reports"]] == [alice.pid], doc
        code, doc = as_user("pyleak-alice", d, "postmortem", str(bob.pid))
        assert code == 1 and doc["error"]["code"] == "no_such_process", doc
        code, doc = as_user("pyleak-alice", d, "postmortem", str(alice.pid))
        assert code == 0 and doc["signal"] == 9, doc
        code, doc = as_user("pyleak-alice", d, "status")
        assert [t["pid"] for t in doc["targets"]] == [alice.pid], doc["targets"]
    finally:
        assert d.stop() == 0
        shutil.rmtree(tmp)
