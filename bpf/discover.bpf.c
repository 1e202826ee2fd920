// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Discovery (daemon/discovery.c): every exec on the host sends its pid to the daemon, which
 * decides later, from /proc, whether the new program is a Python to watch.  Loaded only when
 * the config has watch rules.  No wakeup per event: the daemon drains the ring on a timer, so
 * an exec storm costs it one read per tick, and what overflows the ring is counted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);	/* 4096 execs of 16 bytes between two drains */
} execs SEC(".maps");

__u64 dropped;

/* A raw tracepoint: a classic one takes at most 64 programs host-wide (see pyleak.bpf.c). */
SEC("raw_tp/sched_process_exec")
int pyleak_discover(void *ctx)
{
	__u32 *pid = bpf_ringbuf_reserve(&execs, sizeof(*pid), 0);

	if (!pid) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	*pid = bpf_get_current_pid_tgid() >> 32;
	bpf_ringbuf_submit(pid, BPF_RB_NO_WAKEUP);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
