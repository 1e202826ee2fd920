# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Seeds of fuzz_refwalk: per interpreter row, a heap where one thread's frame has a local list
holding a `Wanted` object, the list itself, a deque holding the Wanted object, a suspended
generator whose frame's local is the list, and a function whose closure's cell holds the
list, as the offsets table lays them out.  Two variants give the deque other blocks:
deque-cycle (one block linked to itself, 2^26 - 1 items said) and deque-long (40 blocks of
64 items, all the Wanted object: 2560).

    /usr/bin/python3 tests/fuzz/make_refwalk_seeds.py daemon/cpython_offsets.h tests/fuzz/corpus/refwalk
"""
import os
import re
import struct
import sys

BASE = 0x10000000
TYPES = BASE + 0x8000
# Type slots, as fuzz_refwalk.c places them: the kinds up to OBJECT, the wanted type, the
# other kinds, bytearray.
KINDS = ["OPAQUE", "LIST", "TUPLE", "DICT", "SET", "FROZENSET", "CELL", "FUNCTION", "METHOD",
         "MODULE", "TYPE", "CODE", "OBJECT", "WANTED", "GENERATOR", "COROUTINE", "ASYNCGEN",
         "FRAME", "DEQUE", "BYTEARRAY"]
WANTED = TYPES + 512 * KINDS.index("WANTED")


def rows(header):
    text = open(header).read()
    body = text.split("cpython_offsets_table[] = {", 1)[1].split("};", 1)[0]
    for row in re.findall(r"\{([^}]*)\}", body):
        yield {k: int(v, 0) for k, v in re.findall(r"\.(\w+) = (-?\w+)", row)}


DEQUE_LONG_BLOCKS = 40  # the seed within `make fuzz`'s -max_len


def seed(o, deque=None):
    blocksize = o["block_rightlink"] + 8
    nblocks = DEQUE_LONG_BLOCKS if deque == "long" else 0
    mem = bytearray(TYPES + 512 * len(KINDS) - BASE + nblocks * blocksize)

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
    deque_obj, block, gen, func, cell, closure = (BASE + 0x4400, BASE + 0x4500, BASE + 0x4800,
                                              BASE + 0x4a00, BASE + 0x4b00, BASE + 0x4c00)
    put(lst, 1, TYPES + 512 * KINDS.index("LIST"), 5, items)
    put(items, leaf, lst, deque_obj, gen, func)
    put(leaf, 1, WANTED)
    mem[name - BASE:name - BASE + 7] = b"Wanted\0"
    # A deque of one item in one block.
    put(deque_obj, 1, TYPES + 512 * KINDS.index("DEQUE"), 1)
    put(deque_obj + o["deque_leftblock"], block)
    put(deque_obj + o["deque_rightblock"], block)
    put(deque_obj + o["deque_leftindex"], 3)
    put(deque_obj + o["deque_rightindex"], 3)
    put(block + o["block_data"] + 3 * 8, leaf)
    if deque == "cycle":
        put(deque_obj + 16, (1 << 26) - 1)
        put(block + o["block_rightlink"], block)
    elif deque == "long":
        blen = (o["block_rightlink"] - o["block_data"]) // 8
        first = TYPES + 512 * len(KINDS)
        put(deque_obj + 16, nblocks * blen)
        put(deque_obj + o["deque_leftblock"], first)
        put(deque_obj + o["deque_rightblock"], first + (nblocks - 1) * blocksize)
        put(deque_obj + o["deque_leftindex"], 0)
        put(deque_obj + o["deque_rightindex"], blen - 1)
        for j in range(nblocks):
            b = first + j * blocksize
            put(b + o["block_data"], *([leaf] * blen))
            if j + 1 < nblocks:
                put(b + o["block_rightlink"], b + blocksize)
    # A suspended generator: its frame (inline, 3.11+; else a frame object) is the thread's.
    put(gen, 1, TYPES + 512 * KINDS.index("GENERATOR"))
    if o.get("gen_iframe"):
        put(gen + o["gen_iframe"] + o["frame_code"], code)
        put(gen + o["gen_iframe"] + o["frame_localsplus"], lst)
        mem[gen + o["gen_frame_state"] - BASE] = 0xff   # suspended: below FRAME_EXECUTING
    else:
        put(gen + o["gen_frame"], frame)
    # A function whose closure's cell holds the list.
    put(func, 1, TYPES + 512 * KINDS.index("FUNCTION"))
    put(func + o["func_closure"], closure)
    put(func + o["func_code"], code)
    put(closure, 1, TYPES + 512 * KINDS.index("TUPLE"), 1, cell)
    put(cell, 1, TYPES + 512 * KINDS.index("CELL"))
    put(cell + o["cell_ref"], lst)
    for i, t in enumerate(KINDS):
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
        for name, deque in (("heap", None), ("deque-cycle", "cycle"), ("deque-long", "long")):
            with open(os.path.join(out, "%s-3.%d" % (name, o["minor"])), "wb") as f:
                f.write(bytes([i]) + seed(o, deque))


if __name__ == "__main__":
    main()
