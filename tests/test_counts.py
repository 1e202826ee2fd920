# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Acceptance: live counts per type follow a program that creates and frees known objects."""
import os

import pytest

from conftest import PROGRAMS, interpreters, require, top_counts

PROGRAM = os.path.join(PROGRAMS, "known_counts.py")
# Class instances are counted exactly; the rest within 1% of the number created.
EXACT = {"Foo", "Bar", "Baz"}
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


def with_instance_dicts(held, version):
    """What the program holds, counting each Baz's own __dict__ on 3.8-3.10."""
    want = dict(held)
    if version < (3, 11):
        want["dict"] += held["Baz"]
    return want


def instance_dicts(doc):
    """The census dict row's instance __dict__ count (None when probes count dicts)."""
    rows = [r for r in doc["types"] if r["type"] == "dict" and r["source"] == "census"]
    return rows[0].get("instance_dicts", 0) if rows else None


expected_created = {}


@pytest.mark.parametrize("python", interpreters())
def test_known_counts(daemon, target_factory, python):
    python = require(python)
    t = target_factory([python, PROGRAM])
    ready = t.read()
    pid = ready["pid"]
    # Precise mode, kept however much it costs: classes are counted exactly from attach on.
    attach = daemon.ok("attach", "-p", str(pid), "--mode", "precise", "--force")
    assert attach["pid"] == pid and attach["attached"] is True
    base, doc = top_counts(daemon, pid)
    assert doc["pid"] == pid and doc["mode"] == "precise"
    version = tuple(int(x) for x in doc["python"].split(".")[:2])
    base_dicts = instance_dicts(doc)

    created = with_instance_dicts(t.send("create")["held"], version)
    expected_created.clear()
    expected_created.update(created)
    kinds = sorted(created)
    now, doc = top_counts(daemon, pid)
    errors = check("create", base, now, created, kinds)
    # Where a census counts dicts, it tells the Baz __dict__s apart (leaks judges them with Baz);
    # within 1% of the Bazs created: on 3.11+ (none wanted) the interpreter's own objects'
    # dicts come and go (3.13: a few fewer after create).
    if base_dicts is not None:
        got, want = instance_dicts(doc) - base_dicts, created["Baz"] if version < (3, 11) else 0
        if abs(got - want) > max(1, TOLERANCE * created["Baz"]):
            errors.append("create: instance dicts %+d, want %+d" % (got, want))

    half = with_instance_dicts(t.send("half")["held"], version)
    now, _ = top_counts(daemon, pid)
    errors += check("half", base, now, half, kinds)

    none = t.send("all")["held"]
    assert not any(none.values())
    now, doc = top_counts(daemon, pid)
    errors += check("all", base, now, none, kinds)
    assert not errors, "%s:\n%s\nlast top: %s" % (python, "\n".join(errors), doc)


CHURN = os.path.join(PROGRAMS, "churn_hold.py")


@pytest.mark.parametrize("python", interpreters())
def test_churn_then_hold(daemon, target_factory, python):
    """Instances made and dropped before any is held: each birth counted has its death seen
    (a class's births count only while its deallocator is hooked, and that hook is placed at
    attach), so what stays alive is counted exactly, and its bytes are the births' sizes."""
    t = target_factory([require(python), CHURN])
    pid = t.read()["pid"]
    daemon.ok("attach", "-p", str(pid), "--mode", "precise", "--force")
    got = t.send("churn")
    doc = daemon.ok("top", "-p", str(pid), "-n", "100000")
    rows = {r["type"]: r for r in doc["types"] if r["source"] == "probes"}
    for name, held in got["held"].items():
        basic, item = got["size"][name]
        row = rows.get(name)
        assert row and row["live"] == held, (python, name, row, got)
        # every N was born with 4 digits (2**100 in 30-bit digits; its 15-bit builds: 7)
        digits = 4 if item == 4 else 7
        assert row["bytes"] == held * (basic + (item and digits * item)), (python, name, row, got)
        assert row["born"] > got["churned"][name], (python, name, row, got)
