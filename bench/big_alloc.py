#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""A loop of allocations over pymalloc's 512-byte limit, which go to libc's malloc: per
iteration a 2 KiB bytes, a 1,000-character str, a 100-item list and a 40-key dict, dropped at
once (a parser or a serializer's buffers). Same protocol as alloc_loop.py: waits for a line on
stdin, runs, prints {"seconds", "cpu_s", "iterations"}, exits at the next line."""
import json
import sys
import time


def handle(i):
    buf = b"x" * (2048 + i % 64)
    text = "y" * (1000 + i % 32)
    items = list(range(100 + i % 8))
    table = {k: k for k in range(40)}
    return len(buf) + len(text) + len(items) + len(table)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    sys.stdin.readline()
    t0, c0 = time.perf_counter(), time.process_time()
    total = 0
    for i in range(n):
        total += handle(i)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": dt, "cpu_s": dc, "iterations": n}))
    sys.stdout.flush()
    sys.stdin.readline()


if __name__ == "__main__":
    main()
