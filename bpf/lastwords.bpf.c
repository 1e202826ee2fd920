// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * How tracked processes end, for the whole host: one program on the process-exit tracepoint
 * (the group's last thread: do_exit() set its exit_code, the group's wait status, before the
 * tracepoint) and one on the OOM killer's choice of victim.  Both write into the tracked
 * tgid's own entry, which the daemon reads when the pidfd says the process is gone: that
 * happens after the tracepoint (exit_notify()), so there is no event to wait for or to lose.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "lastwords_state.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LASTWORDS_MAX_PIDS);
	__type(key, __u32);
	__type(value, struct lastwords_state);
} tracked SEC(".maps");

SEC("tp_btf/sched_process_exit")
int BPF_PROG(lastwords_exit, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct lastwords_state *s;

	/* signal->live reached 0 in do_exit() before the tracepoint: the group is dead. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	s = bpf_map_lookup_elem(&tracked, &tgid);
	if (!s)
		return 0;
	s->status = BPF_CORE_READ(task, exit_code);
	s->exited = 1;
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(lastwords_oom, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct lastwords_state *s = bpf_map_lookup_elem(&tracked, &tgid);

	if (s)
		s->oom = 1;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
