# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Acceptance: bad input gets a clear error, and the daemon keeps serving."""
import json
import os
import socket
import subprocess
import time

from conftest import PROGRAMS, any_python

PROGRAM = os.path.join(PROGRAMS, "known_counts.py")



def error_of(daemon, *args):
    code, doc = daemon.json(*args)
    assert code != 0, doc
    assert set(doc) == {"error"}, doc
    return doc["error"]["code"], doc["error"]["message"]


def wait_state(daemon, pid, state):
    deadline = time.time() + 10
    while time.time() < deadline:
        states = {x["pid"]: x["state"] for x in daemon.ok("status")["targets"]}
        if states.get(pid) == state:
            return
        time.sleep(0.1)
    raise AssertionError("pid %d never %s: %s" % (pid, state, states))


def test_not_python(daemon):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        code, msg = error_of(daemon, "top", "-p", str(sleeper.pid))
        assert code == "not_python"
        assert str(sleeper.pid) in msg
        c, out, err = daemon.ctl("attach", "-p", str(sleeper.pid))
        assert c != 0 and err.startswith("pyleakctl: ") and "not a Python process" in err
        assert len(err.strip().splitlines()) == 1
    finally:
        sleeper.kill()
        sleeper.wait()
    assert daemon.ok("status")["version"]


def test_sites_errors(daemon):
    p = subprocess.Popen(["true"])
    p.wait()
    code, msg = error_of(daemon, "sites", "-p", str(p.pid), "--type", "str")
    assert code == "no_such_process", msg
    code, msg = error_of(daemon, "attach", "-p", "1", "--budget", "1.5")
    assert code == "bad_request", msg


def test_no_such_process(daemon):
    p = subprocess.Popen(["true"])
    p.wait()
    code, msg = error_of(daemon, "attach", "-p", str(p.pid))
    assert code == "no_such_process"
    code, _ = error_of(daemon, "top", "-p", "2147483647")
    assert code == "no_such_process"


def test_target_exits_while_tracked(daemon, target_factory):
    t = target_factory([any_python(), PROGRAM])
    pid = t.read()["pid"]
    daemon.ok("attach", "-p", str(pid))
    t.send("create")
    t.proc.stdin.write("exit\n")
    t.proc.stdin.flush()
    t.proc.wait(timeout=30)
    wait_state(daemon, pid, "exited")
    code, _ = error_of(daemon, "top", "-p", str(pid))
    assert code == "no_such_process"


def test_target_execs_while_tracked(daemon, target_factory):
    t = target_factory([any_python(), PROGRAM])
    pid = t.read()["pid"]
    daemon.ok("attach", "-p", str(pid))
    t.proc.stdin.write("exec\n")
    t.proc.stdin.flush()
    wait_state(daemon, pid, "execed")
    code, msg = error_of(daemon, "top", "-p", str(pid))
    assert code == "no_such_process" and "execed" in msg


def test_ps_lists_pythons(daemon, target_factory):
    python = any_python()
    t = target_factory([python, PROGRAM])
    pid = t.read()["pid"]
    procs = {p["pid"]: p for p in daemon.ok("ps")["processes"]}
    assert pid in procs and procs[pid]["tracked"] is False, procs.get(pid)
    assert procs[pid]["python"].startswith(os.path.basename(python)[6:]), procs[pid]
    daemon.ok("attach", "-p", str(pid))
    procs = {p["pid"]: p for p in daemon.ok("ps")["processes"]}
    assert procs[pid]["tracked"] is True


def test_second_attach_is_noop(daemon, target_factory):
    t = target_factory([any_python(), PROGRAM])
    pid = t.read()["pid"]
    first = daemon.ok("attach", "-p", str(pid))
    second = daemon.ok("attach", "-p", str(pid))
    assert first["attached"] is True and second["attached"] is False
    tracked = [x for x in daemon.ok("status")["targets"] if x["pid"] == pid]
    assert len(tracked) == 1 and tracked[0]["state"] == "tracking"
    assert daemon.ok("detach", "-p", str(pid))["detached"] is True
    code, _ = error_of(daemon, "detach", "-p", str(pid))
    assert code == "not_attached"


def raw(daemon, payload):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(daemon.socket)
    s.sendall(payload)
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data)


def test_malformed_requests(daemon):
    for payload in [b"{not json\n", b"[1,2]\n", b"{\"cmd\": 7}\n", b"{\"cmd\": \"nope\"}\n",
                    b"{\"cmd\": \"top\", \"pid\": \"x\"}\n", b"{\"cmd\": \"top\", \"pid\": -3}\n",
                    b"{\"cmd\": \"top\", \"pid\": 1, \"sort\": \"size\"}\n",
                    b"{\"cmd\": \"attach\", \"pid\": 1, \"mode\": \"warp\"}\n",
                    b"{\"cmd\": \"attach\", \"pid\": 1, \"budget\": 2}\n",
                    b"{\"cmd\": \"attach\", \"pid\": 1, \"budget\": \"all\"}\n",
                    b"{\"cmd\": \"sites\", \"pid\": 1}\n",
                    b"{\"cmd\": \"sites\", \"pid\": 1, \"type\": \"\"}\n",
                    b"\xff\xfe\n"]:
        reply = raw(daemon, payload)
        assert reply["error"]["code"] == "bad_request", (payload, reply)
    reply = raw(daemon, b"x" * (70 * 1024))
    assert reply["error"]["code"] == "bad_request"
    # A client that connects and vanishes mid-request.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(daemon.socket)
    s.sendall(b"{\"cmd\": \"sta")
    s.close()
    assert daemon.alive()
    assert daemon.ok("status")["version"]


def as_nobody(socket_path, *args):
    from conftest import PYLEAKCTL
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           PYLEAKCTL, "--socket", socket_path] + list(args) + ["--json"],
                          capture_output=True, text=True, timeout=30)


def test_unauthorised_caller(daemon):
    # The socket's mode keeps `nobody` out...
    r = as_nobody(daemon.socket, "status")
    assert r.returncode != 0
    assert json.loads(r.stdout)["error"]["code"] == "permission_denied", r.stdout
    # ...and if the file were opened up, the daemon's own credential check still would.
    import shutil
    import tempfile
    from conftest import Daemon
    # A directory `nobody` can traverse (pytest's tmp_path parents are 0700).
    tmp = tempfile.mkdtemp(prefix="pyleak-open-")
    os.chmod(tmp, 0o755)
    d = Daemon(tmp)
    try:
        os.chmod(d.socket, 0o666)
        r = as_nobody(d.socket, "top", "-p", "1")
        err = json.loads(r.stdout)["error"]
        assert r.returncode != 0 and err["code"] == "permission_denied", r.stdout
        assert "may not use pyleakd" in err["message"]
        assert d.ok("status")["targets"] == []
    finally:
        assert d.stop() == 0
        shutil.rmtree(tmp)
    assert daemon.alive()


def test_no_daemon():
    from conftest import PYLEAKCTL
    r = subprocess.run([PYLEAKCTL, "--socket", "/nonexistent/pyleakd.sock", "status", "--json"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert json.loads(r.stdout)["error"]["code"] == "no_daemon"
    assert r.stderr.startswith("pyleakctl: ")


def test_full_object_map_is_reported(target_factory, tmp_path):
    """A map too small for the program's sampled births: the drops are counted and shown, never
    silent, and the counts stay exact (the map holds only the births sampled for sites)."""
    from conftest import Daemon
    d = Daemon(str(tmp_path), "--max-objects", "1024")
    try:
        t = target_factory([any_python(), PROGRAM])
        pid = t.read()["pid"]
        d.ok("attach", "-p", str(pid), "--mode", "precise", "--force")
        t.send("create")
        top = d.ok("top", "-p", str(pid), "-n", "100")
        assert any("object map full" in n for n in top["notes"]), top["notes"]
        foo = [r for r in top["types"] if r["type"] == "Foo"][0]
        assert foo["dropped"] > 0 and foo["live"] == foo["born"] == 100000, foo
        st = [x for x in d.ok("status")["targets"] if x["pid"] == pid][0]
        # drops are counts lost: none (a full object map loses sampled sites only)
        assert st["drops"] == 0 and st["counters"]["objects_map_full"] > 0, st
    finally:
        assert d.stop() == 0
