/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The reply of each command as text, when --json does not ask for the document itself. A
 * renderer gets a reply whose strings are free of control characters (json_sanitize()) and
 * returns 0 or a negative errno; a failed write shows in the stream's error flag.
 */
#ifndef PYLEAKCTL_RENDER_H
#define PYLEAKCTL_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "args.h"
#include "table.h"

/* render.c: one row of t per element of arr, added by add(t, index, element), then the
 * table; an empty arr prints the line `empty` instead.  Frees t; 0 or a negative errno. */
int render_rows(FILE *out, struct table *t, json_t *arr,
		int (*add)(struct table *t, size_t i, json_t *elem), const char *empty);

/* render.c: a site's stack under its row, one indented frame per line; 0 or -errno. */
int render_stack(struct table *t, json_t *site);

/* render_status.c */
int status_render(FILE *out, json_t *reply, const struct opts *o);
int ps_render(FILE *out, json_t *reply, const struct opts *o);

/* render_attach.c */
int attach_render(FILE *out, json_t *reply, const struct opts *o);
int detach_render(FILE *out, json_t *reply, const struct opts *o);

/* render_top.c */
int top_render(FILE *out, json_t *reply, const struct opts *o);

struct table;

/* Whether a top row is worth showing when sorted by sort (one of sorts[]). */
bool top_row_shown(json_t *row, const char *sort);

/* A row of top's table: TYPE, LIVE, BYTES, DELTA, SOURCE, then extra (more cells, "\t"-led). */
int top_row_add(struct table *t, json_t *row, const char *extra);

/* The reply's notes, wrapped to width columns. */
void top_notes_print(FILE *out, json_t *reply, size_t width);

/* The collector per generation ("gc: gen0 12 runs 3.1 ms (max 0.4), ..."), wrapped likewise. */
void top_gc_print(FILE *out, json_t *gc, size_t width);

/* render_leaks.c */
int leaks_render(FILE *out, json_t *reply, const struct opts *o);

/* render_postmortem.c */
int postmortem_render(FILE *out, json_t *reply, const struct opts *o);

/* render_sites.c */
int sites_render(FILE *out, json_t *reply, const struct opts *o);

/* render_native.c */
int native_render(FILE *out, json_t *reply, const struct opts *o);

/* render_path.c */
int path_render(FILE *out, json_t *reply, const struct opts *o);

#endif
