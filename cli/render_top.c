// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* top: live objects per type, the notes on how they were counted, the collector's work. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "format.h"
#include "render.h"
#include "table.h"
#include "term.h"

void top_gc_print(FILE *out, json_t *gc, size_t width)
{
	const char *key;
	json_t *gen;
	char *text;
	size_t len;
	FILE *mem;

	if (!json_object_size(gc))
		return;
	mem = open_memstream(&text, &len);
	if (!mem)
		return;
	json_object_foreach(gc, key, gen) {
		fprintf(mem, " gen%s %.0f runs %.1f ms (max %.1f), %.0f collected;", key,
			json_number_value(field(gen, "runs")), json_number_value(field(gen, "total_ms")),
			json_number_value(field(gen, "max_ms")), json_number_value(field(gen, "collected")));
	}
	if (!fclose(mem))
		text_wrap_print(out, "gc: ", text, width);
	free(text);
}

bool top_row_shown(json_t *row, const char *sort)
{
	const char *source = json_string_value(field(row, "source"));
	json_t *delta = field(row, "delta");

	/*
	 * A probes row counts objects born since attach. With none alive, its delta (births minus
	 * deaths over the interval, older objects' deaths included) can only be a fall to 0: the
	 * row says nothing about what is live, and is shown only where the order is by growth
	 * and something did change.
	 */
	if (json_integer_value(field(row, "live")) || !source || strcmp(source, "probes"))
		return true;
	return !strcmp(sort, "growth") && json_is_integer(delta) && json_integer_value(delta);
}

int top_row_add(struct table *t, json_t *row, const char *extra)
{
	char b[5][CELL_MAX];

	/* '*': not every live object of the type could be enumerated (the notes say which) */
	return table_add(t, "%s\t%s\t%s\t%s\t%s%s%s", value_text(field(row, "type"), b[0]),
			 value_text(field(row, "live"), b[1]), bytes_text(field(row, "bytes"), 1, b[2]),
			 signed_text(field(row, "delta"), b[3]), value_text(field(row, "source"), b[4]),
			 json_is_false(field(row, "complete")) ? "*" : "", extra);
}

void top_notes_print(FILE *out, json_t *reply, size_t width)
{
	json_t *note;
	size_t i;

	json_array_foreach(field(reply, "notes"), i, note)
		if (json_is_string(note))
			text_wrap_print(out, "note: ", json_string_value(note), width);
}

int top_render(FILE *out, json_t *reply, const struct opts *o)
{
	static const char *const heads[] = { "TYPE", "LIVE", "BYTES", "DELTA", "SOURCE" };
	struct table t = TABLE_INIT(heads, COL(1) | COL(2) | COL(3));
	json_t *row;
	char b[3][CELL_MAX];
	size_t i, width;
	int err = 0;

	fprintf(out, "pid %d  python %s  mode %s  %s\n", o->pid,
		value_text(field(reply, "python"), b[0]), value_text(field(reply, "mode"), b[1]),
		time_text(field(reply, "time"), b[2]));
	if (field(reply, "rss_bytes"))
		fprintf(out, "rss %s  python objects %s  native (sampled sites) %s\n",
			bytes_text(field(reply, "rss_bytes"), 1, b[0]),
			bytes_text(field(reply, "python_objects_bytes"), 1, b[1]),
			bytes_text(field(reply, "native_bytes"), 1, b[2]));
	putc('\n', out);
	json_array_foreach(field(reply, "types"), i, row) {
		if (!top_row_shown(row, sorts[o->sort]))
			continue;
		err = top_row_add(&t, row, "");
		if (err)
			goto cleanup;
	}
	if (t.nrows)
		table_print(&t, out);
	else
		fputs("no objects counted yet\n", out);
	width = term_columns(fileno(out));
	top_notes_print(out, reply, width);
	top_gc_print(out, field(reply, "gc"), width);
cleanup:
	table_free(&t);
	return err;
}
