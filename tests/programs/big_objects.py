#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Keeps objects too big for pymalloc (over 512 bytes), amid a churn of the same kinds that die.

Each "request" keeps KEEP of each kind: 4 KiB bytes, 2,000-character str and 100-item tuples
(held in lists inside a dict), and makes CHURN of each kind that die at once. One line on
stdin runs that many requests ("10"), "exit" ends. After each line it prints one JSON line
with how many of each kind it keeps, so a test can compare pyleak's counts with the truth.
The first line, before any request and after a collection, is the baseline: zero kept. Works on Python 3.8+.
"""
import gc
import json
import os
import sys

KEEP = 20
CHURN = 50
held = {"bytes": [], "str": [], "tuple": []}
serial = [0]


def make(kind):
    # Distinct contents: no interning, no constant folding shares one object.
    serial[0] += 1
    n = serial[0]
    if kind == "bytes":
        return n.to_bytes(8, "little") * 512
    if kind == "str":
        return ("%08d" % n) * 250
    return (n,) * 100


def request():
    for kind in held:
        held[kind].extend(make(kind) for _ in range(KEEP))
        garbage = [make(kind) for _ in range(CHURN)]
        del garbage


def report():
    print(json.dumps({"pid": os.getpid(), "kept": {k: len(v) for k, v in held.items()}}),
          flush=True)


def main():
    # Startup's cyclic garbage (code objects with big bytes and str among it) would otherwise
    # die in a later collection and blur the baseline.
    gc.collect()
    report()
    for line in sys.stdin:
        line = line.strip()
        if line == "exit":
            break
        for _ in range(int(line)):
            request()
        report()


if __name__ == "__main__":
    main()
