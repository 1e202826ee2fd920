"""Fixtures for the integration tests: a private pyleakd, the interpreters, target programs.

Everything here is real: the daemon loads real BPF into the kernel and attaches to real
CPython processes. Run as root (CI is root).
"""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# PYLEAKD, PYLEAKCTL: other builds of the two (`make test-sanitize`: ASan+UBSan ones).
PYLEAKD = os.path.abspath(os.environ.get("PYLEAKD") or os.path.join(ROOT, "pyleakd"))
PYLEAKCTL = os.path.abspath(os.environ.get("PYLEAKCTL") or os.path.join(ROOT, "pyleakctl"))
# What ASan (LeakSanitizer's at exit included) and UBSan write in the daemon's log.
SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
PROGRAMS = os.path.join(ROOT, "tests", "programs")
SCENARIOS = os.path.normpath(os.path.join(ROOT, "..", "shared", "scenarios"))
PYENV = os.path.expanduser("~/.pyenv/versions")

# Debian's interpreter and each pyenv minor version the project supports.
PYENV_MINORS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]


def _pyenv_python(minor):
    """The newest pyenv build of a minor version, by full path (never the shim)."""
    found = sorted(glob.glob(os.path.join(PYENV, minor + ".*", "bin", "python" + minor)),
                   key=lambda p: [int(x) for x in p.split("/")[-3].split(".") if x.isdigit()])
    return found[-1] if found else None


def interpreters():
    """pytest params: (id, path or None); a missing one becomes a skip with a message."""
    params = [pytest.param("/usr/bin/python3.11", id="debian-3.11")]
    for minor in PYENV_MINORS:
        params.append(pytest.param(_pyenv_python(minor), id="pyenv-" + minor))
    return params


def require(python):
    if python is None or not os.access(python, os.X_OK):
        pytest.skip("interpreter not installed: %s" % (python or "pyenv build missing"))
    return python


class Daemon:
    def __init__(self, tmpdir, *extra):
        self.socket = os.path.join(tmpdir, "pyleakd.sock")
        self.log = open(os.path.join(tmpdir, "pyleakd.log"), "w+")
        self.proc = subprocess.Popen([PYLEAKD, "--socket", self.socket, "--log-level", "debug"] +
                                     list(extra), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pyleakd exited: " + self.log_text())
            if self.ctl("status", "--json")[0] == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("pyleakd did not become ready: " + self.log_text())

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def ctl(self, *args, timeout=120, env=None):
        """Runs pyleakctl; returns (exit code, stdout, stderr)."""
        e = dict(os.environ, PYLEAKD_SOCKET=self.socket)
        e.update(env or {})
        r = subprocess.run([PYLEAKCTL] + list(args), capture_output=True, text=True,
                           timeout=timeout, env=e)
        return r.returncode, r.stdout, r.stderr

    def json(self, *args, **kw):
        """Runs pyleakctl ... --json; returns (exit code, parsed document)."""
        code, out, err = self.ctl(*(list(args) + ["--json"]), **kw)
        try:
            doc = json.loads(out)
        except ValueError:
            raise AssertionError("not one JSON document on stdout: %r (stderr %r)" % (out, err))
        return code, doc

    def ok(self, *args, **kw):
        code, doc = self.json(*args, **kw)
        assert code == 0, doc
        return doc

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM; the exit code. A sanitizer report in the log fails the caller's test."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        log = self.log_text()
        self.log.close()
        reports = [r for r in SANITIZER_REPORTS if r in log]
        assert not reports, "pyleakd: %s; log:\n%s" % (", ".join(reports), log)
        return self.proc.returncode


@pytest.fixture(scope="session")
def daemon():
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF)")
    with tempfile.TemporaryDirectory(prefix="pyleak-test-") as tmp:
        d = Daemon(tmp)
        yield d
        code = d.stop()
        assert code == 0, "pyleakd exit code %s; log:\n%s" % (code, open(os.path.join(tmp, "pyleakd.log")).read())


class Target:
    """A Python program that reports JSON lines on stdout and may take commands on stdin."""

    _EOF = object()

    def __init__(self, argv):
        import queue
        import threading
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.pid = self.proc.pid
        # A reader thread: the pipe never fills, and latest() sees every line written so far.
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                self.lines.put(json.loads(line))
        self.lines.put(self._EOF)

    def read(self, timeout=120):
        """The next JSON line of stdout."""
        import queue
        try:
            doc = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("target said nothing for %ss" % timeout)
        if doc is self._EOF:
            self.lines.put(self._EOF)
            raise AssertionError("target exited: %s" % self.proc.stderr.read())
        return doc

    def latest(self):
        """The newest JSON line written so far (waits for one if there is none)."""
        doc = self.read()
        while not self.lines.empty():
            nxt = self.lines.get()
            if nxt is self._EOF:
                self.lines.put(self._EOF)
                break
            doc = nxt
        return doc

    def send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def target_factory():
    made = []

    def make(argv):
        t = Target(argv)
        made.append(t)
        return t

    yield make
    for t in made:
        t.stop()


def top_counts(daemon, pid):
    """{type: live} from `pyleakctl top --json` with every type."""
    doc = daemon.ok("top", "-p", str(pid), "-n", "100000")
    return {row["type"]: row["live"] for row in doc["types"]}, doc
