# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Native allocations, sampled by bytes (precise mode): a ctypes program that mallocs 4 KiB per
request and never frees them, amid churn it frees, on every interpreter at once in one daemon.
The outstanding estimate must be the leaked bytes within TOLERANCE, its top stack the leaking
line, and the churn (freed) not counted."""
import json
import os
import tempfile
import time

import pytest

from conftest import Daemon, all_interpreters, _installed, started_targets

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAM = os.path.join(HERE, "programs", "native_alloc_leak.py")
SAMPLE_BYTES = 64 * 1024
REQUESTS = 10240  # 40 MiB leaked: ~640 samples of 64 KiB, a relative standard error of 4%
# 5 standard errors: a correct estimator fails it about once in 10^6 runs.
TOLERANCE = 0.20


def native_of(daemon, pid):
    for t in daemon.ok("status")["targets"]:
        if t["pid"] == pid:
            return t
    raise AssertionError("pid %d not in status" % pid)


@pytest.fixture(scope="module")
def native_daemon():
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF)")
    with tempfile.TemporaryDirectory(prefix="pyleak-native-") as tmp:
        conf = os.path.join(tmp, "pyleakd.conf")
        with open(conf, "w") as f:
            f.write("native_sample_bytes = %dK\n" % (SAMPLE_BYTES // 1024))
        d = Daemon(tmp, "--config", conf)
        yield d
        assert d.stop() == 0


def test_native_leak_found_on_every_interpreter(native_daemon):
    pythons = [(name, py) for name, py in all_interpreters() if _installed(py)]
    if not pythons:
        pytest.skip("no interpreter installed")
    d = native_daemon
    with started_targets() as make:
        targets = [(name, make([py, PROGRAM, str(REQUESTS)])) for name, py in pythons]
        for _, t in targets:
            assert t.read()["ready"]
        for name, t in targets:
            d.ok("attach", "-p", str(t.pid), "--mode", "precise", "--force")
            st = native_of(d, t.pid)
            assert "libc.so" in " ".join(st["native_alloc"]["allocators"]), (name, st["native_alloc"])
        for _, t in targets:
            t.proc.stdin.write("go\n")
            t.proc.stdin.flush()
        truths = {name: t.read(timeout=600) for name, t in targets}
        failures = []
        for name, t in targets:
            truth = truths[name]
            st = native_of(d, t.pid)
            assert st["mode"] == "precise", (name, st)
            n = st["native_alloc"]
            assert n["sample_bytes"] == SAMPLE_BYTES
            assert n["dropped"] == 0, (name, n)
            # The churn was sampled (~10,000 times) and every one of those blocks freed.
            assert n["samples"] > truth["churned"] / SAMPLE_BYTES / 2, (name, n, truth)
            assert n["freed"] > n["samples"] * 0.8, (name, n)
            top = n["top"][0]
            leak_bytes = sum(s["bytes"] for s in n["top"]
                             if s["function"] == truth["function"] and s["line"] == truth["line"])
            churn_rows = [s for s in n["top"] if s["function"] == truth["churn_function"]]
            err = leak_bytes / truth["leaked"] - 1
            print("%s: leaked %d, estimate %d (%+.1f%%), %d samples outstanding of %d, "
                  "cost %.3f s for %d probe hits" % (
                      name, truth["leaked"], leak_bytes, err * 100, n["outstanding"],
                      n["samples"], n["cost_s"], n["probe_hits"]))
            if (top["function"], top["line"]) != (truth["function"], truth["line"]):
                failures.append("%s: top stack %s:%s, not %s:%s (%s)" % (
                    name, top["function"], top["line"], truth["function"], truth["line"],
                    json.dumps(n["top"])))
            if abs(err) > TOLERANCE:
                failures.append("%s: estimate %d vs %d leaked (%+.1f%%)" % (
                    name, leak_bytes, truth["leaked"], err * 100))
            # Freed churn leaves nothing outstanding (a block in flight at the end at most).
            if sum(s["bytes"] for s in churn_rows) > 2 * SAMPLE_BYTES:
                failures.append("%s: freed churn counted: %s" % (name, json.dumps(churn_rows)))
            # Everything outstanding is the leak, give or take the interpreter's own blocks.
            if n["outstanding_bytes"] > truth["leaked"] * (1 + TOLERANCE) + 4 * SAMPLE_BYTES:
                failures.append("%s: %d bytes outstanding for %d leaked" % (
                    name, n["outstanding_bytes"], truth["leaked"]))
        assert not failures, "\n".join(failures)
        # The text names each target's native bytes and the line holding them.
        code, out, err = d.ctl("status")
        assert code == 0, err
        for _, t in targets:
            line = next((l for l in out.splitlines() if l.startswith("pid %d native:" % t.pid)), "")
            assert "outstanding" in line and "most at leak_one (" in line, out
        for _, t in targets:
            d.ok("detach", "-p", str(t.pid))


def test_sampled_mode_has_no_native_probes(native_daemon, target_factory):
    """Byte sampling is precise mode's: a sampled target pays nothing for it."""
    d = native_daemon
    py = next((py for _, py in all_interpreters() if _installed(py)), None)
    if not py:
        pytest.skip("no interpreter installed")
    t = target_factory([py, PROGRAM, "100"])
    assert t.read()["ready"]
    d.ok("attach", "-p", str(t.pid), "--mode", "sampled")
    st = native_of(d, t.pid)
    assert "native_alloc" not in st, st
    d.ok("detach", "-p", str(t.pid))
