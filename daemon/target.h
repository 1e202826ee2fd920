/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The tracked processes: a registry of targets and their lifecycle (attach, exit, exec,
 * detach).  What is sampled from a target is in sampler.h, what it shows in view.h.
 */
#ifndef PYLEAK_TARGET_H
#define PYLEAK_TARGET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "census.h"
#include "container.h"
#include "gcwatch.h"
#include "governor.h"
#include "holder.h"
#include "loop.h"
#include "native.h"
#include "nativealloc.h"
#include "probes.h"
#include "python.h"
#include "rows.h"

enum target_state { TARGET_TRACKING, TARGET_EXITED, TARGET_EXECED, TARGET_FAILED };

enum target_mode {
	TARGET_PRECISE,		/* per-object probes: exact births and deaths since attach */
	TARGET_SAMPLED,		/* always-on: censuses, collections and sampled page faults */
};

struct target_options {
	enum target_mode mode;		/* for attach on demand (top, leaks, sites) */
	uint32_t max_targets;		/* processes tracked at once */
	uint32_t max_objects;
	uint32_t max_pages;		/* pages whose allocation site is kept per target */
	uint32_t max_stacks;		/* distinct allocation stacks kept per target */
	uint32_t birth_sample_every;	/* precise mode: stack of 1 birth in N */
	uint64_t native_sample_bytes;	/* precise mode: 1 native sample per N bytes; 0: off */
	uint32_t native_max_blocks;	/* sampled native blocks kept until freed */
	double sample_interval;		/* seconds between history samples */
	double budget;			/* target CPU share its probes may cost; 0: unlimited */
	bool force;			/* precise mode stays over budget (else: falls back) */
};

struct target {
	struct target *next;
	pid_t pid;
	uid_t uid;			/* its owner at attach (effective ids), kept after it ends */
	gid_t gid;
	enum target_state state;
	struct target_options opt;	/* opt.mode: the mode it was attached in */
	struct governor gov;
	double fell_back_ratio;		/* > 0: fell back from precise mode at this cost / CPU */
	bool sites;			/* allocation sites are recorded */
	struct census sites_cache;	/* the last census with page sites, for `leaks` */
	double sites_cache_at;		/* monotonic time it was taken; 0: none */
	struct census births_cache;	/* the last walk of sampled births, for `leaks` */
	double births_cache_at;
	double attached_at, ended_at;	/* wall clock */
	struct python_info py;
	struct python_plan plan;
	struct probes probes;
	struct census_layout layout;
	uint64_t census_types[12];	/* the plan's census types found in this build */
	uint64_t probed_types[12];	/* the plan's static types counted by probes */
	int nprobed;
	int ncensus;
	struct rows rows;
	uint64_t samples;
	double census_seconds;		/* duration of the last census */
	double census_at;		/* monotonic time it ended */
	uint64_t census_objects;	/* objects it counted */
	uint64_t census_bytes;		/* and their bytes */
	struct native *native;		/* native memory by Python stack (sites only); NULL: none yet */
	bool census_grew;		/* more than the census before: counted more often */
	uint64_t census_cut_short;	/* censuses the budget stopped */
	uint64_t corrupt_events;	/* data read that cannot be a live heap's (census.h) */
	char corrupt_last[160];		/* the last of them, in words */
	struct holders holders;
	struct gcwatch gcwatch;		/* sampled mode: windows of death probes on suspects */
	struct nativealloc *nalloc;	/* precise mode: sampled native allocations; NULL: none */
	const char *nalloc_off;		/* why there are none in precise mode, NULL if there are */
	uint64_t pool_func;		/* the pool sampler's probe (hooks_place_pool()); 0: none */
	bool pool_removed;		/* it spent its budget (pyleak.bpf.c): removed */
	double pages_paused_until;	/* monotonic: fault events off until then (sampler.c); 0: not */
	uint32_t page_pauses;		/* times they were */
	uint64_t floor_skip_ns;		/* probes_skip_ns() at the governor's last interval */
	double floor_cpu_s;		/* and the target's CPU time then */
	uint32_t floor_streak;		/* intervals in a row whose unsampled faults alone were
					 * over budget */
	struct container_label label;	/* its container, unit and pid there, at attach */
	int watch_rule;			/* the watch rule that discovered it; -1: attached on request */
	int pidfd;
	struct watcher pid_watch, rb_watch;
};

/* "precise" or "sampled": 0 or -EINVAL. */
int target_mode_parse(const char *s, enum target_mode *out);
const char *target_mode_name(enum target_mode mode);
const char *target_state_name(enum target_state s);

/* Attaches to pid in opt->mode: 0, -EALREADY if it is tracked already (*out: that target),
 * -EUSERS if opt->max_targets are, or a negative errno from python_inspect() and the probes. */
int target_attach(pid_t pid, const struct target_options *opt, struct target **out);
/* Stops tracking t and frees it; returns how long that took, in seconds.  The target runs no
 * probe of ours when it returns but the USDT ones, gone in *pending_s seconds (NULL: not
 * wanted; 0 when none). */
double target_detach(struct target *t, double *pending_s);

/* Precise mode over budget: the per-object probes are removed and t goes on in sampled mode. */
void target_fall_back(struct target *t);

void target_detach_all(void);

/* The tracked target of pid, or NULL (what is kept of ended ones: ended.h).  Frees the
 * targets that ended since the last call: no caller may hold one across it. */
struct target *target_find(pid_t pid);
struct target *target_list(void);

/* Ends tracking if the process exited or exec'd; -ESRCH then. */
int target_check(struct target *t);

static inline bool target_sampled(const struct target *t)
{
	return t->opt.mode == TARGET_SAMPLED;
}

#endif
