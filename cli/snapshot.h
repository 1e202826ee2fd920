/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Snapshots: one process's state saved in a JSON file (`pyleakctl snapshot`), and what changed
 * between two of them (`pyleakctl diff`), which needs no daemon.
 *
 * A snapshot is {"pyleak_snapshot": SNAPSHOT_FORMAT, "pyleak_version", "host", "pid", "exe",
 * "python", "mode", "time", "top": the top reply with every row, "leaks": the leaks reply,
 * "sites": {TYPE: the sites reply, or its error document, for each of the top suspects}}.
 */
#ifndef PYLEAKCTL_SNAPSHOT_H
#define PYLEAKCTL_SNAPSHOT_H

#include <jansson.h>
#include <stdio.h>

#include "args.h"
#include "client.h"

#define SNAPSHOT_FORMAT		1	/* raised when a field changes meaning */

/*
 * snapshot.c: the snapshot document of o->pid, its top reply asked for by top_req (consumed);
 * 0, or a negative errno once the failure is reported.
 */
int snapshot_collect(const struct opts *o, struct client *c, json_t *top_req, json_t **out);

/* snapshot.c: writes the snapshot of o->pid to o->output, then says what it holds. */
int snapshot_take(const struct opts *o, struct client *c);
int snapshot_render(FILE *out, json_t *summary, const struct opts *o);

/* diff.c: compares the snapshots in o->operands (c is NULL: no daemon). */
int snapshot_diff(const struct opts *o, struct client *c);
int diff_render(FILE *out, json_t *diff, const struct opts *o);

#endif
