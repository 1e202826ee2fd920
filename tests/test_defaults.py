# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Safe defaults: commands without --mode attach in the daemon's default, sampled; precise mode
falls back to sampled when its probes cost a busy target more than its budget, unless --force;
and precise mode probes only classes and sets, counting the builtins by census."""
import os
import time

import pytest

from conftest import (PROGRAMS, ROOT, any_python, installed_interpreters, interpreters, require,
                      started_targets)

KNOWN = os.path.join(PROGRAMS, "known_counts.py")
ALLOC_LOOP = os.path.join(ROOT, "bench", "alloc_loop.py")
BUDGET = 0.01	# the daemon's default
BUILTINS = {"str", "bytes", "int", "float", "list", "dict", "tuple"}
PROBED = {"Foo", "Bar", "Baz", "set"}


def status_of(daemon, pid):
    return [x for x in daemon.ok("status")["targets"] if x["pid"] == pid][0]


def busy(make, python):
    """bench/alloc_loop.py running (a class instance, dicts, strs, floats per iteration) for
    far longer than the test."""
    t = make([python, ALLOC_LOOP, "100000000"])
    t.proc.stdin.write("\n")
    t.proc.stdin.flush()
    return t


def test_default_mode_is_sampled(daemon, target_factory):
    python = any_python()
    on_top, on_attach = target_factory([python, KNOWN]), target_factory([python, KNOWN])
    pid = on_top.read()["pid"]
    assert daemon.ok("top", "-p", str(pid))["mode"] == "sampled"
    pid = on_attach.read()["pid"]
    assert daemon.ok("attach", "-p", str(pid))["mode"] == "sampled"
    assert status_of(daemon, pid)["mode"] == "sampled"
    # Sampled mode places no per-object probe: nothing counted by probes, no fall back.
    on_attach.send("create")
    doc = daemon.ok("top", "-p", str(pid), "-n", "0")
    assert {r["source"] for r in doc["types"]} == {"census"}, doc["types"]
    assert "fell_back" not in doc


def test_precise_over_budget_falls_back_unless_forced(daemon, target_factory):
    python = any_python()
    free, forced = busy(target_factory, python), busy(target_factory, python)
    assert daemon.ok("attach", "-p", str(free.pid), "--mode", "precise")["mode"] == "precise"
    assert daemon.ok("attach", "-p", str(forced.pid), "--mode", "precise",
                     "--force")["mode"] == "precise"
    # The governor judges each interval between samples (a tick or a `top`) with at least
    # 0.1 s of target CPU; the first one only sets its baseline, and precise mode falls back
    # after 3 over budget in a row.
    deadline = time.time() + 20
    while time.time() < deadline:
        doc = daemon.ok("top", "-p", str(free.pid))
        kept = daemon.ok("top", "-p", str(forced.pid), "-n", "0")
        if doc["mode"] == "sampled" and any("against a budget" in n for n in kept["notes"]):
            break
        time.sleep(1)
    fell = doc.get("fell_back")
    assert doc["mode"] == "sampled" and fell, doc
    assert fell["from"] == "precise" and fell["budget"] == BUDGET and fell["cost_ratio"] > BUDGET
    assert any("fell back to sampled mode" in n for n in doc["notes"]), doc["notes"]
    # Rows keep working, from the census now: the loop's strs, dicts and Request instances.
    assert {r["source"] for r in doc["types"]} == {"census"}, doc["types"]
    assert {"str", "dict"} <= {r["type"] for r in doc["types"]}, doc["types"]
    st = status_of(daemon, free.pid)
    assert st["mode"] == "sampled" and st["fell_back"] == fell and st["force"] is False
    assert any("fell back" in n for n in st["notes"]), st
    leaks = daemon.ok("leaks", "-p", str(free.pid))
    assert leaks["fell_back"] == fell and any("fell back" in n for n in leaks["notes"])
    # Only the collections, the pool sampler and the page-fault route stay (uprobes: gc start
    # and done, pymalloc's pool initialisation where it is found).
    assert st["probes"] <= 4, st
    # The death windows' cost is sampled mode's alone, not precise mode's death probes'.
    assert st["gc_deaths"]["cost_s"] <= BUDGET * st["governor"]["target_cpu_s"] + 0.01, st

    st = status_of(daemon, forced.pid)
    assert st["mode"] == "precise" and st["force"] is True and "fell_back" not in st, st
    assert st["governor"]["spent_ratio"] > BUDGET, st
    warn = [n for n in st["notes"] if "against a budget of 1.0%" in n]
    assert warn and "kept: attached with --force" in warn[0], st
    assert kept["mode"] == "precise" and "fell_back" not in kept
    assert any("against a budget of 1.0%" in n for n in kept["notes"]), kept["notes"]
    # Its classes are counted by probes: a row once a sample has read their births.
    deadline = time.time() + 20
    while True:
        kept = daemon.ok("top", "-p", str(forced.pid), "-n", "0")
        rows = [r for r in kept["types"] if r["type"] == "Request" and r["source"] == "probes"]
        if rows or time.time() > deadline:
            break
        time.sleep(1)
    assert rows, kept


@pytest.fixture(scope="module")
def precise_runs(daemon):
    """known_counts.py on every installed interpreter at once, attached --mode precise --force
    before it creates its objects: {path: (top document after create, what it holds)}."""
    with started_targets() as make:
        runs = []
        for _, python in installed_interpreters():
            t = make([python, KNOWN])
            pid = t.read()["pid"]
            daemon.ok("attach", "-p", str(pid), "--mode", "precise", "--force")
            runs.append((python, t, pid))
        held = {python: t.send("create")["held"] for python, t, _ in runs}
        yield {python: (daemon.ok("top", "-p", str(pid), "-n", "0"), held[python])
               for python, _, pid in runs}


@pytest.mark.parametrize("python", interpreters())
def test_precise_probes_classes_census_builtins(precise_runs, python):
    doc, held = precise_runs[require(python)]
    assert doc["mode"] == "precise"
    rows = {r["type"]: r for r in doc["types"]}
    sources = {name: rows[name]["source"] for name in BUILTINS | PROBED if name in rows}
    assert sources == dict({b: "census" for b in BUILTINS}, **{p: "probes" for p in PROBED}), \
        sources
    # Born since attach, exactly: every class instance and set the program made (the classes'
    # deallocator is hooked at attach, so none of their births goes uncounted).  Alive: births
    # minus deaths, older objects' too, so at most born: what is asserted is that no death of
    # the program's own is lost or counted twice; the interpreter's own sets, older than the
    # attach, 1 or 2 of them on 3.9, 3.10 and 3.13, die meanwhile (a lower bound by as many).
    for name in PROBED:
        assert rows[name]["born"] == held[name], rows[name]
        assert held[name] - 2 <= rows[name]["live"] <= held[name], rows[name]
    # The census sees every live one, the program's own at least.
    for name in BUILTINS:
        assert rows[name]["live"] >= held[name], rows[name]
    assert any(n.startswith("PyUnicode_Type") for n in doc["notes"]), doc["notes"]
