"""Acceptance: the wordsegment leak shows as str growing by 178,758 per task; --fixed is flat."""
import os

import pytest

from conftest import SCENARIOS, interpreters, require, top_counts

SCENARIO = os.path.join(SCENARIOS, "wordsegment_leak.py")
WORDS = 178758
TASKS = 3


def run(daemon, target_factory, python, fixed):
    if not os.path.exists(SCENARIO):
        pytest.skip("scenario missing: %s" % SCENARIO)
    argv = [python, SCENARIO, "--seconds", "0", "--interval", "2.0"]
    if fixed:
        argv.append("--fixed")
    t = target_factory(argv)
    # Attach after task 1, in the 2 s pause before task 2: building the word file at start-up
    # is not what is measured, and would only slow the test down under probes.
    first = t.read()
    daemon.ok("attach", "-p", str(t.pid))
    base, _ = top_counts(daemon, t.pid)
    for _ in range(TASKS):
        last = t.read()
    now, doc = top_counts(daemon, t.pid)
    tasks = last["task"] - first["task"]
    return now.get("str", 0) - base.get("str", 0), tasks, last, doc


@pytest.mark.parametrize("python", interpreters())
def test_wordsegment_leak_grows(daemon, target_factory, python):
    python = require(python)
    grown, tasks, last, doc = run(daemon, target_factory, python, fixed=False)
    want = tasks * WORDS
    assert abs(grown - want) <= 0.01 * want, "str grew %d over %d tasks, want %d: %s" % (
        grown, tasks, want, doc)
    assert last["words"] == last["task"] * WORDS


@pytest.mark.parametrize("python", interpreters())
def test_wordsegment_fixed_is_flat(daemon, target_factory, python):
    python = require(python)
    grown, tasks, _, doc = run(daemon, target_factory, python, fixed=True)
    assert tasks == TASKS
    assert abs(grown) <= 0.01 * WORDS, "str changed by %d over %d tasks with --fixed: %s" % (
        grown, tasks, doc)
