#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Holds many small objects: N/2 distinct str and N/2 1-tuples (each holding one of the strs).
Waits for a line on stdin (time to attach), builds them, prints {"build_s": seconds,
"objects": N}, holds them until the next line (or EOF), and exits.
Usage: hold_objects.py [N]   (default 10,000,000)
"""
import json
import sys
import time


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    sys.stdin.readline()
    t0 = time.perf_counter()
    strs = [str(i) for i in range(n // 2)]
    tuples = [(s,) for s in strs]
    dt = time.perf_counter() - t0
    print(json.dumps({"build_s": dt, "objects": len(strs) + len(tuples)}))
    sys.stdout.flush()
    sys.stdin.readline()


if __name__ == "__main__":
    main()
