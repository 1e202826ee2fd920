# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Bounded forever: short-lived Python processes attached one after another (~10 a second)
leave the daemon with few fds and little memory once they ended, and `status` shows their
summaries capped.  PYLEAK_SOAK=N runs N processes (default 200; the issue's figure is 1000)."""
import concurrent.futures
import os
import subprocess
import time

import pytest

from conftest import Daemon, any_python

FDS_MAX = 64
RSS_MAX_KIB = 64 * 1024
ENDED_MAX = 64
# Allocates a little (a list of 20,000 str), says so, and lives a second once attached.
SHORT = ("import sys, time\nx = [str(i) for i in range(20000)]\nprint('ready', flush=True)\n"
         "sys.stdin.readline()\ntime.sleep(1)\n")


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def test_short_lived_processes_leave_the_daemon_bounded(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF)")
    n = int(os.environ.get("PYLEAK_SOAK", "200"))
    python = any_python()
    d = Daemon(str(tmp_path))
    try:
        def one(i):
            p = subprocess.Popen([python, "-c", SHORT], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            try:
                assert p.stdout.readline().strip() == "ready"
                code, doc = d.json("attach", "-p", str(p.pid))
                assert code == 0, doc
                return True
            finally:
                p.stdin.close()
                p.wait()

        t0 = time.time()
        # One started every 0.1 s, as long as the daemon attaches as fast (each attach loads a
        # BPF object: ~0.2 s here); attaches overlap as they would under discovery.
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            futures = []
            for i in range(n):
                futures.append(pool.submit(one, i))
                time.sleep(max(0, t0 + (i + 1) * 0.1 - time.time()))
            attached = sum(f.result() for f in futures)
            assert attached == n
        took = time.time() - t0
        # every attached process ended: its probes are closed in the background
        deadline = time.time() + 120
        while time.time() < deadline and (fds(d.proc.pid) > FDS_MAX or rss_kib(d.proc.pid) > RSS_MAX_KIB):
            time.sleep(0.5)
        st = d.ok("status")
        print("soak: %d processes (%d attached) in %.0f s; afterwards %d fds, %d KiB RSS; ended %s" % (
            n, attached, took, fds(d.proc.pid), rss_kib(d.proc.pid), st["ended"]))
        assert fds(d.proc.pid) <= FDS_MAX and rss_kib(d.proc.pid) <= RSS_MAX_KIB, (
            fds(d.proc.pid), rss_kib(d.proc.pid))
        ended = st["ended"]
        assert ended["count"] == min(attached, ENDED_MAX) == len(st["targets"]), ended
        assert ended["dropped"] == attached - ended["count"], ended
        assert 0 < ended["bytes"] <= ended["max_bytes"], ended
        assert all(t["state"] == "exited" and t["cause"] == "exit" and t["exit_code"] == 0
                   for t in st["targets"]), st["targets"][:3]
        assert st["postmortem"]["count"] == min(attached, 64), st["postmortem"]
    finally:
        assert d.stop() == 0
