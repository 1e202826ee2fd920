// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "procfs.h"

/* A maps line is at most 73 bytes (padded) before its path. */
#define MAPS_LINE_MAX	(PATH_MAX + 128)
#define FDINFO_LINE_MAX	256
/* A BPF map's fdinfo is a dozen short lines. */
#define FDINFO_READ_MAX	4096
/* utime is field 14 of /proc/PID/stat (proc(5)); the bytes before it fit easily. */
#define STAT_READ_MAX	1024
#define STATUS_READ_MAX	8192	/* /proc/PID/status: ~1.5 KiB */
/* pagemap: 8 bytes per page, bit 63 set when the page is in RAM (not swapped, not unmapped) */
#define PAGEMAP_BATCH	512
#define PAGEMAP_PRESENT_BIT 63
#define STAT_UTIME	14
#define STAT_STARTTIME	22
#define DEV_MAJOR_MAX	0xfffu
#define DEV_MINOR_MAX	0xfffffu

struct procfs_maps {
	FILE *f;
	char line[MAPS_LINE_MAX];
	char header[MAPS_LINE_MAX];	/* smaps: the mapping being read (m->path points here) */
	bool pending;			/* smaps: line holds the next mapping's header */
};

/* A missing /proc/PID means the process is gone. */
static int pid_fd_open(pid_t pid, const char *name, int *fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (*fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return 0;
}

static int pid_file_open(pid_t pid, const char *name, FILE **out)
{
	int fd, err;

	err = pid_fd_open(pid, name, &fd);
	if (err)
		return err;
	*out = fdopen(fd, "re");
	if (!*out) {
		err = -errno;
		close(fd);
	}
	return err;
}

/*
 * Reads one line into buf without its newline; the rest of a longer line is dropped, and
 * *truncated says so. 1, 0 at the end, or -EIO.
 */
static int line_read(FILE *f, char *buf, size_t size, bool *truncated)
{
	size_t n;
	int c;

	*truncated = false;
	if (!fgets(buf, size, f))
		return ferror(f) ? -EIO : 0;
	n = strlen(buf);
	if (n && buf[n - 1] == '\n') {
		buf[n - 1] = '\0';
		return 1;
	}
	while ((c = getc(f)) != EOF && c != '\n')
		*truncated = true;
	return 1;
}

/*
 * An unsigned number no greater than max at p (no sign, no 0x): what follows it, or NULL.
 * NULL in, NULL out: a parser chains the calls and checks once.
 */
static const char *num_parse(const char *p, unsigned int base, uint64_t max, uint64_t *out)
{
	const char *start = p;
	uint64_t v = 0;

	if (!p)
		return NULL;
	for (;; p++) {
		unsigned int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			break;
		if (v > (max - d) / base)
			return NULL;
		v = v * base + d;
	}
	if (p == start)
		return NULL;
	*out = v;
	return p;
}

static const char *char_skip(const char *p, char c)
{
	return p && *p == c ? p + 1 : NULL;
}

static const char *perms_parse(const char *p, char perms[5])
{
	static const char allowed[4][3] = { "r-", "w-", "x-", "ps" };
	int i;

	for (i = 0; p && i < 4; i++) {
		if (!p[i] || !strchr(allowed[i], p[i]))
			return NULL;
		perms[i] = p[i];
	}
	perms[4] = '\0';
	return p ? p + 4 : NULL;
}

int procfs_map_parse(const char *line, struct procfs_map *m)
{
	uint64_t major, minor;
	const char *p;

	p = num_parse(line, 16, UINT64_MAX, &m->start);
	p = num_parse(char_skip(p, '-'), 16, UINT64_MAX, &m->end);
	p = perms_parse(char_skip(p, ' '), m->perms);
	p = num_parse(char_skip(p, ' '), 16, UINT64_MAX, &m->pgoff);
	p = num_parse(char_skip(p, ' '), 16, DEV_MAJOR_MAX, &major);
	p = num_parse(char_skip(p, ':'), 16, DEV_MINOR_MAX, &minor);
	p = num_parse(char_skip(p, ' '), 10, UINT64_MAX, &m->inode);
	if (!p || (*p && *p != ' ') || m->start >= m->end)
		return -EINVAL;
	m->dev_major = major;
	m->dev_minor = minor;
	m->path = p + strspn(p, " ");
	m->truncated = false;
	return 0;
}

static int maps_file_open(pid_t pid, const char *name, struct procfs_maps **out);

int procfs_maps_open(pid_t pid, struct procfs_maps **out)
{
	return maps_file_open(pid, "maps", out);
}

int procfs_smaps_open(pid_t pid, struct procfs_maps **out)
{
	return maps_file_open(pid, "smaps", out);
}

static int maps_file_open(pid_t pid, const char *name, struct procfs_maps **out)
{
	struct procfs_maps *maps;
	int err;

	*out = NULL;
	maps = calloc(1, sizeof(*maps));
	if (!maps)
		return -ENOMEM;
	err = pid_file_open(pid, name, &maps->f);
	if (err) {
		free(maps);
		return err;
	}
	*out = maps;
	return 0;
}

int procfs_maps_next(struct procfs_maps *maps, struct procfs_map *m)
{
	bool truncated;
	int ret;

	while ((ret = line_read(maps->f, maps->line, sizeof(maps->line), &truncated)) > 0) {
		if (!procfs_map_parse(maps->line, m)) {
			m->truncated = truncated;
			return 1;
		}
	}
	return ret;
}

int procfs_smaps_next(struct procfs_maps *maps, struct procfs_map *m, uint64_t *rss_kb)
{
	bool have = false, truncated = false;
	struct procfs_map next;
	uint64_t kb;
	int ret;

	*rss_kb = 0;
	for (;;) {
		if (!maps->pending) {
			ret = line_read(maps->f, maps->line, sizeof(maps->line), &truncated);
			if (ret <= 0)
				return have ? 1 : ret;
		}
		maps->pending = false;
		if (!procfs_smaps_rss_parse(maps->line, &kb)) {
			if (have)
				*rss_kb += kb;
			continue;
		}
		/* A field line ("Size:  4 kB") never parses as a header: its first word has no '-'. */
		if (procfs_map_parse(maps->line, &next))
			continue;
		if (have) {
			maps->pending = true;
			return 1;
		}
		memcpy(maps->header, maps->line, sizeof(maps->header));
		if (!procfs_map_parse(maps->header, m)) {
			m->truncated = truncated;
			have = true;
		}
	}
}

int procfs_smaps_rss_parse(const char *line, uint64_t *kb)
{
	uint64_t v;
	int err;

	err = procfs_key_parse(line, "Rss", &v, 1);
	if (err)
		return err;
	/* kB per the kernel; more than 2^54 kB is no process's */
	if (v > (UINT64_MAX >> 10) || strcmp(line + strcspn(line, "k"), "kB"))
		return -EINVAL;
	*kb = v;
	return 0;
}

int procfs_pagemap_present(pid_t pid, const uint64_t *pages, size_t n, uint8_t *present)
{
	uint64_t buf[PAGEMAP_BATCH], first = 0;
	size_t i, have = 0;
	ssize_t got;
	int fd, err;

	err = pid_fd_open(pid, "pagemap", &fd);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		/* One read per batch of neighbouring pages: sampled pages cluster in the heap. */
		if (!have || pages[i] < first || pages[i] - first >= have) {
			if (pages[i] > (uint64_t)(INT64_MAX / sizeof(uint64_t))) {
				present[i] = 0;
				have = 0;
				continue;
			}
			first = pages[i];
			got = pread(fd, buf, sizeof(buf), (off_t)(first * sizeof(uint64_t)));
			if (got < 0) {
				err = -errno;
				goto cleanup;
			}
			have = (size_t)got / sizeof(uint64_t);
			if (!have) {
				present[i] = 0;
				continue;
			}
		}
		present[i] = (buf[pages[i] - first] >> PAGEMAP_PRESENT_BIT) & 1;
	}
cleanup:
	close(fd);
	return err;
}

void procfs_maps_close(struct procfs_maps *maps)
{
	if (!maps)
		return;
	fclose(maps->f);
	free(maps);
}

int procfs_map_file_open(pid_t pid, const struct procfs_map *m, int *fd)
{
	char path[96];
	struct stat st;
	int pfd, err;

	/* O_PATH opens nothing yet: a device's driver is not called before the checks. map_files
	 * (root only) is the mapping's own file, whatever its path now names. */
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, m->start,
		 m->end);
	pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return errno == ENOENT ? -ESTALE : -errno;
	if (fstat(pfd, &st)) {
		err = -errno;
		goto cleanup;
	}
	/* The range was unmapped and mapped again since the maps line was read. */
	if (st.st_dev != makedev(m->dev_major, m->dev_minor) || st.st_ino != m->inode) {
		err = -ESTALE;
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -ENOEXEC;
		goto cleanup;
	}
	/* Reopening the O_PATH descriptor opens that same inode, now for reading. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd);
	*fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	err = *fd < 0 ? -errno : 0;
cleanup:
	close(pfd);
	return err;
}

/* Reads what fits of /proc/PID/name into buf, NUL-terminated; 0, -ESRCH, -EIO or -errno. */
static int pid_file_read(pid_t pid, const char *name, char *buf, size_t size)
{
	FILE *f;
	size_t n;
	int err;

	err = pid_file_open(pid, name, &f);
	if (err)
		return err;
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	err = ferror(f) ? -EIO : 0;
	fclose(f);
	return err;
}

int procfs_read(pid_t pid, const char *name, char *buf, size_t size)
{
	return pid_file_read(pid, name, buf, size);
}

/* Field number field (>= 3) of a /proc/PID/stat text, or NULL. */
static const char *stat_field(const char *stat, int field)
{
	const char *p;
	int i;

	/* The command name (field 2) may hold spaces and ')': the fields follow its last ')'. */
	p = strrchr(stat, ')');
	for (i = 2; p && i < field; i++) {
		p = strchr(p, ' ');
		p = p ? p + 1 : NULL;
	}
	return p;
}

int procfs_cpu_seconds_parse(const char *stat, double *out)
{
	long ticks = sysconf(_SC_CLK_TCK);
	uint64_t utime, stime;
	const char *p;

	p = num_parse(stat_field(stat, STAT_UTIME), 10, UINT64_MAX, &utime);
	p = num_parse(char_skip(p, ' '), 10, UINT64_MAX, &stime);
	if (!p || ticks <= 0)
		return -EINVAL;
	*out = ((double)utime + (double)stime) / ticks;
	return 0;
}

int procfs_cpu_seconds(pid_t pid, double *out)
{
	char buf[STAT_READ_MAX];
	int err;

	err = pid_file_read(pid, "stat", buf, sizeof(buf));
	return err ? err : procfs_cpu_seconds_parse(buf, out);
}

int procfs_start_time_parse(const char *stat, uint64_t *out)
{
	const char *p = num_parse(stat_field(stat, STAT_STARTTIME), 10, UINT64_MAX, out);

	return p && (*p == ' ' || *p == '\n' || !*p) ? 0 : -EINVAL;
}

int procfs_start_time(pid_t pid, uint64_t *out)
{
	char buf[STAT_READ_MAX];
	int err;

	err = pid_file_read(pid, "stat", buf, sizeof(buf));
	return err ? err : procfs_start_time_parse(buf, out);
}

double procfs_self_cpu_seconds(bool loop_thread)
{
	struct rusage ru;

	if (getrusage(loop_thread ? RUSAGE_THREAD : RUSAGE_SELF, &ru))
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

uint64_t procfs_self_rss_bytes(void)
{
	uint64_t kib = 0;

	procfs_status_read(getpid(), "VmRSS", &kib, 1);
	return kib << 10;
}

int procfs_key_parse(const char *text, const char *key, uint64_t *out, int n)
{
	size_t len = strlen(key);
	const char *line, *end, *p;
	int i;

	for (line = text; *line; line = *end ? end + 1 : end) {
		end = line + strcspn(line, "\n");
		/* A line too long for the file's format is not one of its keys. */
		if (end - line >= FDINFO_LINE_MAX || strncmp(line, key, len) || line[len] != ':')
			continue;
		p = line + len + 1;
		for (i = 0; i < n && p; i++)
			p = num_parse(p + strspn(p, " \t"), 10, UINT64_MAX, &out[i]);
		return p && (*p == '\n' || !*p || (n > 0 && strchr(" \t", *p))) ? 0 : -EINVAL;
	}
	return -ENOENT;
}

int procfs_fdinfo_parse(const char *fdinfo, const char *key, uint64_t *out)
{
	return procfs_key_parse(fdinfo, key, out, 1);
}

int procfs_status_read(pid_t pid, const char *key, uint64_t *out, int n)
{
	char buf[STATUS_READ_MAX];
	int err;

	err = pid_file_read(pid, "status", buf, sizeof(buf));
	return err ? err : procfs_key_parse(buf, key, out, n);
}

int procfs_fdinfo_u64(int fd, const char *key, uint64_t *out)
{
	char name[32], buf[FDINFO_READ_MAX];
	int err;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	err = pid_file_read(getpid(), name, buf, sizeof(buf));
	if (err)
		return err == -ESRCH ? -EBADF : err;	/* no such file: no such fd */
	return procfs_fdinfo_parse(buf, key, out);
}
