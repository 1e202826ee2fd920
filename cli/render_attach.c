// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* attach and detach: what changed. */
#include "format.h"
#include "render.h"

int attach_render(FILE *out, json_t *reply, const struct opts *o)
{
	char b[2][CELL_MAX];

	if (json_is_false(field(reply, "attached")))
		fprintf(out, "pid %d was already attached\n", o->pid);
	else
		fprintf(out, "attached to pid %d (python %s, %s mode)\n", o->pid,
			value_text(field(reply, "python"), b[0]),
			value_text(field(reply, "mode"), b[1]));
	return 0;
}

int detach_render(FILE *out, json_t *reply, const struct opts *o)
{
	json_t *pending = field(reply, "pending_s");

	if (json_is_false(field(reply, "detached")))
		fprintf(out, "pid %d was not attached\n", o->pid);
	else if (json_is_number(pending))
		fprintf(out, "detached from pid %d (its USDT probes go in %.2f s)\n", o->pid,
			json_number_value(pending));
	else
		fprintf(out, "detached from pid %d\n", o->pid);
	return 0;
}
