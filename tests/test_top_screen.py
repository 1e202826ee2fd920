# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""`pyleakctl top` on a terminal: the full screen, driven and read through tmux.

A private tmux server runs an interactive bash of 120x40; pyleakctl runs in it as a user would
start it, keys go in with send-keys and the screen comes back with capture-pane. After top ends,
the same line prints its exit code and `stty -a`, which shows whether the terminal was restored.
"""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import PROGRAMS, PYLEAKCTL

PYTHON = "/usr/bin/python3.11"
PROGRAM = os.path.join(PROGRAMS, "known_counts.py")
SPARK = "▁▂▃▄▅▆▇█"
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


class Tmux:
    servers = 0

    def __init__(self, env):
        # A server of its own per test: one just killed may still be exiting under its name.
        Tmux.servers += 1
        self.server = "pyleak-top-%d-%d" % (os.getpid(), Tmux.servers)
        self.env = dict(os.environ, LANG="C.UTF-8", **env)
        self.run("new-session", "-d", "-s", "t", "-x", "120", "-y", "40",
                 "bash --norc --noprofile")

    def run(self, *args):
        return subprocess.run(["tmux", "-u", "-L", self.server] + list(args), env=self.env,
                              capture_output=True, text=True, check=True).stdout

    def type(self, line):
        self.run("send-keys", "-t", "t", "-l", line)
        self.run("send-keys", "-t", "t", "Enter")

    def keys(self, *keys):
        self.run("send-keys", "-t", "t", *keys)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "t")

    def display(self, fmt):
        return self.run("display-message", "-p", "-t", "t", fmt).strip()

    def wait(self, what, pred, timeout=20):
        deadline = time.time() + timeout
        while True:
            text = self.screen()
            if pred(text):
                return text
            if time.time() > deadline:
                raise AssertionError("no %s on the screen after %ss:\n%s" % (what, timeout, text))
            time.sleep(0.2)

    def kill(self):
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True)


@pytest.fixture
def tmux(daemon):
    if not shutil.which("tmux"):
        pytest.skip("tmux not installed (make deps)")
    t = Tmux({"PYLEAKD_SOCKET": daemon.socket})
    yield t
    t.kill()


@pytest.fixture
def target(daemon, target_factory):
    if not os.access(PYTHON, os.X_OK):
        pytest.skip("Debian's python3.11 not installed")
    t = target_factory([PYTHON, PROGRAM])
    pid = t.read()["pid"]
    daemon.ok("attach", "-p", str(pid), "--mode", "precise", "--force")
    t.send("create")
    return t, pid


def start(tmux, pid):
    # EN""D: the line typed does not itself show the mark that all was printed.
    tmux.type('%s top -p %d --interval 0.5; echo rc=$?; stty -a; echo EN""D' % (PYLEAKCTL, pid))
    return tmux.wait("top frame", lambda s: "census = every live object" in s and " str " in s,
                     timeout=60)


def rows(screen):
    """(type, live, bytes in bytes, whole line) of each row of the types table."""
    out = []
    for line in screen.splitlines():
        m = re.match(r"^[> ] (\S+)\s+(\d+)\s+([\d.]+)([KMG]?)\s+[+-]\d+\s+(probes|census)\b", line)
        if m:
            out.append((m.group(1), int(m.group(2)), float(m.group(3)) * UNITS[m.group(4)], line))
    return out


def header_time(screen):
    return re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", screen).group(0)


def restored(tmux):
    """The normal screen is back and the tty is in its line mode again."""
    screen = tmux.wait("exit", lambda s: "END" in s.split())
    assert "rc=0" in screen, screen
    assert tmux.display("#{alternate_on}") == "0", screen
    assert "census = every live object" not in screen, screen
    flags = screen.split()
    assert "icanon" in flags and "echo" in flags, screen


def test_top_screen(tmux, target):
    t, pid = target
    screen = start(tmux, pid)
    head = screen.splitlines()[:3]
    assert re.match(r"pid %d  python 3\.11\.\d+  mode precise  cost " % pid, head[0]), screen
    assert "probes = born since attach and still alive" in screen, screen
    assert re.search(r"TYPE\s+LIVE▼\s+BYTES\s+DELTA\s+SOURCE\s+TREND\s+LEAK", screen), screen
    by_live = rows(screen)
    names = [r[0] for r in by_live]
    assert {"str", "Foo", "list", "int"} <= set(names), screen
    assert [r[1] for r in by_live] == sorted((r[1] for r in by_live), reverse=True), screen

    # The trend: half of everything goes, and str's sparkline falls from its top.
    t.send("half")
    screen = tmux.wait("falling sparkline", lambda s: any(
        r[0] == "str" and re.search("█[%s]*▁" % SPARK, r[3]) for r in rows(s)))

    tmux.keys("b")
    screen = tmux.wait("bytes order", lambda s: "sort: bytes" in s and "BYTES▼" in s)
    by_bytes = rows(screen)
    assert [r[2] for r in by_bytes] == sorted((r[2] for r in by_bytes), reverse=True), screen
    assert [r[0] for r in by_bytes] != names, screen

    tmux.keys("p")
    screen = tmux.wait("pause", lambda s: "PAUSED" in s)
    paused_at = header_time(screen)
    time.sleep(2.2)
    assert header_time(tmux.screen()) == paused_at
    tmux.keys("p")
    tmux.wait("refresh after pause", lambda s: "PAUSED" not in s and header_time(s) != paused_at)

    # Select str (first by bytes), then its sites: a line of known_counts.py.
    tmux.keys("g", "b")
    screen = tmux.wait("str selected", lambda s: re.search(r"^> str ", s, re.M))
    tmux.keys("Enter")
    screen = tmux.wait("sites of str", lambda s: re.search(r"known_counts\.py:\d+", s))
    assert "allocation sites of str" in screen, screen
    tmux.keys("Escape")
    tmux.wait("types again", lambda s: "BYTES▼" in s)
    tmux.keys("K")
    tmux.wait("leaks view", lambda s: "leak suspects" in s and "TYPE " not in s)
    tmux.keys("Escape")
    tmux.wait("types again", lambda s: "BYTES▼" in s)

    # A smaller terminal: redrawn to it, the key help on its last line.
    tmux.run("resize-window", "-t", "t", "-x", "80", "-y", "24")
    # (tmux keeps the bottom of a shrunk pane: the old frame's key help is on its last line too)
    screen = tmux.wait("80x24 frame", lambda s: len(s.splitlines()) >= 24 and
                       s.splitlines()[0].startswith("pid %d" % pid) and
                       s.splitlines()[23].startswith("q quit"))
    lines = screen.splitlines()
    assert all(len(line) <= 80 for line in lines), screen
    assert header_time("\n".join(lines[:2])), screen
    assert any(line.startswith("    ") for line in lines[:8]), "gc line not rewrapped:\n" + screen

    tmux.keys("q")
    restored(tmux)


def test_top_screen_signals(tmux, target):
    _, pid = target
    start(tmux, pid)
    tmux.keys("C-c")
    restored(tmux)

    tmux.keys("C-l")
    start(tmux, pid)
    shell = tmux.display("#{pane_pid}")
    top = subprocess.run(["pgrep", "-P", shell, "pyleakctl"], capture_output=True, text=True)
    os.kill(int(top.stdout.split()[0]), 15)
    restored(tmux)


def test_slow_reply_shows_progress(daemon, tmux, target):
    """A reply that takes seconds (a big process's attach or first census; here the daemon is
    held with SIGSTOP meanwhile) shows a progress line on stderr, erased when the table comes."""
    _, pid = target
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        tmux.type("%s top -p %d --once -n 3" % (PYLEAKCTL, pid))
        tmux.wait("a progress line", lambda s: re.search(
            r"pyleakctl: pid %d: attaching or counting its heap\.\.\. [2-9] s" % pid, s))
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
    screen = tmux.wait("the table", lambda s: "TYPE" in s and "str" in s, timeout=60)
    assert "attaching or counting" not in screen, screen
