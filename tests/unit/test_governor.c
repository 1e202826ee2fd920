// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The overhead governor's control law on made-up intervals with known answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "governor.h"

#define MS 1000000ull	/* ns */

/* One 1 s interval in which the probes cost cost_ms of the target's CPU second. */
static bool step(struct governor *g, uint64_t *cost, double *cpu, uint64_t cost_ms, bool adjustable)
{
	*cost += cost_ms * MS;
	*cpu += 1.0;
	return governor_update(g, *cost, *cpu, adjustable);
}

/* The first interval only sets the baseline: no ratio, no change. */
static void test_first_interval_is_a_baseline(void **state)
{
	struct governor g = { .budget = 0.01 };

	(void)state;
	assert_false(governor_update(&g, 50 * MS, 3.0, true));
	assert_int_equal(g.page_mask, 0);
	assert_true(g.ratio == 0);
}

/* Over budget: the sampling rate halves each interval, up to the cap; each halving counts. */
static void test_over_budget_halves_to_the_cap(void **state)
{
	struct governor g = { .budget = 0.01 };
	uint64_t cost = 0;
	double cpu = 1.0;
	int i;

	(void)state;
	governor_update(&g, cost, cpu, true);
	assert_true(step(&g, &cost, &cpu, 50, true));
	assert_int_equal(g.page_mask, 1);
	assert_true(g.ratio > 0.049 && g.ratio < 0.051);
	assert_true(step(&g, &cost, &cpu, 50, true));
	assert_int_equal(g.page_mask, 3);
	for (i = 0; i < 20; i++)
		step(&g, &cost, &cpu, 50, true);
	assert_int_equal(g.page_mask, GOVERNOR_PAGE_MASK_MAX);
	assert_int_equal(g.throttles, 12);
	assert_false(step(&g, &cost, &cpu, 50, true));
}

/* Well under budget (< 1/4 of it): the rate doubles back; in between it holds. */
static void test_under_budget_recovers_with_hysteresis(void **state)
{
	struct governor g = { .budget = 0.01, .page_mask = 7 };
	uint64_t cost = 0;
	double cpu = 1.0;

	(void)state;
	governor_update(&g, cost, cpu, true);
	assert_false(step(&g, &cost, &cpu, 5, true));	/* 0.5%: within [budget/4, budget] */
	assert_int_equal(g.page_mask, 7);
	assert_false(g.over);
	assert_true(step(&g, &cost, &cpu, 1, true));	/* 0.1% */
	assert_int_equal(g.page_mask, 3);
	step(&g, &cost, &cpu, 1, true);
	step(&g, &cost, &cpu, 1, true);
	assert_int_equal(g.page_mask, 0);
	assert_false(step(&g, &cost, &cpu, 0, true));
	assert_int_equal(g.throttles, 0);
}

/* No budget, a mode that cannot be thinned, an unreadable or idle target: measured only. */
static void test_measures_without_acting(void **state)
{
	struct governor unlimited = { .budget = 0 }, fixed = { .budget = 0.01 };
	struct governor idle = { .budget = 0.01 };
	uint64_t c1 = 0, c2 = 0;
	double p1 = 1.0, p2 = 1.0;

	(void)state;
	governor_update(&unlimited, c1, p1, true);
	assert_false(step(&unlimited, &c1, &p1, 500, true));
	assert_true(unlimited.ratio > 0.49);
	governor_update(&fixed, c2, p2, false);
	assert_false(step(&fixed, &c2, &p2, 500, false));
	assert_int_equal(fixed.page_mask, 0);
	assert_true(fixed.ratio > 0.49);
	assert_true(fixed.over);	/* what makes a precise target fall back (sampler.c) */
	assert_false(unlimited.over);
	assert_false(governor_update(&idle, 10 * MS, -1, true));
	assert_int_equal(idle.cost_ns, 10 * MS);
	governor_update(&idle, 10 * MS, 2.0, true);
	assert_false(governor_update(&idle, 900 * MS, 2.0, true));	/* no CPU time passed */
	assert_int_equal(idle.page_mask, 0);
	assert_false(idle.over);	/* an interval that measured nothing is not over budget */
}

/* A cost read lower than the last (a program's info unreadable) is skipped, not a wrap to a
 * huge ratio; the next good read is measured from the last good one. */
static void test_cost_drop_is_skipped(void **state)
{
	struct governor g = { .budget = 0.01 };

	(void)state;
	governor_update(&g, 100 * MS, 1.0, true);
	assert_false(governor_update(&g, 0, 2.0, true));
	assert_false(g.over);
	assert_int_equal(g.cost_ns, 100 * MS);
	governor_update(&g, 101 * MS, 3.0, true);
	assert_true(g.ratio > 0.0004 && g.ratio < 0.0006);	/* 1 ms over 2 s */
	assert_false(g.over);
}

/* Over budget is sustained only after GOVERNOR_OVER_STREAK intervals in a row; one under
 * resets the streak; too little CPU time extends the interval instead of judging it. */
static void test_sustained_needs_a_streak(void **state)
{
	struct governor g = { .budget = 0.01 };
	uint64_t cost = 0;
	double cpu = 1.0;
	int i;

	(void)state;
	governor_update(&g, cost, cpu, false);
	for (i = 1; i < GOVERNOR_OVER_STREAK; i++) {
		step(&g, &cost, &cpu, 50, false);
		assert_true(g.over);
		assert_false(g.sustained);
	}
	step(&g, &cost, &cpu, 0, false);
	assert_false(g.over);
	assert_int_equal(g.over_streak, 0);
	for (i = 0; i < GOVERNOR_OVER_STREAK; i++)
		step(&g, &cost, &cpu, 50, false);
	assert_true(g.sustained);
	/* 10 ms of CPU: not judged, the over_streak stays */
	cost += 5 * MS;
	assert_false(governor_update(&g, cost, cpu + 0.01, false));
	assert_false(g.over);
	assert_true(g.sustained);
	assert_true(g.cpu_s == cpu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_interval_is_a_baseline),
		cmocka_unit_test(test_over_budget_halves_to_the_cap),
		cmocka_unit_test(test_under_budget_recovers_with_hysteresis),
		cmocka_unit_test(test_measures_without_acting),
		cmocka_unit_test(test_cost_drop_is_skipped),
		cmocka_unit_test(test_sustained_needs_a_streak),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
