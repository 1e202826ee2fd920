# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Hostile or careless clients: slow readers, floods, and group members reaching for processes
that are not theirs.  Real sockets, real unprivileged users (created here), a real daemon."""
import fcntl
import grp
import json
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

import pytest

from conftest import PROGRAMS, PYLEAKCTL, Daemon, any_python

GROUP = "pyleak-test"
MEMBERS = ["pyleak-alice", "pyleak-bob"]
OUTSIDER = "pyleak-eve"
SLEEPER = "import sys, time\nsys.stdout.write('ready\\n'); sys.stdout.flush()\ntime.sleep(600)\n"



def ensure_users():
    """The test users and group, made once; under a lock: test_postmortem makes them too, maybe
    at the same time in another xdist worker, and useradd fails on a locked /etc/passwd."""
    fd = os.open("/run/lock/pyleak-test-users", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _ensure_users()
    finally:
        os.close(fd)


def _ensure_users():
    subprocess.run(["groupadd", "-f", GROUP], check=True)
    for name in MEMBERS + [OUTSIDER]:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                           check=True)
    for name in MEMBERS:
        subprocess.run(["usermod", "-a", "-G", GROUP, name], check=True)


@pytest.fixture(scope="module")
def group_daemon():
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF, users)")
    ensure_users()
    tmp = tempfile.mkdtemp(prefix="pyleak-group-")
    os.chmod(tmp, 0o755)	# the members must reach the socket inside
    d = Daemon(tmp, "--group", GROUP)
    yield d
    code = d.stop()
    log = d.log_text() if not d.log.closed else ""
    shutil.rmtree(tmp)
    assert code == 0, log


def as_user(user, d, *args):
    """pyleakctl run as user with its own groups (initgroups), as a login would give it."""
    pw = pwd.getpwnam(user)
    groups = [g.gr_gid for g in grp.getgrall() if user in g.gr_mem]
    r = subprocess.run([PYLEAKCTL, "--socket", d.socket] + list(args) + ["--json"],
                       capture_output=True, text=True, timeout=60, user=pw.pw_uid,
                       group=pw.pw_gid, extra_groups=groups)
    return r.returncode, json.loads(r.stdout)


def start_as(user, python, code=SLEEPER, dumpable=True):
    pw = pwd.getpwnam(user) if user else None
    if not dumpable:
        code = "import ctypes\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\n" + code	# PR_SET_DUMPABLE
    p = subprocess.Popen([python, "-c", code], stdout=subprocess.PIPE, text=True,
                         user=pw.pw_uid if pw else None, group=pw.pw_gid if pw else None,
                         cwd="/")
    assert p.stdout.readline().strip() == "ready"
    return p


def test_members_act_only_on_their_own_processes(group_daemon):
    python = any_python()
    d = group_daemon
    alice = start_as("pyleak-alice", python)
    bob = start_as("pyleak-bob", python)
    mine_hidden = start_as("pyleak-alice", python, dumpable=False)
    rooted = start_as(None, python)
    try:
        # Her own process: everything.
        code, doc = as_user("pyleak-alice", d, "attach", "-p", str(alice.pid), "--mode", "sampled")
        assert code == 0 and doc["attached"], doc
        code, doc = as_user("pyleak-alice", d, "top", "-p", str(alice.pid), "--once")
        assert code == 0 and doc["types"], doc
        # Bob's, root's, and her own non-dumpable process: nothing, and the same answer for each.
        for victim in (bob, rooted, mine_hidden):
            for cmd in (["attach", "-p", str(victim.pid)], ["top", "-p", str(victim.pid), "--once"],
                        ["leaks", "-p", str(victim.pid)],
                        ["sites", "-p", str(victim.pid), "--type", "str"]):
                code, doc = as_user("pyleak-alice", d, *cmd)
                assert code != 0 and doc["error"]["code"] == "permission_denied", (cmd, doc)
        # Root's target, attached by root: she may not detach it nor see it in status.
        d.ok("attach", "-p", str(rooted.pid), "--mode", "sampled")
        code, doc = as_user("pyleak-alice", d, "detach", "-p", str(rooted.pid))
        assert code != 0 and doc["error"]["code"] == "permission_denied", doc
        code, doc = as_user("pyleak-alice", d, "status")
        assert code == 0 and [t["pid"] for t in doc["targets"]] == [alice.pid], doc
        code, doc = as_user("pyleak-alice", d, "ps")
        pids = {p["pid"] for p in doc["processes"]}
        assert alice.pid in pids and not pids & {bob.pid, rooted.pid, mine_hidden.pid}, doc
        # Root sees and does everything.
        assert {alice.pid, rooted.pid} <= {t["pid"] for t in d.ok("status")["targets"]}
        assert {alice.pid, bob.pid, rooted.pid} <= {p["pid"] for p in d.ok("ps")["processes"]}
        # A non-member is refused whatever it asks.
        code, doc = as_user(OUTSIDER, d, "status")
        assert code != 0 and doc["error"]["code"] == "permission_denied", doc
        code, doc = as_user("pyleak-alice", d, "detach", "-p", str(alice.pid))
        assert code == 0 and doc["detached"], doc
    finally:
        for p in (alice, bob, mine_hidden, rooted):
            p.kill()
            p.wait()
    assert d.alive()


def test_access_is_checked_at_every_request(group_daemon):
    """A process that makes itself non-dumpable after attach is out of its owner's reach."""
    d = group_daemon
    code = ("import ctypes, sys, time\nsys.stdout.write('ready\\n'); sys.stdout.flush()\n"
            "sys.stdin.readline()\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\n"
            "sys.stdout.write('hidden\\n'); sys.stdout.flush()\ntime.sleep(600)\n")
    pw = pwd.getpwnam("pyleak-bob")
    p = subprocess.Popen([any_python(), "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, user=pw.pw_uid, group=pw.pw_gid, cwd="/")
    try:
        assert p.stdout.readline().strip() == "ready"
        code_, doc = as_user("pyleak-bob", d, "attach", "-p", str(p.pid), "--mode", "sampled")
        assert code_ == 0, doc
        code_, doc = as_user("pyleak-bob", d, "top", "-p", str(p.pid), "--once")
        assert code_ == 0, doc
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "hidden"
        for cmd in (["top", "-p", str(p.pid), "--once"], ["leaks", "-p", str(p.pid)],
                    ["detach", "-p", str(p.pid)]):
            code_, doc = as_user("pyleak-bob", d, *cmd)
            assert code_ != 0 and doc["error"]["code"] == "permission_denied", (cmd, doc)
        code_, doc = as_user("pyleak-bob", d, "status")
        assert p.pid not in [t["pid"] for t in doc["targets"]], doc
    finally:
        p.kill()
        p.wait()


def request_lines(n, req):
    return (json.dumps(req) + "\n").encode() * n


def test_slow_readers_do_not_delay_others(daemon, target_factory):
    t = target_factory([any_python(), os.path.join(PROGRAMS, "known_counts.py")])
    t.read()
    daemon.ok("attach", "-p", str(t.pid), "--mode", "sampled")
    slow = []
    try:
        for _ in range(4):
            s = socket.socket(socket.AF_UNIX)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            s.connect(daemon.socket)
            s.sendall(request_lines(50, {"cmd": "top", "pid": t.pid, "n": 0}))
            slow.append(s)
        time.sleep(2)	# their first replies computed; now they sit, full, unread
        took = []
        for _ in range(7):
            start = time.monotonic()
            daemon.ok("status")
            took.append(time.monotonic() - start)
        assert statistics.median(took) <= 0.1, took
        assert daemon.ok("status")["counters"]["clients"] >= 5
    finally:
        for s in slow:
            s.close()
    daemon.ok("detach", "-p", str(t.pid))


def test_flood_is_rate_limited_and_recovers(daemon):
    s = socket.socket(socket.AF_UNIX)
    s.connect(daemon.socket)
    f = s.makefile("rb")
    codes = []
    try:
        for _ in range(100):
            s.sendall(b'{"cmd":"status"}\n')
            doc = json.loads(f.readline())
            codes.append(doc.get("error", {}).get("code", "ok"))
        assert codes.count("busy") >= 40 and codes[0] == "ok", codes
        time.sleep(1.5)	# the bucket refills
        s.sendall(b'{"cmd":"status"}\n')
        assert "version" in json.loads(f.readline())
    finally:
        s.close()
    assert daemon.alive()


def test_unprivileged_connections_are_capped(group_daemon):
    """One member cannot take every connection place; root still gets in."""
    d = group_daemon
    # a refused connection may be closed before its request is written (EPIPE): its refusal
    # is read all the same
    helper = ("import socket, sys, time\nsocks = []\nfor i in range(40):\n"
              "    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); socks.append(s)\n"
              "    try:\n"
              "        s.sendall(b'{\"cmd\":\"status\"}\\n')\n"
              "    except BrokenPipeError:\n"
              "        pass\n"
              "busy = sum(b'too many connections' in s.recv(65536) for s in socks)\n"
              "print(busy); sys.stdout.flush(); time.sleep(30)\n")
    pw = pwd.getpwnam("pyleak-alice")
    p = subprocess.Popen(["/usr/bin/python3", "-c", helper, d.socket], stdout=subprocess.PIPE,
                         text=True, user=pw.pw_uid, group=pw.pw_gid,
                         extra_groups=[grp.getgrnam(GROUP).gr_gid])
    try:
        assert int(p.stdout.readline()) == 40 - 16
        assert d.ok("status")["version"]
    finally:
        p.kill()
        p.wait()


def daemon_cpu_s(d):
    with open("/proc/%d/stat" % d.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_half_closed_reader_does_not_spin_the_loop(daemon):
    """A client that pipelines requests, shuts its writing side and never reads holds a reply
    pending: the daemon waits for it to read, without burning CPU."""
    s = socket.socket(socket.AF_UNIX)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect(daemon.socket)
    try:
        s.sendall(request_lines(4000, {"cmd": "nope"}))
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        before = daemon_cpu_s(daemon)
        time.sleep(3)
        spent = daemon_cpu_s(daemon) - before
        assert spent < 0.3, "pyleakd used %.2f s of CPU in 3 s" % spent
        assert daemon.ok("status")["version"]
    finally:
        s.close()


def test_member_target_cap(group_daemon):
    """One member cannot take every target place: 16 of its processes at most."""
    d = group_daemon
    procs = [start_as("pyleak-alice", any_python()) for _ in range(17)]
    try:
        codes = [as_user("pyleak-alice", d, "attach", "-p", str(p.pid), "--mode", "sampled")
                 for p in procs]
        assert [c for c, _ in codes[:16]] == [0] * 16, codes
        code, doc = codes[16]
        assert code != 0 and doc["error"]["code"] == "busy", doc
        d.ok("attach", "-p", str(procs[16].pid), "--mode", "sampled")	# root is not capped
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_out_of_fds_refuses_without_spinning(tmp_path):
    """pyleakd at its fd limit: connections are refused with `busy`, the loop does not spin on
    the pending ones, and it serves again once they are gone."""
    from conftest import PYLEAKD
    sock = str(tmp_path / "fd.sock")
    log = open(str(tmp_path / "fd.log"), "w+")
    # ~20 fds are the daemon's own (the host-wide exit tracepoints' object, the state directory)
    proc = subprocess.Popen(["prlimit", "--nofile=32:32", PYLEAKD, "--socket", sock,
                             "--state-dir", str(tmp_path / "state")],
                            stdout=log, stderr=subprocess.STDOUT)
    socks = []
    try:
        deadline = time.time() + 10
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.05)
        for _ in range(40):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(sock)
            s.sendall(b'{"cmd":"status"}\n')
            socks.append(s)
        replies = [s.recv(65536) for s in socks]
        refused = sum(b"out of file descriptors" in r for r in replies)
        assert refused >= 10 and sum(b'"version"' in r for r in replies) >= 5, replies
        with open("/proc/%d/stat" % proc.pid) as f:
            before = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
        time.sleep(2)
        with open("/proc/%d/stat" % proc.pid) as f:
            spent = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13]) - before
        assert spent < 0.2 * os.sysconf("SC_CLK_TCK"), "%d ticks in 2 s" % spent
    finally:
        for s in socks:
            s.close()
    time.sleep(1.5)	# a paused listener resumes on the next second's tick
    r = subprocess.run([PYLEAKCTL, "--socket", sock, "status", "--json"], capture_output=True,
                       text=True, timeout=30)
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert r.returncode == 0 and json.loads(r.stdout)["version"], r
