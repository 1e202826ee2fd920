# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Line table vectors for tests/unit/test_linetable.c, from real interpreters.

Run under one interpreter (3.8+), it compiles SOURCE below and prints, for the
module and every code object in it, the line table bytes (co_lnotab on 3.8 and
3.9, co_linetable on 3.10+), co_firstlineno, len(co_code) and the line of
every even byte offset in the code plus two past its end, as PyCode_Addr2Line
(what frame.f_lineno and tracebacks use) returns it, called through ctypes.
It cross-checks those lines against dis.findlinestarts (3.8, 3.9), co_lines()
(3.10+) and co_positions() (3.11+) and reports any difference on stderr.

    python3.X gen_linetable.py                  one interpreter's block
    python3 gen_linetable.py --header PY...     the whole linetable_vectors.h

The header is regenerated with:

    P=~/.pyenv/versions; python3 tests/unit/gen_linetable.py --header \\
        $P/3.8.18/bin/python3.8 $P/3.9.18/bin/python3.9 \\
        $P/3.10.13/bin/python3.10 $P/3.11.7/bin/python3.11 \\
        /usr/bin/python3.11 $P/3.12.1/bin/python3.12 \\
        $P/3.13.0/bin/python3.13 > tests/unit/linetable_vectors.h
"""
import ctypes
import dis
import subprocess
import sys
import types

BLANK = "\n" * 150
BIG_LIST = ", ".join(["v"] * 140)
STEPS = "".join("    a%d = a%d + %d\n" % (i + 1, i, i) for i in range(30))

SOURCE = '''\
"""Shapes for line tables: never run, only compiled."""
import os


def simple(a, b):
    x = a + b
    y = x * 2

    # a comment, blank lines around it


    return y


@decorator_one
@decorator_two(
    arg=1,
)
def loops(n):
    total = 0
    for i in range(n):
        if i % 3 == 0:
            continue
        total += i
    else:
        total -= 1
    while total > 100:
        total //= 2
    return total


def multiline(a, b, c):
    result = func(
        a,
        b +
        c,
        key=[
            a, b,
            c,
        ],
    )
    return (result
            if a else
            b)


def comprehensions(items):
    squares = [x * x for x in items if x]
    mapping = {k: v
               for k, v in enumerate(items)}
    gen = (y
           for y in items)
    return squares, mapping, list(gen), {z for z in items}, (lambda q: q + 1)


def handlers(path):
    try:
        with open(path) as f:
            data = f.read()
    except (OSError, ValueError) as e:
        data = str(e)
    finally:
        path = None
    return data


def far_jumps(a):
    x = a
''' + BLANK + '''\
    y = call(
        x,
''' + BLANK + '''\
        a)
    return y


def long_function(v):
    big = [''' + BIG_LIST + ''']
    a0 = len(big)
''' + STEPS + '''\
    return a30


class Holder:
    attr = 1

    def method(self):
        return self.attr


async def coro(session, urls):
    async with session:
        async for u in urls:
            await session.get(u)
'''

addr2line = ctypes.pythonapi.PyCode_Addr2Line
addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
addr2line.restype = ctypes.c_int


def code_objects(code, prefix=""):
    name = prefix + code.co_name
    yield name, code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            for sub in code_objects(const, name + "."):
                yield sub


def table_of(code):
    if sys.version_info >= (3, 10):
        return code.co_linetable
    return code.co_lnotab


def offsets_of(code):
    n = len(code.co_code)
    return list(range(0, n, 2)) + [n, n + 64]


def cross_check(name, code, expected, warn):
    """Lines from the pure-Python views of the table, where they exist."""
    n = len(code.co_code)
    other = {}
    if sys.version_info >= (3, 10):
        for start, end, line in code.co_lines():
            for off in range(start, end, 2):
                other[off] = -1 if line is None else line
        for off in (n, n + 64):
            other[off] = -1
    else:
        starts = list(dis.findlinestarts(code))
        for off in offsets_of(code):
            line = code.co_firstlineno
            for start, start_line in starts:
                if start <= off:
                    line = start_line
            other[off] = line
    for off, line in expected:
        got = other.get(off, -1)
        if got != line:
            warn("%s +%d: PyCode_Addr2Line %d, %s %d" % (
                name, off, line,
                "co_lines" if sys.version_info >= (3, 10) else "findlinestarts",
                got))
    if sys.version_info >= (3, 11):
        for i, pos in enumerate(code.co_positions()):
            line = -1 if pos[0] is None else pos[0]
            if dict(expected)[2 * i] != line:
                warn("%s +%d: PyCode_Addr2Line %d, co_positions %d" % (
                    name, 2 * i, dict(expected)[2 * i], line))


def c_bytes(data, indent="\t"):
    out = []
    for i in range(0, len(data), 12):
        out.append(indent + " ".join("0x%02x," % b for b in data[i:i + 12]))
    return "\n".join(out)


def c_pairs(pairs, indent="\t"):
    out = []
    for i in range(0, len(pairs), 8):
        out.append(indent + " ".join("{%d, %d}," % p for p in pairs[i:i + 8]))
    return "\n".join(out)


def block():
    """This interpreter's vectors, as C."""
    ver = sys.version_info
    tag = "py%d%d" % (ver[0], ver[1])
    if not sys.executable.startswith("/usr/bin/"):
        tag += "_%d" % ver[2]
    else:
        tag += "_%d_sys" % ver[2]
    fmt = ("LINETABLE_LNOTAB" if ver < (3, 10) else
           "LINETABLE_310" if ver < (3, 11) else "LINETABLE_LOCATIONS")
    warnings = []

    def warn(msg):
        warnings.append(msg)
        sys.stderr.write("%s %s: %s\n" % (sys.executable, sys.version.split()[0], msg))

    module = compile(SOURCE, "<linetable>", "exec")
    lines = ["/* %s, Python %s */" % (sys.executable, sys.version.split()[0])]
    entries = []
    for idx, (name, code) in enumerate(code_objects(module)):
        expected = [(off, addr2line(code, off)) for off in offsets_of(code)]
        cross_check(name, code, expected, warn)
        table = table_of(code)
        sym = "%s_%d" % (tag, idx)
        if table:
            lines.append("static const uint8_t %s_table[] = {\n%s\n};"
                         % (sym, c_bytes(table)))
        lines.append("static const struct lt_pair %s_pairs[] = {\n%s\n};"
                     % (sym, c_pairs(expected)))
        entries.append('\t{ "%s", %s, %s, %d, %d, %d, %s_pairs, %d },' % (
            name, fmt, sym + "_table" if table else "NULL", len(table),
            code.co_firstlineno, len(code.co_code), sym, len(expected)))
    lines.append("static const struct lt_vector %s[] = {\n%s\n};"
                 % (tag, "\n".join(entries)))
    version = "%s (%s)" % (sys.version.split()[0], sys.executable)
    return tag, version, "\n".join(lines), warnings


def header(pythons):
    out = ["/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */",
           "/* Generated by tests/unit/gen_linetable.py from the interpreters",
           " * below; do not edit. Each vector: a code object's line table",
           " * (co_lnotab on 3.8/3.9, co_linetable on 3.10+), co_firstlineno,",
           " * len(co_code), and {byte offset, PyCode_Addr2Line} for every",
           " * even offset of the code and two past its end. */",
           "#ifndef PYLEAK_LINETABLE_VECTORS_H",
           "#define PYLEAK_LINETABLE_VECTORS_H",
           "",
           "struct lt_pair { uint32_t offset; int line; };",
           "struct lt_vector {",
           "\tconst char *name;",
           "\tenum linetable_format fmt;",
           "\tconst uint8_t *table;",
           "\tsize_t len;",
           "\tint firstlineno;",
           "\tsize_t code_len;",
           "\tconst struct lt_pair *pairs;",
           "\tsize_t npairs;",
           "};",
           "struct lt_python { const char *version; const struct lt_vector *vectors; size_t n; };",
           ""]
    pys = []
    for python in pythons:
        res = subprocess.run([python, __file__, "--repr"], stdout=subprocess.PIPE,
                             check=True, universal_newlines=True)
        tag, version, text = res.stdout.split("\n", 2)
        out.append(text.rstrip("\n"))
        out.append("")
        pys.append('\t{ "%s", %s, sizeof(%s) / sizeof(%s[0]) },' % (version, tag, tag, tag))
    out.append("static const struct lt_python lt_pythons[] = {\n%s\n};" % "\n".join(pys))
    out.append("")
    out.append("#endif /* PYLEAK_LINETABLE_VECTORS_H */")
    print("\n".join(out))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--header":
        header(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--repr":
        tag, version, text, _ = block()
        print(tag)
        print(version)
        print(text)
    else:
        print(block()[2])


if __name__ == "__main__":
    main()
