// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* What every table-shaped renderer does with an array of the reply, and with a stack. */
#include "format.h"
#include "render.h"

int render_rows(FILE *out, struct table *t, json_t *arr,
		int (*add)(struct table *t, size_t i, json_t *elem), const char *empty)
{
	json_t *elem;
	size_t i;
	int err = 0;

	if (!json_array_size(arr)) {
		fprintf(out, "%s\n", empty);
		return 0;
	}
	json_array_foreach(arr, i, elem) {
		err = add(t, i, elem);
		if (err)
			goto cleanup;
	}
	table_print(t, out);
cleanup:
	table_free(t);
	return err;
}

int render_stack(struct table *t, json_t *site)
{
	struct frame_text ft;
	json_t *frame;
	size_t i;
	int err = 0;

	json_array_foreach(field(site, "stack"), i, frame) {
		frame_text_get(&ft, frame);
		err = table_add_line(t, "  " FRAME_FMT, FRAME_ARGS(ft));
		if (err)
			break;
	}
	return err;
}
