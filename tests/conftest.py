# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Fixtures for the integration tests: a private pyleakd, the interpreters, target programs.

Everything here is real: the daemon loads real BPF into the kernel and attaches to real
CPython processes. Run as root (CI is root).

Interpreters: Debian's /usr/bin/python3.11 (id debian-3.11) and the newest pyenv build of each
of 3.8-3.13 (ids pyenv-3.8 ... pyenv-3.13) under $PYLEAK_PYENV_ROOT/versions (default
~/.pyenv/versions).  Tests are parametrized by interpreter, so a missing one is a visible SKIP
of its tests, with the command that installs it; never a pass.  Which ones must be present:

- CI=true (CI systems set it; .ci/run does): all seven.
- PYLEAK_EXPECT_PYTHONS: a comma-separated list of ids (e.g. "debian-3.11,pyenv-3.12"),
  "all", or "none"; it overrides CI.

If an expected interpreter is missing, the run FAILS at session start (pytest.UsageError, exit
code 4) naming it and how to install it, before any test runs.  Without either variable,
missing interpreters are skipped.
"""
import contextlib
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
PYENV = os.path.join(os.environ.get("PYLEAK_PYENV_ROOT") or os.path.expanduser("~/.pyenv"),
                     "versions")

# Debian's interpreter and each pyenv minor version the project supports.
DEBIAN_PYTHON = "/usr/bin/python3.11"
PYENV_MINORS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]


def _pyenv_python(minor):
    """The newest pyenv build of a minor version, by full path (never the shim)."""
    found = sorted(glob.glob(os.path.join(PYENV, minor + ".*", "bin", "python" + minor)),
                   key=lambda p: [int(x) for x in p.split("/")[-3].split(".") if x.isdigit()])
    return found[-1] if found else None


def _installed(python):
    return python is not None and os.access(python, os.X_OK)


def all_interpreters():
    """[(id, path or None)] for every supported interpreter, installed or not."""
    return ([("debian-3.11", DEBIAN_PYTHON)] +
            [("pyenv-" + minor, _pyenv_python(minor)) for minor in PYENV_MINORS])


def installed_interpreters():
    """[(id, path)] of the supported interpreters that are installed."""
    return [(name, python) for name, python in all_interpreters() if _installed(python)]


def missing_message(name):
    """What is missing and the command that installs it."""
    if name == "debian-3.11":
        return "interpreter %s not installed: %s (apt-get install python3.11)" % (
            name, DEBIAN_PYTHON)
    minor = name[len("pyenv-"):]
    return ("interpreter %s not installed: no %s/%s.*/bin/python%s "
            "(PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install %s)" % (
                name, PYENV, minor, minor, minor))


def expected_interpreters():
    """The ids that must be installed: PYLEAK_EXPECT_PYTHONS, else all of them under CI=true."""
    names = [name for name, _ in all_interpreters()]
    want = os.environ.get("PYLEAK_EXPECT_PYTHONS", "").strip()
    if not want:
        return names if os.environ.get("CI", "").lower() in ("true", "1") else []
    if want == "all":
        return names
    if want == "none":
        return []
    want = [w.strip() for w in want.split(",") if w.strip()]
    unknown = [w for w in want if w not in names]
    if unknown:
        raise pytest.UsageError("PYLEAK_EXPECT_PYTHONS: unknown interpreter %s; known: %s, "
                                "all, none" % (", ".join(unknown), ", ".join(names)))
    return want


def pytest_sessionstart(session):
    """Fails the run when an interpreter the environment expects is missing."""
    installed = [name for name, _ in installed_interpreters()]
    missing = [name for name in expected_interpreters() if name not in installed]
    if missing:
        raise pytest.UsageError(
            "expected interpreters missing (CI=%s, PYLEAK_EXPECT_PYTHONS=%s):\n  %s\n"
            "Install them, or set PYLEAK_EXPECT_PYTHONS to the ids this run must have." % (
                os.environ.get("CI", ""), os.environ.get("PYLEAK_EXPECT_PYTHONS", ""),
                "\n  ".join(missing_message(name) for name in missing)))


# Files whose tests share nothing but the session daemon: under pytest-xdist (`make test`) their
# tests are spread over the workers one by one (those sharing a module fixture name an
# xdist_group, so that one worker runs it once). Every other file runs whole on one worker, in
# order, as written (module fixtures, state one test leaves for the next).
SPLIT_FILES = {"test_counts.py", "test_wordsegment.py", "test_hostile_memory.py", "test_paths.py",
               "test_modes.py", "test_hostile_files.py", "test_leaks.py"}
# The longest files (minutes of wall-clock each, measured), started first so that the workers
# end together.
SLOW_FILES = ["test_leaks.py", "test_paths.py", "test_native.py", "test_metrics.py",
              "test_sampled.py"]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Groups each test by its file, unless the file is split or the test names its group, and
    puts the slow files first, and in a file its groups before its spread tests; before
    xdist's own hook, which reads the groups (--dist loadgroup)."""
    def rank(item):
        name = os.path.basename(str(item.fspath))
        return (SLOW_FILES.index(name) if name in SLOW_FILES else len(SLOW_FILES),
                item.get_closest_marker("xdist_group") is None)
    items.sort(key=rank)
    for item in items:
        name = os.path.basename(str(item.fspath))
        if name not in SPLIT_FILES and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(name))


def interpreters():
    """pytest params, one per interpreter: its path, id debian-3.11, pyenv-3.8, ...; a missing
    one is marked skip, with the command that installs it."""
    return [pytest.param(python, id=name) if _installed(python) else
            pytest.param(python, id=name, marks=pytest.mark.skip(reason=missing_message(name)))
            for name, python in all_interpreters()]


def require(python, name=None):
    """python if it is installed; else skips the test, naming the interpreter (id) it wanted."""
    if not _installed(python):
        pytest.skip(missing_message(name) if name else
                    "interpreter not installed: %s" % (python or "none found"))
    return python


def any_python():
    """Debian's interpreter, else a pyenv one: for tests that need a Python, any Python."""
    for p in ["/usr/bin/python3.11"] + [_pyenv_python(m) for m in ("3.12", "3.11", "3.10")]:
        if _installed(p):
            return p
    return require(None)


class Daemon:
    def __init__(self, tmpdir, *extra):
        self.socket = os.path.join(tmpdir, "pyleakd.sock")
        self.log = open(os.path.join(tmpdir, "pyleakd.log"), "w+")
        # Postmortem reports in the test's own directory, unless extra says otherwise.
        self.state_dir = os.path.join(tmpdir, "state")
        self.proc = subprocess.Popen([PYLEAKD, "--socket", self.socket, "--log-level", "debug",
                                      "--state-dir", self.state_dir] + list(extra),
                                     stdout=self.log, stderr=subprocess.STDOUT)
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


# Interpreters where the pool sampler is placed (hooks_pool_find()): 16 KiB pools, and the
# pool initialiser found (by symbol, or by its code on Debian's stripped build).
POOL_SAMPLER = {"debian-3.11", "pyenv-3.10", "pyenv-3.11", "pyenv-3.12", "pyenv-3.13"}


def pool_sampler_placed(name):
    """Whether the interpreter named name gets the pool sampler: it needs uprobe sessions
    (Linux 6.12+)."""
    release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    return name in POOL_SAMPLER and release >= (6, 12)


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


@contextlib.contextmanager
def started_targets():
    """make(argv) starts a Target; all of them are stopped on leaving the block."""
    made = []

    def make(argv):
        t = Target(argv)
        made.append(t)
        return t

    try:
        yield make
    finally:
        for t in made:
            t.stop()


@pytest.fixture
def target_factory():
    with started_targets() as make:
        yield make


def cgroup_remove(path, timeout):
    """Removes a cgroup, busy for a moment after its last process died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def top_counts(daemon, pid):
    """{type: live} from `pyleakctl top --json` with every type."""
    doc = daemon.ok("top", "-p", str(pid), "-n", "100000")
    return {row["type"]: row["live"] for row in doc["types"]}, doc
