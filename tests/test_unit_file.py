# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""The systemd unit: it verifies, its exposure score, and the watchdog pings from the loop.

The unit and its drop-in are checked as `make install` puts them (systemd-analyze on the staged
tree); the watchdog through a real notify socket, as systemd hands pyleakd one. Booting the unit
under a real systemd is tests/test_unit_boot.py.
"""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import PYLEAKD, ROOT

UNIT = os.path.join(ROOT, "deploy", "pyleakd.service")
DROPIN = os.path.join(ROOT, "deploy", "pyleakd-metrics.conf")


def run(*argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """`make install` into a staging root, as a package would (PREFIX=/usr)."""
    root = tmp_path_factory.mktemp("root")
    r = run("make", "-C", ROOT, "--no-print-directory", "install", "DESTDIR=%s" % root,
            "PREFIX=/usr")
    assert r.returncode == 0, r.stdout + r.stderr
    return root


def exposure(root):
    """systemd-analyze's overall exposure of pyleakd.service in the tree `root`."""
    r = run("systemd-analyze", "security", "--offline=yes", "--root=%s" % root,
            "--no-pager", "pyleakd.service")
    m = re.search(r"Overall exposure level for pyleakd\.service: (\d+\.\d)", r.stdout)
    assert m, r.stdout + r.stderr
    return float(m.group(1)), r.stdout


def test_unit_verifies_with_its_binary_and_man_pages(staged):
    # verify resolves ExecStart= in the host's tree: the staged binary stands in for it.
    unit = (staged / "usr/lib/systemd/system/pyleakd.service").read_text()
    assert "ExecStart=/usr/sbin/pyleakd --config /etc/pyleak/pyleakd.conf\n" in unit
    path = staged / "pyleakd.service"
    path.write_text(unit.replace("/usr/sbin/pyleakd", str(staged / "usr/sbin/pyleakd")))
    env = dict(os.environ, MANPATH=str(staged / "usr/share/man"))
    r = run("systemd-analyze", "verify", "--man=yes", str(path), env=env)
    assert r.returncode == 0 and r.stderr == "", r.stdout + r.stderr
    # A missing binary is an error: the check above is not vacuous.
    path.write_text(unit.replace("/usr/sbin/pyleakd", str(staged / "nonexistent")))
    r = run("systemd-analyze", "verify", "--man=no", str(path))
    assert r.returncode != 0 and "not executable" in r.stderr, r.stderr


def test_exposure_at_most_2_and_as_the_unit_says(staged):
    score, report = exposure(staged)
    assert score <= 2.0, report
    # The unit's header states the scores measured here, with and without the metrics drop-in.
    dropin_dir = staged / "etc/systemd/system/pyleakd.service.d"
    dropin_dir.mkdir(parents=True)
    (dropin_dir / "metrics.conf").write_bytes(
        (staged / "usr/share/doc/pyleak/pyleakd-metrics.conf").read_bytes())
    with_dropin, report_dropin = exposure(staged)
    assert "Service may allocate Internet sockets" in report_dropin
    assert "Service may allocate Internet sockets" not in report
    header = open(UNIT).read().split("[Unit]")[0]
    assert "security pyleakd.service`: %.1f (%.1f with the drop-in" % (score, with_dropin) \
        in header, (score, with_dropin, header)
    assert "with it: %.1f (without: %.1f)" % (with_dropin, score) in open(DROPIN).read()


def test_capabilities_are_the_documented_ones():
    text = open(UNIT).read()
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M).group(1).split()
    assert caps == ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_CHOWN"]
    for cap in caps:
        assert re.search(r"^#   %s\s+\S" % cap, text, re.M), "no reason given for " + cap


class Notify:
    """A notify socket as systemd gives one ($NOTIFY_SOCKET): what pyleakd sends, timed."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.path = path

    def messages(self, seconds):
        """[(monotonic time, message)] received over the next `seconds`."""
        out = []
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return out
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return out
            out.append((time.monotonic(), data.decode()))

    def wait_for(self, what, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for _, msg in self.messages(min(1.0, end - time.monotonic())):
                if what in msg.split("\n"):
                    return
        raise AssertionError("no %s from pyleakd in %ss" % (what, timeout))


def start_daemon(tmp_path, env_extra):
    notify = Notify(str(tmp_path / "notify"))
    env = dict(os.environ, NOTIFY_SOCKET=notify.path, **env_extra)
    env.pop("WATCHDOG_PID", None)
    log = open(tmp_path / "pyleakd.log", "w")
    proc = subprocess.Popen([PYLEAKD, "--socket", str(tmp_path / "s.sock")], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    notify.wait_for("READY=1")
    return proc, notify


def stop_daemon(proc, tmp_path):
    proc.send_signal(signal.SIGCONT)
    proc.terminate()
    assert proc.wait(timeout=60) == 0, open(tmp_path / "pyleakd.log").read()


def pings(msgs):
    return [t for t, m in msgs if "WATCHDOG=1" in m.split("\n")]


def test_watchdog_pings_from_the_loop_and_stop_when_it_stalls(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF)")
    # WatchdogSec=2s: pings every 1 s, from the loop's timer.
    proc, notify = start_daemon(tmp_path, {"WATCHDOG_USEC": "2000000"})
    try:
        got = pings(notify.messages(6.5))
        # 6 expected; a loaded machine may delay some (then two arrive together: timestamps
        # are of receipt), never add any (a timerfd's missed ticks are one read).
        assert 3 <= len(got) <= 7, got
        # what systemd checks: never WATCHDOG_USEC (2 s) without one
        gaps = [b - a for a, b in zip(got, got[1:])]
        assert all(g < 2.0 for g in gaps), gaps
        # A stopped loop stops the pings (systemd then kills and restarts it)...
        proc.send_signal(signal.SIGSTOP)
        notify.messages(0.2)	# one in flight before the stop
        assert pings(notify.messages(4)) == []
        # ... and they resume with it.
        proc.send_signal(signal.SIGCONT)
        assert len(pings(notify.messages(3.5))) >= 2
        assert "systemd watchdog: pinging every 1.000 s" in open(tmp_path / "pyleakd.log").read()
    finally:
        stop_daemon(proc, tmp_path)


def test_no_watchdog_pings_without_watchdog_usec(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF)")
    proc, notify = start_daemon(tmp_path, {})
    try:
        assert pings(notify.messages(3)) == []
    finally:
        stop_daemon(proc, tmp_path)
    assert "STOPPING=1" in [m for _, m in notify.messages(1)]
