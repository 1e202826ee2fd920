#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""A native-heavy loop: each call mallocs 4 KiB through ctypes and fills it (a fresh heap
page, what the page-fault sampler pays for), keeps the last 4096 blocks and frees the oldest,
so the heap grows for a while and then recycles. Waits for a line on stdin (time to attach),
runs, prints {"seconds": loop time, "cpu_s": its CPU time, "iterations": N}, and exits at the
next line (or EOF)."""
import ctypes
import workload

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

KEEP = 4096


def handle(i, ring):
    block = libc.malloc(4096)
    ctypes.memset(block, i & 0xff, 4096)
    old = ring[i % KEEP]
    if old:
        libc.free(old)
    ring[i % KEEP] = block


if __name__ == "__main__":
    workload.run(handle, [0] * KEEP)
