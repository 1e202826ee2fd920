#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Creates, holds and frees known numbers of objects, one phase per line read on stdin.

Phases: "create" (make and hold them), "half" (drop half of each kind), "all" (drop the
rest), "exit", "exec" (become `sleep 60`, for the exec-while-tracked test). After each phase it prints one JSON line with what it holds, so a test can
compare pyleak's counts with the truth. Works on Python 3.8+.
"""
import json
import os
import sys

COUNTS = {
    "Foo": 100000,
    "Bar": 30000,
    "Baz": 20000,
    "list": 50000,
    "dict": 30000,
    "tuple": 20000,
    "str": 200000,
    "float": 40000,
    "int": 60000,
    "bytes": 25000,
    "set": 10000,
}


class Foo:
    # No attributes: on 3.8-3.10 an attribute would add an instance dict per Foo.
    pass


class Baz:
    # An attribute: on 3.8-3.10 each Baz holds an instance dict (3.11+ keep it inline).
    def __init__(self):
        self.x = None


class Bar:
    __slots__ = ("a",)

    def __init__(self):
        self.a = None


held = {}


def create():
    n = COUNTS
    strs = ["s%d" % i for i in range(n["str"])]
    held["str"] = strs
    held["Foo"] = [Foo() for _ in range(n["Foo"])]
    held["Bar"] = [Bar() for _ in range(n["Bar"])]
    held["Baz"] = [Baz() for _ in range(n["Baz"])]
    held["list"] = [[None] for _ in range(n["list"])]
    held["dict"] = [{"a": None} for _ in range(n["dict"])]
    # From the end of strs: dropping the first half of strs must free exactly half.
    held["tuple"] = [(s, s) for s in strs[-n["tuple"]:]]
    held["float"] = [i + 0.5 for i in range(n["float"])]
    held["int"] = [i + 1000000 for i in range(n["int"])]
    held["bytes"] = [s.encode() for s in strs[:n["bytes"]]]
    held["set"] = [{None} for _ in range(n["set"])]


def drop(fraction):
    for kind, objs in held.items():
        del objs[:int(len(objs) * fraction)]


def report(phase):
    print(json.dumps({"phase": phase, "pid": os.getpid(),
                      "held": {k: len(v) for k, v in held.items()}}))
    sys.stdout.flush()


def main():
    report("ready")
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "create":
            create()
        elif cmd == "half":
            drop(0.5)
        elif cmd == "all":
            drop(1.0)
        elif cmd == "exit":
            return
        elif cmd == "exec":
            os.execv("/bin/sleep", ["sleep", "60"])
        report(cmd)


if __name__ == "__main__":
    main()
