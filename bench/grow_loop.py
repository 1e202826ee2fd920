#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""A heap growing as fast as the interpreter can grow it: each call keeps one more dict (a
fresh 4 KiB page every ~20 calls, a stack walk of the page sampler each until its budget
thins them). Waits for a line on stdin, runs, prints {"seconds", "cpu_s", "iterations"},
exits at the next line."""
import workload


def handle(i, kept):
    kept.append({"i": i})


if __name__ == "__main__":
    workload.run(handle, [], default=2000000)
