/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Sampling the tracked targets: a timer tick reads each target's counters into its rows,
 * takes a heap census when its period has come, feeds the governor, and records history.
 */
#ifndef PYLEAK_SAMPLER_H
#define PYLEAK_SAMPLER_H

#include <stdbool.h>

#include "target.h"

/* Starts sampling every tracked target into its history every opt->sample_interval. */
int sampler_start(const struct target_options *opt);
void sampler_stop(void);

/* Seconds between two history samples. */
double sampler_interval(void);

/* Reads t's counters into its rows, and a census (where t needs one) if forced or its period
 * has come; 0, -ESRCH if t ended, or another negative errno. */
int sampler_sample(struct target *t, bool force_census);

/* Seconds between two censuses of t: what keeps the daemon's census time in its budget. */
double sampler_census_period(const struct target *t);
/* The page sampling rate in force (1 page in mask + 1): the governor's, or lower if the
 * sampler's brake (pyleak.bpf.c) lowered it since the governor's last interval. */
uint64_t sampler_page_mask(struct target *t);

/* Native scans (native.h) are kept to this much of a core, all targets together... */
#define NATIVE_BUDGET 0.02
/* ...in rounds that leaks' growth judgement wants at most this long (seconds). */
#define NATIVE_PERIOD_MAX 10.0

/* Seconds between two native scans of a target: the budget's round (it may pass
 * NATIVE_PERIOD_MAX: the budget wins). */
double sampler_native_period(void);

#endif
