/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Prometheus text exposition (format 0.0.4) into a bounded buffer: metric families (HELP and
 * TYPE lines) and their samples, label values escaped and capped.  Pure code.
 */
#ifndef PYLEAK_EXPO_H
#define PYLEAK_EXPO_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of a label value kept (type names and paths come from targets): the rest is cut. */
#define EXPO_LABEL_MAX 256
#define EXPO_LABELS_MAX 8

struct expo_labels {
	const char *name[EXPO_LABELS_MAX];
	const char *value[EXPO_LABELS_MAX];	/* NULL: "" */
	int n;
};

struct expo {
	char *buf;
	size_t len, cap;
	size_t limit;		/* bytes the text may take */
	uint64_t dropped;	/* lines left out: over the limit, or out of memory */
};

/* An empty text of at most limit bytes. */
void expo_init(struct expo *e, size_t limit);
void expo_free(struct expo *e);
/* Hands the text (NUL-terminated, e->len bytes; NULL if empty) to the caller; e is empty. */
char *expo_take(struct expo *e);

/* Appends label name=value to l (at most EXPO_LABELS_MAX: more are ignored). */
void expo_label(struct expo_labels *l, const char *name, const char *value);

/* A family's "# HELP" and "# TYPE" lines (type: "gauge", "counter"...); its samples follow. */
void expo_family(struct expo *e, const char *name, const char *type, const char *help);
/* One sample line: name{labels} value. A line that would pass the limit is left out whole
 * (counted in e->dropped); 0 or -ENOSPC. */
int expo_sample(struct expo *e, const char *name, const struct expo_labels *l, double value);

/* Writes s as a label value into out (size >= 2 * EXPO_LABEL_MAX + 1): cut to EXPO_LABEL_MAX
 * bytes, invalid UTF-8 made '?', '\\', '"' and newline escaped.  Returns its length. */
size_t expo_escape(const char *s, char *out);

#endif
