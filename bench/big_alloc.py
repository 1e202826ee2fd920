#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""A loop of allocations over pymalloc's 512-byte limit, which go to libc's malloc: per
iteration a 2 KiB bytes, a 1,000-character str, a 100-item list and a 40-key dict, dropped at
once (a parser or a serializer's buffers). Same protocol as alloc_loop.py: waits for a line on
stdin, runs, prints {"seconds", "cpu_s", "iterations"}, exits at the next line."""
import workload


def handle(i, _state):
    buf = b"x" * (2048 + i % 64)
    text = "y" * (1000 + i % 32)
    items = list(range(100 + i % 8))
    table = {k: k for k in range(40)}
    return len(buf) + len(text) + len(items) + len(table)


if __name__ == "__main__":
    workload.run(handle, None)
