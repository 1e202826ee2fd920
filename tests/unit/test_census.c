// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Pool validation and used-block listing of the census, on synthetic pymalloc pools. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "census.h"

#define POOL_ADDR	0x7f1234560000ull	/* aligned to every pool size tested */
#define BIG		16384u
#define SMALL		4096u
#define MAX_BLOCK	512u

static uint8_t pool[CENSUS_POOL_MAX] __attribute__((aligned(16)));
static uint32_t offsets[CENSUS_POOL_MAX / 16];

static void put32(uint32_t off, uint32_t v)
{
	memcpy(pool + off, &v, sizeof(v));
}

static void put64(uint32_t off, uint64_t v)
{
	memcpy(pool + off, &v, sizeof(v));
}

/* Writes a header: blocks of size, touched blocks handed out so far, free list head. */
static void pool_init(uint32_t pool_size, uint32_t size, uint32_t touched, uint32_t count,
		      uint64_t freeblock)
{
	memset(pool, 0xa5, sizeof(pool));
	put32(0, count);
	put32(4, 0);
	put64(8, freeblock);
	put64(16, 0);
	put64(24, 0);
	put32(32, 7);
	put32(36, size / 16 - 1);
	put32(40, 48 + touched * size);
	put32(44, pool_size - size);
}

static uint64_t block_addr(uint32_t size, uint32_t i)
{
	return POOL_ADDR + 48 + (uint64_t)i * size;
}

/* Links the given blocks into a free list, in order, and makes the header point at it. */
static void free_list_set(uint32_t size, const uint32_t *blocks, size_t n)
{
	size_t i;

	put64(8, n ? block_addr(size, blocks[0]) : 0);
	for (i = 0; i < n; i++)
		put64(48 + blocks[i] * size, i + 1 < n ? block_addr(size, blocks[i + 1]) : 0);
}

static int used(uint32_t pool_size, uint32_t *size)
{
	return census_pool_used_blocks(pool, POOL_ADDR, pool_size, MAX_BLOCK, size, offsets);
}

static void test_fresh_pool(void **state)
{
	uint32_t size = 0;

	(void)state;
	/* as pymalloc leaves a new pool: first block handed out, second on the free list */
	pool_init(BIG, 64, 2, 1, block_addr(64, 1));
	put64(48 + 64, 0);
	assert_int_equal(used(BIG, &size), 1);
	assert_int_equal(size, 64);
	assert_int_equal(offsets[0], 48);
}

static void test_full_pool(void **state)
{
	uint32_t size = 0, n = (BIG - 48) / 16, i;

	(void)state;
	pool_init(BIG, 16, n, n, 0);
	assert_int_equal(used(BIG, &size), n);
	for (i = 0; i < n; i++)
		assert_int_equal(offsets[i], 48 + i * 16);
}

static void test_free_list_excluded(void **state)
{
	static const uint32_t freed[] = { 5, 2, 9, 7 };
	static const uint32_t expect[] = { 0, 1, 3, 4, 6, 8 };
	uint32_t size = 0, i;

	(void)state;
	pool_init(BIG, 48, 10, 6, 0);
	free_list_set(48, freed, 4);
	assert_int_equal(used(BIG, &size), 6);
	assert_int_equal(size, 48);
	for (i = 0; i < 6; i++)
		assert_int_equal(offsets[i], 48 + expect[i] * 48);
}

static void test_empty_pool(void **state)
{
	static const uint32_t freed[] = { 0, 1, 2 };
	uint32_t size = 0;

	(void)state;
	pool_init(BIG, 512, 3, 0, 0);
	free_list_set(512, freed, 3);
	assert_int_equal(used(BIG, &size), 0);
}

static void test_small_pool(void **state)
{
	static const uint32_t freed[] = { 3 };
	uint32_t size = 0, n = (SMALL - 48) / 32;

	(void)state;
	/* 3.8/3.9: 4 KiB pools; blocks do not fill the pool exactly */
	pool_init(SMALL, 32, n, n - 1, 0);
	free_list_set(32, freed, 1);
	assert_int_equal(used(SMALL, &size), n - 1);
	assert_int_equal(offsets[2], 48 + 2 * 32);
	assert_int_equal(offsets[3], 48 + 4 * 32);
	/* the same bytes are no 16 KiB pool */
	assert_int_equal(used(BIG, &size), -EINVAL);
}

static void test_not_a_pool(void **state)
{
	uint32_t size;

	(void)state;
	memset(pool, 0, sizeof(pool));
	assert_int_equal(used(BIG, &size), -EINVAL);

	pool_init(BIG, 64, 4, 4, 0);
	put32(44, BIG - 48);			/* maxnextoffset of another size */
	assert_int_equal(used(BIG, &size), -EINVAL);

	pool_init(BIG, 64, 4, 4, 0);
	put32(40, 48 + 4 * 64 + 16);		/* nextoffset off a block boundary */
	assert_int_equal(used(BIG, &size), -EINVAL);

	pool_init(BIG, 64, 4, 4, 0);
	put32(40, BIG + 64);			/* nextoffset past the pool */
	assert_int_equal(used(BIG, &size), -EINVAL);

	pool_init(BIG, 64, 4, 4, 0);
	put32(40, 48);				/* no block handed out: never a live pool */
	assert_int_equal(used(BIG, &size), -EINVAL);

	pool_init(BIG, 528, 4, 4, 0);		/* size class above max_block */
	assert_int_equal(used(BIG, &size), -EINVAL);

	pool_init(BIG, 64, 4, 3, POOL_ADDR + BIG + 48);	/* free list head outside the pool */
	assert_int_equal(used(BIG, &size), -EINVAL);
}

static void test_bad_arguments(void **state)
{
	uint32_t size;

	(void)state;
	pool_init(BIG, 64, 4, 4, 0);
	assert_int_equal(census_pool_used_blocks(pool, POOL_ADDR + SMALL, BIG, MAX_BLOCK, &size,
						 offsets), -EINVAL);
	assert_int_equal(census_pool_used_blocks(pool, POOL_ADDR, BIG + 1, MAX_BLOCK, &size,
						 offsets), -EINVAL);
	assert_int_equal(census_pool_used_blocks(pool, POOL_ADDR, BIG, 24, &size, offsets),
			 -EINVAL);
}

static void test_inconsistent(void **state)
{
	static const uint32_t freed[] = { 1, 3 };
	uint32_t size;

	(void)state;
	pool_init(BIG, 32, 6, 5, 0);		/* count disagrees with the free list */
	free_list_set(32, freed, 2);
	assert_int_equal(used(BIG, &size), -EAGAIN);

	pool_init(BIG, 32, 6, 4, 0);		/* free list loops */
	free_list_set(32, freed, 2);
	put64(48 + 3 * 32, block_addr(32, 1));
	assert_int_equal(used(BIG, &size), -EAGAIN);

	pool_init(BIG, 32, 6, 4, 0);		/* link past the touched blocks */
	free_list_set(32, freed, 2);
	put64(48 + 3 * 32, block_addr(32, 6));
	assert_int_equal(used(BIG, &size), -EAGAIN);

	pool_init(BIG, 32, 6, 4, 0);		/* link off a block boundary */
	free_list_set(32, freed, 2);
	put64(48 + 3 * 32, block_addr(32, 4) + 8);
	assert_int_equal(used(BIG, &size), -EAGAIN);

	pool_init(BIG, 32, 6, 5, POOL_ADDR + 16);	/* head into the pool header */
	assert_int_equal(used(BIG, &size), -EAGAIN);

	pool_init(BIG, 32, 6, 4, 0);		/* link leaves the pool */
	free_list_set(32, freed, 2);
	put64(48 + 3 * 32, 0x1000);
	assert_int_equal(used(BIG, &size), -EAGAIN);
}

/* A ready type object with these fields (refcount 1, named), as census_type_check reads it. */
static int type_check(int64_t basicsize, int64_t itemsize, int64_t dictoffset, uint64_t name,
		      const char **why)
{
	uint8_t raw[CENSUS_TYPE_LEN] = {0};
	struct census_type t;
	uint64_t one = 1, flags = 1ull << 12;

	memcpy(raw, &one, 8);
	memcpy(raw + 24, &name, 8);
	memcpy(raw + 32, &basicsize, 8);
	memcpy(raw + 40, &itemsize, 8);
	memcpy(raw + 168, &flags, 8);
	memcpy(raw + 288, &dictoffset, 8);
	return census_type_check(raw, sizeof(raw), &t, why);
}

static void test_type_fields_out_of_range(void **state)
{
	const char *why;

	(void)state;
	assert_int_equal(type_check(48, 0, 32, 0x400000, &why), 0);
	assert_int_equal(type_check(48, 0, -1, 0x400000, &why), 0);
	/* the sum with an offset used to wrap: reported, never used */
	assert_int_equal(type_check(48, 0, 0x7ffffffffffffff9, 0x400000, &why), -ERANGE);
	assert_string_equal(why, "tp_dictoffset");
	assert_int_equal(type_check(48, 0, 48, 0x400000, &why), -ERANGE);
	assert_int_equal(type_check(-16, 0, 0, 0x400000, &why), -ERANGE);
	assert_string_equal(why, "tp_basicsize");
	assert_int_equal(type_check(48, 1ll << 62, 0, 0x400000, &why), -ERANGE);
	assert_string_equal(why, "tp_itemsize");
	assert_int_equal(type_check(48, 0, 0, 0x10, &why), -ERANGE);
	assert_string_equal(why, "tp_name");
	assert_int_equal(type_check(48, 0, 0, 0, &why), -EINVAL);
}

/* An object outside pymalloc: refcount 1, a type, then the word at +16. */
static int object_parse(int64_t itemsize, enum census_kind kind, uint64_t word16,
			struct census_object *obj)
{
	struct census_type ty = { .basicsize = 48, .itemsize = itemsize };
	uint8_t raw[CENSUS_OBJECT_LEN] = { 1 };

	memcpy(raw + 8, &(uint64_t){ 0x7f0000002000ull }, 8);
	memcpy(raw + 16, &word16, 8);
	return census_object_parse(raw, sizeof(raw), 0x7f0000001000ull, &ty, kind, 0, obj);
}

static void test_object_sizes(void **state)
{
	struct census_object obj;

	(void)state;
	/* a fixed-size object's word at +16 is a field (3.8-3.10: an instance's __dict__) */
	assert_int_equal(object_parse(0, CENSUS_KIND_OTHER, 0x7f00deadbee0ull, &obj), 0);
	assert_int_equal(obj.bytes, 48);
	/* a variable-size one's is its size; a negative int's carries its sign */
	assert_int_equal(object_parse(4, CENSUS_KIND_OTHER, -3ull, &obj), 0);
	assert_int_equal(obj.bytes, 60);
	assert_int_equal(object_parse(4, CENSUS_KIND_OTHER, 1ull << 45, &obj), -ERANGE);
	assert_int_equal(obj.bytes, 48);
	/* a list's length is checked though its itemsize is 0; its items are elsewhere */
	assert_int_equal(object_parse(0, CENSUS_KIND_LIST, 1ull << 45, &obj), -ERANGE);
	assert_int_equal(object_parse(0, CENSUS_KIND_LIST, 5, &obj), 0);
	assert_int_equal(obj.bytes, 48);
	assert_int_equal(obj.nitems, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_pool),
		cmocka_unit_test(test_full_pool),
		cmocka_unit_test(test_free_list_excluded),
		cmocka_unit_test(test_empty_pool),
		cmocka_unit_test(test_small_pool),
		cmocka_unit_test(test_not_a_pool),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_inconsistent),
		cmocka_unit_test(test_type_fields_out_of_range),
		cmocka_unit_test(test_object_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
