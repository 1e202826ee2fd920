#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Fresh pages without pause: each call makes and drops a 64 MiB buffer (mapped anew, over
glibc's largest mmap threshold: 16,384 page faults, each running the page sampler, sampled or
not, until the governor pauses it; the first seconds of a run are over budget). Waits for a
line on stdin, runs, prints {"seconds", "cpu_s", "iterations"}, exits at the next line."""
import workload


def handle(i, state):
    buf = b"x" * (64 << 20)
    del buf


if __name__ == "__main__":
    workload.run(handle, None, default=400)
