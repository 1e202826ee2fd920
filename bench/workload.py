# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""The protocol of the bench's loop workloads: wait for a line on stdin (time to attach), call
handle(i, state) for i in range(N) (N from argv[1], else default), print {"seconds": loop
time, "cpu_s": its CPU time, "iterations": N}, exit at the next line (or EOF)."""
import json
import sys
import time


def run(handle, state, default=200000):
    n = int(sys.argv[1]) if len(sys.argv) > 1 else default
    sys.stdin.readline()
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        handle(i, state)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": dt, "cpu_s": dc, "iterations": n}))
    sys.stdout.flush()
    sys.stdin.readline()
