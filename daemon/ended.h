/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * What is kept of a target once it ended: a summary (owner, times, cause, its last `status`
 * entry, `top` and `leaks` views, frozen as JSON text), capped in number and bytes, the
 * oldest dropped first; everything else the target held is freed when it ends.
 */
#ifndef PYLEAK_ENDED_H
#define PYLEAK_ENDED_H

#include <jansson.h>
#include <sys/types.h>

#include "lastwords.h"

struct target;

struct ended {
	struct ended *next;		/* newer first */
	pid_t pid;
	uid_t uid;			/* the process's owner: who may see the record */
	gid_t gid;
	const char *state;		/* target_state_name() */
	double ended_at;		/* wall clock */
	char *status;			/* its `status` entry */
	char *report;			/* the postmortem report (postmortem.h) */
	size_t bytes;			/* of both texts and this */
};

/* Keeps the summary of t, a process that ended by itself (exit, signal, exec; not a detach),
 * and has its postmortem report written (postmortem.h).  t is still tracked: its views are
 * read; state is what it becomes, cause says why. */
void ended_record(struct target *t, const char *state, const struct end_cause *cause);

/* The newest summary of pid, or NULL. */
const struct ended *ended_find(pid_t pid);
const struct ended *ended_list(void);
/* Drops pid's summaries (it is tracked again). */
void ended_forget(pid_t pid);
void ended_free_all(void);

/* {"count", "bytes", "dropped", "max_count", "max_bytes"} for `status`. */
json_t *ended_stats_json(void);

#endif
