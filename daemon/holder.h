/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * What holds a growing type: the longest lists of each census, kept for a while, and the one
 * that grew the most over a window (with where it grows, from the page sites).
 */
#ifndef PYLEAK_HOLDER_H
#define PYLEAK_HOLDER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "census.h"
#include "probes.h"
#include "python.h"

#define HOLDER_SNAPSHOTS 64

struct holder_snapshot {
	double t;
	struct census_container lists[CENSUS_TOP_LISTS];
	int n;
};

struct holders {
	struct holder_snapshot snaps[HOLDER_SNAPSHOTS];
	int head, n;
};

/* Keeps the longest lists of census c, taken at monotonic time t. */
void holders_record(struct holders *h, double t, const struct census *c);

/*
 * The list that grew the most since `since`, if it holds at least half of growth, as the
 * contract's "held_by"; its description is appended to evidence (len bytes).  With p (page
 * sites recorded), "grown_at" names the code that grows it.  NULL: none.
 */
json_t *holders_json(const struct holders *h, double since, int64_t growth, char *evidence,
		     size_t len, struct probes *p, const struct python_info *py);

#endif
