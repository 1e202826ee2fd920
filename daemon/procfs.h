/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Reading /proc files. Parts of their text are chosen by the process's owner (mapped file names,
 * the command name), so lines are read with a bound and every number is range-checked.
 */
#ifndef PYLEAK_PROCFS_H
#define PYLEAK_PROCFS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* One line of /proc/PID/maps. */
struct procfs_map {
	uint64_t start, end, pgoff, inode;
	unsigned int dev_major, dev_minor;
	char perms[5];		/* "r-xp" */
	const char *path;	/* as the kernel shows it: "", "[heap]", "/a b (deleted)"... */
	bool truncated;		/* the path did not fit a line: its end is missing */
};

struct procfs_maps;

/* Opens /proc/PID/maps; 0, -ESRCH (no such process) or -errno. */
int procfs_maps_open(pid_t pid, struct procfs_maps **out);
/* The next mapping, in address order (path valid until the next call): 1, 0 at the end, or
 * -errno. Lines that do not parse are skipped. */
int procfs_maps_next(struct procfs_maps *maps, struct procfs_map *m);
void procfs_maps_close(struct procfs_maps *maps);

/* The same for /proc/PID/smaps (closed by procfs_maps_close()): each mapping with its
 * resident size in kB (its "Rss:" lines); 1, 0 at the end, or -errno. */
int procfs_smaps_open(pid_t pid, struct procfs_maps **out);
int procfs_smaps_next(struct procfs_maps *maps, struct procfs_map *m, uint64_t *rss_kb);
/* An smaps line "Rss:  N kB" (no newline); 0, -ENOENT (another line) or -EINVAL. */
int procfs_smaps_rss_parse(const char *line, uint64_t *kb);

/* Which of n pages (page numbers, ascending for fewer reads) of PID are in RAM, from
 * /proc/PID/pagemap, into present[] (1 or 0; 0 beyond the address space); 0, -ESRCH or
 * -errno. */
int procfs_pagemap_present(pid_t pid, const uint64_t *pages, size_t n, uint8_t *present);

/* Parses one maps line without its newline (m->path points into line); 0 or -EINVAL. */
int procfs_map_parse(const char *line, struct procfs_map *m);

/*
 * Opens the file that m, a mapping of PID, maps: the very inode of its maps line, even if deleted
 * or replaced on disk since (/proc/PID/map_files), read-only, non-blocking, never as a
 * controlling terminal. 0; -ESTALE if the range is gone or now maps another file; -ENOEXEC if it is
 * not a regular file (a device's open() is never called); or -errno.
 */
int procfs_map_file_open(pid_t pid, const struct procfs_map *m, int *fd);

/* Reads what fits of /proc/PID/NAME into buf (size - 1 bytes at most), NUL-terminated;
 * 0, -ESRCH, -EIO or -errno. */
int procfs_read(pid_t pid, const char *name, char *buf, size_t size);

/* CPU time the process has used (utime + stime), in seconds; 0, -ESRCH, -EINVAL or -errno. */
int procfs_cpu_seconds(pid_t pid, double *out);
/* The same from the text of a /proc/PID/stat; 0 or -EINVAL. */
int procfs_cpu_seconds_parse(const char *stat, double *out);

/* When the process started (stat field 22, clock ticks since boot): with the pid, a process's
 * identity (a reused pid has another); 0, -ESRCH, -EINVAL or -errno. */
int procfs_start_time(pid_t pid, uint64_t *out);
/* The same from the text of a /proc/PID/stat; 0 or -EINVAL. */
int procfs_start_time_parse(const char *stat, uint64_t *out);

/* CPU seconds this process has used: all its threads, or only the calling one (the loop's,
 * without the metrics server's thread). */
double procfs_self_cpu_seconds(bool loop_thread);
/* This process's resident memory (VmRSS) in bytes; 0 if unknown. */
uint64_t procfs_self_rss_bytes(void);

/* The number after "key:" in /proc/self/fdinfo/FD (memlock of a BPF map); 0, -ENOENT (no such
 * key), -EBADF (no such fd), -EINVAL or -errno. */
int procfs_fdinfo_u64(int fd, const char *key, uint64_t *out);
/* The same from the text of an fdinfo file; 0, -ENOENT or -EINVAL. */
int procfs_fdinfo_parse(const char *fdinfo, const char *key, uint64_t *out);

/* The first n numbers after "key:" on its line of a "key: values" text (fdinfo, status);
 * 0, -ENOENT (no such key) or -EINVAL. */
int procfs_key_parse(const char *text, const char *key, uint64_t *out, int n);

/* The same from /proc/PID/status: "Uid"/"Gid" (real, effective, saved, filesystem), "VmRSS"
 * (kB); 0, -ESRCH, -ENOENT, -EINVAL or -errno. */
int procfs_status_read(pid_t pid, const char *key, uint64_t *out, int n);

#endif
