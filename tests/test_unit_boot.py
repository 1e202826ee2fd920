# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""pyleakd.service booted for real: a systemd (systemd-nspawn --boot, the host's /usr on a
volatile root) runs the unit as `make install` stages it, with its whole sandbox. pyleakctl
reaches it through the socket, it attaches to a process of another user in precise mode, the
watchdog keeps it alive, and a SIGSTOP'd daemon is killed by the watchdog and restarted.
"""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ROOT

WATCHDOG_S = 3	# a drop-in shortens the unit's 30 s
TARGET = """
import time
class Foo: pass
l = []
while True:
    l.append(Foo()); time.sleep(0.001)
"""


def run(*argv, timeout=120):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


class Container:
    def __init__(self, stage, log):
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--boot", "--volatile=yes", "--directory=/",
             "--machine=pyleak-unit-%d" % os.getpid(), "--register=no", "--keep-unit",
             "--system-call-filter=bpf perf_event_open", "--bind-ro=%s:/stage" % stage,
             "--bind=/sys/kernel/tracing", "--console=pipe",
             # Only what pyleakd.service needs: not every unit the host enables.
             "systemd.unit=basic.target"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.leader = None
        deadline = time.monotonic() + 60
        children = "/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(children) as f:
                pids = f.read().split()
            if pids:
                self.leader = pids[0]
                break
            time.sleep(0.2)
        assert self.leader, "systemd-nspawn started no container"

    def run(self, *argv, timeout=120):
        return run("nsenter", "-t", self.leader, "-a", *argv, timeout=timeout)

    def show(self, unit, *props):
        r = self.run("systemctl", "show", unit, "-p", ",".join(props))
        return dict(line.split("=", 1) for line in r.stdout.splitlines())

    def stop(self):
        for _ in range(2):	# the first SIGTERM halts it, a second one ends it at once
            if self.proc.poll() is not None:
                return
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def container(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF, systemd-nspawn)")
    if not shutil.which("systemd-nspawn"):
        pytest.skip("no systemd-nspawn: apt-get install systemd-container (make deps)")
    stage = tmp_path / "stage"
    # / is a tmpfs in the container and /usr the host's, read-only: installed under /opt.
    r = run("make", "-C", ROOT, "--no-print-directory", "install", "DESTDIR=%s" % stage,
            "PREFIX=/opt/pyleak", "UNITDIR=/etc/systemd/system")
    assert r.returncode == 0, r.stdout + r.stderr
    dropin = stage / "etc/systemd/system/pyleakd.service.d"
    dropin.mkdir(parents=True)
    (dropin / "test.conf").write_text("[Service]\nWatchdogSec=%ds\n" % WATCHDOG_S)
    log = open(tmp_path / "nspawn.log", "w")
    c = Container(stage, log)
    try:
        deadline = time.monotonic() + 180
        while True:	# until the container's systemd listens on its bus
            r = c.run("systemctl", "is-system-running", "--wait", timeout=180)
            if "Failed to connect to bus" not in r.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert r.stdout.strip() in ("running", "degraded"), r.stdout + r.stderr + \
            open(tmp_path / "nspawn.log").read()
        for argv in (["cp", "-a", "/stage/etc/.", "/etc/"], ["mkdir", "-p", "/opt"],
                     ["cp", "-a", "/stage/opt/pyleak", "/opt/"],
                     ["systemctl", "daemon-reload"]):
            r = c.run(*argv)
            assert r.returncode == 0, (argv, r.stderr)
        yield c
    finally:
        c.stop()


def test_unit_under_systemd_with_watchdog(container):
    c = container
    # Type=notify: start returns once pyleakd said READY=1.
    r = c.run("systemctl", "start", "pyleakd", timeout=180)
    assert r.returncode == 0, r.stderr + c.run("journalctl", "-u", "pyleakd", "--no-pager").stdout
    props = c.show("pyleakd.service", "ActiveState", "MainPID", "NRestarts", "WatchdogUSec")
    assert props["ActiveState"] == "active" and props["WatchdogUSec"] == "%ds" % WATCHDOG_S
    r = c.run("stat", "-c", "%n %a %U:%G", "/run/pyleakd", "/run/pyleakd/pyleakd.sock",
              "/var/lib/pyleak")
    assert r.stdout.split("\n")[:3] == ["/run/pyleakd 711 root:root",
                                        "/run/pyleakd/pyleakd.sock 600 root:root",
                                        "/var/lib/pyleak 700 root:root"], r.stdout + r.stderr
    status = json.loads(c.run("/opt/pyleak/bin/pyleakctl", "--json", "status").stdout)
    assert str(status["pid"]) == props["MainPID"]

    # A process of another user, in precise mode: the sandbox leaves BPF, uprobes, USDT and
    # the heap census working.
    r = c.run("systemd-run", "--unit=pyleak-target", "-p", "User=nobody",
              "/usr/bin/python3.11", "-c", TARGET)
    assert r.returncode == 0, r.stderr
    target = c.show("pyleak-target.service", "MainPID")["MainPID"]
    # a fresh interpreter may not be ready to attach yet (libpython mapped, runtime up):
    # attach is retried until a deadline
    deadline = time.monotonic() + 60
    while True:
        r = c.run("/opt/pyleak/bin/pyleakctl", "attach", "-p", target, "--mode", "precise",
                  "--force")
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.monotonic() + 60
    while True:
        r = c.run("/opt/pyleak/bin/pyleakctl", "top", "-p", target, "--once", "-n", "0")
        foo = [line.split() for line in r.stdout.splitlines() if line.startswith("Foo ")]
        if foo and int(foo[0][1]) > 0 and foo[0][-1] == "probes":
            break
        assert time.monotonic() < deadline, r.stdout + r.stderr
        time.sleep(1)

    # Alive through several watchdog periods: the loop's pings arrive.
    time.sleep(3 * WATCHDOG_S)
    again = c.show("pyleakd.service", "ActiveState", "MainPID", "NRestarts")
    assert (again["ActiveState"], again["MainPID"], again["NRestarts"]) == \
        ("active", props["MainPID"], "0")

    # A stalled daemon: the watchdog kills it, Restart=on-failure starts a new one.
    assert c.run("kill", "-STOP", props["MainPID"]).returncode == 0
    deadline = time.monotonic() + 120
    while True:
        now = c.show("pyleakd.service", "ActiveState", "MainPID", "NRestarts")
        if now["NRestarts"] == "1" and now["ActiveState"] == "active" and \
                now["MainPID"] not in ("0", props["MainPID"]):
            break
        assert time.monotonic() < deadline, now
        time.sleep(1)
    journal = c.run("journalctl", "-u", "pyleakd", "--no-pager").stdout
    assert "Watchdog timeout" in journal and "Failed with result 'watchdog'" in journal, journal
    status = json.loads(c.run("/opt/pyleak/bin/pyleakctl", "--json", "status").stdout)
    assert str(status["pid"]) == now["MainPID"]
    c.run("systemctl", "stop", "pyleak-target", "pyleakd")
