// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The reference walk over deques: a block chain that loops back is not followed around, and a
 * long deque spans calls within each call's budget, every item counted once.  The heaps are
 * fuzz_refwalk's seeds (tests/fuzz/make_refwalk_seeds.py), one per interpreter row.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../fuzz/fake_heap.h"

#define SEEDS	"tests/fuzz/corpus/refwalk/"
#define SEED_MAX	(1u << 20)
#define DEQUE_LONG_ITEMS	(40u * 64u)	/* make_refwalk_seeds.py's, all the Wanted object */
#define CALLS_MAX	10000

/* The seed's heap and its interpreter row's layout, as fuzz_refwalk.c lays them out; the
 * buffer that holds them, for the caller to free. */
static uint8_t *seed_load(const char *name, struct fake_heap *f, struct refwalk_layout *l)
{
	char path[256];
	uint8_t *buf;
	size_t got;
	FILE *fp;

	snprintf(path, sizeof(path), SEEDS "%s", name);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	buf = malloc(SEED_MAX);
	assert_non_null(buf);
	got = fread(buf, 1, SEED_MAX, fp);
	fclose(fp);
	assert_true(got > 1 && got < SEED_MAX);
	fake_heap_init(buf, got, f, l);
	return buf;
}

/* Runs the walk to its end, call after call; how many calls. */
static int walk_finish(struct refwalk *w, struct fake_heap *f)
{
	int ret, calls = 0;

	while ((ret = refwalk_run(w, fake_heap_readv, f, 0)) == -EAGAIN && calls < CALLS_MAX)
		calls++;
	assert_int_equal(ret, 0);
	assert_true(refwalk_stats(w)->complete);
	return calls + 1;
}

static const char *const minors[] = { "3.8", "3.9", "3.10", "3.11", "3.12", "3.13" };

/* One block linked to itself, 2^26 - 1 items said: its items are read once, not 2^20 times
 * around (512 MiB read); the loop counts as corrupt. */
static void test_deque_cycle(void **state)
{
	struct refwalk_limits lim = { .max_nodes = 4096, .max_bytes = 1 << 20, .max_seconds = 10 };
	struct refwalk_layout l;
	struct refwalk *w;
	struct fake_heap f;
	uint8_t *heap;
	char name[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
		snprintf(name, sizeof(name), "deque-cycle-%s", minors[i]);
		heap = seed_load(name, &f, &l);
		assert_int_equal(refwalk_new(&l, &lim, "Wanted", &w), 0);
		walk_finish(w, &f);
		assert_true(refwalk_stats(w)->bytes < (1u << 20));
		assert_true(refwalk_stats(w)->corrupt >= 1);
		refwalk_free(w);
		free(heap);
	}
}

/* 40 blocks of 64 items (20 KiB) with 4 KiB read per call, the budget asked every 16 blocks:
 * the deque spans 3 calls (in one, it was read whole), and each of its items is counted once,
 * none twice on resuming. */
static void test_deque_long_resumes(void **state)
{
	struct refwalk_limits lim = { .max_nodes = 4096, .max_bytes = 4 << 10, .max_seconds = 10 };
	struct refwalk_group groups[8];
	struct refwalk_layout l;
	struct refwalk *w;
	struct fake_heap f;
	uint8_t *heap;
	char name[64];
	size_t i, g, ng;
	bool found;
	int calls;

	(void)state;
	for (i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
		snprintf(name, sizeof(name), "deque-long-%s", minors[i]);
		heap = seed_load(name, &f, &l);
		assert_int_equal(refwalk_new(&l, &lim, "Wanted", &w), 0);
		calls = walk_finish(w, &f);
		assert_true(calls >= 3);
		ng = refwalk_groups(w, groups, 8);
		for (g = 0, found = false; g < ng; g++)
			found |= groups[g].count == DEQUE_LONG_ITEMS;
		assert_true(found);
		assert_int_equal(refwalk_stats(w)->corrupt, 0);
		refwalk_free(w);
		free(heap);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deque_cycle),
		cmocka_unit_test(test_deque_long_resumes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
