#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Holds INSTANCES objects of each of N classes (argv[1], default 1000) named T0000, T0001...,
and HOSTILE_INSTANCES of each of a few classes whose names a metrics text must escape (more,
so that they rank among a process's top types); then prints one JSON line and waits for stdin
to close. Works on Python 3.8+."""
import json
import sys

INSTANCES = 300
HOSTILE_INSTANCES = 5000
HOSTILE = ['we"ird', "back\\slash", "new\nline", "other"]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    counts = dict([("T%04d" % i, INSTANCES) for i in range(n)] +
                  [(name, HOSTILE_INSTANCES) for name in HOSTILE])
    held = []
    for name, count in counts.items():
        cls = type(name, (), {})
        held.append([cls() for _ in range(count)])
    print(json.dumps({"phase": "ready", "counts": counts}))
    sys.stdout.flush()
    sys.stdin.read()


if __name__ == "__main__":
    main()
