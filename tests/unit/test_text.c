// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Strings from a target made valid UTF-8: what passes, what becomes '?'. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "text.h"

static void check(const char *in, const char *want)
{
	char buf[64];

	strcpy(buf, in);
	text_utf8_fix(buf);
	assert_string_equal(buf, want);
}

static void test_valid_kept(void **state)
{
	(void)state;
	check("Segmenter", "Segmenter");
	check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d");
	check("", "");
}

static void test_invalid_replaced(void **state)
{
	(void)state;
	check("a\xff" "b", "a?b");				/* never a lead byte */
	check("\xc3", "?");					/* cut short by the end */
	check("\xc3(x", "?(x");					/* bad continuation */
	check("\xc0\xaf", "??");				/* overlong '/' */
	check("\xe0\x80\xaf", "???");				/* overlong, 3 bytes */
	check("\xed\xa0\x80", "???");				/* a surrogate */
	check("\xf4\x90\x80\x80", "????");			/* past U+10FFFF */
	check("\x80\x80ok", "??ok");				/* stray continuations */
	check("\xe2\x82", "??");				/* truncated euro sign */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_kept),
		cmocka_unit_test(test_invalid_replaced),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
