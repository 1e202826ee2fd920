/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Memory outside Python objects: a target's resident memory by mapping kind, and the native
 * bytes (resident, not in pymalloc pools) that each Python stack first touched, estimated from
 * the page-fault samples and kept over time so that growth shows.  Other sources of per-stack
 * estimates (a malloc sampler) hand theirs in as rows of the same shape.
 */
#ifndef PYLEAK_NATIVE_H
#define PYLEAK_NATIVE_H

#include <stdint.h>
#include <sys/types.h>

#include "census.h"
#include "history.h"
#include "probes.h"

enum native_kind { NATIVE_HEAP, NATIVE_ANON, NATIVE_FILE, NATIVE_STACK, NATIVE_OTHER, NATIVE_KINDS };

enum native_source { NATIVE_SRC_PAGES, NATIVE_SRC_MALLOC, NATIVE_SOURCES };

/* One source's estimate of the native bytes a Python stack holds now. */
struct native_estimate {
	uint64_t stack;			/* stack id (probes_read_stack()) */
	double bytes;
	uint64_t samples;		/* the samples the estimate is made of */
	enum native_source source;
};

/* Sites followed over time, per target: a history each (HISTORY_CAP samples). */
#define NATIVE_SITES_MAX	32
/* Estimates kept per source and scan, largest first. */
#define NATIVE_ESTIMATES_MAX	1024

struct native_site {
	struct native_estimate e;	/* bytes: the last estimate, 0 once its source lost it */
	struct history *hist;
};

struct native {
	double at, seconds;		/* the last scan (monotonic) and how long it took */
	uint64_t scans, errors;
	uint64_t rss_bytes;		/* VmRSS */
	uint64_t kind_rss[NATIVE_KINDS];	/* Rss by mapping kind, bytes (native_rss_read()) */
	double rss_at;			/* when kind_rss was read (monotonic); 0: never */
	uint64_t kind_sampled[NATIVE_KINDS];	/* estimated bytes of resident sampled pages */
	uint64_t pages_seen, pages_resident, pages_python;	/* of the last scan */
	struct native_estimate *est[NATIVE_SOURCES];	/* by bytes, largest first */
	size_t nest[NATIVE_SOURCES];
	/* The sources measure the same memory twice (resident pages, outstanding blocks): the
	 * larger one wins, chosen here once: a row per stack, its larger source's, largest first;
	 * bytes: the larger source's total. */
	struct native_estimate *rows;
	size_t nrows;
	double bytes;
	struct native_site sites[NATIVE_SITES_MAX];
	int nsites;
	struct history *total;		/* all sites' native bytes */
};

const char *native_kind_name(enum native_kind k);
const char *native_source_name(enum native_source s);

/* The kind of a /proc/PID/maps path ("", "[heap]", "/usr/lib/x.so", ...). */
enum native_kind native_kind_of(const char *path);

int native_new(struct native **out);
void native_free(struct native *n);

/* Whether a scan is due at now, scans being period seconds apart. */
int native_due(const struct native *n, double now, double period);

/*
 * Scans pid: its VmRSS, and each sampled page of p (at most 2 * max_pages) that
 * is still resident in its heap or anonymous mappings and holds no pymalloc pool (layout l,
 * NULL: none known), counted for the stack that first touched it; 0 or a negative errno.
 */
int native_scan(struct native *n, struct probes *p, pid_t pid, const struct census_layout *l,
		uint32_t max_pages);

/* Reading smaps walks every page table: a reading is reused this long (seconds). */
#define NATIVE_RSS_MAX_AGE	5.0

/* Reads pid's Rss by mapping kind into n->kind_rss (smaps: its cost grows with the RSS, so
 * on request only, and not again within NATIVE_RSS_MAX_AGE); 0 or a negative errno. */
int native_rss_read(struct native *n, pid_t pid);

/* Sorts v (k rows) by bytes, largest first. */
void native_estimates_sort(struct native_estimate *v, size_t k);

/* Replaces source's estimates by v (k rows), and the rows per stack and the followed sites
 * (one per stack) by the new answer; 0 or -ENOMEM. */
int native_estimates_set(struct native *n, enum native_source source,
			 const struct native_estimate *v, size_t k);

/* Records the current estimates of the followed sites (and their total) at now. */
void native_history_record(struct native *n, double now);

/* Estimated native bytes of all stacks: the larger source's total. */
double native_bytes(const struct native *n);

/* Memory the followed histories take. */
uint64_t native_memory_bytes(const struct native *n);

#endif
