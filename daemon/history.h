/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Bounded per-type series of samples, and the leak score computed from them. Pure code. */
#ifndef PYLEAK_HISTORY_H
#define PYLEAK_HISTORY_H

#include <stdbool.h>
#include <stdint.h>

#define HISTORY_CAP 512	/* samples kept per type: 17 min at the default 2 s interval */
/* A score (or growth score) from here up is a likely leak: its evidence, sites, holder and
 * path are worth their cost. */
#define HISTORY_SCORE_LIKELY 0.5

struct history_sample {
	double t;		/* monotonic seconds */
	int64_t live;
	uint64_t deaths;	/* cumulative deaths seen */
	uint64_t gc_deaths;	/* cumulative deaths inside a cyclic-GC collection */
};

struct history {
	struct history_sample s[HISTORY_CAP];
	uint32_t head;		/* next slot to write */
	uint32_t n;
	bool census;		/* live counts from censuses, held between them */
};

struct leak_score {
	double score;		/* [0, 1]: sustained growth, or cyclic garbage (at most 0.45) */
	double growth_score;	/* [0, 1] from the trend of the series' floors */
	double growth_per_min;	/* least-squares slope of live over the window */
	int64_t growth;		/* last - first live in the window */
	int64_t first, last, min, max;
	double trend_t;		/* t statistic of the floors' slope */
	int segments, rising;	/* floors compared, and how many rose over the one before */
	int samples;
	double span_s;
	double gc_fraction;	/* deaths inside collections / deaths, -1 if too few deaths */
	uint64_t deaths;
	char evidence[320];
};

void history_push(struct history *h, const struct history_sample *s);
/* The i-th oldest sample kept, i < h->n. */
const struct history_sample *history_sample(const struct history *h, uint32_t i);
/* The newest sample taken at or before t; NULL if none is that old. */
const struct history_sample *history_at(const struct history *h, double t);
/* Scores the samples taken in the last window_s seconds before now; 0, or -ENODATA with fewer
 * than 3 samples. */
int history_score(const struct history *h, double now, double window_s, struct leak_score *out);

#endif
