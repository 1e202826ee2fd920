// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * daemon/linetable.c on line tables of real interpreters (linetable_vectors.h,
 * from tests/unit/gen_linetable.py: every offset's line as the interpreter's
 * own PyCode_Addr2Line gives it), then on truncated, mutated, random and
 * hand-built hostile tables. Tables are copied to heap buffers of their exact
 * size so that a sanitizer build catches any read past len.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "linetable.h"
#include "linetable_vectors.h"

#define NPYTHONS (sizeof(lt_pythons) / sizeof(lt_pythons[0]))

/* A heap copy of exactly n bytes (NULL for n == 0), for ASan to guard. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q;

	if (n == 0)
		return NULL;
	q = malloc(n);
	assert_non_null(q);
	memcpy(q, p, n);
	return q;
}

static int line_at(const struct lt_vector *v, const uint8_t *t, size_t len, uint32_t off)
{
	return linetable_line(v->fmt, t, len, v->firstlineno, off);
}

/* Every vector of one interpreter: each listed offset, and the odd byte
 * after each even one inside the code (same code unit, same line). */
static void test_python(void **state)
{
	const struct lt_python *py = *state;
	size_t checked = 0, bad = 0;

	for (size_t i = 0; i < py->n; i++) {
		const struct lt_vector *v = &py->vectors[i];
		uint8_t *t = dup_exact(v->table, v->len);

		for (size_t k = 0; k < v->npairs; k++) {
			const struct lt_pair *p = &v->pairs[k];
			int got = line_at(v, t, v->len, p->offset);

			checked++;
			if (got != p->line) {
				print_error("%s %s +%u: got %d, want %d\n", py->version,
					    v->name, p->offset, got, p->line);
				bad++;
			}
			if (p->offset + 1 < v->code_len) {
				got = line_at(v, t, v->len, p->offset + 1);
				if (got != p->line) {
					print_error("%s %s +%u: got %d, want %d\n", py->version,
						    v->name, p->offset + 1, got, p->line);
					bad++;
				}
			}
		}
		free(t);
	}
	print_message("%s: %zu code objects, %zu offsets\n", py->version, py->n, checked);
	assert_int_equal(bad, 0);
}

/*
 * Every prefix of every real table, at every offset. 3.10+ tables are a
 * sequence of ranges, so a prefix either still holds the whole range of an
 * offset (same line) or says nothing (-1). A co_lnotab prefix just stops the
 * line early: any line, or -1, will do.
 */
static void test_truncated(void **state)
{
	(void)state;
	for (size_t p = 0; p < NPYTHONS; p++) {
		for (size_t i = 0; i < lt_pythons[p].n; i++) {
			const struct lt_vector *v = &lt_pythons[p].vectors[i];

			for (size_t cut = 0; cut < v->len; cut++) {
				uint8_t *t = dup_exact(v->table, cut);

				for (size_t k = 0; k < v->npairs; k++) {
					int got = line_at(v, t, cut, v->pairs[k].offset);

					assert_true(got >= -1);
					if (v->fmt != LINETABLE_LNOTAB && got != -1)
						assert_int_equal(got, v->pairs[k].line);
				}
				free(t);
			}
		}
	}
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static uint32_t rnd_offset(void)
{
	switch (rnd() % 4) {
	case 0: return UINT32_MAX - rnd() % 16;
	case 1: return rnd();
	default: return rnd() % 1024;
	}
}

/* Real tables with bytes overwritten, and read in the other formats. */
static void test_mutated(void **state)
{
	(void)state;
	for (size_t p = 0; p < NPYTHONS; p++) {
		for (size_t i = 0; i < lt_pythons[p].n; i++) {
			const struct lt_vector *v = &lt_pythons[p].vectors[i];

			if (v->len == 0)
				continue;
			for (int round = 0; round < 200; round++) {
				uint8_t *t = dup_exact(v->table, v->len);
				int nflips = 1 + rnd() % 4;

				for (int f = 0; f < nflips; f++)
					t[rnd() % v->len] = (uint8_t)rnd();
				for (int fmt = LINETABLE_LNOTAB; fmt <= LINETABLE_LOCATIONS; fmt++)
					for (int q = 0; q < 8; q++)
						assert_true(linetable_line(fmt, t, v->len, v->firstlineno,
									   rnd_offset()) >= -1);
				free(t);
			}
		}
	}
}

/* Random bytes of random sizes, random first lines (INT_MIN, INT_MAX too). */
static void test_garbage(void **state)
{
	static const int firsts[] = { 0, 1, 100, -1, INT_MAX, INT_MIN, INT_MAX - 127 };
	uint8_t buf[256];

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t len = rnd() % sizeof(buf);
		uint8_t *t;

		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)rnd();
		/* Mostly entry-like bytes for 3.11+ now and then. */
		if (round % 3 == 0)
			for (size_t k = 0; k < len; k++)
				buf[k] |= (rnd() % 3 == 0) ? 0x80 : 0;
		t = dup_exact(buf, len);
		for (int fmt = LINETABLE_LNOTAB; fmt <= LINETABLE_LOCATIONS; fmt++) {
			int first = firsts[rnd() % (sizeof(firsts) / sizeof(firsts[0]))];

			for (int q = 0; q < 4; q++) {
				int got = linetable_line(fmt, t, len, first, rnd_offset());

				assert_true(got >= -1);
			}
		}
		free(t);
	}
	/* An unknown format gives nothing. */
	assert_int_equal(linetable_line((enum linetable_format)7, buf, 16, 1, 0), -1);
}

static int lt(enum linetable_format fmt, const uint8_t *bytes, size_t len, int first, uint32_t off)
{
	uint8_t *t = dup_exact(bytes, len);
	int line = linetable_line(fmt, t, len, first, off);

	free(t);
	return line;
}

static void test_empty(void **state)
{
	static const uint8_t one[] = { 0x02 };

	(void)state;
	/* An empty co_lnotab puts every offset on the first line (lambdas). */
	assert_int_equal(lt(LINETABLE_LNOTAB, NULL, 0, 7, 0), 7);
	assert_int_equal(lt(LINETABLE_LNOTAB, NULL, 0, 7, 1000), 7);
	assert_int_equal(lt(LINETABLE_LNOTAB, one, 1, 7, 4), 7);
	assert_int_equal(lt(LINETABLE_310, NULL, 0, 7, 0), -1);
	assert_int_equal(lt(LINETABLE_310, one, 1, 7, 0), -1);
	assert_int_equal(lt(LINETABLE_LOCATIONS, NULL, 0, 7, 0), -1);
	/* A NULL table is an empty one, whatever len says. */
	assert_int_equal(linetable_line(LINETABLE_LNOTAB, NULL, 100, 7, 0), 7);
	assert_int_equal(linetable_line(LINETABLE_310, NULL, 100, 7, 0), -1);
	assert_int_equal(linetable_line(LINETABLE_LOCATIONS, NULL, 100, 7, 0), -1);
}

static void test_lnotab(void **state)
{
	/* lnotab_notes.txt's example: 0->1, 6->2, 50->7, 350->207, 361->208 */
	static const uint8_t notes[] = { 6, 1, 44, 5, 255, 0, 45, 127, 0, 73, 11, 1 };
	static const uint8_t neg[] = { 4, 2, 4, 0xfd };		/* +2 then -3 */
	static const uint8_t odd[] = { 4, 2, 4 };
	static const uint8_t below[] = { 2, 0xfe };		/* 1 - 2 = -1 */
	static const uint8_t above[] = { 2, 1 };

	(void)state;
	assert_int_equal(lt(LINETABLE_LNOTAB, notes, sizeof(notes), 1, 0), 1);
	assert_int_equal(lt(LINETABLE_LNOTAB, notes, sizeof(notes), 1, 5), 1);
	assert_int_equal(lt(LINETABLE_LNOTAB, notes, sizeof(notes), 1, 6), 2);
	assert_int_equal(lt(LINETABLE_LNOTAB, notes, sizeof(notes), 1, 49), 2);
	assert_int_equal(lt(LINETABLE_LNOTAB, notes, sizeof(notes), 1, 50), 7);
	assert_int_equal(lt(LINETABLE_LNOTAB, notes, sizeof(notes), 1, 304), 7);
	assert_int_equal(lt(LINETABLE_LNOTAB, notes, sizeof(notes), 1, 349), 7);
	assert_int_equal(lt(LINETABLE_LNOTAB, notes, sizeof(notes), 1, 350), 207);
	assert_int_equal(lt(LINETABLE_LNOTAB, notes, sizeof(notes), 1, 360), 207);
	assert_int_equal(lt(LINETABLE_LNOTAB, notes, sizeof(notes), 1, 361), 208);
	assert_int_equal(lt(LINETABLE_LNOTAB, notes, sizeof(notes), 1, UINT32_MAX), 208);

	assert_int_equal(lt(LINETABLE_LNOTAB, neg, sizeof(neg), 10, 0), 10);
	assert_int_equal(lt(LINETABLE_LNOTAB, neg, sizeof(neg), 10, 4), 12);
	assert_int_equal(lt(LINETABLE_LNOTAB, neg, sizeof(neg), 10, 8), 9);
	/* A trailing odd byte is ignored, as CPython does. */
	assert_int_equal(lt(LINETABLE_LNOTAB, odd, sizeof(odd), 10, 100), 12);
	/* Lines that add up to no line. */
	assert_int_equal(lt(LINETABLE_LNOTAB, below, sizeof(below), 1, 2), -1);
	assert_int_equal(lt(LINETABLE_LNOTAB, above, sizeof(above), INT_MAX, 0), INT_MAX);
	assert_int_equal(lt(LINETABLE_LNOTAB, above, sizeof(above), INT_MAX, 2), -1);
	assert_int_equal(lt(LINETABLE_LNOTAB, NULL, 0, -5, 0), -1);
}

static void test_310(void **state)
{
	/* +264 lines in zero-width pairs, then 4 bytes; a no-line range; back. */
	static const uint8_t t[] = {
		0, 127, 0, 127, 4, 10,		/* [0,4): first + 264 */
		6, 0x80,			/* [4,10): none, line kept */
		254, 1,				/* [10,264): first + 265 */
		2, 0x80 | 0x01,			/* [264,266): first + 265 - 127 */
	};

	(void)state;
	assert_int_equal(lt(LINETABLE_310, t, sizeof(t), 5, 0), 269);
	assert_int_equal(lt(LINETABLE_310, t, sizeof(t), 5, 3), 269);
	assert_int_equal(lt(LINETABLE_310, t, sizeof(t), 5, 4), -1);
	assert_int_equal(lt(LINETABLE_310, t, sizeof(t), 5, 9), -1);
	assert_int_equal(lt(LINETABLE_310, t, sizeof(t), 5, 10), 270);
	assert_int_equal(lt(LINETABLE_310, t, sizeof(t), 5, 263), 270);
	assert_int_equal(lt(LINETABLE_310, t, sizeof(t), 5, 264), 143);
	assert_int_equal(lt(LINETABLE_310, t, sizeof(t), 5, 265), 143);
	assert_int_equal(lt(LINETABLE_310, t, sizeof(t), 5, 266), -1);
	assert_int_equal(lt(LINETABLE_310, t, sizeof(t), 5, UINT32_MAX), -1);
	/* Trailing zero-width pairs cover nothing. */
	assert_int_equal(lt(LINETABLE_310, t, 4, 5, 0), -1);
	/* Odd length: the last byte is ignored. */
	assert_int_equal(lt(LINETABLE_310, t, 7, 5, 4), -1);
	assert_int_equal(lt(LINETABLE_310, t, 7, 5, 3), 269);
	/* Lines beyond int. */
	assert_int_equal(lt(LINETABLE_310, t, sizeof(t), INT_MAX - 200, 0), -1);
}

/* First byte of a 3.11+ entry: code, code units. */
#define E(code, units) (uint8_t)(0x80 | (code) << 3 | ((units) - 1))

static void test_locations(void **state)
{
	static const uint8_t t[] = {
		E(13, 1), 0x07,				/* [0,2): 10 - 3 = 7 (svarint 7) */
		E(0, 8), 0x12,				/* [2,18): short form, 7 */
		E(12, 2), 4, 9,				/* [18,22): one-line +2: 9 */
		E(15, 3),				/* [22,28): no location */
		E(11, 1), 0, 1,				/* [28,30): one-line +1: 10 */
		E(14, 1), 0x40 | 0x04, 0x04, 0, 5, 6,	/* [30,32): long +130: 140 */
		E(14, 2), 0x45, 0x03, 0, 1, 2,		/* [32,36): long -98: 42 */
		E(9, 1), 0x7f,				/* [36,38): short, 42 */
		E(10, 1), 1, 2,				/* [38,40): one-line +0: 42 */
	};
	static const struct { uint32_t off; int line; } want[] = {
		{ 0, 7 }, { 1, 7 }, { 2, 7 }, { 17, 7 }, { 18, 9 }, { 21, 9 },
		{ 22, -1 }, { 27, -1 }, { 28, 10 }, { 29, 10 }, { 30, 140 },
		{ 32, 42 }, { 35, 42 }, { 36, 42 }, { 38, 42 }, { 39, 42 },
		{ 40, -1 }, { UINT32_MAX, -1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(lt(LINETABLE_LOCATIONS, t, sizeof(t), 10, want[i].off),
				 want[i].line);
	/* Cut inside the first long entry's line varint: nothing from it on. */
	assert_int_equal(lt(LINETABLE_LOCATIONS, t, 13, 10, 28), 10);
	assert_int_equal(lt(LINETABLE_LOCATIONS, t, 13, 10, 30), -1);
	assert_int_equal(lt(LINETABLE_LOCATIONS, t, 13, 10, 32), -1);
	/* Cut after its line but before its columns: the line is known. */
	assert_int_equal(lt(LINETABLE_LOCATIONS, t, 14, 10, 30), 140);
	/* Cut after a first byte alone (its column bytes missing). */
	assert_int_equal(lt(LINETABLE_LOCATIONS, t, 3, 10, 2), 7);
	assert_int_equal(lt(LINETABLE_LOCATIONS, t, 5, 10, 18), 9);
}

static void test_locations_hostile(void **state)
{
	/* A first byte that starts no entry. */
	static const uint8_t nostart[] = { 0x08, E(0, 1), 0 };
	/* Varints: 6 bytes is the most (36 bits); 7 is malformed. */
	static const uint8_t six[] = { E(13, 1), 0x40, 0x40, 0x40, 0x40, 0x40, 0x02 };
	static const uint8_t seven[] = { E(13, 1), 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x02 };
	/* A varint running into the next entry, or off the end. */
	static const uint8_t runs_in[] = { E(14, 1), 0x44, E(0, 1), 0 };
	static const uint8_t runs_off[] = { E(13, 1), 0x44 };
	static const uint8_t no_varint[] = { E(13, 1) };
	/* Lines beyond int, below 0. */
	static const uint8_t big[] = { E(13, 1), 0x40, 0x40, 0x40, 0x40, 0x40, 0x0f };
	static const uint8_t below[] = { E(13, 1), 0x03 };	/* -1 */

	(void)state;
	assert_int_equal(lt(LINETABLE_LOCATIONS, nostart, sizeof(nostart), 1, 0), -1);
	assert_int_equal(lt(LINETABLE_LOCATIONS, nostart, sizeof(nostart), 1, 2), -1);
	assert_int_equal(lt(LINETABLE_LOCATIONS, six, sizeof(six), 0, 0), 1 << 30);
	assert_int_equal(lt(LINETABLE_LOCATIONS, seven, sizeof(seven), 0, 0), -1);
	assert_int_equal(lt(LINETABLE_LOCATIONS, runs_in, sizeof(runs_in), 1, 0), -1);
	assert_int_equal(lt(LINETABLE_LOCATIONS, runs_in, sizeof(runs_in), 1, 2), -1);
	assert_int_equal(lt(LINETABLE_LOCATIONS, runs_off, sizeof(runs_off), 1, 0), -1);
	assert_int_equal(lt(LINETABLE_LOCATIONS, no_varint, sizeof(no_varint), 1, 0), -1);
	assert_int_equal(lt(LINETABLE_LOCATIONS, big, sizeof(big), 0, 0), -1);
	assert_int_equal(lt(LINETABLE_LOCATIONS, below, sizeof(below), 1, 0), 0);
	assert_int_equal(lt(LINETABLE_LOCATIONS, below, sizeof(below), 0, 0), -1);
	assert_int_equal(lt(LINETABLE_LOCATIONS, below, sizeof(below), INT_MIN, 0), -1);
}

/*
 * Tables far longer than real ones whose line sums would overflow an int
 * (over 2^31 / 127 pairs): still -1 or a valid line, in one pass.
 */
static void test_huge(void **state)
{
	size_t len = (size_t)40 << 20;
	uint8_t *t = malloc(len);

	(void)state;
	assert_non_null(t);
	for (size_t i = 0; i + 1 < len; i += 2) {
		t[i] = 0;
		t[i + 1] = 0x7f;
	}
	/* co_lnotab: 20M * 127 lines past any int */
	assert_int_equal(linetable_line(LINETABLE_LNOTAB, t, len, 1, 0), -1);
	/* 3.10: zero-width pairs cover nothing; the last pair does */
	assert_int_equal(linetable_line(LINETABLE_310, t, len, 1, 0), -1);
	t[len - 2] = 2;
	assert_int_equal(linetable_line(LINETABLE_310, t, len, 1, 0), -1);
	/* 3.11+: long entries of +2^34 lines each */
	for (size_t i = 0; i + 7 <= len; i += 7) {
		static const uint8_t e[] = { E(14, 1), 0x40, 0x40, 0x40, 0x40, 0x40, 0x3f };

		memcpy(t + i, e, sizeof(e));
	}
	assert_int_equal(linetable_line(LINETABLE_LOCATIONS, t, len - len % 7, 1, 0), -1);
	assert_int_equal(linetable_line(LINETABLE_LOCATIONS, t, len - len % 7, 1, 1000000), -1);
	free(t);
}

int main(void)
{
	struct CMUnitTest tests[NPYTHONS + 9] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_lnotab),
		cmocka_unit_test(test_310),
		cmocka_unit_test(test_locations),
		cmocka_unit_test(test_locations_hostile),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_mutated),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_huge),
	};

	/* One named test per interpreter. */
	for (size_t i = 0; i < NPYTHONS; i++)
		tests[9 + i] = (struct CMUnitTest){
			.name = lt_pythons[i].version,
			.test_func = test_python,
			.initial_state = (void *)&lt_pythons[i],
		};
	return _cmocka_run_group_tests("linetable", tests, NPYTHONS + 9, NULL, NULL);
}
