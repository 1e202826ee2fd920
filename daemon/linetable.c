// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Line tables of CPython code objects, after PyCode_Addr2Line() in each
 * version's Objects/codeobject.c (formats: Objects/lnotab_notes.txt for
 * 3.8-3.10, Objects/locations.md for 3.11+). Only ever walks forward from
 * the start of the table, so every loop is bounded by len, and sums are kept
 * in 64 bits so that no table, however long or hostile, overflows them.
 */
#include <limits.h>
#include <stdbool.h>

#include "linetable.h"

/* A computed line, or -1 when it cannot be a line (CPython lines are >= 0:
 * 3.12+ puts a module's RESUME on line 0). */
static int line_or_none(int64_t line)
{
	return line >= 0 && line <= INT_MAX ? (int)line : -1;
}

/*
 * 3.8/3.9 co_lnotab: pairs (unsigned byte delta, signed line delta). The
 * line delta of a pair applies from the offset its byte delta leads to, so
 * the line at `offset` is firstlineno plus the line deltas of every pair
 * whose running byte offset is still <= offset.
 */
static int lnotab_line(const uint8_t *t, size_t len, int firstlineno, uint32_t offset)
{
	int64_t line = firstlineno;
	uint64_t addr = 0;

	for (size_t i = 0; i + 1 < len; i += 2) {
		addr += t[i];
		if (addr > offset)
			break;
		line += (int8_t)t[i + 1];
	}
	return line_or_none(line);
}

/*
 * 3.10 co_linetable: pairs (unsigned byte delta, signed line delta), each
 * one the range [end, end + byte delta) on the running line after adding
 * its delta; a line delta of -128 leaves the running line alone and marks
 * the range as having no line. Zero-width pairs only carry line deltas
 * (jumps beyond +-127) and never match.
 */
static int linetable310_line(const uint8_t *t, size_t len, int firstlineno, uint32_t offset)
{
	int64_t line = firstlineno;
	uint64_t end = 0;

	for (size_t i = 0; i + 1 < len; i += 2) {
		uint64_t start = end;
		int8_t ldelta = (int8_t)t[i + 1];

		end += t[i];
		if (ldelta != -128)
			line += ldelta;
		if (start <= offset && offset < end)
			return ldelta == -128 ? -1 : line_or_none(line);
	}
	return -1;
}

/*
 * An unsigned varint of Objects/locations.md: 6 bits a byte, least
 * significant first, bit 6 set on every byte but the last. At most 6 bytes
 * (36 bits, more than any int line delta needs); false if p[0..n) ends first.
 */
static bool read_varint(const uint8_t *p, size_t n, uint64_t *out)
{
	uint64_t val = 0;

	for (size_t k = 0; k < n && k < 6; k++) {
		val |= (uint64_t)(p[k] & 63) << (6 * k);
		if (!(p[k] & 64)) {
			*out = val;
			return true;
		}
	}
	return false;
}

/* Location entry codes, bits 3-6 of an entry's first byte. */
enum {
	LOC_SHORT_MAX = 9,	/* 0-9: short form, same line */
	LOC_ONE_LINE0 = 10,	/* 10-12: one-line form, line delta 0-2 */
	LOC_ONE_LINE2 = 12,
	LOC_NO_COLUMNS = 13,	/* signed varint line delta */
	LOC_LONG = 14,		/* signed varint line delta, then 3 varints */
	LOC_NONE = 15,		/* no location */
};

/*
 * 3.11+ location table: entries, each a first byte with bit 7 set, code in
 * bits 3-6 and (code units - 1) in bits 0-2, then bytes with bit 7 clear.
 * Each entry covers the next (bits 0-2) + 1 code units of 2 bytes. Only the
 * line is decoded; the columns are skipped with the entry.
 */
static int locations_line(const uint8_t *t, size_t len, int firstlineno, uint32_t offset)
{
	int64_t line = firstlineno;
	uint64_t end = 0;
	size_t i = 0;

	if (len > 0 && !(t[0] & 0x80))
		return -1;
	while (i < len) {
		uint8_t first = t[i];
		unsigned code = (first >> 3) & 15;
		uint64_t start = end;
		size_t next = i + 1;

		while (next < len && !(t[next] & 0x80))
			next++;
		end += (uint64_t)((first & 7) + 1) * 2;

		if (code == LOC_LONG || code == LOC_NO_COLUMNS) {
			uint64_t uval;

			if (!read_varint(t + i + 1, next - i - 1, &uval))
				return -1;
			/* svarint: magnitude << 1 | sign */
			line += (uval & 1) ? -(int64_t)(uval >> 1) : (int64_t)(uval >> 1);
		} else if (code >= LOC_ONE_LINE0 && code <= LOC_ONE_LINE2) {
			line += code - LOC_ONE_LINE0;
		}
		/* LOC_NONE and the short forms (0-9) keep the line. */

		if (start <= offset && offset < end)
			return code == LOC_NONE ? -1 : line_or_none(line);
		i = next;
	}
	return -1;
}

int linetable_line(enum linetable_format fmt, const uint8_t *table, size_t len,
		   int firstlineno, uint32_t offset)
{
	if (!table)
		len = 0;
	switch (fmt) {
	case LINETABLE_LNOTAB:
		return lnotab_line(table, len, firstlineno, offset);
	case LINETABLE_310:
		return linetable310_line(table, len, firstlineno, offset);
	case LINETABLE_LOCATIONS:
		return locations_line(table, len, firstlineno, offset);
	}
	return -1;
}
