#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Pools initialised at a high rate: each call makes 3,000 objects of ~300 bytes and drops
them at once, so their pymalloc pools empty and are initialised again at the next call (one
initialisation per ~30 allocations: a trap of the pool sampler each, until its budget removes
it). Waits for a line on stdin, runs, prints {"seconds", "cpu_s", "iterations"}, exits at the
next line."""
import workload


def handle(i, state):
    batch = [bytes(300) + bytes([j & 255]) for j in range(3000)]
    del batch


if __name__ == "__main__":
    workload.run(handle, None, default=1000)
