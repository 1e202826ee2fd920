// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The u64 hash map: insert, lookup, growth, the entry cap, key 0 and iteration. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "u64map.h"

struct value {
	uint64_t a;
	uint32_t b;
	uint8_t c;
};

/* Keys as the daemon sees them: addresses a few pages apart, 8-aligned. */
static uint64_t key_of(size_t i)
{
	return 0x7f0000000000ull + i * 0x1008;
}

static void test_insert_lookup(void **state)
{
	struct u64map *m;
	struct value *v;
	void *slot;

	(void)state;
	assert_int_equal(u64map_new(sizeof(struct value), 8, &m), 0);
	assert_null(u64map_lookup(m, 42));
	assert_int_equal(u64map_insert(m, 42, &slot), 1);
	v = slot;
	/* added values start zero-filled */
	assert_int_equal(v->a, 0);
	assert_int_equal(v->b, 0);
	assert_int_equal(v->c, 0);
	v->a = 7;
	v->c = 3;
	assert_ptr_equal(u64map_lookup(m, 42), v);
	assert_int_equal(u64map_insert(m, 42, &slot), 0);
	assert_ptr_equal(slot, v);
	assert_int_equal(((struct value *)slot)->a, 7);
	assert_int_equal(u64map_count(m), 1);
	assert_null(u64map_lookup(m, 43));
	u64map_free(m);
}

static void test_grow(void **state)
{
	enum { N = 100000 };
	struct u64map *m;
	size_t i;
	void *slot;

	(void)state;
	assert_int_equal(u64map_new(sizeof(uint64_t), N, &m), 0);
	for (i = 0; i < N; i++) {
		assert_int_equal(u64map_insert(m, key_of(i), &slot), 1);
		*(uint64_t *)slot = i;
	}
	assert_int_equal(u64map_count(m), N);
	/* every value survived the moves */
	for (i = 0; i < N; i++) {
		uint64_t *v = u64map_lookup(m, key_of(i));

		assert_non_null(v);
		assert_int_equal(*v, i);
	}
	assert_null(u64map_lookup(m, key_of(N)));
	u64map_free(m);
}

static void test_cap(void **state)
{
	struct u64map *m;
	void *slot;
	size_t i;

	(void)state;
	assert_int_equal(u64map_new(4, 20, &m), 0);
	for (i = 0; i < 19; i++)
		assert_int_equal(u64map_insert(m, i + 1, &slot), 1);
	assert_int_equal(u64map_insert(m, 0, &slot), 1);
	assert_int_equal(u64map_insert(m, 1000, &slot), -E2BIG);
	/* a full map still finds what it holds */
	assert_int_equal(u64map_insert(m, 5, &slot), 0);
	assert_int_equal(u64map_insert(m, 0, &slot), 0);
	assert_int_equal(u64map_count(m), 20);
	assert_null(u64map_lookup(m, 1000));
	u64map_free(m);

	assert_int_equal(u64map_new(4, 0, &m), -EINVAL);
	assert_null(m);
}

static void test_zero_key(void **state)
{
	struct u64map *m;
	void *slot, *zero;
	size_t i;

	(void)state;
	assert_int_equal(u64map_new(sizeof(uint64_t), 1000, &m), 0);
	assert_null(u64map_lookup(m, 0));
	assert_int_equal(u64map_insert(m, 0, &zero), 1);
	*(uint64_t *)zero = 99;
	/* key 0 survives growth */
	for (i = 1; i <= 500; i++)
		assert_int_equal(u64map_insert(m, key_of(i), &slot), 1);
	zero = u64map_lookup(m, 0);
	assert_non_null(zero);
	assert_int_equal(*(uint64_t *)zero, 99);
	assert_int_equal(u64map_count(m), 501);
	u64map_free(m);
}

static void test_iteration(void **state)
{
	enum { N = 1000 };
	static uint8_t seen[N + 1];
	struct u64map *m;
	size_t pos = 0, n = 0, i;
	uint64_t key;
	void *slot;

	(void)state;
	assert_int_equal(u64map_new(sizeof(uint64_t), N + 1, &m), 0);
	assert_false(u64map_next(m, &pos, &key, &slot));
	/* key i + 1 holds i; key 0 holds N */
	for (i = 0; i < N; i++) {
		assert_int_equal(u64map_insert(m, i + 1, &slot), 1);
		*(uint64_t *)slot = i;
	}
	assert_int_equal(u64map_insert(m, 0, &slot), 1);
	*(uint64_t *)slot = N;
	pos = 0;
	while (u64map_next(m, &pos, &key, &slot)) {
		uint64_t v = *(uint64_t *)slot;

		assert_true(v <= N);
		assert_int_equal(key, v == N ? 0 : v + 1);
		assert_int_equal(seen[v], 0);
		seen[v] = 1;
		n++;
	}
	assert_int_equal(n, N + 1);
	/* the end is sticky */
	assert_false(u64map_next(m, &pos, &key, &slot));
	u64map_free(m);
	u64map_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_lookup),
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_zero_key),
		cmocka_unit_test(test_iteration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
