// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * One program on the page-fault tracepoint for the whole host: it tail-calls the tracked
 * process's own program (bpf/pyleak.bpf.c, pyleak_fault) and returns at once for every other
 * process, so every page fault on the machine pays one hash lookup however many processes
 * are tracked, instead of one program run per tracked process.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "pyleak.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, PYLEAK_MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u32);
} fault_progs SEC(".maps");

/* tgid -> slot in fault_progs */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PYLEAK_MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u32);
} fault_slots SEC(".maps");

SEC("tp/exceptions/page_fault_user")
int pyleak_fault_dispatch(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 *slot = bpf_map_lookup_elem(&fault_slots, &tgid);

	if (slot)
		bpf_tail_call(ctx, &fault_progs, *slot);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
