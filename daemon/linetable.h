/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Source line of a bytecode offset from a CPython code object's line table,
 * for CPython 3.8-3.13, decoded from bytes copied out of the target process
 * (no Python headers, nothing trusted: every read is bounded by len).
 */
#ifndef PYLEAK_LINETABLE_H
#define PYLEAK_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

enum linetable_format {
	LINETABLE_LNOTAB,	/* 3.8, 3.9: co_lnotab (byte delta, signed line delta) pairs */
	LINETABLE_310,		/* 3.10: co_linetable (byte delta, line delta; -128 = no line) */
	LINETABLE_LOCATIONS,	/* 3.11+: co_linetable, the PEP 657 location table */
};

/*
 * Source line of the instruction at byte offset `offset` in the code (bytes,
 * not code units), or -1 if the table gives none or is malformed. firstlineno
 * is co_firstlineno.
 *
 * Matches PyCode_Addr2Line() of the matching CPython on every table CPython
 * writes. Where they differ, on tables CPython never writes: a line that adds
 * up to a negative number or beyond INT_MAX gives -1, as does a 3.11+ table
 * whose first byte does not start an entry or whose line delta varint runs
 * out or is longer than 6 bytes; a trailing odd byte of a 3.8-3.10 table is
 * ignored. As in CPython, 3.8/3.9 give the last line for offsets past the
 * end of the table (an empty co_lnotab means every offset is on
 * firstlineno), 3.10+ give -1.
 */
int linetable_line(enum linetable_format fmt, const uint8_t *table, size_t len,
		   int firstlineno, uint32_t offset);

#endif /* PYLEAK_LINETABLE_H */
