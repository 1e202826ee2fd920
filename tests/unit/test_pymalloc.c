// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * daemon/pymalloc.c and the unwind table reader (ehframe.c) on the real interpreters: the
 * pool initialiser found by its code must be the function the pyenv builds' symbol tables
 * name allocate_from_new_pool, and Debian's stripped python3.11 (3.11.2) must have one too.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "elf.h"
#include "pymalloc.h"

static struct elf_file *open_or_skip(const char *path)
{
	struct elf_file *ef;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		skip();
	assert_int_equal(elf_file_open(fd, &ef), 0);
	return ef;
}

static void check_pyenv(const char *path)
{
	uint64_t sym, sym_size, start, size, fstart, fsize;
	struct elf_file *ef = open_or_skip(path);

	assert_int_equal(elf_file_symbol(ef, "allocate_from_new_pool", &sym, &sym_size), 0);
	assert_int_equal(pymalloc_pool_init_shape(ef, &start, &size), 0);
	assert_int_equal(start, sym);
	assert_int_equal(size, sym_size);
	/* every byte of it maps to it; the byte after does not */
	assert_int_equal(elf_file_func_bounds(ef, sym + sym_size - 1, &fstart, &fsize), 0);
	assert_int_equal(fstart, sym);
	assert_int_not_equal(elf_file_func_bounds(ef, sym + sym_size, &fstart, &fsize) == 0 &&
			     fstart == sym, 1);
	elf_file_close(ef);
}

static void test_pyenv_310(void **state) { (void)state; check_pyenv("/root/.pyenv/versions/3.10.13/lib/libpython3.10.so.1.0"); }
static void test_pyenv_311(void **state) { (void)state; check_pyenv("/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"); }
static void test_pyenv_312(void **state) { (void)state; check_pyenv("/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0"); }
static void test_pyenv_313(void **state) { (void)state; check_pyenv("/root/.pyenv/versions/3.13.0/lib/libpython3.13.so.1.0"); }

/* 3.8 inlines the initialiser into pymalloc_alloc, the per-allocation path: not a pool
 * initialiser's shape (its arena is 256 KiB), so never probed as one. */
static void test_pyenv_38_not_found(void **state)
{
	struct elf_file *ef = open_or_skip("/root/.pyenv/versions/3.8.18/lib/libpython3.8.so.1.0");
	uint64_t start, size;

	(void)state;
	assert_int_equal(pymalloc_pool_init_shape(ef, &start, &size), -ENOENT);
	elf_file_close(ef);
}

/* Debian 3.11.2: no symbol; the function at 0x4fb540 (856 bytes, its cold part split off),
 * entered by `push %r13`, called from 171 sites. */
static void test_debian_stripped(void **state)
{
	struct elf_file *ef = open_or_skip("/usr/bin/python3.11");
	uint64_t start, size;

	(void)state;
	assert_int_equal(elf_file_symbol(ef, "allocate_from_new_pool", &start, &size), -ENOENT);
	assert_int_equal(pymalloc_pool_init_find(ef, &start, &size), 0);
	assert_int_equal(start, 0x4fb540);
	assert_int_equal(size, 856);
	assert_int_equal(elf_file_count_calls(ef, start), 171);
	elf_file_close(ef);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pyenv_310),
		cmocka_unit_test(test_pyenv_311),
		cmocka_unit_test(test_pyenv_312),
		cmocka_unit_test(test_pyenv_313),
		cmocka_unit_test(test_pyenv_38_not_found),
		cmocka_unit_test(test_debian_stripped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
