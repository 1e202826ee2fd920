"""Acceptance: live counts per type follow a program that creates and frees known objects."""
import os

import pytest

from conftest import PROGRAMS, interpreters, require, top_counts

PROGRAM = os.path.join(PROGRAMS, "known_counts.py")
# Class instances are counted exactly; the rest within 1% of the number created.
EXACT = {"Foo", "Bar"}
TOLERANCE = 0.01


def check(phase, base, now, expected, kinds):
    errors = []
    for kind in kinds:
        want = expected[kind]
        got = now.get(kind, 0) - base.get(kind, 0)
        slack = 0 if kind in EXACT else max(1, int(TOLERANCE * expected_created[kind]))
        if abs(got - want) > slack:
            errors.append("%s: %s %+d, want %+d (±%d)" % (phase, kind, got, want, slack))
    return errors


expected_created = {}


@pytest.mark.parametrize("python", interpreters())
def test_known_counts(daemon, target_factory, python):
    python = require(python)
    t = target_factory([python, PROGRAM])
    ready = t.read()
    pid = ready["pid"]
    attach = daemon.ok("attach", "-p", str(pid))
    assert attach["pid"] == pid and attach["attached"] is True
    base, doc = top_counts(daemon, pid)
    assert doc["pid"] == pid and doc["mode"] == "precise"

    created = t.send("create")["held"]
    expected_created.clear()
    expected_created.update(created)
    kinds = sorted(created)
    now, doc = top_counts(daemon, pid)
    errors = check("create", base, now, created, kinds)

    half = t.send("half")["held"]
    now, _ = top_counts(daemon, pid)
    errors += check("half", base, now, half, kinds)

    none = t.send("all")["held"]
    assert not any(none.values())
    now, doc = top_counts(daemon, pid)
    errors += check("all", base, now, none, kinds)
    assert not errors, "%s:\n%s\nlast top: %s" % (python, "\n".join(errors), doc)
