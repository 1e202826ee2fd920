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
    argv = [python, SCENARIO, "--seconds", "0", "--interval", "2.0", "--warmup", "1.5"]
    if fixed:
        argv.append("--fixed")
    t = target_factory(argv)
    # --warmup leaves time to attach before the first task; the first report follows task 1.
    import time
    deadline = time.time() + 30
    pid = t.pid
    while True:
        code, doc = daemon.json("attach", "-p", str(pid))
        if code == 0 or time.time() > deadline:
            break
        time.sleep(0.1)  # the interpreter may still be starting up
    assert code == 0, doc
    first = t.read()
    base, _ = top_counts(daemon, pid)
    for _ in range(TASKS):
        last = t.read()
    now, doc = top_counts(daemon, pid)
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
