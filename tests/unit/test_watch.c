// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Watch rules: what parses, what matches, and that exclude wins. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "watch.h"

static const struct watch_proc py311 = {
	.exe = "/usr/bin/python3.11", .cmdline = "/usr/bin/python3 /srv/app/worker.py --queue q1",
	.unit = "worker.service", .container = NULL,
};

static const struct watch_proc boxed = {
	.exe = "/opt/py/bin/python3.12", .cmdline = "python3.12 app.py", .unit = NULL,
	.container = "4f1c2a9b8e7d6c5b4f1c2a9b8e7d6c5b4f1c2a9b8e7d6c5b4f1c2a9b8e7d6c5b",
};

static void test_parse(void **state)
{
	struct watch_rule r;
	char text[WATCH_GLOB_MAX + 16], big[WATCH_GLOB_MAX + 8];

	(void)state;
	assert_int_equal(watch_rule_parse("all", &r), 0);
	assert_int_equal(r.key, WATCH_ALL);
	assert_int_equal(watch_rule_parse("exe:*python3.1*", &r), 0);
	assert_int_equal(r.key, WATCH_EXE);
	assert_string_equal(r.glob, "*python3.1*");
	watch_rule_format(&r, text, sizeof(text));
	assert_string_equal(text, "exe:*python3.1*");
	assert_int_equal(watch_rule_parse("cmdline:*worker*", &r), 0);
	assert_int_equal(r.key, WATCH_CMDLINE);
	assert_int_equal(watch_rule_parse("unit:*.service", &r), 0);
	assert_int_equal(r.key, WATCH_UNIT);
	assert_int_equal(watch_rule_parse("container:4f1c*", &r), 0);
	assert_int_equal(r.key, WATCH_CONTAINER);
	/* a ':' in the pattern is the pattern's */
	assert_int_equal(watch_rule_parse("cmdline:a:b", &r), 0);
	assert_string_equal(r.glob, "a:b");

	assert_int_equal(watch_rule_parse("", &r), -EINVAL);
	assert_int_equal(watch_rule_parse("alL", &r), -EINVAL);
	assert_int_equal(watch_rule_parse("all:", &r), -EINVAL);
	assert_int_equal(watch_rule_parse("exe:", &r), -EINVAL);
	assert_int_equal(watch_rule_parse("exe", &r), -EINVAL);
	assert_int_equal(watch_rule_parse("ex:*", &r), -EINVAL);
	assert_int_equal(watch_rule_parse("exec:*", &r), -EINVAL);
	assert_int_equal(watch_rule_parse(":*", &r), -EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "exe:", 4);
	assert_int_equal(watch_rule_parse(big, &r), -EINVAL);
	big[WATCH_GLOB_MAX + 3] = '\0';	/* 4 + 255 chars: the longest that fits */
	assert_int_equal(watch_rule_parse(big, &r), 0);
}

static void test_match(void **state)
{
	struct watch_rules r = {};

	(void)state;
	assert_int_equal(watch_match(&r, &py311), WATCH_NONE);	/* no rule: nothing */
	assert_int_equal(watch_rules_add(&r, false, "exe:*python3.12"), 0);
	assert_int_equal(watch_rules_add(&r, false, "cmdline:*worker.py*"), 0);
	assert_int_equal(watch_match(&r, &py311), 1);
	assert_int_equal(watch_match(&r, &boxed), 0);
	/* '*' crosses '/' */
	memset(&r, 0, sizeof(r));
	assert_int_equal(watch_rules_add(&r, false, "exe:*python3.1*"), 0);
	assert_int_equal(watch_match(&r, &py311), 0);
	memset(&r, 0, sizeof(r));
	assert_int_equal(watch_rules_add(&r, false, "unit:worker.service"), 0);
	assert_int_equal(watch_rules_add(&r, false, "container:4f1c2a9b8e7d*"), 0);
	assert_int_equal(watch_match(&r, &py311), 0);
	assert_int_equal(watch_match(&r, &boxed), 1);
	/* an unknown field matches no rule on it */
	memset(&r, 0, sizeof(r));
	assert_int_equal(watch_rules_add(&r, false, "unit:*"), 0);
	assert_int_equal(watch_match(&r, &boxed), WATCH_NONE);
	assert_int_equal(watch_match(&r, &py311), 0);
}

static void test_exclude_wins(void **state)
{
	struct watch_rules r = {};

	(void)state;
	assert_int_equal(watch_rules_add(&r, false, "all"), 0);
	assert_int_equal(watch_match(&r, &py311), 0);
	assert_int_equal(watch_rules_add(&r, true, "cmdline:*--queue q1*"), 0);
	assert_int_equal(watch_match(&r, &py311), WATCH_EXCLUDED);
	assert_int_equal(watch_match(&r, &boxed), 0);
	assert_int_equal(watch_rules_add(&r, true, "container:*"), 0);
	assert_int_equal(watch_match(&r, &boxed), WATCH_EXCLUDED);
	/* an exclude rule alone watches nothing */
	memset(&r, 0, sizeof(r));
	assert_int_equal(watch_rules_add(&r, true, "exe:/nothing"), 0);
	assert_int_equal(watch_match(&r, &py311), WATCH_NONE);
}

static void test_bounded(void **state)
{
	struct watch_rules r = {};
	int i;

	(void)state;
	for (i = 0; i < WATCH_RULES_MAX; i++)
		assert_int_equal(watch_rules_add(&r, false, "all"), 0);
	assert_int_equal(watch_rules_add(&r, false, "all"), -E2BIG);
	assert_int_equal(watch_rules_add(&r, true, "bad"), -EINVAL);
	assert_int_equal(r.nexclude, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_exclude_wins),
		cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
