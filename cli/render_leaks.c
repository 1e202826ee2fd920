// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* leaks: the ranked suspects, each with its evidence and allocation sites. */
#include "format.h"
#include "render.h"
#include "table.h"

/* "  each retains 1 dict (104), 1 bytearray (121, a suspect: +2000/min); 12.3M in all": what
 * each of a leak's owners holds alone, the suspects folded into it said so. */
static int retains_add(struct table *t, json_t *suspect)
{
	json_t *retains = field(suspect, "retains"), *r, *folded;
	char line[1024], b[2][CELL_MAX];
	size_t len = 0, i;

	if (!json_array_size(retains))
		return 0;
	json_array_foreach(retains, i, r) {
		folded = field(r, "suspect");
		len += snprintf(line + len, sizeof(line) - len, "%s%.3g %s (%s%s%s%s)", i ? ", " : "",
				json_number_value(field(r, "per_owner")),
				json_string_value(field(r, "type")) ?: "?",
				bytes_text(field(r, "bytes_per_owner"), 1, b[0]),
				folded ? ", a suspect: " : "",
				folded ? signed_text(field(folded, "growth_per_min"), b[1]) : "",
				folded ? "/min" : "");
		if (len >= sizeof(line))
			return table_add_line(t, "  each retains %s", line);
	}
	return table_add_line(t, "  each retains %s; %s in all", line,
			      bytes_text(field(suspect, "retained_bytes"), 1, b[0]));
}

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
	if (!err)
		err = retains_add(t, suspect);
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
