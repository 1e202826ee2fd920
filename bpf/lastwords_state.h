/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* What bpf/lastwords.bpf.c records of a tracked process's end, in its `tracked` map. */
#ifndef PYLEAK_LASTWORDS_STATE_H
#define PYLEAK_LASTWORDS_STATE_H

#define LASTWORDS_MAX_PIDS 4096

/* The value of a tracked tgid: zero when the daemon adds it. */
struct lastwords_state {
	__u8 exited;		/* the thread group died: status is its wait status */
	__u8 oom;		/* the OOM killer chose it (oom/mark_victim) */
	__u16 pad;
	__s32 status;
};

#endif
