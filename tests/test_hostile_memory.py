# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Targets that corrupt what pyleakd reads of them (tests/programs/hostile.py, through ctypes).

Per interpreter and mode, one daemon tracks a healthy target and five hostile ones, which, once
attached, corrupt: their class's tp_dictoffset (its sum with an offset wrapped and crashed
pyleakd), a list's ob_size and allocated and a pool header; tp_basicsize and tp_itemsize;
tp_name (pointing at a name that is not UTF-8); the allocating function's name, file name
(surrogates, control characters) and line table; and the length of a line table, plus 20,000
forged type objects with an object each. Then `top`, `leaks`, `sites --type Victim`, `path
--type Victim` (a complete walk), `native` (its sites named from the same stacks: bounded, or
a clear error) and `status` of each must answer in time, the daemon stay up, the healthy
target's count stay exact, out-of-range fields be reported per target in status, and frames
named from corrupted code objects still be listed (in valid UTF-8, which jansson needs to keep
them).
"""
import os
import time

import pytest

from conftest import PROGRAMS, interpreters, require, top_counts

HOSTILE = os.path.join(PROGRAMS, "hostile.py")
N = 1000
ANSWER_S = 30
NATIVE_SITES_MAX = 20  # `native` lists the 20 largest sites (view_native.c)
STACK_DEPTH_MAX = 16   # frames recorded per stack (bpf/pyleak.h)
# The errors `native` may answer a target with: no scan yet, or no stacks on this interpreter.
NATIVE_ERRORS = ("busy", "unsupported_python")
CONTROL = {chr(c) for c in list(range(0x20)) + list(range(0x7f, 0xa0))} - {"\n"}
PYTHONS = [p for p in interpreters() if p.id in ("debian-3.11", "pyenv-3.8", "pyenv-3.12")]
# What each hostile target corrupts (hostile.py's commands), and what status may then report
# (the last of its corrupt events: one of these).
HOSTILE_RUNS = [
    ("dictoffset pool list", ("tp_dictoffset", "ob_size out of range in list")),
    ("basicsize", ("tp_basicsize",)),
    ("name_bad alloc", None),
    ("code alloc", None),
    ("linetable alloc fake_types", None),
]


def status_of(daemon, pid):
    doc = daemon.ok("status", timeout=ANSWER_S)
    return next(t for t in doc["targets"] if t["pid"] == pid)


def answers(daemon, *args):
    """A command answers in time with one JSON document (an error is an answer)."""
    code, doc = daemon.json(*args, timeout=ANSWER_S)
    assert daemon.alive(), daemon.log_text()[-3000:]
    return code, doc


@pytest.mark.parametrize("mode", ["precise", "sampled"])
@pytest.mark.parametrize("python", PYTHONS)
def test_hostile_memory(daemon, target_factory, python, mode):
    python = require(python)
    healthy = target_factory([python, HOSTILE, str(N)])
    bad = [(target_factory([python, HOSTILE, str(N)]), cmds, report)
           for cmds, report in HOSTILE_RUNS]
    for t in [healthy] + [b[0] for b in bad]:
        t.read()
        daemon.ok("attach", "-p", str(t.pid), "--mode", mode,
                  *(["--force"] if mode == "precise" else []))
    healthy.send("alloc")
    for t, cmds, _ in bad:
        assert t.send(cmds)["done"] == cmds.split()

    # Reported: every census now meets the out-of-range field; wait for one.
    deadline = time.time() + 60
    for t, cmds, report in bad:
        if not report:
            continue
        while True:
            st = status_of(daemon, t.pid)
            if st["corrupt"]["events"] or time.time() > deadline:
                break
            time.sleep(0.5)
        assert st["state"] == "tracking", st
        assert st["corrupt"]["events"] > 0, (cmds, st)
        assert any(r in st["corrupt"]["last"] for r in report), (cmds, st["corrupt"])
        assert st["census_s"] < 10, st

    for t, cmds, _ in bad:
        pid = str(t.pid)
        code, doc = answers(daemon, "top", "-p", pid, "-n", "100000")
        assert code == 0, (cmds, doc)
        answers(daemon, "leaks", "-p", pid, "--window", "10")
        # The reference walk reads the same corrupted types, lists and names.
        code, doc = answers(daemon, "path", "-p", pid, "--type", "Victim")
        assert code == 0 and doc["walk"]["complete"], (cmds, doc)
        code, doc = answers(daemon, "sites", "-p", pid, "--type", "Victim", "-n", "100")
        if cmds == "code alloc" and doc.get("sites"):
            # The frame of the corrupted code object is named, not dropped from the stack.
            names = [f["function"] for s in doc["sites"] for f in s["stack"]]
            assert any(n.startswith("make") and "victims" in n for n in names), names
        code, doc = answers(daemon, "native", "-p", pid)
        if code == 0:
            assert doc["pid"] == t.pid and 0 <= doc["explained_fraction"] <= 1, (cmds, doc)
            assert len(doc["sites"]) <= NATIVE_SITES_MAX, (cmds, len(doc["sites"]))
            for s in doc["sites"]:
                assert s["bytes"] >= 0 and len(s["stack"]) <= STACK_DEPTH_MAX, (cmds, s)
        else:
            assert doc["error"]["code"] in NATIVE_ERRORS, (cmds, doc)
        if cmds == "name_bad alloc":
            assert any(r["type"].startswith("Vic") for r in top_counts(daemon, t.pid)[1]["types"])
        if cmds in ("name_bad alloc", "code alloc"):
            # Names from the target reach neither a terminal nor the journal as control bytes
            # (C0, and C1 such as U+009B, which some terminals obey as CSI).
            for args in (["top", "-p", pid, "--once", "-n", "0"],
                         ["sites", "-p", pid, "--type", "Victim"],
                         ["path", "-p", pid, "--type", "Victim"],
                         ["native", "-p", pid]):
                _, out, err = daemon.ctl(*args, timeout=ANSWER_S)
                assert not set(out + err) & CONTROL, (args, out, err)
        assert t.proc.poll() is None, "the hostile target itself died: " + t.proc.stderr.read()

    # The healthy target is still counted right: Victims born since attach (probes), or all.
    counts, _ = top_counts(daemon, healthy.pid)
    assert counts.get("Victim") == (N if mode == "precise" else 2 * N), counts
    st = status_of(daemon, healthy.pid)
    assert st["corrupt"]["events"] == 0 and st["state"] == "tracking", st
    for t in [healthy] + [b[0] for b in bad]:
        daemon.ok("detach", "-p", str(t.pid))
    log = daemon.log_text()
    assert not set(log) & (CONTROL - {"\n"}), [l for l in log.splitlines() if set(l) & CONTROL][:5]


@pytest.mark.parametrize("python", [p for p in interpreters() if p.id == "pyenv-3.8"])
def test_fixed_size_outside_pymalloc(daemon, target_factory, python):
    """With PYTHONMALLOC=malloc every object is outside the pools, found on the GC lists: the
    word at +16 of a fixed-size one is a field (a 3.8 instance's __dict__ pointer, above 2^44),
    not a size out of range."""
    python = require(python)
    t = target_factory(["env", "PYTHONMALLOC=malloc", python, HOSTILE, str(N)])
    t.read()
    daemon.ok("attach", "-p", str(t.pid), "--mode", "sampled")
    deadline = time.time() + 60
    while top_counts(daemon, t.pid)[0].get("Victim", 0) < N and time.time() < deadline:
        time.sleep(0.5)
    assert top_counts(daemon, t.pid)[0].get("Victim", 0) >= N
    st = status_of(daemon, t.pid)
    assert st["corrupt"]["events"] == 0, st["corrupt"]
    daemon.ok("detach", "-p", str(t.pid))
