// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Leak scoring.  A leak is sustained growth: a series whose floors (the minimum of each time
 * segment) keep rising.  Floors ignore churn (temporaries that come and go between samples)
 * and the sawtooth of garbage freed by each cyclic-GC run; a least-squares fit of the floors
 * against time gives a t statistic, which turns noise that happens to rise into a low score.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "history.h"

#define SEGMENTS_MAX 10
/* Fewer segments judge a trend on too few floors: no growth score below this many. */
#define SEGMENTS_MIN 4
#define MIN_SAMPLES_PER_SEGMENT 3
/* Growth below this many objects over the window is not worth a user's attention. */
#define MIN_GROWTH 20
/* A type is "cyclic garbage" when at least this share of its deaths happen inside the GC. */
#define GC_FRACTION_CYCLIC 0.5
#define GC_MIN_DEATHS 20
/* Sample intervals with deaths inside collections needed to judge a cyclic type's growth. */
#define GC_MIN_COLLECTIONS 3

void history_push(struct history *h, const struct history_sample *s)
{
	h->s[h->head] = *s;
	h->head = (h->head + 1) % HISTORY_CAP;
	if (h->n < HISTORY_CAP)
		h->n++;
}

static const struct history_sample *sample_at(const struct history *h, uint32_t i)
{
	return &h->s[(h->head + HISTORY_CAP - h->n + i) % HISTORY_CAP];
}

const struct history_sample *history_sample(const struct history *h, uint32_t i)
{
	return sample_at(h, i);
}

const struct history_sample *history_at(const struct history *h, double t)
{
	int i;

	for (i = (int)h->n - 1; i >= 0; i--)
		if (sample_at(h, i)->t <= t)
			return sample_at(h, i);
	return NULL;
}

/* Least-squares slope of y over x, and its t statistic (+inf for a perfect fit). */
static double slope_fit(const double *x, const double *y, int n, double *t)
{
	double mx = 0, my = 0, sxx = 0, sxy = 0, sse = 0, b, se;
	int i;

	for (i = 0; i < n; i++) {
		mx += x[i];
		my += y[i];
	}
	mx /= n;
	my /= n;
	for (i = 0; i < n; i++) {
		sxx += (x[i] - mx) * (x[i] - mx);
		sxy += (x[i] - mx) * (y[i] - my);
	}
	if (sxx <= 0) {
		*t = 0;
		return 0;
	}
	b = sxy / sxx;
	for (i = 0; i < n; i++) {
		double r = y[i] - (my + b * (x[i] - mx));

		sse += r * r;
	}
	se = n > 2 ? sqrt(sse / (n - 2) / sxx) : 0;
	*t = se > 0 ? b / se : (b > 0 ? INFINITY : b < 0 ? -INFINITY : 0);
	return b;
}

static double clamp01(double v)
{
	return v < 0 ? 0 : v > 1 ? 1 : v;
}

int history_score(const struct history *h, double now, double window_s, struct leak_score *out)
{
	double xs[HISTORY_CAP], ys[HISTORY_CAP], fx[SEGMENTS_MAX], fy[SEGMENTS_MAX], slope, t_all;
	double swing = 0;	/* the tallest tooth: a rise above a segment's floor, or a drop */
	const struct history_sample *first = NULL, *last = NULL;
	int i, n = 0, k, j, gc_steps = 0;
	bool pending, sawtooth, early, fell_back = false;
	uint64_t gc;

	memset(out, 0, sizeof(*out));
	out->gc_fraction = -1;
	/* Censuses far apart alias a sawtooth into a slow ramp that never shows its fall: what
	 * one step of collections freed (sampled mode: one death window) is a tooth too. */
	for (i = 1; h->census && i < (int)h->n; i++) {
		const struct history_sample *a = sample_at(h, i - 1), *b = sample_at(h, i);

		if (b->gc_deaths > a->gc_deaths && (double)(b->gc_deaths - a->gc_deaths) > swing)
			swing = (double)(b->gc_deaths - a->gc_deaths);
	}
	for (i = 0; i < (int)h->n; i++) {
		const struct history_sample *s = sample_at(h, i);

		if (s->t < now - window_s)
			continue;
		if (!first)
			first = s;
		else if (s->gc_deaths > last->gc_deaths)
			gc_steps++;
		last = s;
		xs[n] = s->t - now;
		ys[n] = (double)s->live;
		n++;
	}
	out->samples = n;
	if (n < 3)
		return -ENODATA;
	out->first = first->live;
	out->last = last->live;
	out->growth = last->live - first->live;
	out->span_s = last->t - first->t;
	out->min = out->max = first->live;
	for (i = 0; i < n; i++) {
		/* Census values repeat between censuses: a tooth may show only as its fall. */
		if (i && ys[i - 1] - ys[i] > swing)
			swing = ys[i - 1] - ys[i];
		if (ys[i] < out->min)
			out->min = (int64_t)ys[i];
		if (ys[i] > out->max)
			out->max = (int64_t)ys[i];
	}
	slope = slope_fit(xs, ys, n, &t_all);
	out->growth_per_min = slope * 60;

	/* Floors of up to SEGMENTS_MAX consecutive segments with equal numbers of samples. */
	k = n / MIN_SAMPLES_PER_SEGMENT;
	k = k > SEGMENTS_MAX ? SEGMENTS_MAX : k < 2 ? 2 : k;
	for (j = 0; j < k; j++) {
		int lo = j * n / k, hi = (j + 1) * n / k;

		double top = ys[lo];

		fy[j] = ys[lo];
		fx[j] = 0;
		for (i = lo; i < hi; i++) {
			if (ys[i] < fy[j])
				fy[j] = ys[i];
			if (ys[i] > top)
				top = ys[i];
			fx[j] += xs[i] / (hi - lo);
		}
		if (top - fy[j] > swing)
			swing = top - fy[j];
		if (j && fy[j] > fy[j - 1])
			out->rising++;
		/* Back down to the first floor (where the window began) or below it. */
		if (j && fy[j] <= fy[0])
			fell_back = true;
	}
	out->segments = k;
	slope_fit(fx, fy, k, &out->trend_t);
	/* Judge only on half a window or more: the first seconds after attach hold warm-up. */
	early = k < SEGMENTS_MIN || out->span_s < window_s / 2;
	if (!early && fy[k - 1] - fy[0] >= 1 && out->growth > 0) {
		/* t >= 6 (or a perfect fit) scores fully; t <= 2 is noise. */
		double t = isinf(out->trend_t) ? 1e9 : out->trend_t;

		out->growth_score = clamp01((t - 2) / 4) * clamp01((fy[k - 1] - fy[0]) / MIN_GROWTH) *
				    (double)out->rising / (k - 1);
	}

	out->deaths = last->deaths - first->deaths;
	gc = last->gc_deaths - first->gc_deaths;
	if (out->deaths >= GC_MIN_DEATHS) {
		out->gc_fraction = (double)gc / out->deaths;
	} else if (last->deaths >= GC_MIN_DEATHS) {
		/* Deaths seen in short windows only (sampled mode): too few in this one, so the
		 * type's fraction since attach says how it dies. */
		out->gc_fraction = (double)last->gc_deaths / last->deaths;
	}
	/*
	 * Cyclic garbage piles up until a collection frees it, and collections can be minutes
	 * apart: its growth is a leak only if it outlives several collections that freed some
	 * of it ("across GC cycles"). With the GC disabled no type dies inside a collection, so
	 * this never hides that kind of leak.
	 */
	pending = out->gc_fraction >= GC_FRACTION_CYCLIC && gc_steps < GC_MIN_COLLECTIONS;
	/* Samples of a sawtooth land anywhere on its teeth: floors that rise by less than one
	 * tooth are where the samples fell, not growth. */
	sawtooth = out->gc_fraction >= GC_FRACTION_CYCLIC && fy[k - 1] - fy[0] < swing;
	if (pending || sawtooth)
		out->growth_score = 0;
	out->score = out->growth_score;
	if (out->gc_fraction >= GC_FRACTION_CYCLIC && 0.45 * out->gc_fraction > out->score)
		out->score = 0.45 * out->gc_fraction;

	if (out->growth_score >= HISTORY_SCORE_LIKELY)
		snprintf(out->evidence, sizeof(out->evidence),
			 "grew by %+ld in %.0f s (%+.0f/min); its floor rose in %d of %d intervals, "
			 "%s", out->growth, out->span_s, out->growth_per_min, out->rising, k - 1,
			 fell_back ? "but fell back to where the window began at least once"
				   : "never falling back to where the window began");
	else if (out->growth > 0 && pending)
		snprintf(out->evidence, sizeof(out->evidence),
			 "%+ld in %.0f s, not judged: it dies in cyclic-GC collections, and too few "
			 "of them (%d) ran in the window", out->growth, out->span_s, gc_steps);
	else if (out->growth > 0 && sawtooth)
		snprintf(out->evidence, sizeof(out->evidence),
			 "%+ld in %.0f s, within the sawtooth of the collections that free it (its "
			 "floor rose by %.0f, its teeth are up to %.0f high)", out->growth, out->span_s,
			 fy[k - 1] - fy[0], swing);
	else if (out->growth > 0 && early)
		snprintf(out->evidence, sizeof(out->evidence),
			 "%+ld in %.0f s: too soon (%d samples) to judge a trend in a %.0f s window",
			 out->growth, out->span_s, n, window_s);
	else if (out->growth > 0)
		snprintf(out->evidence, sizeof(out->evidence),
			 "%+ld in %.0f s, but not sustained: floor rose in %d of %d intervals "
			 "(range %ld..%ld)", out->growth, out->span_s, out->rising, k - 1, out->min,
			 out->max);
	else
		snprintf(out->evidence, sizeof(out->evidence), "%+ld in %.0f s (range %ld..%ld)",
			 out->growth, out->span_s, out->min, out->max);
	if (out->gc_fraction >= GC_FRACTION_CYCLIC) {
		size_t len = strlen(out->evidence);

		snprintf(out->evidence + len, sizeof(out->evidence) - len,
			 "; %.0f%% of its %lu deaths happened inside cyclic-GC collections: its "
			 "instances are cyclic garbage (reference cycles), freed only by the collector",
			 100 * out->gc_fraction, out->deaths);
	}
	return 0;
}
