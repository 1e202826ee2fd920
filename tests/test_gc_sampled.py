# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Acceptance (always-on mode): cyclic garbage is told apart in sampled mode, where deaths are
probed only in short windows on classes whose census count swings (daemon/gcwatch.h).

Every interpreter at once, in one daemon, each running the cipher scenario twice with its
default rate (2,000 connections/s): with the GC on, `leaks` reports StreamCrypto with
freed_by_gc_fraction >= 0.9 and the cyclic-garbage evidence within REPORT_S seconds of attach,
and `status` names it among the probed classes, with windows that stay within the budget (a
second one opens within DEADLINE); with --fixed (no cycles), nothing is cyclic garbage.
"""
import os
import time

import pytest

from conftest import SCENARIOS, installed_interpreters, interpreters, require, started_targets

CIPHER = os.path.join(SCENARIOS, "cipher_cycle_leak.py")
REPORT_S = 60
DEADLINE = 90
BUDGET = 0.01	# pyleakd's default --budget
CPU_TICK = 0.01	# /proc/PID/stat's CPU time resolution


def target_status(daemon, pid):
    return [t for t in daemon.ok("status")["targets"] if t["pid"] == pid][0]


@pytest.fixture(scope="module")
def gc_runs(daemon):
    """{python: (found, fixed_suspects, cipher status, fixed status)}: found is (seconds after
    attach, suspect) for StreamCrypto in the GC-on run, or None if DEADLINE passed; the
    statuses are each target's in `status`, once the GC-on run's second window opened."""
    with started_targets() as make:
        runs = [(python, make([python, CIPHER, "--seconds", "0"]),
                 make([python, CIPHER, "--seconds", "0", "--fixed"]))
                for _, python in installed_interpreters()]
        for _, gc, fixed in runs:
            for t in (gc, fixed):
                t.read()
                assert daemon.ok("attach", "-p", str(t.pid), "--mode", "sampled")["mode"] == "sampled"
        attached = time.time()
        found, paid = {}, set()
        while time.time() - attached < DEADLINE and (len(found) < len(runs) or
                                                     len(paid) < len(runs)):
            time.sleep(2)
            for python, gc, _ in runs:
                if python not in found:
                    s = daemon.ok("leaks", "-p", str(gc.pid), "--window", "60")["suspects"]
                    sc = [x for x in s if x["type"] == "StreamCrypto" and
                          x["freed_by_gc_fraction"] >= 0.9]
                    if sc:
                        found[python] = (time.time() - attached, sc[0])
                # A second window: the first has been paid for.
                if target_status(daemon, gc.pid)["gc_deaths"]["windows"] >= 2:
                    paid.add(python)
        yield {python: (found.get(python),
                        daemon.ok("leaks", "-p", str(fixed.pid), "--window", "60")["suspects"],
                        target_status(daemon, gc.pid), target_status(daemon, fixed.pid))
               for python, gc, fixed in runs}


@pytest.mark.parametrize("python", interpreters())
def test_cyclic_garbage_in_sampled_mode(daemon, gc_runs, python):
    require(python)
    found, fixed, status, fixed_status = gc_runs[python]
    windows = status["gc_deaths"]
    assert found, "StreamCrypto not reported as cyclic garbage within %d s; %s" % (
        DEADLINE, windows)
    seconds, sc = found
    assert seconds <= REPORT_S, (seconds, sc)
    print("%s: StreamCrypto cyclic garbage after %.0f s; windows %s" % (python, seconds, windows))
    assert "cyclic garbage" in sc["evidence"], sc
    assert "StreamCrypto" in windows["types"] and windows["windows"] >= 1, windows
    assert windows["cost_s"] > 0, windows

    # No cycles: nothing dies inside collections, so nothing is cyclic garbage.
    assert not [x for x in fixed if x["freed_by_gc_fraction"] >= 0.5], fixed
    assert "StreamCrypto" not in fixed_status["gc_deaths"]["types"], fixed_status["gc_deaths"]


@pytest.mark.parametrize("python", interpreters())
def test_windows_stay_within_budget(daemon, gc_runs, python):
    """Each window but the last is paid for (budget x the target's CPU time since) before the
    next opens, so all but the last cost at most the budget's share of the target's CPU."""
    require(python)
    _, _, status, _ = gc_runs[python]
    windows = status["gc_deaths"]
    assert windows["windows"] >= 2, windows
    # A window in which no watched class died costs nothing: the first may.
    spent = windows["cost_s"] - windows["last_cost_s"]
    assert 0 <= spent <= BUDGET * (status["governor"]["target_cpu_s"] + CPU_TICK), (
        windows, status["governor"])


def test_window_open_at_exit_is_closed_in_the_record(daemon):
    """A death window open when its target exits is closed in the record `status` keeps:
    open false, its time counted."""
    python = installed_interpreters()[-1][1]
    with started_targets() as make:
        t = make([python, CIPHER, "--seconds", "0"])
        t.read()
        assert daemon.ok("attach", "-p", str(t.pid), "--mode", "sampled")["mode"] == "sampled"
        deadline = time.time() + DEADLINE
        while time.time() < deadline and not target_status(daemon, t.pid)["gc_deaths"]["open"]:
            time.sleep(0.05)
        assert target_status(daemon, t.pid)["gc_deaths"]["open"], "no window opened"
        t.proc.kill()
        t.proc.wait()
        deadline = time.time() + 10
        while time.time() < deadline and target_status(daemon, t.pid)["state"] == "tracking":
            time.sleep(0.05)
    st = target_status(daemon, t.pid)
    assert st["state"] == "exited" and not st["gc_deaths"]["open"], st
    assert st["gc_deaths"]["open_s"] > 0, st["gc_deaths"]
