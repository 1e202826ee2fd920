# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Retention paths (`pyleakctl path`), from the daemon's out-of-process reference walk, on every
interpreter and in both modes.

wordsegment_leak.py: the first path of str is main()'s local `seg` (the Segmenter) → .words
(the list) → str, and counts the list's items: at least the words the target reported before
the request (the list only grows; 1% slack for items read while the array moved), at most
those it reported after it plus one task.
cipher_cycle_leak.py --gc-disabled: StreamCrypto objects live, most reached from no root:
`unreachable` (kept only by their cycles), as many as the target made (sampled mode; precise
mode counts those born since attach); --fixed: no StreamCrypto at all, nothing to report.
slots_holder.py: a list in a __slots__ attribute, named as one.
holders_more.py: a deque's items, a suspended generator's local, a kept frame object's local.
handler_closures.py: Request objects held by closures' cells in a class attribute's list: the
path names the class, the attribute, the closure cell, and counts every request made; what
the Requests dominate (`retains`, from the dominators of the graph below them): their dicts,
str and bytearray, one each per request, the bytearray's buffer counted.
`leaks`: its first suspect carries the first path once the walk is complete, and without a
list holding its growth, `held_by` names the container at the end of the path (dict_cache.py:
a module dict's values).
"""
import os
import time

import pytest

from conftest import PROGRAMS, SCENARIOS, any_python, interpreters, require

WORDSEG = os.path.join(SCENARIOS, "wordsegment_leak.py")
CIPHER = os.path.join(SCENARIOS, "cipher_cycle_leak.py")
MODES = ["sampled", "precise"]


def python_minor(python):
    return int(os.path.basename(python)[len("python3."):])


def attach(daemon, pid, mode):
    args = ["attach", "-p", str(pid), "--mode", mode] + (["--force"] if mode == "precise" else [])
    daemon.ok(*args)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("python", interpreters())
def test_wordsegment_path(daemon, target_factory, python, mode):
    python = require(python)
    if not os.path.exists(WORDSEG):
        pytest.skip("scenario missing: %s" % WORDSEG)
    t = target_factory([python, WORDSEG, "--seconds", "0", "--interval", "1"])
    t.read()
    attach(daemon, t.pid, mode)
    before = t.latest()["words"]
    doc = daemon.ok("path", "-p", str(t.pid), "--type", "str")
    after = t.latest()["words"]
    assert doc["pid"] == t.pid and doc["type"] == "str" and doc["walk"]["complete"], doc["walk"]
    assert doc["unreachable"] is False
    first = doc["paths"][0]
    assert first["root"] == "wordsegment_leak.main() local seg", first
    assert first["root_kind"] == "local"
    steps = first["steps"]
    assert [(s["kind"], s.get("name"), s["type"]) for s in steps[:1]] == [
        ("attribute", "words", "list")], steps
    assert len(steps) == 2 and steps[1]["kind"] == "item" and steps[1]["type"] == "str", steps
    assert before * 0.99 <= first["objects"] <= after + 178758, (before, first["objects"], after)
    assert steps[0]["length"] >= before, (steps[0], before)
    assert first["text"].startswith("wordsegment_leak.main() local seg (Segmenter) → .words (list, ")
    assert first["text"].endswith(" items) → str"), first["text"]
    # The human form: a line per path, the same text.
    code, out, err = daemon.ctl("path", "-p", str(t.pid), "--type", "str")
    assert code == 0, err
    assert "wordsegment_leak.main() local seg (Segmenter) → .words (list, " in out, out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("python", interpreters())
def test_cipher_cycles_unreachable(daemon, target_factory, python, mode):
    python = require(python)
    if not os.path.exists(CIPHER):
        pytest.skip("scenario missing: %s" % CIPHER)
    leak = target_factory([python, CIPHER, "--seconds", "0", "--rate", "1000", "--gc-disabled"])
    fixed = target_factory([python, CIPHER, "--seconds", "0", "--rate", "1000", "--fixed"])
    for t in (leak, fixed):
        t.read()
        attach(daemon, t.pid, mode)
    made = leak.latest()["connections"] * 2    # two StreamCrypto per connection, none freed
    doc = daemon.ok("path", "-p", str(leak.pid), "--type", "StreamCrypto")
    assert doc["walk"]["complete"], doc["walk"]
    assert doc["unreachable"] is True, doc
    # Sampled mode counts every live object (census); precise mode those born since attach.
    assert doc["unreachable_objects"] >= (made * 0.9 if mode == "sampled" else 200), (made, doc)
    # Objects being made may be in a frame's locals as the walk passes: a few, never the cycles.
    assert sum(p["objects"] for p in doc["paths"]) <= 10, doc["paths"]
    # What the cycles keep: the owners are the StreamCrypto objects on the GC lists (every one
    # made, whatever the mode); each retains its two bound methods (self.encrypt, self.decrypt)
    # and, before 3.11, its __dict__; ones being made as the walk passes may lack some.
    assert doc["owners"] >= made * 0.9, (made, doc["owners"])
    retains = {r["type"]: r for r in doc["retains"]}
    assert 1.95 <= retains["method"]["per_owner"] <= 2, doc["retains"]
    if python_minor(python) < 11:
        assert 0.97 <= retains["dict"]["per_owner"] <= 1, doc["retains"]
    assert doc["retained_graph"]["owners"] == min(doc["owners"], 4096) or \
        2048 <= doc["retained_graph"]["owners"] <= 4096, doc["retained_graph"]
    code, out, err = daemon.ctl("path", "-p", str(leak.pid), "--type", "StreamCrypto")
    assert code == 0 and "kept only by a reference cycle" in out, (out, err)
    if mode == "sampled":
        cipher_leaks_folded(daemon, leak.pid, python)

    doc = daemon.ok("path", "-p", str(fixed.pid), "--type", "StreamCrypto")
    assert doc["walk"]["complete"] and doc["paths"] == [] and doc["unreachable"] is False, doc


def cipher_leaks_folded(daemon, pid, python):
    """`leaks` on the cipher cycles: one leak led by StreamCrypto, unreachable, its bound
    methods (2 per owner) folded under its `retains` instead of ranked on their own."""
    deadline = time.time() + 300
    while True:
        doc = daemon.ok("leaks", "-p", str(pid), "--window", "30")
        first = doc["suspects"][0] if doc["suspects"] else {}
        retains = {r["type"]: r for r in first.get("retains", [])}
        if first.get("type") == "StreamCrypto" and "suspect" in retains.get("method", {}) or \
                time.time() > deadline:
            break
        time.sleep(0.5)
    assert first.get("type") == "StreamCrypto" and first["path"]["unreachable"] is True, doc
    assert 1.95 <= retains["method"]["per_owner"] <= 2, first["retains"]
    assert retains["method"]["suspect"]["retained_by"] == "StreamCrypto", retains["method"]
    if python_minor(python) < 11:
        assert 0.97 <= retains["dict"]["per_owner"] <= 1, first["retains"]
    ranked = [s["type"] for s in doc["suspects"]]
    for r in first["retains"]:
        if "suspect" in r:
            assert r["type"] not in ranked, (r, ranked)
    assert "method" not in ranked, ranked


def leaks_first_with_path(daemon, pid, type_name):
    """leaks' first suspect once it is type_name and carries a path (within 300 s: each
    reply walks 0.05 s more of the heap)."""
    deadline = time.time() + 300
    while True:
        doc = daemon.ok("leaks", "-p", str(pid), "--window", "30")
        first = doc["suspects"][0] if doc["suspects"] else {}
        if first.get("type") == type_name and "path" in first or time.time() > deadline:
            break
        time.sleep(0.5)
    assert first.get("type") == type_name and "path" in first, doc
    return first


def test_leaks_suspect_path(daemon, target_factory):
    """`leaks`: the first suspect (str, growing) carries the first path of the walk."""
    python = any_python()
    if not os.path.exists(WORDSEG):
        pytest.skip("scenario missing: %s" % WORDSEG)
    t = target_factory([python, WORDSEG, "--seconds", "0", "--interval", "1"])
    t.read()
    attach(daemon, t.pid, "sampled")
    first = leaks_first_with_path(daemon, t.pid, "str")
    assert first["path"]["root"] == "wordsegment_leak.main() local seg", first["path"]
    assert first["path"]["steps"][0]["name"] == "words", first["path"]


@pytest.mark.parametrize("python", interpreters())
def test_closure_in_class_attribute(daemon, target_factory, python):
    """tests/programs/handler_closures.py: each Request is held by a closure's cell, the
    closure by a list in a class attribute of Handler; the path says so, counting them all."""
    python = require(python)
    t = target_factory([python, os.path.join(PROGRAMS, "handler_closures.py")])
    t.read()
    attach(daemon, t.pid, "sampled")
    before = t.latest()["requests"]
    doc = daemon.ok("path", "-p", str(t.pid), "--type", "Request")
    after = t.latest()["requests"]
    first = doc["paths"][0]
    assert first["root"] == "__main__.Handler" and first["root_kind"] == "global", first
    assert [(s["kind"], s["name"], s["type"]) for s in first["steps"]] == [
        ("attribute", "callbacks", "list"), ("item", first["steps"][1]["name"], "function"),
        ("closure", "req", "cell"), ("cell", "cell_contents", "Request")], first
    assert before <= first["objects"] <= after + 1000, (before, first["objects"], after)
    assert first["text"].startswith("__main__.Handler (type) → .callbacks (list, "), first["text"]
    # The cell is named by the closure's free variable (the code object's co_freevars).
    assert first["text"].endswith(" → [...] (function) → closure var req (Request)"), first["text"]
    # What each Request holds alone: its headers dict (and, before 3.11, its __dict__), the
    # str in it, its bytearray; requests being made as the walk passes may lack some.
    retains = {r["type"]: r for r in doc["retains"]}
    dicts = 1 if python_minor(python) >= 11 else 2
    assert abs(retains["dict"]["per_owner"] - dicts) < 0.01, doc["retains"]
    assert abs(retains["bytearray"]["per_owner"] - 1) < 0.01, doc["retains"]
    assert abs(retains["str"]["per_owner"] - 1) < 0.01, doc["retains"]
    # A bytearray(64): its 56-byte object and its 65-byte buffer (ob_alloc), read by layout.
    assert 120 <= retains["bytearray"]["bytes_per_owner"] <= 121, doc["retains"]
    per_owner = sum(r["bytes_per_owner"] for r in doc["retains"])
    assert doc["owners"] == first["objects"]
    assert doc["retained_bytes"] >= doc["owners"] * (per_owner + 32), doc
    # The dominators covered the graph below the requests: nothing opaque, no bound hit.
    assert doc["retained_covered"] is True, doc
    assert doc["retained_graph"]["objects"] >= doc["retained_graph"]["owners"] * 4, doc


def test_leaks_held_by_dict(daemon, target_factory):
    """tests/programs/dict_cache.py: Session objects pile up as a module dict's values; `leaks`
    names the dict value as what holds them, from the path, and the human form prints it."""
    t = target_factory([any_python(), os.path.join(PROGRAMS, "dict_cache.py")])
    t.read()
    attach(daemon, t.pid, "sampled")
    first = leaks_first_with_path(daemon, t.pid, "Session")
    assert first["path"]["root"] == "__main__.CACHE" and first["path"]["root_type"] == "dict"
    assert [s["kind"] for s in first["path"]["steps"]] == ["value"], first["path"]
    held = first["held_by"]
    assert held["container"] == "dict value" and held["type"] == "dict", held
    assert held["length"] >= first["path"]["objects"] > 0, (held, first["path"])
    code, out, err = daemon.ctl("leaks", "-p", str(t.pid), "--window", "30")
    assert code == 0 and "kept by __main__.CACHE (dict, " in out, (out, err)


@pytest.mark.parametrize("python", interpreters())
def test_slots(daemon, target_factory, python):
    """tests/programs/slots_holder.py: a list in a __slots__ attribute holds 5,000 Payloads."""
    python = require(python)
    t = target_factory([python, os.path.join(PROGRAMS, "slots_holder.py")])
    n = t.read()["payloads"]
    attach(daemon, t.pid, "sampled")
    doc = daemon.ok("path", "-p", str(t.pid), "--type", "Payload")
    first = doc["paths"][0]
    assert first["objects"] == n and first["root"] == "__main__.REGISTRY", first
    assert [(s["kind"], s["name"], s["type"]) for s in first["steps"]] == [
        ("attribute", "entries", "list"), ("item", "[0]", "Payload")], first
    assert first["text"] == "__main__.REGISTRY (Registry) → .entries (list, 5,000 items) → Payload"


@pytest.mark.parametrize("python", interpreters())
def test_deque_generator_frame(daemon, target_factory, python):
    """tests/programs/holders_more.py: objects in a deque (read block by block), in a suspended
    generator's local and in a kept frame object's local, each counted exactly."""
    python = require(python)
    t = target_factory([python, os.path.join(PROGRAMS, "holders_more.py")])
    made = t.read()
    attach(daemon, t.pid, "sampled")
    want = {
        "Queued": ("__main__.QUEUE (deque, 3,000 items) → Queued", made["queued"]),
        "Pending": ("__main__.GEN (generator) → local pending (list, 1,500 items) → Pending",
                    made["pending"]),
        "Trapped": ("__main__.FRAME (frame) → local trapped (list, 700 items) → Trapped",
                    made["trapped"]),
    }
    for type_name, (text, n) in want.items():
        doc = daemon.ok("path", "-p", str(t.pid), "--type", type_name)
        first = doc["paths"][0]
        assert (first["text"], first["objects"]) == (text, n), doc
        assert doc["walk"]["complete"] and doc["unreachable"] is False, doc


def test_leaks_one_leak_per_root(daemon, target_factory):
    """handler_closures.py in `leaks`: one leak, led by the Request class, with its path, what
    each request retains and the bytes; its bytearrays, which grow with it, are folded into it
    (under its `retains`, marked retained by it), not ranked as a leak of their own."""
    t = target_factory([any_python(), os.path.join(PROGRAMS, "handler_closures.py")])
    t.read()
    attach(daemon, t.pid, "sampled")
    deadline = time.time() + 300
    while True:
        doc = daemon.ok("leaks", "-p", str(t.pid), "--window", "30")
        first = doc["suspects"][0] if doc["suspects"] else {}
        retains = {r["type"]: r for r in first.get("retains", [])}
        if first.get("type") == "Request" and "suspect" in retains.get("bytearray", {}) or \
                time.time() > deadline:
            break
        time.sleep(0.5)
    assert first.get("type") == "Request" and "path" in first, doc
    assert first["path"]["text"].startswith("__main__.Handler (type) → .callbacks (list, ")
    assert abs(retains["bytearray"]["per_owner"] - 1) < 0.01, first["retains"]
    assert first["retained_bytes"] > first["live"] * 100, first
    folded = retains["bytearray"]["suspect"]
    assert folded["type"] == "bytearray" and folded["retained_by"] == "Request", folded
    ranked = [s["type"] for s in doc["suspects"]]
    for r in first["retains"]:
        if "suspect" in r:
            assert r["type"] not in ranked, (r, ranked)
    code, out, err = daemon.ctl("leaks", "-p", str(t.pid), "--window", "30")
    assert code == 0 and "each retains " in out and "1 bytearray (" in out, (out, err)
    assert out.count("bytearray") == 1, out


def test_walk_in_background(daemon, target_factory):
    """The sampler walks each target's leading suspect in small slices by itself: with no
    `path` or `leaks` asked, status lists a complete walk of Session for dict_cache.py, and
    `leaks` then answers with the path from it, without walking further."""
    t = target_factory([any_python(), os.path.join(PROGRAMS, "dict_cache.py")])
    t.read()
    attach(daemon, t.pid, "sampled")
    deadline = time.time() + 400
    while True:
        status = daemon.ok("status")["path_walk"]
        mine = [w for w in status["walks"] if w["pid"] == t.pid]
        if mine and mine[0]["type"] == "Session" and mine[0]["complete"] or time.time() > deadline:
            break
        time.sleep(1)
    assert mine and mine[0]["type"] == "Session" and mine[0]["complete"], status
    assert status["tick_slices"] > 0 and status["memory_bytes"] <= status["memory_max"], status
    assert status["memory_drops"] == 0, status  # one walk, far under the cap
    assert 0 < mine[0]["memory_bytes"] <= status["memory_bytes"], status
    doc = daemon.ok("leaks", "-p", str(t.pid), "--window", "60")
    first = doc["suspects"][0]
    assert first["type"] == "Session" and first["path"]["root"] == "__main__.CACHE", first
    after = [w for w in daemon.ok("status")["path_walk"]["walks"] if w["pid"] == t.pid]
    assert after[0]["seconds"] == mine[0]["seconds"], (mine, after)
