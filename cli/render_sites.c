// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* sites: where the live objects of a type were allocated, as a table or exported. */
#include <string.h>

#include "export.h"
#include "format.h"
#include "render.h"
#include "table.h"

static int site_add(struct table *t, json_t *site, const char *key)
{
	struct frame_text ft;
	char b[CELL_MAX];
	int err;

	frame_text_get(&ft, site);
	err = table_add(t, "%s\t%s\t%s:%s", strcmp(key, "bytes") ? value_text(field(site, key), b) :
			bytes_text(field(site, key), 1, b), ft.function,
			ft.file, ft.line);
	return err ? err : render_stack(t, site);
}

/* The list that holds a growing type, and the line that grows it (its append). */
static void holder_print(FILE *out, json_t *holder)
{
	json_t *at = field(holder, "grown_at");
	char b[4][CELL_MAX];

	if (!holder)
		return;
	fprintf(out, "\nheld by a %s at %s: %s items, +%s in the window",
		value_text(field(holder, "container"), b[0]), value_text(field(holder, "address"), b[1]),
		value_text(field(holder, "length"), b[2]), value_text(field(holder, "growth"), b[3]));
	if (at)
		fprintf(out, "; grown at %s (%s:%s)", value_text(field(at, "function"), b[0]),
			value_text(field(at, "file"), b[1]), value_text(field(at, "line"), b[2]));
	putc('\n', out);
}

/* The native bytes the type's constructors touched (or all, for --type native). */
static int native_print(FILE *out, json_t *reply, const struct opts *o)
{
	static const char *const heads[] = { "NATIVE", "FUNCTION", "FILE:LINE" };
	struct table t = TABLE_INIT(heads, COL(0));
	json_t *native = field(reply, "native"), *site;
	size_t i;
	int err = 0;

	if (!json_array_size(native))
		return 0;
	if (strcmp(o->type, "native"))
		fprintf(out, "\nnative memory touched while %s objects were built:\n", o->type);
	json_array_foreach(native, i, site) {
		err = site_add(&t, site, "bytes");
		if (err)
			break;
	}
	if (!err)
		table_print(&t, out);
	table_free(&t);
	return err;
}

int sites_render(FILE *out, json_t *reply, const struct opts *o)
{
	static const char *const heads[] = { "LIVE", "FUNCTION", "FILE:LINE" };
	struct table t = TABLE_INIT(heads, COL(0));
	json_t *sites = field(reply, "sites"), *site;
	size_t i;
	int err = 0;

	/* folded stacks have one unit: objects, or bytes for --type native */
	if (o->format == FORMAT_FOLDED) {
		if (json_array_size(sites))
			sites_folded_print(out, sites, false);
		else
			sites_folded_print(out, field(reply, "native"), true);
		return 0;
	}
	if (o->format == FORMAT_PPROF)
		return sites_pprof_write(out, reply);
	if (!json_array_size(sites)) {
		if (!json_array_size(field(reply, "native")))
			fprintf(out, "no allocation sites recorded for type %s\n", o->type);
		return native_print(out, reply, o);
	}
	json_array_foreach(sites, i, site) {
		err = site_add(&t, site, "live");
		if (err)
			goto cleanup;
	}
	table_print(&t, out);
	holder_print(out, field(reply, "held_by"));
	err = native_print(out, reply, o);
cleanup:
	table_free(&t);
	return err;
}
