# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Discovery: with `watch` rules, pyleakd attaches the Python processes they match by itself
(a /proc scan at start, then every exec), excludes what `exclude` names, ignores what is not
Python, and labels each target with its container, systemd unit and pid in its namespace.

This machine is shared: `watch = all` here comes with `exclude = exe:/usr/*`,
`exclude = exe:/root/*` and the pytest temp dirs' root (where other tests, run in parallel by
pytest-xdist, copy interpreters), so that only the interpreter a test copies out of all three
is attached, never another test's (or another engineer's) processes.  Deadlines are generous
(a loaded 2-core machine); nothing is timed."""
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import DEBIAN_PYTHON, PROGRAMS, Daemon, cgroup_remove, require, top_counts

PROGRAM = os.path.join(PROGRAMS, "known_counts.py")
DEADLINE_S = 60
SHARED_HOST_EXCLUDES = ["exclude = exe:/usr/*", "exclude = exe:/root/*"]


@pytest.fixture
def shared_host_excludes(tmp_path_factory):
    """SHARED_HOST_EXCLUDES and every pytest run's temp dirs (xdist's workers' included)."""
    base = tmp_path_factory.getbasetemp()	# xdist: /tmp/pytest-of-USER/pytest-N/popen-gwK
    runs = next((p for p in base.parents if p.name.startswith("pytest-of-")), base)
    return SHARED_HOST_EXCLUDES + ["exclude = exe:%s/*" % runs]


@pytest.fixture
def own_dir():
    """A directory outside the pytest temp dirs, for a `watch = all` test's own interpreter."""
    d = tempfile.mkdtemp(prefix="pyleak-discovery-")
    yield pathlib.Path(d)
    shutil.rmtree(d)


def daemon_with(tmp_path, *lines):
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF)")
    conf = tmp_path / "pyleakd.conf"
    conf.write_text("\n".join(lines) + "\n")
    return Daemon(str(tmp_path), "--config", str(conf))


def private_python(tmp_path, name="python3.11"):
    """Debian's static interpreter copied out of /usr: its own exe path (stdlib from /usr)."""
    require(DEBIAN_PYTHON, "debian-3.11")
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    path = str(d / name)
    shutil.copy(DEBIAN_PYTHON, path)
    return path


def wait_target(daemon, pid, deadline_s=DEADLINE_S):
    """pid's entry in `status` once it is tracked, or fails naming what discovery saw."""
    deadline = time.monotonic() + deadline_s
    while True:
        status = daemon.ok("status")
        for t in status["targets"]:
            if t["pid"] == pid and t["state"] == "tracking":
                return t
        if time.monotonic() > deadline:
            raise AssertionError("pid %d not attached in %ds: %s" % (pid, deadline_s,
                                                                    status["discovery"]))
        time.sleep(0.2)


def tracked_pids(daemon):
    return {t["pid"] for t in daemon.ok("status")["targets"] if t["state"] == "tracking"}


def wait_verdict(daemon, pid, want):
    """What discovery decided about pid last, once it is want (or at the deadline): from
    `status` (its last verdicts, newest first) or `ps` (a Python process it remembers)."""
    deadline = time.monotonic() + DEADLINE_S
    verdict = None
    while time.monotonic() < deadline:
        disc = daemon.ok("status")["discovery"]
        mine = [r["verdict"] for r in disc["recent"] if r["pid"] == pid]
        ps = [p.get("discovery") for p in daemon.ok("ps")["processes"] if p["pid"] == pid]
        verdict = mine[0] if mine else ps[0] if ps else verdict
        if verdict == want:
            break
        time.sleep(0.1)
    return verdict


def wait_live(daemon, pid, want, deadline_s=DEADLINE_S):
    """top's counts once they hold want (a census may be a few seconds away)."""
    deadline = time.monotonic() + deadline_s
    while True:
        counts, doc = top_counts(daemon, pid)
        if all(counts.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
            return counts, doc
        time.sleep(0.5)


def test_watch_all_attaches_new_python_not_others(tmp_path, own_dir, shared_host_excludes,
                                                  target_factory):
    python = private_python(own_dir)
    sleeper = str(own_dir / "bin" / "sleep")
    shutil.copy("/bin/sleep", sleeper)
    d = daemon_with(tmp_path, "watch = all", *shared_host_excludes)
    try:
        disc = d.ok("status")["discovery"]
        assert disc["enabled"] is True
        assert [w["rule"] for w in disc["watch"]] == ["all"]
        assert disc["exclude"] == [x.split(" = ", 1)[1] for x in shared_host_excludes]
        # Started after the daemon: found by its exec.
        t = target_factory([python, PROGRAM])
        pid = t.read()["pid"]
        entry = wait_target(d, pid)
        assert entry["discovered_by"] == "all"
        assert entry["mode"] == "sampled"  # the daemon's default, always-on mode
        assert entry["exe"] == python
        assert "ns_pid" not in entry  # the host's PID namespace
        assert t.send("create")["phase"] == "create"
        counts, _ = wait_live(d, pid, {"Foo": 100000, "Bar": 30000})
        assert counts.get("Foo") == 100000 and counts.get("Bar") == 30000, counts
        # A non-Python exec from the same unexcluded place is looked at and left alone.
        sleep = subprocess.Popen([sleeper, "30"])
        try:
            assert wait_verdict(d, sleep.pid, "not_python") == "not_python"
            assert sleep.pid not in tracked_pids(d)
        finally:
            sleep.kill()
            sleep.wait()
        disc = d.ok("status")["discovery"]
        assert disc["watch"][0]["attached"] >= 1
        assert disc["skipped"]["excluded"] > 0  # this host's other processes
        # Its exec ends the target, and the new program is looked at (sleep: not watched).
        t.proc.stdin.write("exec\n")
        t.proc.stdin.flush()
        assert wait_verdict(d, pid, "excluded") == "excluded"  # /usr/bin/sleep
        entry = [x for x in d.ok("status")["targets"] if x["pid"] == pid][0]
        assert entry["state"] == "execed", entry
    finally:
        assert d.stop() == 0, d.log_text()


def test_rules_exe_cmdline_and_exclude_wins(tmp_path, target_factory):
    python = private_python(tmp_path)
    token = "disc-token-%d" % os.getpid()
    d = daemon_with(tmp_path, "watch = exe:%s" % python, "watch = cmdline:*%s*" % token,
                    "exclude = cmdline:*--no-watch*")
    try:
        by_exe = target_factory([python, PROGRAM])
        by_cmdline = target_factory([DEBIAN_PYTHON, PROGRAM, token])
        excluded = target_factory([python, PROGRAM, "--no-watch"])
        unmatched = target_factory([DEBIAN_PYTHON, PROGRAM])
        pids = {name: t.read()["pid"] for name, t in
                [("exe", by_exe), ("cmdline", by_cmdline), ("excluded", excluded),
                 ("unmatched", unmatched)]}
        assert wait_target(d, pids["exe"])["discovered_by"] == "exe:" + python
        assert wait_target(d, pids["cmdline"])["discovered_by"] == "cmdline:*%s*" % token
        assert wait_verdict(d, pids["excluded"], "excluded") == "excluded"
        assert wait_verdict(d, pids["unmatched"], "no_match") == "no_match"
        tracked = tracked_pids(d)
        assert pids["excluded"] not in tracked and pids["unmatched"] not in tracked
        disc = d.ok("status")["discovery"]
        assert disc["skipped"]["excluded"] >= 1, disc
        assert [w["attached"] for w in disc["watch"]] == [1, 1], disc
        # On request, an unmatched process is attached as always (not "discovered").
        d.ok("attach", "-p", str(pids["unmatched"]))
        entry = [t for t in d.ok("status")["targets"] if t["pid"] == pids["unmatched"]][0]
        assert "discovered_by" not in entry
    finally:
        assert d.stop() == 0, d.log_text()


def test_no_rule_attaches_nothing(tmp_path, target_factory):
    """Without watch rules discovery is off (no exec program, no scan); with a rule that does
    not match, the process is looked at (a verdict) and left alone."""
    python = private_python(tmp_path)
    d = daemon_with(tmp_path, "budget = 0.01")
    try:
        assert d.ok("status")["discovery"] == {"enabled": False}
        pid = target_factory([python, PROGRAM]).read()["pid"]
        # the daemon sees it (`ps` lists Python processes), and does nothing with it
        deadline = time.monotonic() + DEADLINE_S
        while pid not in {p["pid"] for p in d.ok("ps")["processes"]}:
            assert time.monotonic() < deadline, "pid %d not in ps" % pid
            time.sleep(0.2)
        assert pid not in tracked_pids(d)
        assert d.ok("status")["discovery"] == {"enabled": False}
    finally:
        assert d.stop() == 0, d.log_text()
    d = daemon_with(tmp_path, "watch = exe:/nowhere/*", "budget = 0.01")
    try:
        assert wait_verdict(d, pid, "no_match") == "no_match"
        assert pid not in tracked_pids(d)
    finally:
        assert d.stop() == 0, d.log_text()


CONTAINER_SCRIPT = """
set -e
mount -t tmpfs pyleak-test /mnt
mkdir /mnt/pyonly
cp {python} /mnt/pyonly/python3.11
exec /mnt/pyonly/python3.11 {program}
"""


def child_of(pid, deadline_s=DEADLINE_S):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("no child of %d" % pid)


def test_container_interpreter_only_inside_namespace(tmp_path, shared_host_excludes,
                                                     target_factory):
    """A Python in its own mount and PID namespaces, from a path that exists only there."""
    require(DEBIAN_PYTHON, "debian-3.11")
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1)")
    d = daemon_with(tmp_path, "watch = all", *shared_host_excludes)
    try:
        script = CONTAINER_SCRIPT.format(python=DEBIAN_PYTHON, program=PROGRAM)
        t = target_factory(["unshare", "--mount", "--pid", "--fork", "--propagation", "private",
                            "sh", "-c", script])
        ready = t.read()
        assert ready["pid"] == 1  # pid 1 of its namespace: it exec'd the shell
        pid = child_of(t.pid)
        assert not os.path.exists("/mnt/pyonly/python3.11")  # not in the daemon's namespace
        entry = wait_target(d, pid)
        assert entry["exe"] == "/mnt/pyonly/python3.11"
        assert entry["discovered_by"] == "all"
        assert entry["ns_pid"] == 1
        assert t.send("create")["phase"] == "create"
        counts, doc = wait_live(d, pid, {"Foo": 100000, "Bar": 30000, "Baz": 20000})
        assert (counts.get("Foo"), counts.get("Bar"), counts.get("Baz")) == \
            (100000, 30000, 20000), counts
        assert doc["ns_pid"] == 1
        ps = {p["pid"]: p for p in d.ok("ps")["processes"]}
        assert ps[pid]["ns_pid"] == 1 and ps[pid]["tracked"] is True
    finally:
        assert d.stop() == 0, d.log_text()


def test_unit_label_from_cgroup(tmp_path, target_factory):
    """A process in a systemd-style cgroup (system.slice/NAME.service, made by hand in the
    name=systemd v1 hierarchy, or cgroup2's) is matched by unit: and labelled with it."""
    python = private_python(tmp_path)
    unit = "pyleak-test-%d.service" % os.getpid()
    for root in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.exists(os.path.join(root, "cgroup.procs")):
            break
    else:
        pytest.skip("no cgroup hierarchy to make a unit's cgroup in")
    cg = os.path.join(root, "system.slice", unit)
    os.makedirs(cg)
    d = daemon_with(tmp_path, "watch = unit:pyleak-test-*.service")
    try:
        t = target_factory(["sh", "-c", "echo $$ > %s/cgroup.procs && exec %s %s" %
                            (cg, python, PROGRAM)])
        pid = t.read()["pid"]
        entry = wait_target(d, pid)
        assert entry["unit"] == unit
        assert entry["discovered_by"] == "unit:pyleak-test-*.service"
        assert "container" not in entry
        assert d.ok("top", "-p", str(pid), "--once")["unit"] == unit
        t.stop()
    finally:
        try:
            assert d.stop() == 0, d.log_text()
        finally:
            cgroup_remove(cg, 10)


def test_budget_stops_attaching_and_says_so(tmp_path, target_factory):
    """Over the kernel map memory budget, discovered processes are refused (step 1), counted,
    logged and reported; those attached stay."""
    python = private_python(tmp_path)
    # A sampled target's maps take ~3.5 MiB here: room for one, not two.
    d = daemon_with(tmp_path, "watch = exe:%s" % python, "max_maps_memory = 6M")
    try:
        first_target = target_factory([python, PROGRAM])
        first = first_target.read()["pid"]
        entry = wait_target(d, first)
        assert 0 < entry["maps_bytes"] <= 6 << 20 < 2 * entry["maps_bytes"], entry
        others = [target_factory([python, PROGRAM]).read()["pid"] for _ in range(2)]
        for pid in others:
            assert wait_verdict(d, pid, "budget_refused") == "budget_refused"
        deadline = time.monotonic() + DEADLINE_S
        while d.ok("status")["discovery"]["budget"]["state"] != "no_new_targets" and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        budget = d.ok("status")["discovery"]["budget"]
        assert budget["state"] == "no_new_targets", budget
        assert budget["refused"] >= 2 and budget["max_maps_bytes"] == 6 << 20, budget
        assert tracked_pids(d) == {first}
        assert "budget: no_new_targets" in d.log_text()
        # the refused are looked at again (not only by the next scan): once the first is
        # gone, one of them fits
        retrying = d.ok("status")["discovery"]["retrying"]
        assert retrying >= 1, retrying
        first_target.stop()
        deadline = time.monotonic() + DEADLINE_S
        while not tracked_pids(d) & set(others):
            assert time.monotonic() < deadline, d.ok("status")["discovery"]
            time.sleep(0.2)
        assert len(tracked_pids(d) & set(others)) == 1
    finally:
        assert d.stop() == 0, d.log_text()


def test_memory_budget_counts_the_daemon(tmp_path, target_factory):
    """max_memory bounds the daemon's own RSS (row history grows with targets' types): over
    it, no new target, said why."""
    python = private_python(tmp_path)
    d = daemon_with(tmp_path, "watch = exe:%s" % python, "max_memory = 1M")
    try:
        pid = target_factory([python, PROGRAM]).read()["pid"]
        assert wait_verdict(d, pid, "budget_refused") == "budget_refused"
        deadline = time.monotonic() + DEADLINE_S
        while True:
            budget = d.ok("status")["discovery"]["budget"]
            if budget["state"] == "no_new_targets" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert budget["state"] == "no_new_targets", budget
        assert budget["max_rss_bytes"] == 1 << 20 < budget["rss_bytes"], budget
        assert pid not in tracked_pids(d)
        assert "(max_memory 1 MiB)" in d.log_text()
    finally:
        assert d.stop() == 0, d.log_text()
