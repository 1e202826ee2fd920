// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* /proc parsing: maps lines (parsed, and read from this process's own maps), stat, fdinfo, status. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "procfs.h"

static void test_map_line(void **state)
{
	struct procfs_map m;

	(void)state;
	assert_int_equal(procfs_map_parse("55a198cc2000-55a198cc8000 r-xp 00002000 fe:00 247498"
					  "                     /usr/bin/head", &m), 0);
	assert_int_equal(m.start, 0x55a198cc2000ull);
	assert_int_equal(m.end, 0x55a198cc8000ull);
	assert_string_equal(m.perms, "r-xp");
	assert_int_equal(m.pgoff, 0x2000);
	assert_int_equal(m.dev_major, 0xfe);
	assert_int_equal(m.dev_minor, 0);
	assert_int_equal(m.inode, 247498);
	assert_string_equal(m.path, "/usr/bin/head");
	assert_false(m.truncated);

	/* anonymous: the kernel ends the line with a space, or not */
	assert_int_equal(procfs_map_parse("7f347bb78000-7f347bb7b000 rw-p 00000000 00:00 0 ", &m), 0);
	assert_string_equal(m.path, "");
	assert_int_equal(m.inode, 0);
	assert_int_equal(procfs_map_parse("7f347bb78000-7f347bb7b000 rw-p 00000000 00:00 0", &m), 0);
	assert_string_equal(m.path, "");

	assert_int_equal(procfs_map_parse("55d119bd8000-55d119c1a000 rw-p 00000000 00:00 0"
					  "                          [heap]", &m), 0);
	assert_string_equal(m.path, "[heap]");
	assert_int_equal(procfs_map_parse("7f0000000000-7f0000001000 rw-p 00000000 00:00 0 "
					  "[anon:cpython obmalloc]", &m), 0);
	assert_string_equal(m.path, "[anon:cpython obmalloc]");

	/* paths are kept as written: inner and trailing spaces, " (deleted)" */
	assert_int_equal(procfs_map_parse("7f0000000000-7f0000001000 r--s 00001000 103:02 12 "
					  "/tmp/a b/lib (deleted)", &m), 0);
	assert_string_equal(m.path, "/tmp/a b/lib (deleted)");
	assert_int_equal(m.dev_major, 0x103);
	assert_int_equal(m.dev_minor, 2);
	assert_int_equal(procfs_map_parse("7f0000000000-7f0000001000 r--p 00000000 08:01 12 /x ",
					  &m), 0);
	assert_string_equal(m.path, "/x ");

	/* the largest values each field takes */
	assert_int_equal(procfs_map_parse("ffffffffff600000-ffffffffffffffff --xp ffffffffffffffff "
					  "fff:fffff 18446744073709551615 [vsyscall]", &m), 0);
	assert_int_equal(m.end, UINT64_MAX);
	assert_int_equal(m.pgoff, UINT64_MAX);
	assert_int_equal(m.inode, UINT64_MAX);
	assert_int_equal(m.dev_major, 0xfff);
	assert_int_equal(m.dev_minor, 0xfffff);
}

static void test_map_line_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"garbage",
		"7f0000000000-7f0000001000",
		"7f0000000000-7f0000001000 rw-p",
		"7f0000000000-7f0000001000 rw-p 00000000 00:00",
		"7f0000000000-7f0000001000 rw-p 00000000 00:00 ",
		"7f0000000000 7f0000001000 rw-p 00000000 00:00 0",
		"7f0000000000-7f0000001000 rwxq 00000000 00:00 0",	/* no such sharing */
		"7f0000000000-7f0000001000 wr-p 00000000 00:00 0",	/* permissions out of order */
		"7f0000000000-7f0000001000 rw- 00000000 00:00 0",
		"7f0000000000-7f0000001000 rw-p 00000000 00-00 0",
		"7f0000000000-7f0000001000 rw-p 00000000 00:00 0x1",
		"7f0000000000-7f0000001000 rw-p 00000000 00:00 12a",
		"7f0000000000-7f0000001000 rw-p -0000001 00:00 0",
		"7F0000000000-7F0000001000 rw-p 00000000 00:00 0",	/* the kernel writes lowercase */
		"7f0000001000-7f0000001000 rw-p 00000000 00:00 0",	/* empty */
		"7f0000002000-7f0000001000 rw-p 00000000 00:00 0",	/* reversed */
		"10000000000000000-10000000000000001 rw-p 00000000 00:00 0",	/* past 64 bits */
		"7f0000000000-7f0000001000 rw-p 00000000 1000:00 0",	/* major past 12 bits */
		"7f0000000000-7f0000001000 rw-p 00000000 00:100000 0",	/* minor past 20 bits */
		"7f0000000000-7f0000001000 rw-p 00000000 00:00 18446744073709551616",
		"7f0000000000-7f0000001000\trw-p 00000000 00:00 0",
	};
	struct procfs_map m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (procfs_map_parse(bad[i], &m) != -EINVAL)
			fail_msg("accepted: \"%s\"", bad[i]);
}

struct mapped {
	void *addr;
	int fd;
};

static struct mapped map_file(const char *path)
{
	struct mapped f;

	f.fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(f.fd >= 0);
	assert_int_equal(ftruncate(f.fd, 4096), 0);
	f.addr = mmap(NULL, 4096, PROT_READ, MAP_SHARED, f.fd, 0);
	assert_true(f.addr != MAP_FAILED);
	return f;
}

/* This process's maps, read as a target's: spaces, a deleted file and a path past PATH_MAX. */
static void test_maps_read(void **state)
{
	enum { DEPTH = 30 };
	char base[] = "/tmp/pyleak-procfs-XXXXXX", dir[64], spaced_path[80], gone_path[64];
	char gone_shown[80], name[201];
	struct mapped spaced, deleted, deep;
	struct procfs_maps *maps;
	struct procfs_map m;
	int seen = 0, i, ret, cwd;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(dir, sizeof(dir), "%s/a b", base);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(spaced_path, sizeof(spaced_path), "%s/lib x.so", dir);
	spaced = map_file(spaced_path);
	snprintf(gone_path, sizeof(gone_path), "%s/gone", base);
	snprintf(gone_shown, sizeof(gone_shown), "%s (deleted)", gone_path);
	deleted = map_file(gone_path);
	assert_int_equal(unlink(gone_path), 0);

	/* 30 levels of 200-byte names: reachable only relatively */
	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(cwd >= 0);
	assert_int_equal(chdir(base), 0);
	memset(name, 'd', 200);
	name[200] = '\0';
	for (i = 0; i < DEPTH; i++) {
		assert_int_equal(mkdir(name, 0700), 0);
		assert_int_equal(chdir(name), 0);
	}
	deep = map_file("f");

	assert_int_equal(procfs_maps_open(getpid(), &maps), 0);
	while ((ret = procfs_maps_next(maps, &m)) > 0) {
		if (m.start == (uintptr_t)spaced.addr) {
			assert_string_equal(m.path, spaced_path);
			assert_false(m.truncated);
			assert_string_equal(m.perms, "r--s");
			seen++;
		} else if (m.start == (uintptr_t)deleted.addr) {
			assert_string_equal(m.path, gone_shown);
			seen++;
		} else if (m.start == (uintptr_t)deep.addr) {
			/* the fields before the path are whole; the path's end is missing */
			assert_true(m.truncated);
			assert_int_equal(m.end, (uintptr_t)deep.addr + 4096);
			assert_int_equal(strncmp(m.path, base, strlen(base)), 0);
			seen++;
		}
	}
	assert_int_equal(ret, 0);
	assert_int_equal(seen, 3);
	procfs_maps_close(maps);

	munmap(deep.addr, 4096);
	close(deep.fd);
	assert_int_equal(unlink("f"), 0);
	for (i = 0; i < DEPTH; i++) {
		assert_int_equal(chdir(".."), 0);
		assert_int_equal(rmdir(name), 0);
	}
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
	munmap(spaced.addr, 4096);
	close(spaced.fd);
	unlink(spaced_path);
	rmdir(dir);
	munmap(deleted.addr, 4096);
	close(deleted.fd);
	rmdir(base);

	assert_int_equal(procfs_maps_open(INT_MAX, &maps), -ESRCH);
	assert_null(maps);
}

static double rusage_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void test_cpu_seconds(void **state)
{
	volatile uint64_t x = 0;
	double before, after, got = -1;
	char comm[16] = "";

	(void)state;
	/* fields look alike inside the command name: only the last ')' ends it */
	prctl(PR_GET_NAME, comm);
	assert_int_equal(prctl(PR_SET_NAME, "a) R 1 2 (b) c"), 0);
	while (rusage_seconds() < 0.3)
		x++;
	before = rusage_seconds();
	assert_int_equal(procfs_cpu_seconds(getpid(), &got), 0);
	after = rusage_seconds();
	/* clock ticks are coarser than rusage */
	assert_true(got > before - 0.05 && got < after + 0.05);
	prctl(PR_SET_NAME, comm);

	assert_int_equal(procfs_cpu_seconds(INT_MAX, &got), -ESRCH);
}

/* Field 22: a process's identity with its pid. */
static void test_start_time(void **state)
{
	static const char stat[] = "42 (a) 9 8 7 (b) S 1 42 42 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 "
				   "1 0 123456789 1000 2 18446744073709551615\n";
	uint64_t t = 0, again = 0;

	(void)state;
	assert_int_equal(procfs_start_time_parse(stat, &t), 0);
	assert_int_equal(t, 123456789);
	assert_int_equal(procfs_start_time_parse("42 (a) S 1 2", &t), -EINVAL);
	assert_int_equal(procfs_start_time_parse("no paren 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 "
						 "17 18 19 20 21 22 23", &t), -EINVAL);
	assert_int_equal(procfs_start_time_parse("1 (a) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 x", &t),
			 -EINVAL);
	assert_int_equal(procfs_start_time(getpid(), &t), 0);
	assert_int_equal(procfs_start_time(getpid(), &again), 0);
	assert_true(t > 0 && t == again);
	assert_int_equal(procfs_start_time(INT_MAX, &t), -ESRCH);
}

static void test_fdinfo(void **state)
{
	char path[] = "/tmp/pyleak-fdinfo-XXXXXX";
	uint64_t v = 1;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(procfs_fdinfo_u64(fd, "pos", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(lseek(fd, 1234, SEEK_SET), 1234);
	assert_int_equal(procfs_fdinfo_u64(fd, "pos", &v), 0);
	assert_int_equal(v, 1234);
	/* whole keys only */
	assert_int_equal(procfs_fdinfo_u64(fd, "po", &v), -ENOENT);
	assert_int_equal(procfs_fdinfo_u64(fd, "memlock", &v), -ENOENT);
	close(fd);
	assert_int_equal(procfs_fdinfo_u64(fd, "pos", &v), -EBADF);
}

/* /proc/PID/status: several ids on one line, a unit after the number, keys that only begin
 * alike, a Name: the process chose. */
static void test_status_keys(void **state)
{
	static const char status[] =
		"Name:\tUid: 0 0 0 0\nUmask:\t0022\nUid:\t1000\t1000\t1001\t1000\n"
		"Gid:\t100\t100\t100\t100\nVmRSSx:\t1\nVmRSS:\t  123456 kB\n";
	uint64_t v[3] = {};

	(void)state;
	assert_int_equal(procfs_key_parse(status, "Uid", v, 3), 0);
	assert_true(v[0] == 1000 && v[1] == 1000 && v[2] == 1001);
	assert_int_equal(procfs_key_parse(status, "Gid", v, 3), 0);
	assert_true(v[0] == 100 && v[2] == 100);
	assert_int_equal(procfs_key_parse(status, "VmRSS", v, 1), 0);
	assert_true(v[0] == 123456);
	assert_int_equal(procfs_key_parse(status, "VmSwap", v, 1), -ENOENT);
	assert_int_equal(procfs_key_parse("Uid:\t1\t2\n", "Uid", v, 3), -EINVAL);
	assert_int_equal(procfs_key_parse("Uid:\tx\n", "Uid", v, 1), -EINVAL);
	assert_int_equal(procfs_status_read(getpid(), "Uid", v, 3), 0);
	assert_true(v[0] == getuid() && v[1] == geteuid());
	assert_int_equal(procfs_status_read(getpid(), "VmRSS", v, 1), 0);
	assert_true(v[0] > 0);
}

/* smaps: Rss lines parse, other fields and headers do not; the process's own smaps is read
 * mapping by mapping, the Rss summing to about its VmRSS. */
static void test_smaps(void **state)
{
	struct procfs_maps *maps = NULL;
	uint64_t kb, sum = 0, rss[1];
	struct procfs_map m;
	int n = 0, ret;

	(void)state;
	assert_int_equal(procfs_smaps_rss_parse("Rss:                 132 kB", &kb), 0);
	assert_int_equal(kb, 132);
	assert_int_equal(procfs_smaps_rss_parse("Size:                132 kB", &kb), -ENOENT);
	assert_int_equal(procfs_smaps_rss_parse("Rss:  132 MB", &kb), -EINVAL);
	assert_int_equal(procfs_smaps_rss_parse("Rss: 18446744073709551615 kB", &kb), -EINVAL);
	assert_int_equal(procfs_smaps_rss_parse("7f00-7f01 rw-p 00000000 00:00 0", &kb), -ENOENT);
	assert_int_equal(procfs_smaps_open(getpid(), &maps), 0);
	while ((ret = procfs_smaps_next(maps, &m, &kb)) > 0) {
		assert_true(m.start < m.end);
		sum += kb;
		n++;
	}
	procfs_maps_close(maps);
	assert_int_equal(ret, 0);
	assert_true(n > 5);
	assert_int_equal(procfs_status_read(getpid(), "VmRSS", rss, 1), 0);
	assert_true(sum > rss[0] / 2 && sum < rss[0] * 2);
}

/* pagemap: this process's stack page is present, a never-mapped page is not. */
static void test_pagemap(void **state)
{
	uint64_t pages[2];
	uint8_t present[2] = { 9, 9 };
	int here = 1;

	(void)state;
	pages[0] = 4096 >> 12;	/* page 1: below mmap_min_addr, never mapped */
	pages[1] = (uint64_t)(uintptr_t)&here >> 12;
	assert_int_equal(procfs_pagemap_present(getpid(), pages, 2, present), 0);
	assert_int_equal(present[0], 0);
	assert_int_equal(present[1], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_line),
		cmocka_unit_test(test_map_line_malformed),
		cmocka_unit_test(test_maps_read),
		cmocka_unit_test(test_cpu_seconds),
		cmocka_unit_test(test_start_time),
		cmocka_unit_test(test_fdinfo),
		cmocka_unit_test(test_status_keys),
		cmocka_unit_test(test_smaps),
		cmocka_unit_test(test_pagemap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
