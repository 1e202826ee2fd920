// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <signal.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lastwords_state.h"
#include "lastwords.skel.h"
#include "lastwords.h"
#include "log.h"

static struct lastwords_bpf *skel;

const char *end_kind_name(enum end_kind kind)
{
	static const char *const names[] = {
		[END_EXIT] = "exit", [END_SIGNAL] = "signal", [END_OOM_KILL] = "oom_kill",
		[END_EXEC] = "exec", [END_DETACHED] = "detached", [END_FAILED] = "failed",
	};

	return names[kind];
}

int lastwords_start(void)
{
	int err;

	skel = lastwords_bpf__open_and_load();
	if (!skel)
		return -errno;
	err = lastwords_bpf__attach(skel);
	if (err) {
		lastwords_bpf__destroy(skel);
		skel = NULL;
	}
	return err;
}

void lastwords_stop(void)
{
	lastwords_bpf__destroy(skel);
	skel = NULL;
}

void lastwords_track(pid_t pid)
{
	struct lastwords_state s = {};
	__u32 key = pid;

	if (skel && bpf_map_update_elem(bpf_map__fd(skel->maps.tracked), &key, &s, BPF_ANY))
		log_warn("pid %d: cannot watch how it ends: %s", pid, strerror(errno));
}

void lastwords_forget(pid_t pid)
{
	__u32 key = pid;

	if (skel)
		bpf_map_delete_elem(bpf_map__fd(skel->maps.tracked), &key);
}

void lastwords_take(pid_t pid, struct end_cause *out)
{
	struct lastwords_state s = {};
	__u32 key = pid;

	*out = (struct end_cause){ END_EXIT, -1 };
	if (!skel || bpf_map_lookup_elem(bpf_map__fd(skel->maps.tracked), &key, &s))
		return;
	lastwords_forget(pid);
	if (!s.exited)
		return;
	/* A wait status: signal in the low 7 bits (0x80: core dumped), else the code above them. */
	if (s.status & 0x7f)
		*out = (struct end_cause){ s.oom && (s.status & 0x7f) == SIGKILL ? END_OOM_KILL : END_SIGNAL,
					   s.status & 0x7f };
	else
		*out = (struct end_cause){ END_EXIT, (s.status >> 8) & 0xff };
}
