# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""daemon/cpython_offsets.h: CPython struct offsets per version, from interpreters' DWARF.

For each interpreter given, it runs the interpreter (version, build, include directory, and
sys._debugmallocstats() for pymalloc's pool size, pool header size and small-request
threshold), asks gdb for offsets and sizes in the DWARF of the file holding the interpreter
(libpython for a shared build, else the executable), and compiles a few lines against the
interpreter's headers for the tp_flags macros.  An interpreter without DWARF (Debian's
stripped /usr/bin/python3.11) takes the offsets of a DWARF build of the same minor version
given alongside, after checking each of them against offsetof() compiled with its own headers
(Include/internal included): the generator stops if one differs.

It prints one row per minor version, and a _Static_assert for every version-independent
constant of bpf/cpython.h, with the value all interpreters agreed on (it stops if they did not).
Needs gdb and gcc.  Regenerate with `make gen-offsets`, or:

    P=~/.pyenv/versions; /usr/bin/python3 tools/gen_cpython_offsets.py \\
        $P/3.8.18/bin/python3.8 $P/3.9.18/bin/python3.9 $P/3.10.13/bin/python3.10 \\
        $P/3.11.7/bin/python3.11 /usr/bin/python3.11 $P/3.12.1/bin/python3.12 \\
        $P/3.13.0/bin/python3.13 > daemon/cpython_offsets.h
"""
import json
import os
import re
import subprocess
import sys
import tempfile

# (type, member): offsetof queries; every one is asked, absent ones are None.
MEMBERS = [
    ("_PyRuntimeState", "gilstate.tstate_current"),
    ("_PyRuntimeState", "interpreters.main"),
    ("PyInterpreterState", "ceval.gil"),
    ("struct _gil_runtime_state", "last_holder"),
    ("PyThreadState", "current_frame"),
    ("PyThreadState", "frame"),
    ("PyThreadState", "cframe"),
    ("PyThreadState", "thread_id"),
    ("_PyCFrame", "current_frame"),
    ("_PyInterpreterFrame", "previous"),
    ("_PyInterpreterFrame", "f_executable"),
    ("_PyInterpreterFrame", "f_code"),
    ("_PyInterpreterFrame", "instr_ptr"),
    ("_PyInterpreterFrame", "prev_instr"),
    ("_PyInterpreterFrame", "owner"),
    ("PyFrameObject", "f_back"),
    ("PyFrameObject", "f_code"),
    ("PyFrameObject", "f_lasti"),
    ("PyCodeObject", "co_firstlineno"),
    ("PyCodeObject", "co_filename"),
    ("PyCodeObject", "co_name"),
    ("PyCodeObject", "co_linetable"),
    ("PyCodeObject", "co_lnotab"),
    ("PyCodeObject", "co_code_adaptive"),
    ("PyCodeObject", "co_code"),
    ("PyObject", "ob_type"),
    ("PyVarObject", "ob_size"),
    ("PyTypeObject", "tp_name"),
    ("PyTypeObject", "tp_basicsize"),
    ("PyTypeObject", "tp_itemsize"),
    ("PyTypeObject", "tp_dealloc"),
    ("PyTypeObject", "tp_flags"),
    ("PyTypeObject", "tp_dictoffset"),
    ("PyListObject", "ob_item"),
    ("PyListObject", "allocated"),
    ("PyASCIIObject", "length"),
    ("PyASCIIObject", "state"),
    ("PyBytesObject", "ob_base.ob_size"),
    ("PyBytesObject", "ob_sval"),
    ("PyTupleObject", "ob_item"),
    ("_PyRuntimeState", "gc"),
    ("PyInterpreterState", "gc"),
    ("struct _gc_runtime_state", "generations"),
    ("struct _gc_runtime_state", "permanent_generation"),
    ("struct _gc_runtime_state", "collecting"),
    ("struct gc_generation", "head"),
    # The reference walk (daemon/refwalk.c): roots, then the builtin containers' referents.
    ("PyInterpreterState", "modules"),
    ("PyInterpreterState", "imports.modules"),
    ("PyInterpreterState", "tstate_head"),
    ("PyInterpreterState", "threads.head"),
    ("PyThreadState", "next"),
    ("PyFrameObject", "f_localsplus"),
    ("_PyInterpreterFrame", "localsplus"),
    ("PyCodeObject", "co_nlocals"),
    ("PyCodeObject", "co_varnames"),
    ("PyCodeObject", "co_cellvars"),
    ("PyCodeObject", "co_freevars"),
    ("PyCodeObject", "co_nlocalsplus"),
    ("PyCodeObject", "co_localsplusnames"),
    ("PyDictObject", "ma_used"),
    ("PyDictObject", "ma_keys"),
    ("PyDictObject", "ma_values"),
    ("PyDictKeysObject", "dk_size"),
    ("PyDictKeysObject", "dk_log2_size"),
    ("PyDictKeysObject", "dk_log2_index_bytes"),
    ("PyDictKeysObject", "dk_kind"),
    ("PyDictKeysObject", "dk_nentries"),
    ("PyDictKeysObject", "dk_indices"),
    ("PyDictValues", "values"),
    ("PySetObject", "used"),
    ("PySetObject", "mask"),
    ("PySetObject", "table"),
    ("PyCellObject", "ob_ref"),
    ("PyFunctionObject", "func_globals"),
    ("PyFunctionObject", "func_defaults"),
    ("PyFunctionObject", "func_kwdefaults"),
    ("PyFunctionObject", "func_closure"),
    ("PyMethodObject", "im_func"),
    ("PyMethodObject", "im_self"),
    ("PyModuleObject", "md_dict"),
    ("PyTypeObject", "tp_dict"),
    ("PyTypeObject", "tp_base"),
    ("PyHeapTypeObject", "ht_cached_keys"),
    ("PyMemberDef", "name"),
    ("PyMemberDef", "type"),
    ("PyMemberDef", "offset"),
    # Closure cells named by variable; generators' and frame objects' locals; deques' blocks
    # (dequeobject and block are _collectionsmodule.c's, in no header: DWARF only).
    ("PyFunctionObject", "func_code"),
    ("PyCodeObject", "co_nfreevars"),
    ("PyGenObject", "gi_frame"),
    ("PyGenObject", "gi_iframe"),
    ("PyGenObject", "gi_frame_state"),
    ("PyFrameObject", "f_frame"),
    ("dequeobject", "leftblock"),
    ("dequeobject", "rightblock"),
    ("dequeobject", "leftindex"),
    ("dequeobject", "rightindex"),
    ("block", "data"),
    ("block", "rightlink"),
]
SIZES = ["PyASCIIObject", "PyCompactUnicodeObject", "PyGC_Head", "struct pool_header",
         "_Py_DebugOffsets", "struct gc_generation", "PyDictKeyEntry", "PyDictUnicodeEntry",
         "setentry", "PyMemberDef"]
ENUMS = ["FRAME_OWNED_BY_CSTACK", "FRAME_EXECUTING", "DICT_KEYS_GENERAL", "DICT_KEYS_UNICODE", "DICT_KEYS_SPLIT"]
BITS = [("PyASCIIObject", "state", "kind"), ("PyASCIIObject", "state", "compact"),
        ("PyASCIIObject", "state", "ascii")]

# Where, in _Py_DebugOffsets (3.13+), the daemon finds what it reads; asked of the DWARF too.
DEBUG_FIELDS = [
    ("dbg_version", "version"),
    ("dbg_free_threaded", "free_threaded"),
    ("dbg_interp_size", "interpreter_state.size"),
    ("dbg_interp_ceval_gil", "interpreter_state.ceval_gil"),
    ("dbg_interp_gil", "interpreter_state.gil_runtime_state"),
    ("dbg_interp_gil_holder", "interpreter_state.gil_runtime_state_holder"),
    ("dbg_tstate_size", "thread_state.size"),
    ("dbg_tstate_current_frame", "thread_state.current_frame"),
    ("dbg_frame_size", "interpreter_frame.size"),
    ("dbg_frame_previous", "interpreter_frame.previous"),
    ("dbg_frame_executable", "interpreter_frame.executable"),
    ("dbg_frame_instr_ptr", "interpreter_frame.instr_ptr"),
    ("dbg_frame_owner", "interpreter_frame.owner"),
    ("dbg_code_size", "code_object.size"),
    ("dbg_code_filename", "code_object.filename"),
    ("dbg_code_name", "code_object.name"),
    ("dbg_code_linetable", "code_object.linetable"),
    ("dbg_code_firstlineno", "code_object.firstlineno"),
    ("dbg_code_adaptive", "code_object.co_code_adaptive"),
    ("dbg_type_size", "type_object.size"),
    ("dbg_type_name", "type_object.tp_name"),
    ("dbg_type_flags", "type_object.tp_flags"),
    ("dbg_str_size", "unicode_object.size"),
    ("dbg_str_state", "unicode_object.state"),
    ("dbg_str_length", "unicode_object.length"),
    ("dbg_str_ascii_size", "unicode_object.asciiobject_size"),
    ("dbg_bytes_size", "bytes_object.size"),
    ("dbg_bytes_ob_size", "bytes_object.ob_size"),
    ("dbg_bytes_ob_sval", "bytes_object.ob_sval"),
]
MEMBERS += [("_Py_DebugOffsets", m) for _, m in DEBUG_FIELDS]

# tp_flags macros, from the headers; None when the version has no such flag.
MACROS = ["Py_TPFLAGS_HEAPTYPE", "Py_TPFLAGS_READY", "Py_TPFLAGS_HAVE_GC",
          "Py_TPFLAGS_TYPE_SUBCLASS", "Py_TPFLAGS_MANAGED_DICT", "Py_TPFLAGS_PREHEADER",
          "Py_TPFLAGS_INLINE_VALUES", "T_OBJECT_EX"]

# Constants of bpf/cpython.h and what each must equal on every interpreter.
CONSTANTS = [
    ("CPY_OB_TYPE", "DWARF", lambda f: f.m("PyObject", "ob_type")),
    ("CPY_OB_SIZE", "DWARF", lambda f: f.m("PyVarObject", "ob_size")),
    ("CPY_TP_NAME", "DWARF", lambda f: f.m("PyTypeObject", "tp_name")),
    ("CPY_TP_BASICSIZE", "DWARF", lambda f: f.m("PyTypeObject", "tp_basicsize")),
    ("CPY_TP_ITEMSIZE", "DWARF", lambda f: f.m("PyTypeObject", "tp_itemsize")),
    ("CPY_TP_DEALLOC", "DWARF", lambda f: f.m("PyTypeObject", "tp_dealloc")),
    ("CPY_TP_FLAGS", "DWARF", lambda f: f.m("PyTypeObject", "tp_flags")),
    ("CPY_TP_DICTOFFSET", "DWARF", lambda f: f.m("PyTypeObject", "tp_dictoffset")),
    ("CPY_TPFLAGS_HEAPTYPE", "headers", lambda f: f.macros["Py_TPFLAGS_HEAPTYPE"]),
    ("CPY_TPFLAGS_READY", "headers", lambda f: f.macros["Py_TPFLAGS_READY"]),
    ("CPY_TPFLAGS_HAVE_GC", "headers", lambda f: f.macros["Py_TPFLAGS_HAVE_GC"]),
    ("CPY_TPFLAGS_TYPE_SUBCLASS", "headers", lambda f: f.macros["Py_TPFLAGS_TYPE_SUBCLASS"]),
    ("CPY_GC_HEAD_SIZE", "DWARF", lambda f: f.size("PyGC_Head")),
    ("CPY_POOL_HEADER_SIZE", "DWARF", lambda f: f.size("struct pool_header")),
    ("CPY_POOL_HEADER_SIZE", "sys._debugmallocstats()", lambda f: f.pool["header"]),
    ("CPY_SMALL_REQUEST_MAX", "sys._debugmallocstats()", lambda f: f.pool["threshold"]),
    ("CPY_LIST_ITEMS", "DWARF", lambda f: f.m("PyListObject", "ob_item")),
    ("CPY_LIST_ALLOCATED", "DWARF", lambda f: f.m("PyListObject", "allocated")),
    ("CPY_STR_LENGTH", "DWARF", lambda f: f.m("PyASCIIObject", "length")),
    ("CPY_STR_STATE", "DWARF", lambda f: f.m("PyASCIIObject", "state")),
    ("CPY_STR_KIND_SHIFT", "DWARF", lambda f: f.bits["kind"][0]),
    ("CPY_STR_KIND_MASK", "DWARF", lambda f: (1 << f.bits["kind"][1]) - 1),
    ("CPY_STR_COMPACT", "DWARF", lambda f: 1 << f.bits["compact"][0]),
    ("CPY_STR_ASCII", "DWARF", lambda f: 1 << f.bits["ascii"][0]),
    ("CPY_BYTES_SIZE", "DWARF", lambda f: f.m("PyBytesObject", "ob_base.ob_size")),
    ("CPY_BYTES_DATA", "DWARF", lambda f: f.m("PyBytesObject", "ob_sval")),
    ("CPY_TUPLE_ITEMS", "DWARF", lambda f: f.m("PyTupleObject", "ob_item")),
]

# Columns of the generated table: (name, C type, comment).
COLUMNS = [
    ("minor", "uint8_t", "3.minor"),
    ("runtime_tstate_current", "uint16_t",
     "_PyRuntimeState.gilstate.tstate_current (<=3.11); 0: none"),
    ("runtime_interp_main", "uint16_t", "_PyRuntimeState.interpreters.main"),
    ("interp_ceval_gil", "uint16_t",
     "PyInterpreterState.ceval.gil (3.12+, when there is no tstate_current)"),
    ("gil_last_holder", "uint16_t", "struct _gil_runtime_state.last_holder (same)"),
    ("tstate_frame", "uint16_t", "PyThreadState.current_frame (3.13), .frame (<=3.10)"),
    ("tstate_cframe", "uint16_t", "PyThreadState.cframe (3.11, 3.12); 0: none"),
    ("tstate_thread_id", "uint16_t", "PyThreadState.thread_id (pthread_self(): the thread's fsbase)"),
    ("cframe_current_frame", "uint16_t", "_PyCFrame.current_frame (same)"),
    ("frame_back", "uint16_t", "_PyInterpreterFrame.previous (3.11+), PyFrameObject.f_back"),
    ("frame_code", "uint16_t", "f_executable (3.13+), f_code"),
    ("frame_pos", "uint16_t", "instr_ptr (3.13+), prev_instr (3.11, 3.12), f_lasti (<=3.10)"),
    ("frame_owner", "uint16_t", "_PyInterpreterFrame.owner, where shim frames exist"),
    ("frame_owner_cstack", "uint8_t", "FRAME_OWNED_BY_CSTACK (shim frames, 3.12+); 0: none"),
    ("co_firstlineno", "uint16_t", "PyCodeObject (int)"),
    ("co_filename", "uint16_t", "PyCodeObject"),
    ("co_name", "uint16_t", "PyCodeObject"),
    ("co_linetable", "uint16_t", "PyCodeObject.co_linetable (3.10+), co_lnotab"),
    ("co_code_adaptive", "uint16_t", "PyCodeObject (3.11+); 0: none"),
    ("co_code", "uint16_t", "PyCodeObject.co_code (a bytes object, <=3.10); 0: none"),
    ("op_get_iter", "uint8_t", "dis.opmap['GET_ITER'] (the interpreter's own)"),
    ("str_ascii_data", "uint16_t", "sizeof(PyASCIIObject): a compact ASCII str's data"),
    ("str_compact_data", "uint16_t", "sizeof(PyCompactUnicodeObject): other compact str's data"),
    ("pool_size", "uint32_t", "pymalloc POOL_SIZE (measured: sys._debugmallocstats())"),
    ("preheader_flags", "uint64_t",
     "Py_TPFLAGS_PREHEADER (3.12+), Py_TPFLAGS_MANAGED_DICT (3.11), 0 (headers)"),
    ("runtime_gc", "uint16_t", "_PyRuntimeState.gc (3.8); 0: in the interpreter"),
    ("interp_gc", "uint16_t", "PyInterpreterState.gc (3.9+); 0: in the runtime"),
    ("gc_generations", "uint16_t", "struct _gc_runtime_state.generations (gen 0..2 heads)"),
    ("gc_generation_size", "uint16_t", "sizeof(struct gc_generation) (its head at +0)"),
    ("gc_permanent", "uint16_t", "struct _gc_runtime_state.permanent_generation"),
    ("gc_collecting", "uint16_t", "struct _gc_runtime_state.collecting (int)"),
    ("dbg_size", "uint16_t", "sizeof(_Py_DebugOffsets) (3.13+); 0: none"),
] + [(name, "uint16_t", "offsetof(_Py_DebugOffsets, %s)" % m) for name, m in DEBUG_FIELDS] + [
    ("interp_modules", "uint16_t", "PyInterpreterState.imports.modules (3.12+), .modules"),
    ("interp_tstate_head", "uint16_t", "PyInterpreterState.threads.head (3.12+), .tstate_head"),
    ("tstate_next", "uint16_t", "PyThreadState.next"),
    ("frame_localsplus", "uint16_t", "_PyInterpreterFrame.localsplus (3.11+), f_localsplus"),
    ("co_nlocals", "uint16_t", "PyCodeObject.co_nlocals (int; <=3.10: its co_varnames)"),
    ("co_varnames", "uint16_t", "PyCodeObject.co_varnames (<=3.10); 0: none"),
    ("co_cellvars", "uint16_t", "PyCodeObject.co_cellvars (<=3.10); 0: none"),
    ("co_freevars", "uint16_t", "PyCodeObject.co_freevars (<=3.10); 0: none"),
    ("co_nlocalsplus", "uint16_t", "PyCodeObject.co_nlocalsplus (int, 3.11+); 0: none"),
    ("co_localsplusnames", "uint16_t", "PyCodeObject.co_localsplusnames (3.11+); 0: none"),
    ("dict_used", "uint16_t", "PyDictObject.ma_used"),
    ("dict_keys", "uint16_t", "PyDictObject.ma_keys"),
    ("dict_values", "uint16_t", "PyDictObject.ma_values"),
    ("dk_size", "uint16_t", "PyDictKeysObject.dk_size (<=3.10); 0: none"),
    ("dk_log2_size", "uint16_t", "PyDictKeysObject.dk_log2_size (uint8, 3.11+); 0: none"),
    ("dk_log2_index_bytes", "uint16_t", "PyDictKeysObject.dk_log2_index_bytes (uint8, 3.11+)"),
    ("dk_kind", "uint16_t", "PyDictKeysObject.dk_kind (uint8, 3.11+); 0: none"),
    ("dk_nentries", "uint16_t", "PyDictKeysObject.dk_nentries"),
    ("dk_indices", "uint16_t", "PyDictKeysObject.dk_indices"),
    ("dk_entry_size", "uint16_t", "sizeof(PyDictKeyEntry): hash, key, value"),
    ("dk_unicode_entry_size", "uint16_t", "sizeof(PyDictUnicodeEntry): key, value (3.11+)"),
    ("dk_kind_unicode", "uint8_t", "DICT_KEYS_UNICODE (3.11+)"),
    ("dk_kind_split", "uint8_t", "DICT_KEYS_SPLIT (3.11+)"),
    ("dict_values_items", "uint16_t", "PyDictValues.values (3.11+)"),
    ("set_used", "uint16_t", "PySetObject.used"),
    ("set_mask", "uint16_t", "PySetObject.mask"),
    ("set_table", "uint16_t", "PySetObject.table"),
    ("set_entry_size", "uint16_t", "sizeof(setentry): key, hash"),
    ("cell_ref", "uint16_t", "PyCellObject.ob_ref"),
    ("func_globals", "uint16_t", "PyFunctionObject.func_globals"),
    ("func_defaults", "uint16_t", "PyFunctionObject.func_defaults"),
    ("func_kwdefaults", "uint16_t", "PyFunctionObject.func_kwdefaults"),
    ("func_closure", "uint16_t", "PyFunctionObject.func_closure"),
    ("method_func", "uint16_t", "PyMethodObject.im_func"),
    ("method_self", "uint16_t", "PyMethodObject.im_self"),
    ("module_dict", "uint16_t", "PyModuleObject.md_dict"),
    ("tp_dict", "uint16_t", "PyTypeObject.tp_dict"),
    ("tp_base", "uint16_t", "PyTypeObject.tp_base"),
    ("ht_cached_keys", "uint16_t", "PyHeapTypeObject.ht_cached_keys"),
    ("tpflags_managed_dict", "uint64_t", "Py_TPFLAGS_MANAGED_DICT (3.11+); 0: none"),
    ("tpflags_inline_values", "uint64_t", "Py_TPFLAGS_INLINE_VALUES (3.13+); 0: none"),
    ("managed_dict", "int16_t",
     "a managed __dict__ pointer from the object (headers: _PyObject_ManagedDictPointer "
     "3.11, MANAGED_DICT_OFFSET 3.12+); 0: none"),
    ("member_size", "uint16_t", "sizeof(PyMemberDef): a heap type's __slots__ follow it"),
    ("member_name", "uint16_t", "PyMemberDef.name"),
    ("member_type", "uint16_t", "PyMemberDef.type (int)"),
    ("member_offset", "uint16_t", "PyMemberDef.offset"),
    ("member_object_ex", "uint8_t", "T_OBJECT_EX (structmember.h): a __slots__ member"),
    ("managed_values", "int16_t",
     "its values pointer (3.11: _PyObject_ValuesPointer); 0: none or elsewhere"),
    ("func_code", "uint16_t", "PyFunctionObject.func_code"),
    ("co_nfreevars", "uint16_t", "PyCodeObject.co_nfreevars (int, 3.11+; the last of "
     "co_localsplusnames); 0: none"),
    ("gen_frame", "uint16_t", "PyGenObject.gi_frame (PyFrameObject *, <=3.10); 0: none"),
    ("gen_iframe", "uint16_t", "PyGenObject.gi_iframe (_PyInterpreterFrame, 3.11+); 0: none"),
    ("gen_frame_state", "uint16_t", "PyGenObject.gi_frame_state (int8, 3.11+); 0: none"),
    ("frame_executing", "uint8_t", "FRAME_EXECUTING (3.11+): states below it are suspended"),
    ("frameobj_frame", "uint16_t", "PyFrameObject.f_frame (3.11+); 0: none"),
    ("deque_leftblock", "uint16_t", "dequeobject.leftblock (_collectionsmodule.c)"),
    ("deque_rightblock", "uint16_t", "dequeobject.rightblock"),
    ("deque_leftindex", "uint16_t", "dequeobject.leftindex"),
    ("deque_rightindex", "uint16_t", "dequeobject.rightindex"),
    ("block_data", "uint16_t", "block.data (BLOCKLEN items)"),
    ("block_rightlink", "uint16_t", "block.rightlink"),
]

HEADERS_CHECK = ["internal/pycore_runtime.h", "internal/pycore_interp.h",
                 "internal/pycore_frame.h", "internal/pycore_code.h", "internal/pycore_dict.h",
                 "internal/pycore_moduleobject.h", "structmember.h"]


def die(msg):
    sys.exit("gen_cpython_offsets: " + msg)


PROBE = r'''
import json, sys, sysconfig
cfg = sysconfig.get_config_var
print(json.dumps({
    "version": sys.version.split()[0], "minor": sys.version_info[1],
    "major": sys.version_info[0], "hexversion": sys.hexversion,
    "executable": sys.executable, "shared": bool(cfg("Py_ENABLE_SHARED")),
    "libdir": cfg("LIBDIR"), "soname": cfg("INSTSONAME"),
    "include": sysconfig.get_paths()["include"],
    "op_get_iter": __import__("dis").opmap["GET_ITER"]}))
sys.stdout.flush()
sys._debugmallocstats()
'''


def pool_facts(stats):
    """POOL_SIZE, POOL_OVERHEAD and the threshold from _debugmallocstats' class table: a
    class of size s with n pools has n * ((POOL_SIZE - POOL_OVERHEAD) // s) blocks, used
    plus available.  POOL_OVERHEAD is sizeof(struct pool_header) rounded up to ALIGNMENT (16).
    """
    m = re.search(r"Small block threshold = (\d+)", stats)
    rows = [tuple(map(int, r)) for r in
            re.findall(r"^\s*\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", stats, re.M)]
    rows = [r for r in rows if r[1]]
    if not m or not rows:
        die("no pymalloc statistics")
    fits = [(p, h) for p in (1 << b for b in range(12, 17)) for h in range(16, 257, 16)
            if all(n * ((p - h) // s) == used + avail for s, n, used, avail in rows)]
    if len(fits) != 1:
        die("pool size and header not determined: %r" % fits)
    return {"threshold": int(m.group(1)), "size": fits[0][0], "header": fits[0][1]}


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


def has_dwarf(path):
    return ".debug_info" in run(["readelf", "-S", "-W", path]).stdout


def defines_runtime(path):
    syms = run(["readelf", "--dyn-syms", "-W", path]).stdout
    return re.search(r"^\s*\d+:.*\s(?!UND)\S+\s+_PyRuntime$", syms, re.M) is not None


def build_id(path):
    m = re.search(r"Build ID: ([0-9a-f]+)", run(["readelf", "-n", path]).stdout)
    return m.group(1) if m else "none"


def gdb_query(path):
    """Every MEMBERS offset, SIZES size, ENUMS value and BITS position the DWARF has."""
    cmds, keys = [], []
    for t, m in MEMBERS:
        keys.append(("m", t, m))
        cmds.append("print (long)&((%s *)0)->%s" % (t, m))
    for t in SIZES:
        keys.append(("s", t))
        cmds.append("print sizeof(%s)" % t)
    for e in ENUMS:
        keys.append(("e", e))
        cmds.append("print (long)%s" % e)
    args = ["gdb", "-batch", "-nx"]
    for i, c in enumerate(cmds):
        args += ["-ex", "echo @@%d\\n" % i, "-ex", c]
    for t in sorted({b[0] for b in BITS}):
        args += ["-ex", "echo @@ptype %s\\n" % t, "-ex", "ptype/o %s" % t]
    out = run(args + [path]).stdout
    got = {}
    for i, k in enumerate(keys):
        m = re.search(r"^@@%d\n\$\d+ = (-?\d+)$" % i, out, re.M)
        got[k] = int(m.group(1)) if m else None
    for t, outer, name in BITS:
        block = out.split("@@ptype %s\n" % t, 1)[1]
        m = re.search(r"/\*\s+\d+:\s*(\d+)\s+\|\s+\d+ \*/\s+unsigned int %s : (\d+);" % name,
                      block)
        if not m:
            die("%s: no bitfield %s.%s.%s" % (path, t, outer, name))
        got[("b", name)] = (int(m.group(1)), int(m.group(2)))
    if got[("m", "PyTypeObject", "tp_flags")] is None:
        die("%s: gdb found no PyTypeObject in its DWARF" % path)
    return got


def c_run(include, body, prelude="", headers=None):
    """Compiles and runs main() { body } against the interpreter's headers; its stdout."""
    if headers is None:
        headers = HEADERS_CHECK if prelude else []
    src = "%s#include <Python.h>\n%s#include <stddef.h>\n#include <stdio.h>\n" \
          "#include <string.h>\nint main(void)\n{\n%s\nreturn 0;\n}\n" % (
              prelude, "".join("#include <%s>\n" % h for h in headers), body)
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "a.out")
        cc = run(["gcc", "-x", "c", "-I", include, "-o", exe, "-"], input=src)
        if cc.returncode:
            die("compiling against %s failed:\n%s" % (include, cc.stderr))
        return run([exe], check=True).stdout


def header_macros(include):
    body = "".join('#ifdef %s\nprintf("%s %%llu\\n", (unsigned long long)(%s));\n#endif\n'
                   % (m, m, m) for m in MACROS)
    vals = dict(line.split() for line in
                c_run(include, body, headers=["structmember.h"]).splitlines())
    return {m: int(vals[m]) if m in vals else None for m in MACROS}


def header_check(include, got):
    """The DWARF twin's offsets, sizes and bit positions, compiled with these headers."""
    lines, keys = [], []
    for k, v in got.items():
        if v is None or k[0] == "e" or "pool_header" in k[1] or "_Py_DebugOffsets" in k[1] or \
                k[1] in ("dequeobject", "block"):
            continue
        keys.append(k)
        if k[0] == "m":
            lines.append('printf("%%zu\\n", offsetof(%s, %s));' % (k[1], k[2]))
        elif k[0] == "s":
            lines.append('printf("%%zu\\n", sizeof(%s));' % k[1])
        else:
            lines.append("{ PyASCIIObject o; unsigned int w; memset(&o, 0, sizeof(o)); "
                         "o.state.%s = 1; memcpy(&w, &o.state, sizeof(w)); "
                         'printf("%%d\\n", __builtin_ctz(w)); }' % k[1])
    out = c_run(include, "\n".join(lines), "#define Py_BUILD_CORE 1\n").split()
    for k, v in zip(keys, out):
        want = got[k][0] if k[0] == "b" else got[k]
        if int(v) != want:
            die("%s: %r is %s in the headers, %s in the DWARF" % (include, k, v, want))
    return len(keys)


class Facts:
    def __init__(self, python):
        res = run([python, "-c", PROBE], check=True)
        self.info = json.loads(res.stdout)
        self.python = python
        self.pool = pool_facts(res.stderr)
        info = self.info
        # Debian's sysconfig says shared, yet its python3.11 has libpython linked in.
        self.module = os.path.realpath(info["executable"])
        if info["shared"] and not defines_runtime(self.module):
            self.module = os.path.realpath(os.path.join(info["libdir"], info["soname"]))
        self.build_id = build_id(self.module)
        self.macros = header_macros(info["include"])
        self.got = gdb_query(self.module) if has_dwarf(self.module) else None
        self.twin = None
        self.bits = None

    def adopt(self, twin):
        """A stripped build takes a DWARF build's offsets once its own headers agree."""
        n = header_check(self.info["include"], twin.got)
        self.got, self.twin = twin.got, (twin, n)

    def m(self, t, member):
        return self.got[("m", t, member)]

    def size(self, t):
        return self.got[("s", t)]

    def first(self, *alts):
        for t, member in alts:
            v = self.m(t, member)
            if v is not None:
                return v
        return None

    def row(self):
        self.bits = {name: self.got[("b", name)] for _, _, name in BITS}
        r = {"minor": self.info["minor"]}
        cur = self.m("_PyRuntimeState", "gilstate.tstate_current")
        r["runtime_interp_main"] = self.m("_PyRuntimeState", "interpreters.main")
        if cur is not None:
            r["runtime_tstate_current"] = cur
        else:
            r["interp_ceval_gil"] = self.m("PyInterpreterState", "ceval.gil")
            r["gil_last_holder"] = self.m("struct _gil_runtime_state", "last_holder")
        r["tstate_frame"] = self.first(("PyThreadState", "current_frame"),
                                       ("PyThreadState", "frame"))
        r["tstate_thread_id"] = self.m("PyThreadState", "thread_id")
        if r["tstate_frame"] is None:
            del r["tstate_frame"]
            r["tstate_cframe"] = self.m("PyThreadState", "cframe")
            r["cframe_current_frame"] = self.m("_PyCFrame", "current_frame")
        if self.m("_PyInterpreterFrame", "previous") is not None:
            f = "_PyInterpreterFrame"
            r["frame_back"] = self.m(f, "previous")
            r["frame_code"] = self.first((f, "f_executable"), (f, "f_code"))
            r["frame_pos"] = self.first((f, "instr_ptr"), (f, "prev_instr"))
        else:
            f = "PyFrameObject"
            r["frame_back"] = self.m(f, "f_back")
            r["frame_code"] = self.m(f, "f_code")
            r["frame_pos"] = self.m(f, "f_lasti")
        cstack = self.got[("e", "FRAME_OWNED_BY_CSTACK")]
        if cstack is not None:
            r["frame_owner"] = self.m("_PyInterpreterFrame", "owner")
            r["frame_owner_cstack"] = cstack
        c = "PyCodeObject"
        for name in ("co_firstlineno", "co_filename", "co_name"):
            r[name] = self.m(c, name)
        if self.m(c, "co_code_adaptive") is not None:
            r["co_code_adaptive"] = self.m(c, "co_code_adaptive")
        else:
            r["co_code"] = self.m(c, "co_code")
        r["op_get_iter"] = self.info["op_get_iter"]
        r["co_linetable"] = self.first((c, "co_linetable"), (c, "co_lnotab"))
        r["str_ascii_data"] = self.size("PyASCIIObject")
        r["str_compact_data"] = self.size("PyCompactUnicodeObject")
        r["pool_size"] = self.pool["size"]
        r["preheader_flags"] = (self.macros["Py_TPFLAGS_PREHEADER"] or
                                self.macros["Py_TPFLAGS_MANAGED_DICT"] or 0)
        if self.m("PyInterpreterState", "gc") is not None:
            r["interp_gc"] = self.m("PyInterpreterState", "gc")
        else:
            r["runtime_gc"] = self.m("_PyRuntimeState", "gc")
        g = "struct _gc_runtime_state"
        r["gc_generations"] = self.m(g, "generations")
        r["gc_generation_size"] = self.size("struct gc_generation")
        r["gc_permanent"] = self.m(g, "permanent_generation")
        r["gc_collecting"] = self.m(g, "collecting")
        if self.m("struct gc_generation", "head") != 0:
            die("%s: a generation's head is not its first member" % self.module)
        self.refwalk_row(r)
        if self.size("_Py_DebugOffsets") is not None:
            r["dbg_size"] = self.size("_Py_DebugOffsets")
            for name, member in DEBUG_FIELDS:
                r[name] = self.m("_Py_DebugOffsets", member)
        for k, v in r.items():
            if v is None:
                die("%s: %s not found" % (self.module, k))
        return r

    def refwalk_row(self, r):
        """What the reference walk reads: roots, dicts, sets, cells, functions, methods,
        modules, types, managed dicts."""
        c, d, k = "PyCodeObject", "PyDictObject", "PyDictKeysObject"
        r["interp_modules"] = self.first(("PyInterpreterState", "imports.modules"),
                                         ("PyInterpreterState", "modules"))
        r["interp_tstate_head"] = self.first(("PyInterpreterState", "threads.head"),
                                             ("PyInterpreterState", "tstate_head"))
        r["tstate_next"] = self.m("PyThreadState", "next")
        r["frame_localsplus"] = self.first(("_PyInterpreterFrame", "localsplus"),
                                           ("PyFrameObject", "f_localsplus"))
        r["co_nlocals"] = self.m(c, "co_nlocals")
        if self.m(c, "co_localsplusnames") is not None:
            r["co_nlocalsplus"] = self.m(c, "co_nlocalsplus")
            r["co_localsplusnames"] = self.m(c, "co_localsplusnames")
        else:
            for name in ("co_varnames", "co_cellvars", "co_freevars"):
                r[name] = self.m(c, name)
        r["dict_used"] = self.m(d, "ma_used")
        r["dict_keys"] = self.m(d, "ma_keys")
        r["dict_values"] = self.m(d, "ma_values")
        if self.m(k, "dk_size") is not None:
            r["dk_size"] = self.m(k, "dk_size")
        else:
            for name in ("dk_log2_size", "dk_log2_index_bytes", "dk_kind"):
                r[name] = self.m(k, name)
            r["dk_unicode_entry_size"] = self.size("PyDictUnicodeEntry")
            r["dk_kind_unicode"] = self.got[("e", "DICT_KEYS_UNICODE")]
            r["dk_kind_split"] = self.got[("e", "DICT_KEYS_SPLIT")]
            r["dict_values_items"] = self.m("PyDictValues", "values")
            if self.got[("e", "DICT_KEYS_GENERAL")] in (r["dk_kind_unicode"], r["dk_kind_split"]):
                die("%s: dict key kinds not told apart" % self.module)
        r["dk_nentries"] = self.m(k, "dk_nentries")
        r["dk_indices"] = self.m(k, "dk_indices")
        r["dk_entry_size"] = self.size("PyDictKeyEntry")
        r["set_used"] = self.m("PySetObject", "used")
        r["set_mask"] = self.m("PySetObject", "mask")
        r["set_table"] = self.m("PySetObject", "table")
        r["set_entry_size"] = self.size("setentry")
        r["cell_ref"] = self.m("PyCellObject", "ob_ref")
        for name in ("func_globals", "func_defaults", "func_kwdefaults", "func_closure"):
            r[name] = self.m("PyFunctionObject", name)
        r["method_func"] = self.m("PyMethodObject", "im_func")
        r["method_self"] = self.m("PyMethodObject", "im_self")
        r["module_dict"] = self.m("PyModuleObject", "md_dict")
        r["tp_dict"] = self.m("PyTypeObject", "tp_dict")
        r["tp_base"] = self.m("PyTypeObject", "tp_base")
        r["ht_cached_keys"] = self.m("PyHeapTypeObject", "ht_cached_keys")
        r["member_size"] = self.size("PyMemberDef")
        for name in ("name", "type", "offset"):
            r["member_" + name] = self.m("PyMemberDef", name)
        r["member_object_ex"] = self.macros["T_OBJECT_EX"]
        # Managed dicts are reached through inline functions and macros of the headers, not
        # struct members: 3.11 keeps the dict 3 words and the values 4 words before the
        # object; 3.12 one tagged pointer 3 words before (values when its low bit is set);
        # 3.13 the dict 3 words before and inline values at tp_basicsize (valid flag).
        managed = self.macros["Py_TPFLAGS_MANAGED_DICT"]
        if managed:
            r["tpflags_managed_dict"] = managed
            r["managed_dict"] = -3 * 8
            if r["minor"] == 11:
                r["managed_values"] = -4 * 8
        if self.macros["Py_TPFLAGS_INLINE_VALUES"]:
            r["tpflags_inline_values"] = self.macros["Py_TPFLAGS_INLINE_VALUES"]
        r["func_code"] = self.m("PyFunctionObject", "func_code")
        if self.m("PyGenObject", "gi_iframe") is not None:
            r["co_nfreevars"] = self.m(c, "co_nfreevars")
            r["gen_iframe"] = self.m("PyGenObject", "gi_iframe")
            r["gen_frame_state"] = self.m("PyGenObject", "gi_frame_state")
            r["frame_executing"] = self.got[("e", "FRAME_EXECUTING")]
            r["frameobj_frame"] = self.m("PyFrameObject", "f_frame")
        else:
            r["gen_frame"] = self.m("PyGenObject", "gi_frame")
        for name in ("leftblock", "rightblock", "leftindex", "rightindex"):
            r["deque_" + name] = self.m("dequeobject", name)
        r["block_data"] = self.m("block", "data")
        r["block_rightlink"] = self.m("block", "rightlink")

    def provenance(self):
        i = self.info
        src = "DWARF of %s" % self.module
        if self.twin:
            twin, n = self.twin
            src = ("stripped, so %s's DWARF,\n *       all %d offsets and sizes found equal "
                   "with its headers (offsetof, internal/ included)" % (twin.info["version"], n))
        return [" *   %s %s (%s, build-id %s):" % (i["version"], self.python,
                                                   os.path.basename(self.module), self.build_id),
                " *     offsets: %s;" % src,
                " *     macros: %s; pymalloc: pool %d, header %d, threshold %d "
                "(sys._debugmallocstats())" % (i["include"], self.pool["size"],
                                               self.pool["header"], self.pool["threshold"])]


def main():
    if len(sys.argv) < 2:
        die("usage: gen_cpython_offsets.py PYTHON... > daemon/cpython_offsets.h")
    facts = [Facts(p) for p in sys.argv[1:]]
    for f in facts:
        if f.got is None:
            twins = [t for t in facts if t.got and t.twin is None and
                     t.info["minor"] == f.info["minor"]]
            if not twins:
                die("%s has no DWARF and no DWARF build of 3.%d was given"
                    % (f.python, f.info["minor"]))
            f.adopt(twins[0])
    rows = {}
    for f in facts:
        r = f.row()
        if r["minor"] in rows and rows[r["minor"]] != r:
            die("two 3.%d interpreters disagree: %r %r" % (r["minor"], rows[r["minor"]], r))
        rows[r["minor"]] = r
    consts = []
    for name, where, get in CONSTANTS:
        vals = {f.python: get(f) for f in facts}
        if len(set(vals.values())) != 1:
            die("%s differs between interpreters: %r" % (name, vals))
        consts.append((name, where, vals[facts[0].python]))

    out = ["/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */",
           "/*",
           " * Generated by tools/gen_cpython_offsets.py (make gen-offsets); do not edit.",
           " * CPython struct offsets per minor version, x86-64, from these interpreters:"]
    for f in facts:
        out += f.provenance()
    out += [" * The _Static_asserts check bpf/cpython.h against the same interpreters.",
            " */",
            "#ifndef PYLEAK_CPYTHON_OFFSETS_H",
            "#define PYLEAK_CPYTHON_OFFSETS_H",
            "",
            "#include <stddef.h>",
            "#include <stdint.h>",
            "",
            '#include "cpython.h"',
            ""]
    for name, where, v in consts:
        out.append('_Static_assert(%s == %d, "%s of every interpreter above");'
                   % (name, v, where))
    out += ["", "/* Offsets are in bytes; 0 where a version has no such field. */",
            "struct cpython_offsets {"]
    for name, ctype, comment in COLUMNS:
        out.append("\t%s %s;\t/* %s */" % (ctype, name, comment))
    out += ["};", "", "static const struct cpython_offsets cpython_offsets_table[] = {"]
    for minor in sorted(rows):
        r = rows[minor]
        fields = [".%s = %s" % (name, hex(r[name]) if name.startswith(("preheader_flags", "tpflags_")) else r[name])
                  for name, _, _ in COLUMNS if name in r]
        line, lines = "\t{", []
        for fld in fields:
            if len(line) + len(fld) + 2 > 96:
                lines.append(line.rstrip())
                line = "\t  "
            line += " " + fld + ","
        lines.append(line.rstrip(",") + " },")
        out += lines
    out += ["};",
            "",
            "/* The row of CPython major.minor; NULL if none. */",
            "static inline const struct cpython_offsets *cpython_offsets_find(int major, int minor)",
            "{",
            "\tsize_t i;",
            "",
            "\tfor (i = 0; major == 3 && i < sizeof(cpython_offsets_table) /",
            "\t\t\t\t       sizeof(cpython_offsets_table[0]); i++)",
            "\t\tif (cpython_offsets_table[i].minor == minor)",
            "\t\t\treturn &cpython_offsets_table[i];",
            "\treturn NULL;",
            "}",
            "",
            "#endif /* PYLEAK_CPYTHON_OFFSETS_H */"]
    print("\n".join(out))


if __name__ == "__main__":
    main()
