// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* diff: what grew between two snapshots, per type, from the files alone (snapshot.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "failure.h"
#include "format.h"
#include "reply.h"
#include "snapshot.h"
#include "table.h"

/* An input that is not a snapshot is the caller's mistake: main() exits 2 for -EBADMSG. */
static int snapshot_load(const struct opts *o, const char *path, json_t **out)
{
	json_error_t jerr;
	json_t *doc, *format;

	doc = json_load_file(path, 0, &jerr);
	if (!doc && json_error_code(&jerr) == json_error_cannot_open_file)
		return fail(o->json, -EBADMSG, "bad_request", "%s", jerr.text);
	if (!doc)
		return fail(o->json, -EBADMSG, "bad_request",
			    "%s: not a pyleak snapshot: invalid JSON at line %d: %s", path, jerr.line,
			    jerr.text);
	format = field(doc, "pyleak_snapshot");
	if (!json_is_integer(format) || !json_is_array(field(field(doc, "top"), "types"))) {
		json_decref(doc);
		return fail(o->json, -EBADMSG, "bad_request",
			    "%s: not a pyleak snapshot: no \"pyleak_snapshot\" format or top types",
			    path);
	}
	if (json_integer_value(format) > SNAPSHOT_FORMAT) {
		json_decref(doc);
		return fail(o->json, -EBADMSG, "bad_request",
			    "%s: snapshot format %" JSON_INTEGER_FORMAT " is newer than this "
			    "pyleakctl's (%d): use the pyleakctl that made it", path,
			    json_integer_value(format), SNAPSHOT_FORMAT);
	}
	*out = doc;
	return 0;
}

/* What the output says about a snapshot: where it came from. */
static json_t *origin_get(const char *path, json_t *snap)
{
	return json_pack("{s:s,s:O*,s:O*,s:O*,s:O*,s:O*,s:O*}", "file", path,
			 "pid", field(snap, "pid"), "exe", field(snap, "exe"),
			 "python", field(snap, "python"), "mode", field(snap, "mode"),
			 "time", field(snap, "time"), "host", field(snap, "host"));
}

static json_int_t count_of(json_t *v)
{
	return json_is_integer(v) ? json_integer_value(v) : (json_int_t)json_number_value(v);
}

static int count_add(json_t *row, const char *key, json_t *v)
{
	return json_object_set_new(row, key, json_integer(count_of(field(row, key)) + count_of(v)));
}

/*
 * Adds the top rows of snap to by_type, under "before"/"bytes_before" or "after"/...: rows of
 * one name are summed (two classes may share a name in different modules).
 */
static int rows_add(json_t *by_type, json_t *snap, bool after)
{
	json_t *row, *sum;
	const char *type;
	size_t i;

	json_array_foreach(field(field(snap, "top"), "types"), i, row) {
		type = json_string_value(field(row, "type"));
		if (!type)
			continue;
		sum = field(by_type, type);
		if (!sum) {
			sum = json_pack("{s:s,s:i,s:i,s:i,s:i}", "type", type, "before", 0, "after", 0,
					"bytes_before", 0, "bytes_after", 0);
			if (json_object_set_new(by_type, type, sum))
				return -ENOMEM;
		}
		if (count_add(sum, after ? "after" : "before", field(row, "live")) ||
		    count_add(sum, after ? "bytes_after" : "bytes_before", field(row, "bytes")))
			return -ENOMEM;
	}
	return 0;
}

static json_int_t delta_of(json_t *row, const char *before, const char *after)
{
	return count_of(field(row, after)) - count_of(field(row, before));
}

/* Most grown first; equal ones by name, so that the order never depends on the files'. */
static int change_cmp(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t dx = count_of(field(x, "delta")), dy = count_of(field(y, "delta"));

	if (dx != dy)
		return dx > dy ? -1 : 1;
	return strcmp(json_string_value(field(x, "type")), json_string_value(field(y, "type")));
}

/* by_type's rows with their deltas, sorted by change_cmp(). */
static json_t *changes_get(json_t *by_type)
{
	size_t n = json_object_size(by_type), i = 0;
	json_t **rows = calloc(n ? n : 1, sizeof(*rows)), *list = json_array(), *row;
	const char *type;
	int err = rows && list ? 0 : -ENOMEM;

	json_object_foreach(by_type, type, row) {
		if (err)
			break;
		err = json_object_set_new(row, "delta", json_integer(delta_of(row, "before", "after"))) ||
		      json_object_set_new(row, "bytes_delta",
					  json_integer(delta_of(row, "bytes_before", "bytes_after")));
		rows[i++] = row;
	}
	qsort(rows, i, sizeof(*rows), change_cmp);
	for (n = 0; !err && n < i; n++)
		err = json_array_append(list, rows[n]);
	free(rows);
	if (err) {
		json_decref(list);
		return NULL;
	}
	return list;
}

/* Counts of two processes, or of two modes, are not the same measure: say so. */
static json_t *notes_get(json_t *a, json_t *b)
{
	json_t *notes = json_array();

	if (!json_equal(field(a, "pid"), field(b, "pid")) ||
	    !json_equal(field(a, "host"), field(b, "host")))
		json_array_append_new(notes, json_string("the snapshots are of different processes"));
	if (!json_equal(field(a, "mode"), field(b, "mode")))
		json_array_append_new(notes, json_string("the snapshots were taken in different modes: "
							 "their counts differ in what they cover"));
	return notes;
}

static json_t *diff_doc(const struct opts *o, json_t *a, json_t *b)
{
	json_t *by_type = json_object(), *doc = NULL, *ta = field(a, "time"), *tb = field(b, "time");
	json_t *span = json_is_number(ta) && json_is_number(tb) ?
		       json_real(json_number_value(tb) - json_number_value(ta)) : NULL;

	if (by_type && !rows_add(by_type, a, false) && !rows_add(by_type, b, true))
		doc = json_pack("{s:o,s:o,s:o*,s:o,s:o}", "before", origin_get(o->operands[0], a),
				"after", origin_get(o->operands[1], b), "span_s", span,
				"types", changes_get(by_type), "notes", notes_get(a, b));
	else
		json_decref(span);
	json_decref(by_type);
	return doc;
}

int snapshot_diff(const struct opts *o, struct client *c)
{
	json_t *a = NULL, *b = NULL, *doc = NULL;
	int err;

	(void)c;
	err = snapshot_load(o, o->operands[0], &a);
	if (!err)
		err = snapshot_load(o, o->operands[1], &b);
	if (err)
		goto cleanup;
	doc = diff_doc(o, a, b);
	if (!doc) {
		err = fail(o->json, -ENOMEM, "internal", "out of memory");
		goto cleanup;
	}
	err = reply_print(o, stdout, doc);
cleanup:
	json_decref(doc);
	json_decref(b);
	json_decref(a);
	return err;
}

static void origin_print(FILE *out, const char *label, json_t *origin)
{
	char b[5][CELL_MAX];

	fprintf(out, "%-7s %s: pid %s  python %s  mode %s  %s\n", label,
		value_text(field(origin, "file"), b[0]), value_text(field(origin, "pid"), b[1]),
		value_text(field(origin, "python"), b[2]), value_text(field(origin, "mode"), b[3]),
		time_text(field(origin, "time"), b[4]));
}

/* The types that changed, most grown first; the unchanged ones are only counted. */
int diff_render(FILE *out, json_t *diff, const struct opts *o)
{
	static const char *const heads[] = { "TYPE", "BEFORE", "AFTER", "DELTA", "BYTES DELTA" };
	struct table t = TABLE_INIT(heads, COL(1) | COL(2) | COL(3) | COL(4));
	json_t *types = field(diff, "types"), *row, *note;
	char b[ARRAY_SIZE(heads)][CELL_MAX], span[CELL_MAX];
	size_t i;
	int err = 0;

	(void)o;
	origin_print(out, "before", field(diff, "before"));
	origin_print(out, "after", field(diff, "after"));
	if (field(diff, "span_s"))
		fprintf(out, "%s apart\n", duration_text(field(diff, "span_s"), span));
	putc('\n', out);
	json_array_foreach(types, i, row) {
		if (!count_of(field(row, "delta")) && !count_of(field(row, "bytes_delta")))
			continue;
		err = table_add(&t, "%s\t%s\t%s\t%s\t%s%s", value_text(field(row, "type"), b[0]),
				value_text(field(row, "before"), b[1]),
				value_text(field(row, "after"), b[2]),
				signed_text(field(row, "delta"), b[3]),
				count_of(field(row, "bytes_delta")) > 0 ? "+" : "",
				bytes_text(field(row, "bytes_delta"), 1, b[4]));
		if (err)
			goto cleanup;
	}
	if (t.nrows)
		table_print(&t, out);
	else
		fputs("no type changed\n", out);
	if (t.nrows < json_array_size(types))
		fprintf(out, "%zu types unchanged\n", json_array_size(types) - t.nrows);
	json_array_foreach(field(diff, "notes"), i, note)
		fprintf(out, "note: %s\n", json_string_value(note));
cleanup:
	table_free(&t);
	return err;
}
