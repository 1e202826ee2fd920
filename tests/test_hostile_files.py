# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Security: a target's owner controls the files its maps name; pyleakd (root) must open only the
inodes actually mapped, never block, fault or gain a terminal on them, and keep serving.

Each target runs a copy of an interpreter from a temp dir (Debian's static python3.11, or
pyenv 3.12's libpython3.12.so + python3.12), so the test may swap the file on disk once it is
mapped: by a FIFO, a pty or a device under the name the kernel then shows in maps
("<path> (deleted)"), by another ELF file under that name, or truncate it while attached.
pyleakd must either attach through the original inode (and count right) or refuse with a clear
error; an interpreter attached before must keep being served.
"""
import os
import shutil
import struct
import subprocess
import time

import pytest

import conftest
from conftest import PROGRAMS, Daemon, _pyenv_python, require

PROGRAM = os.path.join(PROGRAMS, "known_counts.py")
# Every pyleakctl call: a daemon blocked in open() or read() must fail the test, not hang it.
CTL_TIMEOUT = 30
FOO = 100000    # Foo instances known_counts.py creates (counted exactly in precise mode)


def _interpreters():
    return [pytest.param("/usr/bin/python3.11", id="debian-3.11"),
            pytest.param(_pyenv_python("3.12"), id="pyenv-3.12")]


def _version(python):
    out = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return out.strip()


def copy_interpreter(python, tmp):
    """A private copy of python under tmp: (argv, the file holding the interpreter)."""
    if python.startswith("/usr/"):
        exe = os.path.join(tmp, "bin", os.path.basename(python))
        os.makedirs(os.path.dirname(exe))
        shutil.copy2(python, exe)
        return ["/usr/bin/env", "PYTHONHOME=/usr", exe, PROGRAM], exe
    prefix = os.path.dirname(os.path.dirname(python))
    minor = os.path.basename(python)[len("python"):]
    exe = os.path.join(tmp, "bin", os.path.basename(python))
    lib = os.path.join(tmp, "lib", "libpython%s.so.1.0" % minor)
    os.makedirs(os.path.dirname(exe))
    os.makedirs(os.path.dirname(lib))
    shutil.copy2(python, exe)
    shutil.copy2(os.path.join(prefix, "lib", os.path.basename(lib)), lib)
    # LD_LIBRARY_PATH comes before the executable's RUNPATH (the original prefix).
    return ["/usr/bin/env", "PYTHONHOME=" + prefix, "LD_LIBRARY_PATH=" + os.path.dirname(lib),
            exe, PROGRAM], lib


def loaded_end(path):
    """The end of the file bytes of the last PT_LOAD segment, page-rounded: what the process uses."""
    with open(path, "rb") as f:
        eh = f.read(64)
        phoff, = struct.unpack_from("<Q", eh, 32)
        phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        end = 0
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, _, p_offset, _, _, p_filesz = struct.unpack("<IIQQQQ", f.read(40))
            if p_type == 1:
                end = max(end, p_offset + p_filesz)
    return (end + 4095) // 4096 * 4096


def other_elf(python):
    """A valid ELF file of another Python version, for a decoy."""
    if python.startswith("/usr/"):
        other = _pyenv_python("3.10")
        return other and os.path.join(os.path.dirname(os.path.dirname(other)), "lib",
                                      "libpython3.10.so.1.0")
    return "/usr/bin/python3.11"


def swap(kind, victim, python):
    """Deletes the mapped file and puts `kind` where maps now points ("<path> (deleted)");
    returns the descriptors to close afterwards."""
    decoy = victim + " (deleted)"
    os.unlink(victim)
    if kind == "fifo":
        os.mkfifo(decoy)
    elif kind == "decoy":
        shutil.copy2(other_elf(python), decoy)
    elif kind == "pty":
        master, slave = os.openpty()
        os.symlink(os.ttyname(slave), decoy)
        return [master, slave]
    elif kind == "device":
        os.symlink("/dev/zero", decoy)
    return []


def ctl(daemon, *args):
    return daemon.json(*args, timeout=CTL_TIMEOUT)


def mode_args(mode):
    """Precise mode kept over budget: `create` under its probes costs more than any budget."""
    return ["--mode", mode] + (["--force"] if mode == "precise" else [])


def bystander(daemon, target_factory, python, mode):
    """A normal target attached before the hostile one."""
    t = target_factory([python, PROGRAM])
    pid = t.read()["pid"]
    daemon.ok("attach", "-p", str(pid), *mode_args(mode), timeout=CTL_TIMEOUT)
    return t, pid


def top_counts(daemon, pid):
    doc = daemon.ok("top", "-p", str(pid), "-n", "100000", timeout=CTL_TIMEOUT)
    return {row["type"]: row["live"] for row in doc["types"]}, doc


def check_served(daemon, pid, mode, t, version):
    """top, leaks and sites answer for pid; in precise mode Foo is counted exactly."""
    doc = daemon.ok("status", timeout=CTL_TIMEOUT)
    states = {x["pid"]: x["state"] for x in doc["targets"]}
    assert states.get(pid) == "tracking", doc
    before, doc = top_counts(daemon, pid)
    assert doc["python"] == version, doc
    t.send("create")
    now, doc = top_counts(daemon, pid)
    if mode == "precise":
        assert now.get("Foo", 0) - before.get("Foo", 0) == FOO, now
    daemon.ok("leaks", "-p", str(pid), timeout=CTL_TIMEOUT)
    daemon.ok("sites", "-p", str(pid), "--type", "str", timeout=CTL_TIMEOUT)


def attach_hostile(daemon, pid, mode, version):
    """Attaches; either it attached the real interpreter, or it refused with a clear error."""
    code, doc = ctl(daemon, "attach", "-p", str(pid), *mode_args(mode))
    if code:
        assert set(doc) == {"error"} and str(pid) in doc["error"]["message"], doc
    return code == 0


@pytest.mark.parametrize("mode", ["precise", "sampled"])
@pytest.mark.parametrize("kind", ["fifo", "decoy", "pty", "device"])
@pytest.mark.parametrize("python", _interpreters())
def test_swapped_before_attach(daemon, target_factory, tmp_path, python, kind, mode):
    """The mapped file is deleted and '<path> (deleted)' created: the name the daemon reads in
    maps now leads to a FIFO (blocks open()), a pty (a controlling terminal), a device, or another
    interpreter (wrong symbols). pyleakd must use the inode still mapped."""
    python = require(python)
    version = _version(python)
    if kind == "decoy" and not other_elf(python):
        pytest.skip("no other interpreter to use as a decoy")
    argv, victim = copy_interpreter(python, str(tmp_path))
    b, bpid = bystander(daemon, target_factory, python, mode)
    t = target_factory(argv)
    pid = t.read()["pid"]
    fds = swap(kind, victim, python)
    try:
        assert attach_hostile(daemon, pid, mode, version), \
            "refused, though the inode mapped is intact: " + daemon.log_text()[-2000:]
        check_served(daemon, pid, mode, t, version)
        check_served(daemon, bpid, mode, b, version)
        assert daemon.alive()
    finally:
        for fd in fds:
            os.close(fd)
        daemon.json("detach", "-p", str(pid), timeout=CTL_TIMEOUT)
        daemon.json("detach", "-p", str(bpid), timeout=CTL_TIMEOUT)


@pytest.mark.parametrize("mode", ["precise", "sampled"])
@pytest.mark.parametrize("python", _interpreters())
def test_truncated_while_attached(daemon, target_factory, tmp_path, python, mode):
    """The file is truncated past what the process uses (its symbol tables go) while attached:
    a daemon that mapped it would take SIGBUS when it next looks a symbol up (a new type)."""
    python = require(python)
    version = _version(python)
    argv, victim = copy_interpreter(python, str(tmp_path))
    b, bpid = bystander(daemon, target_factory, python, mode)
    t = target_factory(argv)
    pid = t.read()["pid"]
    try:
        assert attach_hostile(daemon, pid, mode, version), daemon.log_text()[-2000:]
        try:
            os.truncate(victim, loaded_end(victim))
        except OSError as e:
            if e.errno == 26:   # ETXTBSY: the kernel protects a running executable
                pytest.skip("the kernel refuses to truncate a running executable")
            raise
        check_served(daemon, pid, mode, t, version)
        check_served(daemon, bpid, mode, b, version)
        assert daemon.alive()
    finally:
        daemon.json("detach", "-p", str(pid), timeout=CTL_TIMEOUT)
        daemon.json("detach", "-p", str(bpid), timeout=CTL_TIMEOUT)


@pytest.fixture
def session_daemon(tmp_path, monkeypatch):
    """A private pyleakd leading its own session with no terminal, as under systemd: the first
    terminal such a process opens without O_NOCTTY becomes its controlling terminal."""
    wrapper = tmp_path / "pyleakd-setsid"
    wrapper.write_text('#!/bin/sh\nexec setsid %s "$@"\n' % conftest.PYLEAKD)
    wrapper.chmod(0o755)
    monkeypatch.setattr(conftest, "PYLEAKD", str(wrapper))
    d = Daemon(str(tmp_path))
    yield d
    d.stop()


@pytest.mark.parametrize("python", _interpreters())
def test_pty_never_becomes_terminal(session_daemon, target_factory, tmp_path, python):
    """The decoy name leads to a pty the attacker holds the master of: had the daemon opened it,
    hanging up the master would send it SIGHUP."""
    python = require(python)
    daemon = session_daemon
    argv, victim = copy_interpreter(python, str(tmp_path / "target"))
    t = target_factory(argv)
    pid = t.read()["pid"]
    master, slave = swap("pty", victim, python)
    os.close(slave)
    attach_hostile(daemon, pid, "precise", _version(python))
    with open("/proc/%d/stat" % daemon.proc.pid) as f:
        tty_nr = int(f.read().rsplit(")", 1)[1].split()[4])
    os.close(master)
    time.sleep(0.5)
    assert daemon.alive(), daemon.log_text()[-2000:]
    assert tty_nr == 0, "pyleakd has a controlling terminal"
    assert daemon.ok("status", timeout=CTL_TIMEOUT)["version"]


@pytest.mark.parametrize("python", _interpreters())
def test_path_not_utf8(daemon, target_factory, tmp_path, python):
    """A target run from a path that is not UTF-8 keeps its rows in `ps` and `status` (jansson
    refuses such strings: the row would vanish)."""
    python = require(python)
    tmp = os.path.join(os.fsencode(str(tmp_path)), b"py\xff\x1b[2J")
    argv, _ = copy_interpreter(python, os.fsdecode(tmp))
    t = target_factory(argv)
    pid = t.read()["pid"]
    rows = [p for p in daemon.ok("ps", timeout=CTL_TIMEOUT)["processes"] if p["pid"] == pid]
    assert len(rows) == 1 and "py?" in rows[0]["exe"], rows
    daemon.ok("attach", "-p", str(pid), "--mode", "sampled", timeout=CTL_TIMEOUT)
    rows = [x for x in daemon.ok("status", timeout=CTL_TIMEOUT)["targets"] if x["pid"] == pid]
    assert len(rows) == 1 and "\ufffd" not in rows[0]["exe"], rows
    code, out, err = daemon.ctl("status", timeout=CTL_TIMEOUT)
    assert code == 0 and "\x1b" not in out, out
    daemon.ok("detach", "-p", str(pid), timeout=CTL_TIMEOUT)
