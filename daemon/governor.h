/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The overhead governor: a pure control law.  It compares what a target's probes cost it
 * (BPF run time plus uprobe traps) with the target's own CPU time over each interval, and
 * sets how many fresh pages get a stack: halved while over budget, doubled back while well
 * under.
 */
#ifndef PYLEAK_GOVERNOR_H
#define PYLEAK_GOVERNOR_H

#include <stdbool.h>
#include <stdint.h>

#include "pyleak.h"

/* The page sampling rate ranges from every page to 1 in GOVERNOR_PAGE_MASK_MAX + 1. */
#define GOVERNOR_PAGE_MASK_MAX PYLEAK_PAGE_MASK_MAX
/* An interval is judged once the target used this much CPU (s): /proc counts CPU time in
 * 10 ms ticks, so shorter ones (a `top` polling right after a tick) are mostly rounding; a
 * shorter one is extended to the next update instead. */
#define GOVERNOR_MIN_CPU_S 0.1
/* Intervals over budget in a row before the cost is called sustained (what makes precise
 * mode fall back, for good): one outlier (a burst of allocations, a stalled tick) is not. */
#define GOVERNOR_OVER_STREAK 3

struct governor {
	double budget;			/* cost / CPU allowed; 0: unlimited */
	uint64_t page_mask;		/* 1 page in page_mask + 1 gets a stack */
	uint64_t cost_ns, prev_cost_ns;	/* estimated probe time in the target, cumulative */
	double cpu_s, prev_cpu_s;	/* the target's own CPU time, cumulative */
	double ratio;			/* cost / CPU over the last interval */
	bool over;			/* the last interval cost more than the budget */
	uint32_t over_streak;		/* intervals over budget in a row */
	bool sustained;			/* over_streak reached GOVERNOR_OVER_STREAK */
	uint64_t throttles;		/* times the sampling rate was lowered */
};

/*
 * Feeds one interval: the cumulative probe cost and the target's cumulative CPU time (< 0:
 * unknown).  A cost lower than the last (a failed read) is skipped: cumulative costs only
 * grow.  The page mask is adjusted only if adjustable (page sampling is the one cost
 * that can be thinned); over tells whether this interval was over budget either way,
 * sustained whether the last GOVERNOR_OVER_STREAK were.  Returns true if page_mask changed.
 */
bool governor_update(struct governor *g, uint64_t cost_ns, double cpu_s, bool adjustable);

#endif
