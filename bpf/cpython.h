/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * CPython facts that are the same on every supported interpreter (3.8-3.13, x86-64), for BPF
 * and the daemon alike: plain integer constants, no types, no libc.  What differs between
 * versions is generated from DWARF into daemon/cpython_offsets.h by tools/gen_cpython_offsets.py,
 * which also checks the values below against each interpreter (its _Static_asserts fail the
 * build if this file and the interpreters disagree); only CPY_PREHEADER_SIZE and the cookie
 * are taken from the sources named, unchecked.  "DWARF" below means the debug info of the
 * pyenv builds 3.8.18-3.13.0; "headers" their Include/ (and Debian 3.11.2's, same values).
 */
#ifndef PYLEAK_CPYTHON_H
#define PYLEAK_CPYTHON_H

/* PyObject / PyVarObject (DWARF). */
#define CPY_OB_TYPE		8	/* PyObject.ob_type */
#define CPY_OB_SIZE		16	/* PyVarObject.ob_size */

/* PyTypeObject (DWARF; 3.13's _Py_DebugOffsets agrees for tp_name and tp_flags). */
#define CPY_TP_NAME		24
#define CPY_TP_BASICSIZE	32
#define CPY_TP_ITEMSIZE		40
#define CPY_TP_DEALLOC		48
#define CPY_TP_FLAGS		168
#define CPY_TP_DICTOFFSET	288

/* tp_flags bits (headers: Include/object.h).  Which bits add a pre-header varies: generated. */
#define CPY_TPFLAGS_HEAPTYPE		(1ull << 9)
#define CPY_TPFLAGS_READY		(1ull << 12)
#define CPY_TPFLAGS_HAVE_GC		(1ull << 14)
#define CPY_TPFLAGS_TYPE_SUBCLASS	(1ull << 31)

/* Memory before a GC object: PyGC_Head (DWARF), and on 3.11+ two more words for objects whose
 * type has a pre-header flag (dict/values, weakref/dict: _PyType_PreHeaderSize in
 * Include/internal/pycore_object.h of 3.12/3.13, _PyObject_ManagedDictPointer in 3.11's). */
#define CPY_GC_HEAD_SIZE	16
#define CPY_PREHEADER_SIZE	16

/* pymalloc: sizeof(struct pool_header) (DWARF of Objects/obmalloc.c; measured on every
 * interpreter, Debian's too, from sys._debugmallocstats()), and the largest request it serves
 * (SMALL_REQUEST_THRESHOLD, same measurement).  Pool sizes vary: generated. */
#define CPY_POOL_HEADER_SIZE	48u
#define CPY_POOL_SZIDX		36	/* u32 size class: blocks of (szidx + 1) * 16 bytes */
#define CPY_POOL_NEXTOFFSET	40	/* u32, then u32 maxnextoffset */
#define CPY_SMALL_REQUEST_MAX	512u

/* PyListObject (DWARF). */
#define CPY_LIST_ITEMS		24	/* ob_item */
#define CPY_LIST_ALLOCATED	32

/* PyTupleObject (DWARF). */
#define CPY_TUPLE_ITEMS		24	/* ob_item[] */

/* str: PyASCIIObject (DWARF; state bit positions from its bitfields).  Where the characters
 * start varies (the wstr pointer went in 3.12): generated. */
#define CPY_STR_LENGTH		16
#define CPY_STR_STATE		32
#define CPY_STR_KIND_SHIFT	2	/* state.kind: 1, 2 or 4 bytes per character */
#define CPY_STR_KIND_MASK	7
#define CPY_STR_COMPACT		(1u << 5)
#define CPY_STR_ASCII		(1u << 6)

/* bytes: PyBytesObject (DWARF). */
#define CPY_BYTES_SIZE		16	/* ob_base.ob_size */
#define CPY_BYTES_DATA		32	/* ob_sval */

/* 3.13+: _PyRuntime begins with _Py_DebugOffsets, which begins with this cookie
 * (Include/internal/pycore_runtime.h). */
#define CPY_DEBUG_COOKIE	"xdebugpy"
#define CPY_DEBUG_COOKIE_LEN	8

#endif
