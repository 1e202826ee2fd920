#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Writes fuzzer seeds from the running interpreter's own memory (through ctypes): pymalloc
pools, type objects, code objects with their names and line tables, as pyleakd copies them.
Run with each interpreter: python3.X tests/fuzz/make_seeds.py tests/fuzz/corpus
"""
import ctypes
import os
import struct
import sys

V = sys.version_info[:2]
TAG = "%d%d" % V
OUT = sys.argv[1]
POOL_SIZE = 4096 if V < (3, 10) else 16384


def mem(addr, n):
    return ctypes.string_at(addr, n)


def put(name, i, data):
    os.makedirs(os.path.join(OUT, name), exist_ok=True)
    with open(os.path.join(OUT, name, "%s-%d" % (TAG, i)), "wb") as f:
        f.write(data)


class Sample:
    def __init__(self):
        self.x = 1


def sample(n=2):
    """A function whose line table spans a few lines."""
    total = 0
    for i in range(n):
        total += i
    return [Sample() for _ in range(total + 100)]


held = sample()
for i, obj in enumerate((held[50], "a str of some length", 1.5)):
    put("census_pool", i, bytes([1 if POOL_SIZE == 4096 else 0]) +
        mem(id(obj) & ~(POOL_SIZE - 1), POOL_SIZE))
for i, t in enumerate((Sample, int, type, list)):
    put("census_type", i, mem(id(t), 296))

code = sample.__code__
table = code.co_lnotab if V < (3, 10) else code.co_linetable
fmt = 0 if V < (3, 10) else 1 if V == (3, 10) else 2
for i, offset in enumerate((0, 8, 20)):
    put("linetable", i, struct.pack("<BIi", fmt, offset, code.co_firstlineno) + table)


def part(b):
    return struct.pack("<H", len(b)) + b


for i, (c, offset) in enumerate(((code, 8), (sample.__code__.co_consts[0].__code__
                                             if hasattr(sample.__code__.co_consts[0], "__code__")
                                             else code, 0))):
    t = c.co_lnotab if V < (3, 10) else c.co_linetable
    put("code_object", i, bytes([V[1] - 8]) + struct.pack("<I", offset) +
        part(mem(id(c), 256)) + part(mem(id(c.co_name), sys.getsizeof(c.co_name))) +
        part(mem(id(c.co_filename), sys.getsizeof(c.co_filename))) +
        part(mem(id(t), sys.getsizeof(t))))
