// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Type rows across a fall back from precise to sampled mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "rows.h"

/* An address no type object is at: unreadable, so neither named nor a heap type. */
#define TYPE 0x1000

/* Precise mode's listed-only census rows (no history) are judged after a fall back. */
static void test_listed_only_judged_after_fall_back(void **state)
{
	struct census_count cc = { .type = TYPE, .count = 1000, .complete = true };
	struct census c = { .counts = &cc, .n = 1 };
	struct rows rs = { .pid = getpid() };

	(void)state;
	rows_update_census_unprobed(&rs, &c, NULL, 0, 256);
	assert_int_equal(rs.n, 1);
	assert_true(rs.v[0].listed_only);
	rows_history_record(&rs, 1.0);
	assert_null(rs.v[0].hist);

	rows_drop_probed(&rs);	/* the fall back */
	rows_update_census_all(&rs, &c, 256);
	assert_int_equal(rs.n, 1);
	assert_false(rs.v[0].listed_only);
	rows_history_record(&rs, 2.0);
	assert_non_null(rs.v[0].hist);
	rows_free(&rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listed_only_judged_after_fall_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
