/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Prometheus metrics of the tracked targets and of the daemon: at the sample tick after a
 * scrape (at most every 5 s, and 1/10 of the loop's time) the loop renders them into a snapshot
 * (bounded: the top types of each target, the rest summed as py_type="other") that
 * metrics_http.c serves: a scrape sees figures one scrape interval old at most (plus 5 s).
 */
#ifndef PYLEAK_METRICS_H
#define PYLEAK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "target.h"

#define METRICS_TOP_TYPES_DEFAULT	20
#define METRICS_TOP_TYPES_MAX		1000
/* Bytes of text a snapshot may take: series past it are left out, and counted. */
#define METRICS_TEXT_MAX		(8u << 20)

struct metrics_options {
	const char *listen;	/* "IPv4:PORT" or "[IPv6]:PORT"; NULL: no metrics */
	uint32_t top_types;	/* types per target by live count; the rest go in "other" */
};

/* The labels every series of a target carries; "" where not known. */
struct metrics_target_labels {
	char pid[16];
	const char *exe;
	const char *unit;	/* its systemd unit, from its cgroup */
	const char *container;	/* its container's id, from its cgroup */
};

/* Fills l from t: the one place that maps a target to its labels. */
void metrics_target_labels(const struct target *t, struct metrics_target_labels *l);

/* One type of a target: rows of the same name (two classes both named Node) are one series. */
struct metrics_type {
	const char *name;
	int64_t live;
	int64_t bytes;		/* -1: unknown */
	double score;		/* leak score; < 0: not a suspect */
};

/* Merges v's entries of equal names (live and known bytes summed, the highest score), then
 * keeps at the front the top entries by live count: returns how many.  The others, and any
 * type named "other", are summed into *other (live, known bytes) and count in *nother. */
size_t metrics_types_top(struct metrics_type *v, size_t n, size_t top, struct metrics_type *other,
			 size_t *nother);

/* Merges v's suspects (score >= 0) of equal names (highest score) and keeps at the front the
 * top of them by score: returns how many. */
size_t metrics_suspects_top(struct metrics_type *v, size_t n, size_t top);

/* Starts serving o->listen (nothing if NULL) with a first snapshot; 0 or -errno, logged. */
int metrics_start(const struct metrics_options *o);
/* Renders the tracked targets and the daemon into a new snapshot, when serving and a scrape
 * was answered since the last one (at most every 5 s). */
void metrics_update(void);
void metrics_stop(void);
/* `status`'s "metrics": the server's and the last snapshot's figures, or NULL when off. */
json_t *metrics_status_json(void);

#endif
