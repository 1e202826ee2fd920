#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""A target that lies to pyleakd: it corrupts, through ctypes, the memory pyleakd reads.

It makes N instances of class Victim (each with an attribute) and keeps them, with a list and
its own functions as allocation sites, then waits for commands on stdin, one per line; after
each it prints one JSON line. Commands (several may be given on one line, space-separated):

  dictoffset   Victim's tp_dictoffset = 0x7ffffffffffffff9 (the sum with an offset wraps)
  basicsize    Victim's tp_basicsize = -16, tp_itemsize = 2**62
  name_junk    Victim's tp_name -> an unmapped address
  name_bad     Victim's tp_name -> a name with invalid UTF-8 and control characters
  list         the held list's ob_size and allocated = 2**62 - 1 (ob_item unchanged)
  pool         the header of a full pool of Victims: count, freeblock, nextoffset out of range
  code         the allocating function's name and file name hold surrogates and control
               characters, and its line table is 1 MiB of junk
  linetable    the allocating function's line table object claims 2**62 bytes
  fake_types   FAKES forged type objects, and as many objects whose ob_type points at them
  alloc        allocates N more Victims from the allocating function (a fresh site)

Nothing it corrupts is used by the program afterwards (it only sleeps), so it keeps running.
"""
import ctypes
import json
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
FAKES = 20000
V = sys.version_info[:2]
POOL_SIZE = 4096 if V < (3, 10) else 16384

TP_NAME, TP_BASICSIZE, TP_ITEMSIZE, TP_FLAGS, TP_DICTOFFSET = 24, 32, 40, 168, 288
OB_SIZE, LIST_ALLOCATED = 16, 32
BYTES_DATA = 32


class Victim:
    def __init__(self):
        self.x = 1


def make_victims(n):
    return [Victim() for _ in range(n)]


held = make_victims(N)
keep = []  # whatever the corruptions point at stays alive


def word(addr, value=None):
    w = ctypes.c_ssize_t.from_address(addr)
    if value is not None:
        w.value = value
    return w.value


def field_offset(obj, target, limit=256):
    """Offset of the pointer to target inside obj (a code object's fields)."""
    for off in range(16, limit, 8):
        if ctypes.c_size_t.from_address(id(obj) + off).value == id(target):
            return off
    raise LookupError("field not found")


def table_attr():
    return "co_lnotab" if V < (3, 10) else "co_linetable"


def corrupt(what):
    t = id(Victim)
    if what == "dictoffset":
        word(t + TP_DICTOFFSET, 0x7ffffffffffffff9)
    elif what == "basicsize":
        word(t + TP_BASICSIZE, -16)
        word(t + TP_ITEMSIZE, 1 << 62)
    elif what == "name_junk":
        word(t + TP_NAME, 0x10)
    elif what == "name_bad":
        name = ctypes.create_string_buffer(b"Vic\xff\xfe\x01tim\x1b[31m\xc3")
        keep.append(name)
        word(t + TP_NAME, ctypes.addressof(name))
    elif what == "list":
        word(id(held) + OB_SIZE, (1 << 62) - 1)
        word(id(held) + LIST_ALLOCATED, (1 << 62) - 1)
    elif what == "pool":
        # A full pool, mostly of Victims: pymalloc touches it again only to free a block.
        by_pool = {}
        for v in held:
            by_pool.setdefault(id(v) & ~(POOL_SIZE - 1), []).append(v)
        full = []
        for p, vs in by_pool.items():
            size = (ctypes.c_uint32.from_address(p + 36).value + 1) * 16
            capacity = (POOL_SIZE - 48) // size
            if ctypes.c_uint32.from_address(p).value == capacity:
                full.append((len(vs), p))
        if not full:
            raise LookupError("no full pool of Victims")
        p = max(full)[1]
        ctypes.c_uint32.from_address(p).value = 0xffffffff          # count
        ctypes.c_uint64.from_address(p + 8).value = p + 8           # freeblock: into the header
        ctypes.c_uint32.from_address(p + 40).value = POOL_SIZE * 2  # nextoffset
    elif what == "code":
        code = make_victims.__code__
        junk = bytes(range(256)) * 4096
        keep.append(junk)
        make_victims.__code__ = code.replace(
            co_name="make\udcff\x1b[2J\x01victims", co_filename="/tmp/\udcfe\x07bad\x9b.py",
            **{table_attr(): junk})
    elif what == "linetable":
        table = getattr(make_victims.__code__, table_attr())
        word(id(table) + OB_SIZE, 1 << 62)
    elif what == "fake_types":
        # A forged type: refcount 1, its own type `type`, a name, sane sizes, ready; each
        # object of a forged type is a 16-byte block (refcount 1, ob_type forged).
        name = ctypes.create_string_buffer(b"Forged")
        keep.append(name)
        proto = bytearray(400)
        for off, val in ((0, 1), (8, id(type)), (TP_NAME, ctypes.addressof(name)),
                         (TP_BASICSIZE, 16), (TP_FLAGS, (1 << 12) | (1 << 9))):
            proto[off:off + 8] = val.to_bytes(8, "little")
        types = (ctypes.c_char * 400 * FAKES)()
        keep.append(types)
        ctypes.memmove(types, bytes(proto) * FAKES, 400 * FAKES)
        objs = [float(i) + 0.5 for i in range(FAKES)]  # 24-byte pool blocks
        keep.append(objs)
        for i, o in enumerate(objs):
            word(id(o) + 8, ctypes.addressof(types) + 400 * i)
    elif what == "alloc":
        held.extend(make_victims(N))
    else:
        raise ValueError(what)


print(json.dumps({"pid": __import__("os").getpid(), "victims": len(held)}), flush=True)
for line in sys.stdin:
    done = []
    for what in line.split():
        corrupt(what)
        done.append(what)
    print(json.dumps({"done": done}), flush=True)
