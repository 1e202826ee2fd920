#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Allocation patterns that would make sampled mode's probes costly without their budgets.

Commands on stdin, one JSON line back for each (the first line, before any, is {"pid"}):
  churn SECONDS  fill and empty pymalloc pools for that long: 3,000 objects of ~300 bytes are
                 made and dropped at once, so their pools are initialised again each round
                 (one pool initialisation per ~30 allocations)
  grow N         keep N more dicts, made as fast as the interpreter can (a fresh page of
                 heap every ~20 of them)
  exit
Replies: {"rounds": R, "seconds": S} for churn, {"kept": total dicts kept} for grow.
Works on Python 3.8+.
"""
import json
import os
import sys
import time

kept = []


def churn(seconds):
    rounds = 0
    end = time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        batch = [bytes(300) + bytes([i & 255]) for i in range(3000)]
        del batch
        rounds += 1
    return {"rounds": rounds, "seconds": time.perf_counter() - t0}


def grow(n):
    kept.extend({"i": i} for i in range(n))
    return {"kept": len(kept)}


def main():
    print(json.dumps({"pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "exit":
            break
        doc = churn(float(cmd[1])) if cmd[0] == "churn" else grow(int(cmd[1]))
        print(json.dumps(doc), flush=True)


if __name__ == "__main__":
    main()
