// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Byte sizes in the config (max_maps_memory, max_memory): suffixes, the 16T cap, and values
 * whose shift or strtoull would wrap (17179869185G was 1 GiB, a larger one 0: unlimited). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

static int size_of(const char *key, const char *val, uint64_t *out)
{
	struct server_options o = {};
	int err = config_set(&o, key, val);

	*out = !strcmp(key, "max_memory") ? o.discovery.max_memory_bytes : o.discovery.max_maps_bytes;
	return err;
}

static void accepts(const char *key, const char *val, uint64_t want)
{
	uint64_t v = 1;

	assert_int_equal(size_of(key, val, &v), 0);
	assert_int_equal(v, want);
}

static void refuses(const char *key, const char *val)
{
	uint64_t v;

	assert_int_equal(size_of(key, val, &v), -EINVAL);
}

static void test_sizes(void **state)
{
	static const char *const keys[] = { "max_maps_memory", "max_memory" };
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		accepts(keys[i], "0", 0);
		accepts(keys[i], "4096", 4096);
		accepts(keys[i], "512M", 512ULL << 20);
		accepts(keys[i], "3K", 3072);
		accepts(keys[i], "16384G", 1ULL << 44);
		accepts(keys[i], "17592186044416", 1ULL << 44);
		refuses(keys[i], "16385G");
		refuses(keys[i], "17592186044417");
		/* the shift would wrap: to 1 GiB, to 0 */
		refuses(keys[i], "17179869185G");
		refuses(keys[i], "18014398509481984K");
		/* strtoull's ERANGE (ULLONG_MAX) */
		refuses(keys[i], "99999999999999999999999");
		refuses(keys[i], "99999999999999999999999G");
		refuses(keys[i], "-1");
		refuses(keys[i], " 1");
		refuses(keys[i], "+1");
		refuses(keys[i], "");
		refuses(keys[i], "G");
		refuses(keys[i], "1T");
		refuses(keys[i], "1GG");
		refuses(keys[i], "1g");
	}
}

/* native_sample_bytes: a size, 0 (off) or 4K..1G; native_max_blocks: 1024..2^24. */
static void test_native(void **state)
{
	static const char *const good[] = { "0", "4K", "512K", "1G", "65536" };
	static const uint64_t want[] = { 0, 4096, 512 << 10, 1 << 30, 65536 };
	static const char *const bad[] = { "1", "4095", "1025M", "2G", "-1", "", "1T", "4k" };
	struct server_options o = {};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		o.target.native_sample_bytes = 7;
		assert_int_equal(config_set(&o, "native_sample_bytes", good[i]), 0);
		assert_int_equal(o.target.native_sample_bytes, want[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(config_set(&o, "native_sample_bytes", bad[i]), -EINVAL);
	assert_int_equal(config_set(&o, "native_max_blocks", "1024"), 0);
	assert_int_equal(o.target.native_max_blocks, 1024);
	assert_int_equal(config_set(&o, "native_max_blocks", "16777216"), 0);
	assert_int_equal(config_set(&o, "native_max_blocks", "1023"), -EINVAL);
	assert_int_equal(config_set(&o, "native_max_blocks", "16777217"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_native),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
