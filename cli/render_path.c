// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* path: a line per retention path, then what the walk covered. */
#include "format.h"
#include "render.h"

int path_render(FILE *out, json_t *reply, const struct opts *o)
{
	json_t *paths = field(reply, "paths"), *p, *walk = field(reply, "walk");
	char b[4][CELL_MAX];
	size_t i;

	if (json_is_true(field(reply, "unreachable")))
		fprintf(out, "%s: %s objects unreachable: kept only by a reference cycle, waiting for "
			"the collector\n", o->type, value_text(field(reply, "unreachable_objects"), b[0]));
	else if (!json_array_size(paths))
		fprintf(out, "%s: no live object reached from a root\n", o->type);
	json_array_foreach(paths, i, p)
		fprintf(out, "%10s  %s\n", value_text(field(p, "objects"), b[0]),
			value_text(field(p, "text"), b[1]));
	fprintf(out, "\nwalk: %s containers, %s references, %s opaque, %s s%s%s\n",
		value_text(field(walk, "containers"), b[0]), value_text(field(walk, "references"), b[1]),
		value_text(field(walk, "opaque"), b[2]), value_text(field(walk, "seconds"), b[3]),
		json_is_true(field(walk, "complete")) ? "" : " (incomplete)",
		json_is_true(field(walk, "cut")) ? " (a bound left part of the heap out)" : "");
	return 0;
}
