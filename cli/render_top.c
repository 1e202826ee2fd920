// SPDX-License-Identifier: MIT
/* top: live objects per type, the notes on how they were counted, the collector's work. */
#include "common.h"
#include "format.h"
#include "render.h"
#include "table.h"

/* The collector per generation: "gc: gen0 12 runs 3.1 ms (max 0.4), ...". */
static void gc_print(FILE *out, json_t *gc)
{
	const char *key;
	json_t *gen;

	if (!json_object_size(gc))
		return;
	fputs("gc:", out);
	json_object_foreach(gc, key, gen) {
		fprintf(out, " gen%s %.0f runs %.1f ms (max %.1f), %.0f collected;", key,
			json_number_value(field(gen, "runs")), json_number_value(field(gen, "total_ms")),
			json_number_value(field(gen, "max_ms")), json_number_value(field(gen, "collected")));
	}
	putc('\n', out);
}

int top_render(FILE *out, json_t *reply, const struct opts *o)
{
	static const char *const heads[] = { "TYPE", "LIVE", "BYTES", "DELTA", "SOURCE" };
	struct table t = TABLE_INIT(heads, COL(1) | COL(2) | COL(3));
	json_t *types = field(reply, "types"), *row, *note;
	char b[ARRAY_SIZE(heads)][CELL_MAX];
	size_t i;
	int err = 0;

	fprintf(out, "pid %d  python %s  mode %s  %s\n\n", o->pid,
		value_text(field(reply, "python"), b[0]), value_text(field(reply, "mode"), b[1]),
		time_text(field(reply, "time"), b[2]));
	json_array_foreach(types, i, row) {
		err = table_add(&t, "%s\t%s\t%s\t%s\t%s", value_text(field(row, "type"), b[0]),
				value_text(field(row, "live"), b[1]),
				bytes_text(field(row, "bytes"), 1, b[2]),
				signed_text(field(row, "delta"), b[3]),
				value_text(field(row, "source"), b[4]));
		if (err)
			goto cleanup;
	}
	if (t.nrows)
		table_print(&t, out);
	else
		fputs("no objects counted yet\n", out);
	json_array_foreach(field(reply, "notes"), i, note)
		if (json_is_string(note))
			fprintf(out, "note: %s\n", json_string_value(note));
	gc_print(out, field(reply, "gc"));
cleanup:
	table_free(&t);
	return err;
}
