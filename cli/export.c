// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Exports of a sites reply (export.h). */
#include <stdint.h>
#include <stdlib.h>

#include "export.h"
#include "format.h"
#include "pprof.h"

/* Text in a folded stack, where ';' would end a frame: a path may hold one. */
static void folded_put(FILE *out, const char *s)
{
	for (; *s; s++)
		putc(*s == ';' ? '?' : *s, out);
}

/* As FRAME_FMT. */
static void folded_frame_print(FILE *out, json_t *frame)
{
	struct frame_text ft;

	frame_text_get(&ft, frame);
	folded_put(out, ft.function);
	fputs(" (", out);
	folded_put(out, ft.file);
	putc(':', out);
	folded_put(out, ft.line);
	putc(')', out);
}

/*
 * Folded stacks (flamegraph.pl input) start at the root. The daemon lists a stack from the
 * allocating frame outwards, so it is walked backwards; a site without one is its own frame.
 */
void sites_folded_print(FILE *out, json_t *sites, bool native)
{
	json_t *site, *stack;
	size_t i, j, n;

	json_array_foreach(sites, i, site) {
		stack = field(site, "stack");
		n = json_array_size(stack);
		for (j = n; j-- > 0;) {
			if (j + 1 < n)
				putc(';', out);
			folded_frame_print(out, json_array_get(stack, j));
		}
		if (!n)
			folded_frame_print(out, site);
		if (native)
			fputs(";" NATIVE_FRAME, out);
		fprintf(out, " %.0f\n", json_number_value(field(site, native ? "bytes" : "live")));
	}
}

int sites_pprof_write(FILE *out, json_t *reply)
{
	uint8_t *profile = NULL;
	size_t len = 0;
	int err;

	err = pprof_encode(reply, &profile, &len);
	/* A failed write is reported by the caller, which checks the stream last. */
	if (!err)
		fwrite(profile, 1, len, out);
	free(profile);
	return err;
}
