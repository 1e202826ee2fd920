/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * A target's type rows: one per type, what `top` lists and `leaks` judges.  Probe-counted
 * rows follow BPF's per-type counters; census rows follow the heap census.
 */
#ifndef PYLEAK_ROWS_H
#define PYLEAK_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "census.h"
#include "history.h"
#include "pyleak.h"

struct type_row {
	uint64_t type;
	char name[64];
	bool census;		/* counted by heap census, not probes */
	bool complete;		/* census rows: every live object was enumerable (census.h) */
	bool listed_only;	/* precise mode's census row of a type no probe counts: listed
				 * by top, not judged by leaks (no history), as before it */
	bool seen;		/* present in the latest sample */
	bool has_prev;
	uint32_t unseen;	/* census rows: censuses in a row it was absent from */
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

struct rows {
	pid_t pid;		/* whose type objects the names are read from */
	struct type_row *v;
	size_t n, cap;
};

/* Rows a target has at most (a real program has hundreds of types with many objects), and
 * censuses a census row may be absent from, with no objects left, before it is dropped (a
 * target minting short-lived classes). */
#define ROWS_MAX		4096u
#define ROW_UNSEEN_MAX		30u

void rows_free(struct rows *rs);

/* A probe-counted type's counters from BPF. */
void rows_update_probed(struct rows *rs, uint64_t type, const struct pyleak_type_stats *st);

/* A census row's deaths, counted by BPF in sampled mode's death windows (gcwatch.h); the
 * row is made if there is none yet (the census then fills in its count). */
void rows_update_deaths(struct rows *rs, uint64_t type, const struct pyleak_type_stats *st);

/* Census counts for the given types (the build's census types); a type absent from the
 * census has none left. */
void rows_update_census(struct rows *rs, const struct census *c, const uint64_t *types, int n);

/* Sampled mode: every type of the census with at least min_count objects (or a row already)
 * becomes a census row; rows seen before and now absent have none left, and are dropped
 * after ROW_UNSEEN_MAX censuses. */
void rows_update_census_all(struct rows *rs, const struct census *c, uint64_t min_count);

/* Drops the probe-counted rows (their probes are gone). */
void rows_drop_probed(struct rows *rs);

/* Drops type's probe-counted row (its type object was freed: its address is another's now). */
void rows_forget_probed(struct rows *rs, uint64_t type);

/* Precise mode: the same for the types no probe counts, i.e. neither heap types (classes) nor
 * the probed static types given; rows of probe-counted types are left alone. New rows are
 * listed_only. */
void rows_update_census_unprobed(struct rows *rs, const struct census *c, const uint64_t *probed,
				 int nprobed, uint64_t min_count);

/* Appends each row seen in the latest sample to its history. */
void rows_history_record(struct rows *rs, double now);

/* A row's change over the last span seconds before now, from its history (the previous
 * sample without one). */
int64_t row_delta(const struct type_row *r, double now, double span);

#endif
