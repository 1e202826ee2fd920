// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* postmortem: the list of saved reports, or one report (its top and leaks as those show them). */
#include <string.h>

#include "common.h"
#include "format.h"
#include "render.h"
#include "table.h"

static int report_add(struct table *t, size_t i, json_t *r)
{
	char b[4][CELL_MAX];

	(void)i;
	return table_add(t, "%s\t%s\t%s\t%s", value_text(field(r, "pid"), b[0]),
			 time_text(field(r, "ended_at"), b[1]), value_text(field(r, "cause"), b[2]),
			 value_text(field(r, "exe"), b[3]));
}

/* "signal 9", "exit code 3", or nothing. */
static const char *how_text(json_t *report, char *buf)
{
	char b[CELL_MAX];

	buf[0] = '\0';
	if (field(report, "signal"))
		snprintf(buf, CELL_MAX, " (signal %s)", value_text(field(report, "signal"), b));
	else if (json_is_integer(field(report, "exit_code")))
		snprintf(buf, CELL_MAX, " (exit code %s)", value_text(field(report, "exit_code"), b));
	return buf;
}

int postmortem_render(FILE *out, json_t *reply, const struct opts *o)
{
	static const char *const heads[] = { "PID", "ENDED", "CAUSE", "EXE" };
	struct table t = TABLE_INIT(heads, COL(0));
	struct opts sub = *o;
	char b[5][CELL_MAX];
	int err;

	if (field(reply, "reports"))
		return render_rows(out, &t, field(reply, "reports"), report_add, "no postmortem reports");
	table_free(&t);
	fprintf(out, "pid %s  %s  python %s  mode %s\nended %s: %s%s  (attached %s)\n\n",
		value_text(field(reply, "pid"), b[0]), value_text(field(reply, "exe"), b[1]),
		value_text(field(reply, "python"), b[2]), value_text(field(reply, "mode"), b[3]),
		time_text(field(reply, "ended_at"), b[4]), value_text(field(reply, "cause"), b[0]),
		how_text(reply, b[1]), time_text(field(reply, "attached_at"), b[2]));
	/* Every row the report kept, as `top` would show them sorted by live count. */
	sub.sort = 0;
	sub.pid = (int)json_integer_value(field(reply, "pid"));
	err = top_render(out, field(reply, "top"), &sub);
	if (!err) {
		fputs("\nleak suspects:\n", out);
		err = leaks_render(out, field(reply, "leaks"), &sub);
	}
	return err;
}
