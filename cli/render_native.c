// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* native: resident memory by mapping kind, then native bytes by Python site. */
#include "format.h"
#include "render.h"
#include "table.h"

static int site_add(struct table *t, json_t *site)
{
	json_t *owner = field(site, "owner_type");
	struct frame_text ft;
	char b[2][CELL_MAX];
	int err;

	frame_text_get(&ft, site);
	err = table_add(t, "%s\t%s\t%s\t%s:%s", bytes_text(field(site, "bytes"), 1, b[0]),
			json_is_string(owner) ? value_text(owner, b[1]) : "-", ft.function, ft.file,
			ft.line);
	return err ? err : render_stack(t, site);
}

int native_render(FILE *out, json_t *reply, const struct opts *o)
{
	static const char *const heads[] = { "BYTES", "OWNER", "FUNCTION", "FILE:LINE" };
	struct table t = TABLE_INIT(heads, COL(0));
	json_t *sites = field(reply, "sites"), *site, *m;
	char b[4][CELL_MAX];
	size_t i;
	int err = 0;

	fprintf(out, "pid %d  rss %s  python objects %s  native (sampled sites) %s  explained %.0f%%\n",
		o->pid, bytes_text(field(reply, "rss_bytes"), 1, b[0]),
		bytes_text(field(reply, "python_objects_bytes"), 1, b[1]),
		bytes_text(field(reply, "native_bytes"), 1, b[2]),
		json_number_value(field(reply, "explained_fraction")) * 100);
	fputs("rss by mapping:", out);
	json_array_foreach(field(reply, "mappings"), i, m)
		fprintf(out, " %s %s", value_text(field(m, "kind"), b[0]),
			bytes_text(field(m, "bytes"), 1, b[1]));
	fputs("\n\n", out);
	if (!json_array_size(sites)) {
		fputs("no native memory attributed to a Python line yet\n", out);
		return 0;
	}
	json_array_foreach(sites, i, site) {
		err = site_add(&t, site);
		if (err)
			goto cleanup;
	}
	table_print(&t, out);
cleanup:
	table_free(&t);
	return err;
}
