// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* status and ps: the daemon and its targets, the Python processes on the host. */
#include "common.h"
#include "format.h"
#include "render.h"
#include "table.h"
#include "term.h"

static int target_add(struct table *t, size_t i, json_t *target)
{
	char b[8][CELL_MAX];

	(void)i;
	return table_add(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s",
			 value_text(field(target, "pid"), b[0]),
			 value_text(field(target, "python"), b[1]),
			 value_text(field(target, "mode"), b[2]),
			 value_text(field(target, "state"), b[3]),
			 value_text(field(target, "probes"), b[4]),
			 value_text(field(target, "events"), b[5]),
			 value_text(field(target, "drops"), b[6]),
			 duration_text(field(target, "attached_s"), b[7]));
}

/* A precise target's sampled native allocations: what is outstanding, and its top stack. */
static void native_print(FILE *out, json_t *target)
{
	json_t *n = field(target, "native_alloc"), *top = json_array_get(field(n, "top"), 0);
	char b[6][CELL_MAX];

	if (!n)
		return;
	if (field(n, "off")) {
		fprintf(out, "pid %s native: off (%s)\n", value_text(field(target, "pid"), b[0]),
			value_text(field(n, "off"), b[1]));
		return;
	}
	fprintf(out, "pid %s native: %s outstanding (%s sampled blocks, 1 per %s allocated), "
		"cost %s", value_text(field(target, "pid"), b[0]),
		bytes_text(field(n, "outstanding_bytes"), 1, b[1]),
		value_text(field(n, "outstanding"), b[2]), bytes_text(field(n, "sample_bytes"), 1, b[3]),
		decimal_text(field(n, "cost_s"), "s", b[4]));
	if (top)
		fprintf(out, "; most at %s (%s:%s)", value_text(field(top, "function"), b[5]),
			value_text(field(top, "file"), b[0]), value_text(field(top, "line"), b[1]));
	fputc('\n', out);
}

static int targets_print(FILE *out, json_t *targets)
{
	static const char *const heads[] = {
		"PID", "PYTHON", "MODE", "STATE", "PROBES", "EVENTS", "DROPS", "ATTACHED",
	};
	struct table t = TABLE_INIT(heads, COL(0) | COL(4) | COL(5) | COL(6) | COL(7));
	char b[CELL_MAX];
	json_t *target;
	size_t i;
	int err;

	err = render_rows(out, &t, targets, target_add, "no targets tracked");
	json_array_foreach(targets, i, target)
		if (!err)
			native_print(out, target);
	/* A precise target's budget: its fall back, or its cost when forced over it. */
	json_array_foreach(targets, i, target) {
		if (err || !json_array_size(field(target, "notes")))
			continue;
		fprintf(out, "pid %s:\n", value_text(field(target, "pid"), b));
		top_notes_print(out, target, term_columns(fileno(out)));
	}
	return err;
}

int status_render(FILE *out, json_t *reply, const struct opts *o)
{
	json_t *counters = field(reply, "counters"), *metrics = field(reply, "metrics");
	char b[CELL_MAX], c[CELL_MAX], d[CELL_MAX];
	const char *key;
	json_t *value;
	int err;

	(void)o;
	fprintf(out, "version  %s\n", value_text(field(reply, "version"), b));
	fprintf(out, "pid      %s\n", value_text(field(reply, "pid"), b));
	fprintf(out, "uptime   %s\n", duration_text(field(reply, "uptime_s"), b));
	fprintf(out, "cpu      %s\n", decimal_text(field(reply, "cpu_s"), "s", b));
	fprintf(out, "rss      %s\n", bytes_text(field(reply, "rss_kib"), 1024, b));
	/* its listen string is the daemon's own config, not a target's */
	if (json_is_object(metrics))
		fprintf(out, "metrics  http://%s/metrics  %s scrapes, %s connections\n",
			value_text(field(metrics, "listen"), b), value_text(field(metrics, "scrapes"), c),
			value_text(field(metrics, "connections"), d));
	putc('\n', out);
	err = targets_print(out, field(reply, "targets"));
	if (err || !json_object_size(counters))
		return err;
	fputs("\ncounters:\n", out);
	json_object_foreach(counters, key, value) {
		fprintf(out, "  %s = ", key);
		value_print(out, value);
		putc('\n', out);
	}
	return 0;
}

static int proc_add(struct table *t, size_t i, json_t *proc)
{
	char b[4][CELL_MAX];

	(void)i;
	return table_add(t, "%s\t%s\t%s\t%s", value_text(field(proc, "pid"), b[0]),
			 value_text(field(proc, "python"), b[1]),
			 value_text(field(proc, "tracked"), b[2]),
			 value_text(field(proc, "exe"), b[3]));
}

int ps_render(FILE *out, json_t *reply, const struct opts *o)
{
	static const char *const heads[] = { "PID", "PYTHON", "TRACKED", "EXE" };
	struct table t = TABLE_INIT(heads, COL(0));

	(void)o;
	return render_rows(out, &t, field(reply, "processes"), proc_add, "no Python processes found");
}
