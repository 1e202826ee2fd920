# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Acceptance (always-on mode): the leak tests pass in sampled mode, where no per-object probe
runs: counts come from a heap census, sites from one stack per fresh heap page.

All interpreters at once, each with the wordsegment leak, its fixed twin and the cipher leak
with the GC disabled: within 240 s of attach `leaks` ranks str first for the leak (its sites
name load(), and the list holding them is grown by its append), StreamCrypto among the first three for the cipher, and nothing for the twin;
`top` shows str growing by 178,758 per task (within 1%).  They all run in one daemon, started
once by a module fixture; each interpreter's findings are checked by its own test, and a missing
interpreter is a skip of its test.
"""
import os
import time

import pytest

from conftest import (SCENARIOS, installed_interpreters, interpreters, require, started_targets,
                      top_counts)

WORDSEG = os.path.join(SCENARIOS, "wordsegment_leak.py")
CIPHER = os.path.join(SCENARIOS, "cipher_cycle_leak.py")
WORDS = 178758
DEADLINE = 240
KINDS = ("str", "append", "cipher")


@pytest.fixture(scope="module")
def sampled_runs(daemon):
    """Every installed interpreter at once, attached in sampled mode, watched until each has
    shown all KINDS or DEADLINE passed: {path: (id, leak, fixed, base, found)}, found being
    {kind: (seconds after attach, what)}; the targets run on until the module ends."""
    with started_targets() as make:
        runs = []
        for name, python in installed_interpreters():
            leak = make([python, WORDSEG, "--seconds", "0", "--interval", "3"])
            fixed = make([python, WORDSEG, "--seconds", "0", "--interval", "3", "--fixed"])
            cipher = make([python, CIPHER, "--seconds", "0", "--rate", "200", "--gc-disabled"])
            runs.append((name, python, leak, fixed, cipher))
        for _, _, leak, fixed, cipher in runs:
            for t in (leak, fixed, cipher):
                t.read()
                doc = daemon.ok("attach", "-p", str(t.pid), "--mode", "sampled")
                assert doc["mode"] == "sampled"
        attached = time.time()
        base = {}
        for _, _, leak, _, _ in runs:
            task = leak.latest()["task"]
            base[leak] = (top_counts(daemon, leak.pid)[0].get("str", 0), task)

        found = {name: {} for name, _, _, _, _ in runs}
        while (time.time() - attached < DEADLINE and
               sum(len(f) for f in found.values()) < len(KINDS) * len(runs)):
            time.sleep(5)
            for name, _, leak, _, cipher in runs:
                f = found[name]
                if "str" not in f or "append" not in f:
                    s = daemon.ok("leaks", "-p", str(leak.pid), "--window", "60")["suspects"]
                    if s and s[0]["type"] == "str" and s[0]["score"] >= 0.5 and s[0]["sites"]:
                        f.setdefault("str", (time.time() - attached, s[0]))
                    # Where the holding list grows: its item array's pages are sampled at the
                    # governor's rate (1 page in up to 512 here), so this may take a few tasks.
                    at = s and s[0].get("held_by", {}).get("grown_at")
                    if at and "append" not in f:
                        f["append"] = (time.time() - attached, at)
                if "cipher" not in f:
                    s = daemon.ok("leaks", "-p", str(cipher.pid), "--window", "60")["suspects"]
                    top = [x["type"] for x in s if x["score"] >= 0.5][:3]
                    if "StreamCrypto" in top:
                        f["cipher"] = (time.time() - attached, top)
        yield {python: (name, leak, fixed, base[leak], found[name])
               for name, python, leak, fixed, _ in runs}


@pytest.mark.parametrize("python", interpreters())
def test_sampled_mode_finds_leaks(daemon, sampled_runs, python):
    name, leak, fixed, base, found = sampled_runs[require(python)]
    for kind, (dt, what) in sorted(found.items()):
        print("%s %s: found after %.0f s" % (name, kind, dt))
    missing = [k for k in KINDS if k not in found]
    assert not missing, "%s: not found within %d s in sampled mode: %s" % (name, DEADLINE, missing)

    failures = []
    src = open(WORDSEG).read().splitlines()
    append = next(i + 1 for i, l in enumerate(src) if "self.words.append(" in l)
    site = found["str"][1]["sites"][0]
    if site["function"] != "load" or not site["file"].endswith("wordsegment_leak.py"):
        failures.append("%s: str site %s" % (name, site))
    at = found["append"][1]
    if (at["function"], at["line"]) != ("load", append):
        failures.append("%s: the words' list grown at %s, not load():%d" % (name, at, append))
    tasks = leak.latest()["task"] - base[1]
    grown = top_counts(daemon, leak.pid)[0].get("str", 0) - base[0]
    # Either census may have caught a task in progress: one task either way.
    if not ((tasks - 1) * WORDS * 0.99 <= grown <= (tasks + 1) * WORDS * 1.01):
        failures.append("%s: str grew %d over %d tasks" % (name, grown, tasks))
    s = daemon.ok("leaks", "-p", str(fixed.pid), "--window", "60")["suspects"]
    if [x for x in s if x["score"] >= 0.5]:
        failures.append("%s: fixed twin has suspects %s" % (name, s))
    assert not failures, "\n".join(failures)
