# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""pyleakd killed with SIGKILL leaves nothing in the kernel or in its targets, and started again
with the same config re-attaches the watched processes by its start-up scan.

Checked after the kill: none of the BPF links the daemon held (their ids, read from its fds'
fdinfo before the kill) is left in the kernel (`bpftool link show`), tracefs lists no uprobe
event libbpf made for it, and the target's text at every address the daemon probed is again
the bytes of the file it maps (no int3), read through /proc/PID/mem."""
import glob
import json
import os
import subprocess
import time

import pytest

from conftest import PROGRAMS, Daemon, _pyenv_python, require

PROGRAM = os.path.join(PROGRAMS, "known_counts.py")
DEADLINE_S = 60
INT3 = 0xCC


def daemon_links(daemon_pid):
    """Ids of the BPF links the daemon holds open."""
    ids = set()
    for path in glob.glob("/proc/%d/fdinfo/*" % daemon_pid):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("link_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def kernel_links():
    out = subprocess.run(["bpftool", "link", "show", "-j"], capture_output=True, text=True,
                         check=True).stdout
    return {link["id"] for link in json.loads(out or "[]")}


def text_at(pid, addr, n=16):
    """(bytes in pid's memory at addr, bytes of the file mapped there)."""
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= addr < end:
                offset = int(fields[2], 16) + addr - start
                with open("/proc/%d/map_files/%s" % (pid, fields[0]), "rb") as mapped:
                    mapped.seek(offset)
                    want = mapped.read(n)
                break
        else:
            raise AssertionError("no mapping of %#x in %d" % (addr, pid))
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        mem.seek(addr)
        return mem.read(n), want


def wait_target(daemon, pid):
    deadline = time.monotonic() + DEADLINE_S
    while True:
        status = daemon.ok("status")
        for t in status["targets"]:
            if t["pid"] == pid and t["state"] == "tracking" and t["probe_addresses"]:
                return t
        if time.monotonic() > deadline:
            raise AssertionError("pid %d not attached: %s" % (pid, status))
        time.sleep(0.2)


def test_sigkill_leaves_nothing_and_restart_reattaches(tmp_path, target_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF)")
    # A build without USDT: its collector is uprobed, so the probe addresses are known.
    python = require(_pyenv_python("3.12"), "pyenv-3.12")
    token = "restart-token-%d" % os.getpid()
    conf = tmp_path / "pyleakd.conf"
    conf.write_text("watch = cmdline:*%s*\n" % token)
    target = target_factory([python, PROGRAM, token])
    pid = target.read()["pid"]

    first = Daemon(str(tmp_path), "--config", str(conf))
    entry = wait_target(first, pid)
    addresses = entry["probe_addresses"]
    assert entry["discovered_by"] == "cmdline:*%s*" % token
    for a in addresses:
        now, original = text_at(pid, a)
        assert now[0] == INT3 and now[1:] == original[1:], hex(a)  # probed: the check can fail
    links = daemon_links(first.proc.pid)
    assert links and links <= kernel_links()
    first.proc.kill()
    first.proc.wait()
    first.log.close()

    deadline = time.monotonic() + DEADLINE_S
    while links & kernel_links() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not links & kernel_links()
    for a in addresses:
        now, original = text_at(pid, a)
        assert now == original, hex(a)
    with open("/sys/kernel/tracing/uprobe_events") as f:
        assert "libbpf_%d_" % first.proc.pid not in f.read()
    assert target.proc.poll() is None  # it ran on through all of it

    second = Daemon(str(tmp_path), "--config", str(conf))
    try:
        entry = wait_target(second, pid)
        assert entry["discovered_by"] == "cmdline:*%s*" % token
        assert sorted(entry["probe_addresses"]) == sorted(addresses)
        assert second.ok("status")["discovery"]["scans"] >= 1
    finally:
        assert second.stop() == 0, second.log_text()
    for a in addresses:
        now, original = text_at(pid, a)
        assert now == original, hex(a)
