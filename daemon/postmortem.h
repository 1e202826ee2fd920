/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Last words: the report of each tracked process that died, in the state directory (one
 * file each, written atomically, 0600; capped in number and bytes, the oldest removed) and
 * one journal entry; indexed again at start, so they survive the daemon.  Without a usable
 * directory they are kept in memory only, under the same caps.
 */
#ifndef PYLEAK_POSTMORTEM_H
#define PYLEAK_POSTMORTEM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define POSTMORTEM_FILE_MAX (1u << 20)	/* a report file longer is not one of ours */

/* What the index keeps of a report. */
struct postmortem_info {
	pid_t pid;
	uid_t uid;
	double ended_at;
	char cause[16];
	char exe[256];
};

/* Uses dir (created 0700 if missing; it must be the daemon's own and not writable by others)
 * and indexes the reports there; 0, or a negative errno after one warning (memory only). */
int postmortem_start(const char *dir);
void postmortem_stop(void);

/* Keeps report (ended.h's ended_report_json()) and tells the journal. */
void postmortem_add(json_t *report);

/* {"reports": [{"pid", "exe", "ended_at", "cause", ...}]}, newest first: every report, or (all
 * false) only those of processes uid owned. */
json_t *postmortem_list_json(bool all, uid_t uid);

/* The newest report of pid that the caller may see (as above): 0, -ENOENT, or a negative
 * errno reading it. */
int postmortem_get(pid_t pid, bool all, uid_t uid, json_t **out);

/* {"dir", "on_disk", "count", "bytes", "removed", "max_count", "max_bytes"} for `status`. */
json_t *postmortem_stats_json(void);

/* A report's text (hostile: a file anyone with the directory could have written) checked
 * and summarized: 0, or -EINVAL if it is not a report. */
int postmortem_parse(const char *text, size_t len, struct postmortem_info *out);

#endif
