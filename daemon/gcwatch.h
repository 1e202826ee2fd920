/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Cyclic garbage in sampled mode: short windows of death probes on a few suspect classes.
 *
 * Sampled mode has no death probe, so it cannot tell objects the cyclic collector frees from
 * the others.  A class whose census count swings between two censuses (cyclic garbage piles
 * up between collections and drops at each) becomes a suspect; for one sample interval the
 * suspects' tp_dealloc (subtype_dealloc, shared by all classes) is probed, and BPF counts each
 * suspect's deaths and those inside a collection (`died`, `gc_died`), which the rows'
 * history turns into freed_by_gc_fraction.  A window lasts GCWATCH_WINDOW_S and costs one
 * trap per death of any class instance, so the next one opens only when the target's CPU
 * time since the last, times the budget, has paid for it: over time the windows stay within
 * the budget, and short ones come often enough for `leaks`' window: at once after a new swing,
 * every GCWATCH_REPEAT_S while the suspects stay watched.
 */
#ifndef PYLEAK_GCWATCH_H
#define PYLEAK_GCWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "census.h"
#include "probes.h"

/* Heap types of the previous census compared with the next one. */
#define GCWATCH_PREV 64
/* A window's length: a few collections of a busy target (3.12's gen0 runs every ~50 ms of
 * the cipher scenario, 3.13's every ~150 ms). */
#define GCWATCH_WINDOW_S 0.5
/* ...or longer, until a collection has run in it (a quiet target collects every few
 * seconds: a window without one measures nothing), but at most this. */
#define GCWATCH_WINDOW_MAX_S 8.0
/* ...unless the target collects less often (a loaded one, every 10-30 s): then a window
 * waits up to 1.5 times its interval between collections, but at most this. */
#define GCWATCH_WINDOW_LONG_S 30.0
/* Without a new swing, the watched classes are measured again this often: `leaks` judges a
 * class that dies in collections on the windows that fell in its window (3 in 60 s). */
#define GCWATCH_REPEAT_S 10.0
/* A suspect that has not swung for this many censuses (~1-5 min) gives its slot up to new
 * ones: a class whose churn stopped, or that is gone. */
#define GCWATCH_STALE_CENSUSES 20

struct gcwatch {
	uint64_t types[PROBES_SAMPLED_TYPES];	/* watched: their deaths are counted in BPF */
	uint64_t deallocs[PROBES_SAMPLED_TYPES];	/* their tp_dealloc */
	char names[PROBES_SAMPLED_TYPES][64];
	uint64_t swung_at[PROBES_SAMPLED_TYPES];	/* the census it last swung in */
	uint64_t windows_at[PROBES_SAMPLED_TYPES];	/* windows opened before it was watched */
	uint64_t measured_at[PROBES_SAMPLED_TYPES];	/* windows measured before it was watched */
	uint64_t gc_runs_at[PROBES_SAMPLED_TYPES];	/* the target's collections then */
	int ntypes;
	uint64_t censuses;	/* compared (not cut short) */
	struct census_count prev[GCWATCH_PREV];	/* heap types of the last census, by count */
	int nprev;
	bool pending;		/* a suspect swung since the last window: the next is due */
	bool open;
	bool closing;		/* its links were taken by the windows closing now */
	double opened_at;	/* wall clock, of the last window */
	double opened_mono;
	uint64_t gc_runs_at_open;	/* collections the target had run when it opened */
	uint64_t gc_runs_seen;	/* collections at the last tick that saw their count change */
	double gc_seen_mono;	/* when */
	double gc_interval_s;	/* between collections, as seen from ticks; 0: unknown */
	uint64_t trap_ns;	/* the estimated cost of one uprobe hit */
	double cpu_at_close;	/* the target's CPU time when the last window closed */
	uint64_t cost_at_open;	/* the death program's cumulative cost then */
	uint64_t last_cost_ns;	/* what the last window cost the target */
	uint64_t windows;
	uint64_t measured;	/* windows that closed with a collection in them */
	double open_s;		/* all windows */
	uint64_t cost_ns;	/* all windows */
	uint64_t cost_base_ns;	/* the death program's cost before the windows (precise mode's) */
};

struct target;

/* Compares a sampled target's census with the last one: classes whose count swung become
 * suspects (up to PROBES_SAMPLED_TYPES are watched; stale ones give their slot up). */
void gcwatch_census(struct target *t, const struct census *c);

/* Once per sample interval: opens a window for the suspects when the last has been paid for
 * (trap_ns: the estimated cost of one uprobe hit); a timer closes it. */
void gcwatch_tick(struct target *t, uint64_t trap_ns);

/* A window that saw no collection (a starved or quiet target, or the GC disabled) measured
 * no cyclic garbage: a class is judged after one that did, or after this many if the target
 * has not collected since it was watched (the GC disabled: its growth is judged)... */
#define GCWATCH_MEASURE_WINDOWS 3
/* ...or this many if it has (the windows missed its collections: a loaded target collects
 * every 10-30 s, and its cyclic garbage's sawtooth would pass for growth meanwhile). */
#define GCWATCH_HOLD_WINDOWS 12

/* True while type is watched but no window has measured its deaths yet. */
bool gcwatch_measuring(const struct gcwatch *w, uint64_t type);

/* The target ends (its probes go with it): an open window's books are closed. */
void gcwatch_end(struct target *t);

/* Closes the windows' timer (daemon exit). */
void gcwatch_stop(void);

#endif
