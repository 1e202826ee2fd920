# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Seeds of fuzz_refwalk: per interpreter row, a heap where one thread's frame has a local list
holding a `Wanted` object and the list itself, as the offsets table lays them out.

    /usr/bin/python3 tests/fuzz/make_refwalk_seeds.py daemon/cpython_offsets.h tests/fuzz/corpus/refwalk
"""
import os
import re
import struct
import sys

BASE = 0x10000000
TYPES = BASE + 0x8000
KINDS = ["OPAQUE", "LIST", "TUPLE", "DICT", "SET", "FROZENSET", "CELL", "FUNCTION", "METHOD",
         "MODULE", "TYPE", "CODE", "OBJECT"]
WANTED = TYPES + 512 * len(KINDS)


def rows(header):
    text = open(header).read()
    body = text.split("cpython_offsets_table[] = {", 1)[1].split("};", 1)[0]
    for row in re.findall(r"\{([^}]*)\}", body):
        yield {k: int(v, 0) for k, v in re.findall(r"\.(\w+) = (-?\w+)", row)}


def seed(o):
    mem = bytearray(WANTED + 512 - BASE)

    def put(addr, *words):
        struct.pack_into("<%dq" % len(words), mem, addr - BASE, *words)

    interp, tstate, cframe, frame = BASE + 0x1000, BASE + 0x2000, BASE + 0x2100, BASE + 0x2200
    code, names, lst, items, leaf, name = (BASE + 0x3000, BASE + 0x3400, BASE + 0x4000,
                                           BASE + 0x4100, BASE + 0x4200, BASE + 0x4300)
    put(BASE + o["runtime_interp_main"], interp)
    put(interp + o["interp_tstate_head"], tstate)
    if o.get("tstate_cframe"):
        put(tstate + o["tstate_cframe"], cframe)
        put(cframe + o.get("cframe_current_frame", 0), frame)
    else:
        put(tstate + o["tstate_frame"], frame)
    put(frame + o["frame_code"], code)
    put(frame + o["frame_localsplus"], lst)
    put(code, 1, TYPES + 512 * KINDS.index("CODE"))
    put(code + (o.get("co_localsplusnames") or o["co_varnames"]), names)
    put(names, 1, TYPES + 512 * KINDS.index("TUPLE"), 1, name)
    put(lst, 1, TYPES + 512 * KINDS.index("LIST"), 2, items)
    put(items, leaf, lst)
    put(leaf, 1, WANTED)
    mem[name - BASE:name - BASE + 7] = b"Wanted\0"
    for i, t in enumerate(KINDS + ["WANTED"]):
        addr = TYPES + 512 * i
        put(addr, 1, TYPES + 512 * KINDS.index("TYPE"), 0, addr + 400)  # refcnt, type, -, tp_name
        label = (t.capitalize() if t == "WANTED" else t.lower()).encode() + b"\0"
        mem[addr + 400 - BASE:addr + 400 - BASE + len(label)] = label
        put(addr + 32, 16, 0)                                         # basicsize, itemsize
        put(addr + 168, (1 << 12) | (1 << 31 if t == "TYPE" else 0))  # ready
    return bytes(mem)


def main():
    header, out = sys.argv[1:3]
    os.makedirs(out, exist_ok=True)
    for i, o in enumerate(rows(header)):
        with open(os.path.join(out, "heap-3.%d" % o["minor"]), "wb") as f:
            f.write(bytes([i]) + seed(o))


if __name__ == "__main__":
    main()
