// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Leak scoring on synthetic series with known answers: leaks, churn, sawtooth, cyclic GC. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "history.h"

static struct history h;
static uint64_t rng = 88172645463325252ull;

static uint64_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void push(double t, int64_t live, uint64_t deaths, uint64_t gc_deaths)
{
	struct history_sample s = { .t = t, .live = live, .deaths = deaths, .gc_deaths = gc_deaths };

	history_push(&h, &s);
}

static int setup(void **state)
{
	(void)state;
	memset(&h, 0, sizeof(h));
	return 0;
}

/* wordsegment: +178,758 every 2 s task, sampled every 2 s. */
static void test_staircase_is_a_leak(void **state)
{
	struct leak_score sc;
	int i;

	(void)state;
	for (i = 0; i <= 30; i++)
		push(i * 2.0, 100000 + (int64_t)(i / 1) * 178758, 0, 0);
	assert_int_equal(history_score(&h, 60.0, 60.0, &sc), 0);
	assert_true(sc.score >= 0.99);
	assert_true(sc.growth_per_min > 0.95 * 178758 * 30 && sc.growth_per_min < 1.05 * 178758 * 30);
	/* Every floor rose over the one before: none fell back to the first. */
	assert_int_equal(sc.rising, sc.segments - 1);
	assert_non_null(strstr(sc.evidence, "never falling back"));
}

/* Grows, drops back to where it began once (a cache cleared), grows again: still rising in 8
 * of 9 intervals and scored as growth, but the evidence must not claim it never fell back. */
static void test_floor_falling_back_is_said(void **state)
{
	static const int64_t floors[10] = { 1000, 2000, 3000, 4000, 5000, 1000, 7000, 8000, 9000,
					     10000 };
	struct leak_score sc;
	int i;

	(void)state;
	/* 30 samples: 10 segments of 3, each at its floor. */
	for (i = 0; i < 30; i++)
		push(i, floors[i / 3], 0, 0);
	assert_int_equal(history_score(&h, 29, 29, &sc), 0);
	assert_int_equal(sc.segments, 10);
	assert_int_equal(sc.rising, 8);
	assert_true(sc.growth_score >= 0.5);
	assert_null(strstr(sc.evidence, "never falling back"));
	assert_non_null(strstr(sc.evidence, "fell back to where the window began"));
}

/* A flat working set under heavy churn: whatever is in flight at sample time. */
static void test_churn_is_not_a_leak(void **state)
{
	struct leak_score sc;
	int trial, i, high = 0;

	(void)state;
	for (trial = 0; trial < 500; trial++) {
		memset(&h, 0, sizeof(h));
		for (i = 0; i < 150; i++)
			push(i * 2.0, 50000 + (int64_t)(xorshift() % 20000), i * 100000ull, 0);
		assert_int_equal(history_score(&h, 300.0, 300.0, &sc), 0);
		high += sc.score >= 0.5;
	}
	/* Random floors rising by chance: t > 4 in under 1% of windows. */
	assert_true(high <= 5);
}

/* Garbage that builds up between collections and is freed by each: a sawtooth, no leak. */
static void test_gc_sawtooth_is_cyclic_not_leak(void **state)
{
	struct leak_score sc;
	uint64_t deaths = 0;
	int i;

	(void)state;
	for (i = 0; i < 60; i++) {
		deaths += 4000;
		push(i * 1.0, 2000 + (i % 7) * 600, deaths, deaths - deaths / 100);
	}
	assert_int_equal(history_score(&h, 60.0, 60.0, &sc), 0);
	assert_true(sc.growth_score < 0.5);
	assert_true(sc.gc_fraction > 0.95);
	assert_true(sc.score > 0.4 && sc.score <= 0.45);
	assert_non_null(strstr(sc.evidence, "cyclic garbage"));
}

/* Sampled mode sees deaths in short windows only: a window with few of them takes the type's
 * fraction since attach. Census samples land anywhere on the collector's sawtooth: floors that
 * drift up by less than a tooth are not growth. */
static void test_sawtooth_drift_within_a_tooth(void **state)
{
	struct leak_score sc;
	int i;

	(void)state;
	push(0.0, 500, 400, 400);	/* an earlier window: 400 deaths, all in collections */
	for (i = 1; i <= 60; i++)
		push(100.0 + i * 2.0, 100 + (i % 7) * 200 + i * 2, 400 + i / 10, 400 + i / 10);
	assert_int_equal(history_score(&h, 220.0, 120.0, &sc), 0);
	assert_true(sc.deaths < 20);
	assert_true(sc.gc_fraction > 0.99);
	assert_true(sc.growth_score == 0);
	assert_true(sc.score <= 0.45);
	assert_non_null(strstr(sc.evidence, "sawtooth"));
}

/* The same seen through censuses a few samples apart: values repeat, and a tooth shows only
 * as its fall. */
static void test_sawtooth_between_censuses(void **state)
{
	struct leak_score sc;
	uint64_t deaths = 0;
	int i;

	(void)state;
	for (i = 0; i < 60; i++) {
		int c = i / 6;	/* a census every 6 samples */

		if (i % 6 == 0)
			deaths += 300;
		push(i * 2.0, 20 * c + (c % 3 == 2 ? 300 : 0), deaths, deaths);
	}
	assert_int_equal(history_score(&h, 120.0, 120.0, &sc), 0);
	assert_true(sc.gc_fraction > 0.99);
	assert_true(sc.growth_score == 0);
	assert_non_null(strstr(sc.evidence, "sawtooth"));
}

/* Censuses far apart alias the sawtooth into a slow ramp that never shows its fall; what a
 * window saw the collector free at once is the height of a tooth. */
static void test_aliased_sawtooth(void **state)
{
	struct leak_score sc;
	uint64_t gc = 0;
	int i;

	(void)state;
	h.census = true;
	for (i = 0; i < 60; i++) {
		if (i % 10 == 5)
			gc += 400;	/* a window saw a collection free 400 */
		push(i * 2.0, 100 + i * 4, gc, gc);
	}
	assert_int_equal(history_score(&h, 120.0, 120.0, &sc), 0);
	assert_true(sc.gc_fraction > 0.99);
	assert_true(sc.growth_score == 0);
	assert_non_null(strstr(sc.evidence, "sawtooth"));
}

/* Cyclic garbage that outgrows its teeth is growth all the same. */
static void test_cyclic_growth_beyond_a_tooth(void **state)
{
	struct leak_score sc;
	uint64_t deaths = 0;
	int i;

	(void)state;
	for (i = 0; i < 60; i++) {
		deaths += 100;
		push(i * 2.0, 1000 + (i % 7) * 100 + i * 200, deaths, deaths);
	}
	assert_int_equal(history_score(&h, 120.0, 120.0, &sc), 0);
	assert_true(sc.gc_fraction > 0.99);
	assert_true(sc.growth_score >= 0.5);
}

/* Three objects a second kept for ever, amid heavy churn of the same type (up to 1,000 in
 * flight at a sample). */
static void test_slow_leak_amid_churn(void **state)
{
	struct leak_score sc;
	int i;

	(void)state;
	for (i = 0; i < 150; i++)
		push(i * 2.0, 80000 + 3 * 2 * i + (int64_t)(xorshift() % 1000), i * 50000ull, 0);
	assert_int_equal(history_score(&h, 300.0, 300.0, &sc), 0);
	assert_true(sc.score >= 0.5);
	assert_true(sc.growth_per_min > 120 && sc.growth_per_min < 240);
}

/* Cyclic garbage grows until a collection frees it, and collections can be minutes apart. */
static void test_growth_before_collections_is_pending(void **state)
{
	struct leak_score sc;
	int i;

	(void)state;
	/* One collection freed some early on, then none for the rest of the window. */
	for (i = 0; i < 30; i++)
		push(i, 1000 + 20 * i, i ? 1000 : 0, i ? 990 : 0);
	assert_int_equal(history_score(&h, 29, 40, &sc), 0);
	assert_true(sc.score < 0.5);
	assert_non_null(strstr(sc.evidence, "too few"));
	/* The same growth, surviving a collection every 5 s: a leak of objects in cycles. */
	memset(&h, 0, sizeof(h));
	for (i = 0; i < 30; i++)
		push(i, 1000 + 20 * i, 1000 * (i / 5), 990 * (i / 5));
	assert_int_equal(history_score(&h, 29, 40, &sc), 0);
	assert_true(sc.score >= 0.99);
}

static void test_plateau_is_not_a_leak(void **state)
{
	struct leak_score sc;
	int i;

	(void)state;
	/* Grows for a while, then stays: a cache that filled up. */
	for (i = 0; i < 60; i++)
		push(i * 1.0, i < 10 ? 1000 + i * 500 : 6000, 0, 0);
	assert_int_equal(history_score(&h, 59.0, 50.0, &sc), 0);
	assert_true(sc.score < 0.5);
}

static void test_few_samples_never_score(void **state)
{
	struct leak_score sc;
	int i;

	(void)state;
	for (i = 0; i < 11; i++)
		push(i, i * 1000, 0, 0);
	assert_int_equal(history_score(&h, 10, 20, &sc), 0);
	assert_true(sc.score == 0);
	push(11, 11000, 0, 0);
	assert_int_equal(history_score(&h, 11, 20, &sc), 0);
	assert_true(sc.score >= 0.99);
	/* Twelve samples, but 11 s of a 100 s window: too soon. */
	assert_int_equal(history_score(&h, 11, 100, &sc), 0);
	assert_true(sc.score == 0);
	assert_non_null(strstr(sc.evidence, "too soon"));
}

static void test_needs_three_samples_in_window(void **state)
{
	struct leak_score sc;

	(void)state;
	push(0, 1, 0, 0);
	push(100, 2, 0, 0);
	push(101, 3, 0, 0);
	assert_int_equal(history_score(&h, 101, 10, &sc), -ENODATA);
	assert_int_equal(history_score(&h, 101, 200, &sc), 0);
}

static void test_ring_keeps_the_newest(void **state)
{
	struct leak_score sc;
	int i;

	(void)state;
	for (i = 0; i < 3 * HISTORY_CAP; i++)
		push(i, i, 0, 0);
	assert_int_equal(h.n, HISTORY_CAP);
	assert_int_equal(history_score(&h, 3 * HISTORY_CAP - 1, 1e9, &sc), 0);
	assert_int_equal(sc.samples, HISTORY_CAP);
	assert_int_equal(sc.last, 3 * HISTORY_CAP - 1);
	assert_int_equal(sc.first, 2 * HISTORY_CAP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_staircase_is_a_leak, setup),
		cmocka_unit_test_setup(test_floor_falling_back_is_said, setup),
		cmocka_unit_test_setup(test_churn_is_not_a_leak, setup),
		cmocka_unit_test_setup(test_gc_sawtooth_is_cyclic_not_leak, setup),
		cmocka_unit_test_setup(test_sawtooth_drift_within_a_tooth, setup),
		cmocka_unit_test_setup(test_sawtooth_between_censuses, setup),
		cmocka_unit_test_setup(test_aliased_sawtooth, setup),
		cmocka_unit_test_setup(test_cyclic_growth_beyond_a_tooth, setup),
		cmocka_unit_test_setup(test_slow_leak_amid_churn, setup),
		cmocka_unit_test_setup(test_growth_before_collections_is_pending, setup),
		cmocka_unit_test_setup(test_plateau_is_not_a_leak, setup),
		cmocka_unit_test_setup(test_few_samples_never_score, setup),
		cmocka_unit_test_setup(test_needs_three_samples_in_window, setup),
		cmocka_unit_test_setup(test_ring_keeps_the_newest, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
