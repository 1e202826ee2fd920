# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Acceptance: allocation sites (`pyleakctl sites`) name the functions, lines and callers that
allocated the live objects of a type, in the right proportions, on every interpreter.

tests/programs/three_sites.py allocates Item objects from three functions at known lines in
known shares (50/30/20, interleaved); each site's share of the reported live objects must be
within 5 percentage points of the truth, the site's line exact, its caller right, and the sites'
estimate of the whole within 15% of the objects allocated.  Precise mode samples 1 birth in 64;
sampled mode samples one allocation per fresh heap page.  All interpreters run at once, in one
daemon (a module fixture per mode); each interpreter's sites are checked by its own test, and a
missing interpreter is a skip of its test.
"""
import os

import pytest

from conftest import PROGRAMS, installed_interpreters, interpreters, require, started_targets

PROGRAM = os.path.join(PROGRAMS, "three_sites.py")


@pytest.fixture(scope="module", params=["precise", "sampled"])
def site_runs(request, daemon):
    """Every installed interpreter at once, in one mode: {path: (id, mode, target, truth,
    sites document)}, the truth and the document taken once all targets are done."""
    mode = request.param
    with started_targets() as make:
        runs = []
        for name, python in installed_interpreters():
            t = make([python, PROGRAM])
            assert t.read()["ready"]
            daemon.ok("attach", "-p", str(t.pid), "--mode", mode,
                      *(["--force"] if mode == "precise" else []))
            runs.append((name, python, t))
        for _, _, t in runs:
            t.proc.stdin.write("go\n")
            t.proc.stdin.flush()
        done = {}
        for name, python, t in runs:
            truth = t.read(timeout=600)
            doc = daemon.ok("sites", "-p", str(t.pid), "--type", "Item", "-n", "20")
            done[python] = (name, mode, t, truth, doc)
        yield done


@pytest.mark.parametrize("python", interpreters())
def test_three_sites(site_runs, python):
    name, mode, t, truth, doc = site_runs[require(python)]
    failures = []
    by_fn = {}
    for s in doc["sites"]:
        by_fn.setdefault(s["function"], []).append(s)
    total = sum(s["live"] for f in truth["sites"] for s in by_fn.get(f, []))
    report = []
    for fn, want in truth["sites"].items():
        got = by_fn.get(fn, [])
        live = sum(s["live"] for s in got)
        share, want_share = live / max(total, 1), want["count"] / truth["total"]
        report.append("%s %.3f/%.3f" % (fn, share, want_share))
        if abs(share - want_share) > 0.05:
            failures.append("%s %s: %s has %.1f%% of the sites' objects, want %.1f%%" % (
                name, mode, fn, share * 100, want_share * 100))
        if not got:
            continue
        top = max(got, key=lambda s: s["live"])
        if top["line"] != want["line"] or not top["file"].endswith("three_sites.py"):
            failures.append("%s %s: %s at %s:%s, want line %d" % (
                name, mode, fn, top["file"], top["line"], want["line"]))
        callers = [f["function"] for f in top["stack"][1:]]
        if not callers or callers[0] != want["caller"] or "main" not in callers:
            failures.append("%s %s: %s called from %s, want %s <- ... main" % (
                name, mode, fn, callers, want["caller"]))
    if abs(total - truth["total"]) > 0.15 * truth["total"]:
        failures.append("%s %s: sites stand for %d objects, %d were made" % (
            name, mode, total, truth["total"]))
    print("%s %s: %s; %d of %d objects; %s" % (name, mode, " ".join(report), total,
                                               truth["total"], doc["sampled"]))
    assert not failures, "\n".join(failures)
