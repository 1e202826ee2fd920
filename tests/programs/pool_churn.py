#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Allocation patterns that would make sampled mode's probes costly without their budgets.

Commands on stdin, one JSON line back for each (the first line, before any, is {"pid"}):
  churn SECONDS  fill and empty pymalloc pools for that long: 3,000 objects of ~300 bytes are
                 made and dropped at once, so their pools are initialised again each round
                 (one pool initialisation per ~30 allocations)
  grow N         keep N more dicts, made as fast as the interpreter can (a fresh page of
                 heap every ~20 of them)
  faults         make and drop 64 MiB buffers (16,384 fresh pages each, written) until the
                 next line arrives (say "stop"): faults faster than the page sampler's least
                 rate pays for
  exit
Replies: {"rounds": R, "seconds": S} for churn, {"kept": total dicts kept} for grow,
{"buffers": B, "ready": true} at once for faults, then {"buffers": B} after its stop.
Works on Python 3.8+.
"""
import json
import os
import select
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


def faults():
    """Until stdin has a line: mapped anew each time (over glibc's largest mmap threshold)."""
    print(json.dumps({"buffers": 0, "ready": True}), flush=True)
    buffers = 0
    while not select.select([sys.stdin], [], [], 0)[0]:
        buf = b"x" * (64 << 20)
        del buf
        buffers += 1
    sys.stdin.readline()
    return {"buffers": buffers}


def main():
    print(json.dumps({"pid": os.getpid()}), flush=True)
    while True:
        cmd = sys.stdin.readline().split()
        if not cmd or cmd[0] == "exit":
            break
        if cmd[0] == "faults":
            doc = faults()
        else:
            doc = churn(float(cmd[1])) if cmd[0] == "churn" else grow(int(cmd[1]))
        print(json.dumps(doc), flush=True)


if __name__ == "__main__":
    main()
