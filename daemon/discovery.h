/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Discovery: with watch rules configured, the daemon attaches the Python processes they match
 * by itself, found by a /proc scan at start (and every RESCAN period, for what an exec storm
 * made it miss) and by every exec on the host (bpf/discover.bpf.c), within a host-wide budget
 * (targets, kernel map memory, the daemon's CPU) that degrades in a stated order.
 */
#ifndef PYLEAK_DISCOVERY_H
#define PYLEAK_DISCOVERY_H

#include <stdint.h>

#include <jansson.h>

#include "target.h"
#include "watch.h"

struct discovery_options {
	struct watch_rules rules;	/* none: nothing is attached but on request */
	uint64_t max_maps_bytes;	/* kernel map memory of all targets; 0: unlimited */
	uint64_t max_memory_bytes;	/* the daemon's resident memory (RSS); 0: unlimited */
	double max_cpu;			/* the daemon's CPU, in cores; 0: unlimited */
};

/* Starts discovery if opt has watch rules (targets attached as topt says); 0 or -errno. */
int discovery_start(const struct discovery_options *opt, const struct target_options *topt);
void discovery_stop(void);

/* `status`'s "discovery" object: rules, counters, drops, the budget. */
json_t *discovery_status_json(void);

/* What discovery last decided about pid while it remembers it ("no_match", "excluded",
 * "not_python", ...), or NULL. */
const char *discovery_verdict(pid_t pid);

/* The text of watch rule number rule ("" if none). */
void discovery_rule_format(int rule, char *buf, size_t size);

/* The census slowdown the budget asks for (1: none), for the sampler (degradation step 2). */
double discovery_census_slowdown(void);

#endif
