/* SPDX-License-Identifier: MIT */
/* One tracked process: its lifecycle (attach, exit, exec, detach), probes and samples. */
#ifndef PYLEAK_TARGET_H
#define PYLEAK_TARGET_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "census.h"
#include "history.h"
#include "loop.h"
#include "probes.h"
#include "python.h"

enum target_state { TARGET_TRACKING, TARGET_EXITED, TARGET_EXECED, TARGET_FAILED };

struct type_row {
	uint64_t type;
	char name[64];
	bool census;		/* counted by heap census, not probes */
	bool seen;		/* present in the latest sample */
	bool has_prev;
	int64_t live;
	/* Population change since attach: births minus every death seen, older objects' too
	 * (census rows: the live count). What history, delta and leak scores follow, so that
	 * older objects replaced by new ones (a cache turning over) are not growth. */
	int64_t net, prev_net;
	int64_t bytes;		/* -1: unknown */
	int64_t instance_dicts;	/* census dict row: how many are instances' __dict__s */
	struct pyleak_type_stats st;
	struct history *hist;	/* periodic samples (HISTORY_CAP of them, ~16 KiB) */
};

/* The longest lists at one census: what holds a growing type. */
struct list_snapshot {
	double t;
	struct census_container lists[CENSUS_TOP_LISTS];
	int n;
};

#define LIST_SNAPSHOTS 64

struct target_options {
	uint32_t max_objects;
	uint32_t max_pages;		/* pages whose allocation site is kept per target */
	uint32_t max_stacks;		/* distinct allocation stacks kept per target */
	uint32_t birth_sample_every;	/* precise mode: stack of 1 birth in N */
	double sample_interval;		/* seconds between history samples */
	double budget;			/* target CPU share its probes may cost; 0: unlimited */
	char mode[16];			/* for attach on demand (top, leaks, sites) */
};

/* The overhead governor: what one target's probes cost it, and the page sampling it set. */
struct governor {
	double budget;			/* 0: unlimited */
	uint64_t page_mask;		/* 1 page in page_mask + 1 gets a stack */
	uint64_t cost_ns, prev_cost_ns;	/* estimated probe time in the target, cumulative */
	double cpu_s, prev_cpu_s;	/* the target's own CPU time */
	double ratio;			/* cost / CPU over the last interval */
	uint64_t throttles;		/* times the sampling rate was lowered */
};

struct target {
	struct target *next;
	pid_t pid;
	enum target_state state;
	char mode[16];
	bool sampled;			/* sampled mode: no per-object probes, census counts */
	struct target_options opt;
	struct governor gov;
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
	uint64_t census_types[12];
	int ncensus;
	uint64_t unsized_type;
	struct type_row *rows;
	size_t nrows, cap;
	uint64_t samples;
	double census_seconds;		/* duration of the last census */
	double census_at;		/* monotonic time it ended */
	uint64_t census_objects;	/* objects it counted */
	bool census_grew;		/* more than the census before: counted more often */
	struct list_snapshot snaps[LIST_SNAPSHOTS];
	int snap_head, nsnaps;
	int pidfd;
	struct watcher pid_watch, rb_watch;
};


/* Attaches to pid (a no-op returning 1 if it is tracked already) in mode "precise" or
 * "sampled". Negative errno: see python_inspect(), plus -EINVAL for an unknown mode. */
int target_attach(pid_t pid, const char *mode, const struct target_options *opt, struct target **out);
void target_detach(struct target *t);
/* The tracked (or recently ended) target of pid, or NULL. */
struct target *target_find(pid_t pid);
struct target *target_list(void);
void target_detach_all(void);

/* Ends tracking if the process exited or exec'd; -ESRCH then. */
int target_check(struct target *t);
/* Reads the maps (and the census where the build needs one) into t->rows; a census is skipped
 * unless forced or its last run is old enough to keep the daemon under ~5% of a core. */
int target_sample(struct target *t, bool force_census);

/* Starts sampling every tracked target into its history every opt->sample_interval. */
int target_sampler_start(const struct target_options *opt);
void target_sampler_stop(void);

/* delta of each row: the change over the last span seconds (0: one sample interval). */
json_t *target_top_json(struct target *t, int n, const char *sort, double span);
json_t *target_leaks_json(struct target *t, double window_s, int n);
json_t *target_status_json(struct target *t);
/* Allocation sites of the type named type_name (`sites`); NULL and *err on failure. */
json_t *target_sites_json(struct target *t, const char *type_name, int n, int *err);
const char *target_state_name(enum target_state s);

#endif
