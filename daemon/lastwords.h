/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * How a tracked process ended: its exit code, the signal that killed it, the OOM killer
 * (bpf/lastwords.bpf.c, one host-wide object), or exec, detach, a failed attach.
 */
#ifndef PYLEAK_LASTWORDS_H
#define PYLEAK_LASTWORDS_H

#include <sys/types.h>

enum end_kind { END_EXIT, END_SIGNAL, END_OOM_KILL, END_EXEC, END_DETACHED, END_FAILED };

struct end_cause {
	enum end_kind kind;
	int code;		/* END_EXIT: the exit code, END_SIGNAL/END_OOM_KILL: the signal; -1: unknown */
};

/* "exit", "signal", "oom_kill", "exec", "detached" or "failed". */
const char *end_kind_name(enum end_kind kind);

/* Loads and attaches the BPF object: 0 or a negative errno (exits are then "exit", code -1). */
int lastwords_start(void);
void lastwords_stop(void);

/* Starts or stops watching pid's end. */
void lastwords_track(pid_t pid);
void lastwords_forget(pid_t pid);

/* How pid exited (it has: its pidfd said so), and forgets it. */
void lastwords_take(pid_t pid, struct end_cause *out);

#endif
