// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* leaks: the ranked suspects, each with its evidence and allocation sites. */
#include "format.h"
#include "render.h"
#include "table.h"

static int suspect_add(struct table *t, size_t index, json_t *suspect)
{
	json_t *evidence = field(suspect, "evidence"), *site;
	char b[6][CELL_MAX];	/* one per cell; the first is reused for each site */
	struct frame_text ft;
	size_t i;
	int err;

	err = table_add(t, "%zu\t%s\t%s\t%s\t%s\t%s", index + 1,
			value_text(field(suspect, "type"), b[1]),
			decimal_text(field(suspect, "score"), "", b[2]),
			signed_text(field(suspect, "growth_per_min"), b[3]),
			value_text(field(suspect, "live"), b[4]),
			percent_text(field(suspect, "freed_by_gc_fraction"), b[5]));
	if (!err && json_is_string(evidence))
		err = table_add_line(t, "%s", json_string_value(evidence));
	if (!err && field(suspect, "path"))
		err = table_add_line(t, "  kept by %s", value_text(field(field(suspect, "path"), "text"), b[0]));
	json_array_foreach(field(suspect, "sites"), i, site) {
		if (err)
			break;
		frame_text_get(&ft, site);
		err = table_add_line(t, "  at " FRAME_FMT " live %s", FRAME_ARGS(ft),
				     value_text(field(site, "live"), b[0]));
	}
	return err;
}

int leaks_render(FILE *out, json_t *reply, const struct opts *o)
{
	static const char *const heads[] = {
		"RANK", "TYPE", "SCORE", "GROWTH/MIN", "LIVE", "GC-FREED",
	};
	struct table t = TABLE_INIT(heads, COL(0) | COL(2) | COL(3) | COL(4) | COL(5));
	json_t *window = field(reply, "window_s");
	char empty[64];

	/* The daemon may judge a shorter window than asked: its own figure comes first. */
	snprintf(empty, sizeof(empty), "no leak suspects in the last %.0f s",
		 json_is_number(window) ? json_number_value(window) : o->window);
	return render_rows(out, &t, field(reply, "suspects"), suspect_add, empty);
}
