#!/usr/bin/env python3
"""Allocates instances of one class from known functions, for tests/test_export.py.

Prints {"phase": "ready", "pid": N, "held": {...}} and then reads commands on stdin: "create"
makes FROM_ALPHA Foo objects in alpha() and FROM_BETA in beta(), both called by build(), and
holds them; "exit" ends. After each command it prints one JSON line with what it holds.
Plain loops (no comprehension) keep each allocating frame the named function on 3.8-3.13.
"""
import json
import os
import sys

FROM_ALPHA = 60000
FROM_BETA = 20000


class Foo:
    pass


held = []


def alpha(out, n):
    for _ in range(n):
        out.append(Foo())


def beta(out, n):
    for _ in range(n):
        out.append(Foo())


def build():
    alpha(held, FROM_ALPHA)
    beta(held, FROM_BETA)


def report(phase):
    print(json.dumps({"phase": phase, "pid": os.getpid(), "held": {"Foo": len(held)}}))
    sys.stdout.flush()


def main():
    report("ready")
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "create":
            build()
        elif cmd == "exit":
            return
        report(cmd)


if __name__ == "__main__":
    main()
