// SPDX-License-Identifier: MIT
/*
 * pyleakctl: the command-line client of pyleakd. Each command sends one JSON request over the
 * daemon's Unix socket (docs/protocol.md) and prints the reply as a table or, with --json, as
 * the daemon's own document (../shared/cli-contract.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "common.h"
#include "failure.h"
#include "format.h"
#include "pprof.h"
#include "table.h"

#ifndef PYLEAK_VERSION
#define PYLEAK_VERSION		"0.1.0"	/* the Makefile passes its VERSION */
#endif
#define DEFAULT_SOCKET		"/run/pyleakd/pyleakd.sock"
#define DEFAULT_COUNT		20
#define DEFAULT_WINDOW		60
#define DEFAULT_INTERVAL	2
#define INTERVAL_MAX		86400	/* a day: keeps the sleep arithmetic far from overflow */
#define EXIT_USAGE		2
#define SCREEN_CLEAR		"\033[H\033[2J"

#define STR(x)			#x
#define XSTR(x)			STR(x)

/* Options that belong to commands; a command lists those it takes as a mask of these bits. */
enum cmd_option {
	CO_PID,
	CO_MODE,
	CO_BUDGET,
	CO_ONCE,
	CO_COUNT,
	CO_INTERVAL,
	CO_SORT,
	CO_WINDOW,
	CO_TYPE,
	CO_FORMAT,
	CO_OUTPUT,
	CO_NR,
};

#define CO(name)		(1u << CO_##name)

#define POSITIVE		"a positive integer"

/*
 * The first word of a synopsis is the option's name and what follows its value; an option
 * without "expected" takes one of the choices its synopsis lists.
 */
static const struct {
	int val;		/* getopt_long's code for it */
	const char *synopsis;
	const char *help;
	const char *expected;	/* what a bad value should have been */
} cmd_options[CO_NR] = {
	[CO_PID] = { 'p', "-p PID", "the target process", POSITIVE },
	[CO_MODE] = { 'm', "--mode precise|sampled", "how to track (default precise)", NULL },
	[CO_BUDGET] = {
		'b', "--budget FRACTION",
		"CPU share of the target its probes may cost (default: the daemon's, 0.01)",
		"a fraction in [0, 1]",
	},
	[CO_ONCE] = { 'O', "--once", "print one table and exit", NULL },
	[CO_COUNT] = { 'n', "-n N", "rows to show (default " XSTR(DEFAULT_COUNT) ")", POSITIVE },
	[CO_INTERVAL] = {
		'i', "--interval SEC",
		"seconds between refreshes (default " XSTR(DEFAULT_INTERVAL) ", fractions allowed)",
		"seconds > 0, at most " XSTR(INTERVAL_MAX),
	},
	[CO_SORT] = { 's', "--sort live|bytes|growth", "order of the rows (default live)", NULL },
	[CO_WINDOW] = {
		'w', "--window SEC",
		"seconds of history to judge (default " XSTR(DEFAULT_WINDOW) ")",
		POSITIVE " of seconds",
	},
	[CO_TYPE] = { 't', "--type TYPE", "type name as type(obj).__name__ shows it", "a name" },
	[CO_FORMAT] = {
		'f', "--format table|folded|pprof",
		"output format (default table; pprof is gzip'd binary)", NULL,
	},
	[CO_OUTPUT] = { 'o', "-o FILE", "write the output to FILE instead of stdout", "a file name" },
};

static const char *const global_options[][2] = {
	{ "--socket PATH", "daemon socket (default: $PYLEAKD_SOCKET, else " DEFAULT_SOCKET ")" },
	{ "--json", "print the daemon's reply as one JSON document" },
	{ "-h, --help", "this help; after a command, that command's help" },
	{ "--version", "print the version" },
};

static const char *const modes[] = { "precise", "sampled", NULL };
static const char *const sorts[] = { "live", "bytes", "growth", NULL };

enum format {
	FORMAT_TABLE,
	FORMAT_FOLDED,
	FORMAT_PPROF,
};

static const char *const formats[] = {
	[FORMAT_TABLE] = "table",
	[FORMAT_FOLDED] = "folded",
	[FORMAT_PPROF] = "pprof",
	NULL,
};

static const struct option long_options[] = {
	{ "socket",	required_argument,	NULL, 'S' },
	{ "json",	no_argument,		NULL, 'j' },
	{ "help",	no_argument,		NULL, 'h' },
	{ "version",	no_argument,		NULL, 'V' },
	{ "mode",	required_argument,	NULL, 'm' },
	{ "budget",	required_argument,	NULL, 'b' },
	{ "once",	no_argument,		NULL, 'O' },
	{ "interval",	required_argument,	NULL, 'i' },
	{ "sort",	required_argument,	NULL, 's' },
	{ "window",	required_argument,	NULL, 'w' },
	{ "type",	required_argument,	NULL, 't' },
	{ "format",	required_argument,	NULL, 'f' },
	{ "output",	required_argument,	NULL, 'o' },
	{ NULL,		0,			NULL, 0 },
};

struct command;

struct opts {
	const struct command *cmd;
	const char *socket;
	const char *type;
	const char *output;	/* -o FILE, or NULL for stdout */
	int pid;
	int count;
	int window;
	int mode;		/* index into modes[] */
	int sort;		/* index into sorts[] */
	int format;		/* enum format */
	double interval;
	double budget;		/* < 0: not given */
	unsigned int seen;	/* CO_* bits given on the command line */
	bool json;
	bool once;
	bool help;
	bool version;
	char usage_error[256];	/* first usage error, reported once --json is known */
};

struct command {
	const char *name;
	const char *summary;
	unsigned int options;	/* CO_* bits it takes */
	unsigned int required;	/* CO_* bits it needs */
	bool refresh;		/* repeats until a signal unless --once or --json */
	json_t *(*request)(const struct opts *o);
	int (*render)(FILE *out, json_t *reply, const struct opts *o);
};

static volatile sig_atomic_t stop_requested;

/* The daemon's error: its message on stderr and, with --json, its document as it came. */
static int reply_error(json_t *doc, bool json)
{
	json_t *error = field(doc, "error");
	const char *code = json_string_value(field(error, "code"));
	const char *message = json_string_value(field(error, "message"));

	if (!code || !message)
		return fail(json, -EPROTO, code ? code : "internal", "%s",
			    message ? message : "pyleakd sent an error without a code or message");
	failure_print(json, doc, message);
	return -EPROTO;
}

/* One request, one reply: an object without "error", or a reported failure. */
static int reply_get(const struct opts *o, struct client *c, json_t *req, json_t **reply)
{
	struct client_error e;
	json_t *doc;
	int err;

	err = client_request(c, req, &doc, &e);
	if (err == -EINTR)
		return err;
	if (err)
		return fail(o->json, err, e.code, "%s", e.message);
	if (field(doc, "error")) {
		err = reply_error(doc, o->json);
		json_decref(doc);
		return err;
	}
	*reply = doc;
	return 0;
}

static json_t *plain_request(const struct opts *o)
{
	return json_pack("{s:s}", "cmd", o->cmd->name);
}

static json_t *attach_request(const struct opts *o)
{
	json_t *req = json_pack("{s:s,s:i,s:s}", "cmd", "attach", "pid", o->pid, "mode",
				modes[o->mode]);

	if (req && (o->seen & CO(BUDGET)))
		json_object_set_new(req, "budget", json_real(o->budget));
	return req;
}

static json_t *detach_request(const struct opts *o)
{
	return json_pack("{s:s,s:i}", "cmd", "detach", "pid", o->pid);
}

static json_t *top_request(const struct opts *o)
{
	/* The refresh interval: each row's delta then covers one refresh. */
	return json_pack("{s:s,s:i,s:i,s:s,s:f}", "cmd", "top", "pid", o->pid, "n", o->count,
			 "sort", sorts[o->sort], "interval", o->interval);
}

static json_t *leaks_request(const struct opts *o)
{
	return json_pack("{s:s,s:i,s:i,s:i}", "cmd", "leaks", "pid", o->pid, "window", o->window,
			 "n", o->count);
}

static json_t *sites_request(const struct opts *o)
{
	return json_pack("{s:s,s:i,s:s,s:i}", "cmd", "sites", "pid", o->pid, "type", o->type,
			 "n", o->count);
}

static int targets_print(FILE *out, json_t *targets)
{
	static const char *const heads[] = {
		"PID", "PYTHON", "MODE", "STATE", "PROBES", "EVENTS", "DROPS", "ATTACHED",
	};
	struct table t = TABLE_INIT(heads, COL(0) | COL(4) | COL(5) | COL(6) | COL(7));
	char b[ARRAY_SIZE(heads)][CELL_MAX];
	json_t *target;
	size_t i;
	int err = 0;

	if (!json_array_size(targets)) {
		fputs("no targets tracked\n", out);
		return 0;
	}
	json_array_foreach(targets, i, target) {
		err = table_add(&t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s",
				value_text(field(target, "pid"), b[0]),
				value_text(field(target, "python"), b[1]),
				value_text(field(target, "mode"), b[2]),
				value_text(field(target, "state"), b[3]),
				value_text(field(target, "probes"), b[4]),
				value_text(field(target, "events"), b[5]),
				value_text(field(target, "drops"), b[6]),
				duration_text(field(target, "attached_s"), b[7]));
		if (err)
			goto cleanup;
	}
	table_print(&t, out);
cleanup:
	table_free(&t);
	return err;
}

static int status_render(FILE *out, json_t *reply, const struct opts *o)
{
	json_t *counters = field(reply, "counters");
	char b[CELL_MAX];
	const char *key;
	json_t *value;
	int err;

	(void)o;
	fprintf(out, "version  %s\n", value_text(field(reply, "version"), b));
	fprintf(out, "pid      %s\n", value_text(field(reply, "pid"), b));
	fprintf(out, "uptime   %s\n", duration_text(field(reply, "uptime_s"), b));
	fprintf(out, "cpu      %s\n", decimal_text(field(reply, "cpu_s"), "s", b));
	fprintf(out, "rss      %s\n\n", bytes_text(field(reply, "rss_kib"), 1024, b));
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

static int ps_render(FILE *out, json_t *reply, const struct opts *o)
{
	static const char *const heads[] = { "PID", "PYTHON", "TRACKED", "EXE" };
	struct table t = TABLE_INIT(heads, COL(0));
	json_t *procs = field(reply, "processes"), *proc;
	char b[ARRAY_SIZE(heads)][CELL_MAX];
	size_t i;
	int err = 0;

	(void)o;
	if (!json_array_size(procs)) {
		fputs("no Python processes found\n", out);
		return 0;
	}
	json_array_foreach(procs, i, proc) {
		err = table_add(&t, "%s\t%s\t%s\t%s", value_text(field(proc, "pid"), b[0]),
				value_text(field(proc, "python"), b[1]),
				value_text(field(proc, "tracked"), b[2]),
				value_text(field(proc, "exe"), b[3]));
		if (err)
			goto cleanup;
	}
	table_print(&t, out);
cleanup:
	table_free(&t);
	return err;
}

static int attach_render(FILE *out, json_t *reply, const struct opts *o)
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

static int detach_render(FILE *out, json_t *reply, const struct opts *o)
{
	if (json_is_false(field(reply, "detached")))
		fprintf(out, "pid %d was not attached\n", o->pid);
	else
		fprintf(out, "detached from pid %d\n", o->pid);
	return 0;
}

/* The collector per generation: "gc: gen0 12 runs 3.1 ms (max 0.4), ...". */
static void gc_print(FILE *out, json_t *gc)
{
	const char *key;
	json_t *gen;

	if (!json_object_size(gc))
		return;
	fputs("gc:", out);
	json_object_foreach(gc, key, gen) {
		fprintf(out, " gen%s %.0f runs %.1f ms (max %.1f), %.0f collected;", key,
			json_number_value(field(gen, "runs")), json_number_value(field(gen, "total_ms")),
			json_number_value(field(gen, "max_ms")), json_number_value(field(gen, "collected")));
	}
	putc('\n', out);
}

static int top_render(FILE *out, json_t *reply, const struct opts *o)
{
	static const char *const heads[] = { "TYPE", "LIVE", "BYTES", "DELTA", "SOURCE" };
	struct table t = TABLE_INIT(heads, COL(1) | COL(2) | COL(3));
	json_t *types = field(reply, "types"), *row, *note;
	char b[ARRAY_SIZE(heads)][CELL_MAX];
	size_t i;
	int err = 0;

	fprintf(out, "pid %d  python %s  mode %s  %s\n\n", o->pid,
		value_text(field(reply, "python"), b[0]), value_text(field(reply, "mode"), b[1]),
		time_text(field(reply, "time"), b[2]));
	json_array_foreach(types, i, row) {
		err = table_add(&t, "%s\t%s\t%s\t%s\t%s", value_text(field(row, "type"), b[0]),
				value_text(field(row, "live"), b[1]),
				bytes_text(field(row, "bytes"), 1, b[2]),
				signed_text(field(row, "delta"), b[3]),
				value_text(field(row, "source"), b[4]));
		if (err)
			goto cleanup;
	}
	if (t.nrows)
		table_print(&t, out);
	else
		fputs("no objects counted yet\n", out);
	json_array_foreach(field(reply, "notes"), i, note)
		if (json_is_string(note))
			fprintf(out, "note: %s\n", json_string_value(note));
	gc_print(out, field(reply, "gc"));
cleanup:
	table_free(&t);
	return err;
}

static int suspect_add(struct table *t, size_t rank, json_t *suspect)
{
	json_t *evidence = field(suspect, "evidence"), *site;
	char b[6][CELL_MAX];	/* one per cell; the first is reused for each site */
	struct frame_text ft;
	size_t i;
	int err;

	err = table_add(t, "%zu\t%s\t%s\t%s\t%s\t%s", rank,
			value_text(field(suspect, "type"), b[1]),
			decimal_text(field(suspect, "score"), "", b[2]),
			signed_text(field(suspect, "growth_per_min"), b[3]),
			value_text(field(suspect, "live"), b[4]),
			percent_text(field(suspect, "freed_by_gc_fraction"), b[5]));
	if (!err && json_is_string(evidence))
		err = table_add_line(t, "%s", json_string_value(evidence));
	json_array_foreach(field(suspect, "sites"), i, site) {
		if (err)
			break;
		frame_text_get(&ft, site);
		err = table_add_line(t, "  at " FRAME_FMT " live %s", FRAME_ARGS(ft),
				     value_text(field(site, "live"), b[0]));
	}
	return err;
}

static int leaks_render(FILE *out, json_t *reply, const struct opts *o)
{
	static const char *const heads[] = {
		"RANK", "TYPE", "SCORE", "GROWTH/MIN", "LIVE", "GC-FREED",
	};
	struct table t = TABLE_INIT(heads, COL(0) | COL(2) | COL(3) | COL(4) | COL(5));
	json_t *suspects = field(reply, "suspects"), *suspect;
	json_t *window = field(reply, "window_s");
	size_t i;
	int err = 0;

	/* The daemon may judge a shorter window than asked: its own figure comes first. */
	if (!json_array_size(suspects)) {
		fprintf(out, "no leak suspects in the last %.0f s\n",
			json_is_number(window) ? json_number_value(window) : o->window);
		return 0;
	}
	json_array_foreach(suspects, i, suspect) {
		err = suspect_add(&t, i + 1, suspect);
		if (err)
			goto cleanup;
	}
	table_print(&t, out);
cleanup:
	table_free(&t);
	return err;
}

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
static void sites_folded_print(FILE *out, json_t *sites)
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
		fprintf(out, " %.0f\n", json_number_value(field(site, "live")));
	}
}

static int sites_pprof_write(FILE *out, json_t *reply)
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

static int site_add(struct table *t, json_t *site)
{
	struct frame_text ft;
	json_t *frame;
	char b[CELL_MAX];
	size_t i;
	int err;

	frame_text_get(&ft, site);
	err = table_add(t, "%s\t%s\t%s:%s", value_text(field(site, "live"), b), ft.function,
			ft.file, ft.line);
	json_array_foreach(field(site, "stack"), i, frame) {
		if (err)
			break;
		frame_text_get(&ft, frame);
		err = table_add_line(t, "  " FRAME_FMT, FRAME_ARGS(ft));
	}
	return err;
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

static int sites_render(FILE *out, json_t *reply, const struct opts *o)
{
	static const char *const heads[] = { "LIVE", "FUNCTION", "FILE:LINE" };
	struct table t = TABLE_INIT(heads, COL(0));
	json_t *sites = field(reply, "sites"), *site;
	size_t i;
	int err = 0;

	if (o->format == FORMAT_FOLDED) {
		sites_folded_print(out, sites);
		return 0;
	}
	if (o->format == FORMAT_PPROF)
		return sites_pprof_write(out, reply);
	if (!json_array_size(sites)) {
		fprintf(out, "no allocation sites recorded for type %s\n", o->type);
		return 0;
	}
	json_array_foreach(sites, i, site) {
		err = site_add(&t, site);
		if (err)
			goto cleanup;
	}
	table_print(&t, out);
	holder_print(out, field(reply, "held_by"));
cleanup:
	table_free(&t);
	return err;
}

static const struct command commands[] = {
	{
		.name = "status",
		.summary = "daemon version, uptime, tracked targets, counters, own CPU and memory",
		.request = plain_request,
		.render = status_render,
	}, {
		.name = "ps",
		.summary = "Python processes on the host and whether they are tracked",
		.request = plain_request,
		.render = ps_render,
	}, {
		.name = "attach",
		.summary = "start tracking a process (top and leaks also attach on demand)",
		.options = CO(PID) | CO(MODE) | CO(BUDGET),
		.required = CO(PID),
		.request = attach_request,
		.render = attach_render,
	}, {
		.name = "detach",
		.summary = "stop tracking a process and free its maps",
		.options = CO(PID),
		.required = CO(PID),
		.request = detach_request,
		.render = detach_render,
	}, {
		.name = "top",
		.summary = "live objects per type; refreshes until Ctrl-C unless --once or --json",
		.options = CO(PID) | CO(ONCE) | CO(COUNT) | CO(INTERVAL) | CO(SORT),
		.required = CO(PID),
		.refresh = true,
		.request = top_request,
		.render = top_render,
	}, {
		.name = "leaks",
		.summary = "ranked leak suspects with evidence",
		.options = CO(PID) | CO(WINDOW) | CO(COUNT),
		.required = CO(PID),
		.request = leaks_request,
		.render = leaks_render,
	}, {
		.name = "sites",
		.summary = "where the live objects of a type were allocated",
		.options = CO(PID) | CO(TYPE) | CO(COUNT) | CO(FORMAT) | CO(OUTPUT),
		.required = CO(PID) | CO(TYPE),
		.request = sites_request,
		.render = sites_render,
	},
};

static const struct command *command_find(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int option_name_len(enum cmd_option id)
{
	return (int)strcspn(cmd_options[id].synopsis, " ");
}

static void option_help_print(const char *synopsis, const char *help)
{
	printf("  %-30s %s\n", synopsis, help);
}

static void command_usage_print(const struct command *cmd)
{
	unsigned int id;

	printf("USAGE\n  pyleakctl [--socket PATH] %s", cmd->name);
	for (id = 0; id < CO_NR; id++)
		if (cmd->options & (1u << id))
			printf(cmd->required & (1u << id) ? " %s" : " [%s]",
			       cmd_options[id].synopsis);
	printf(" [--json]\n\n  %s\n\nOPTIONS\n", cmd->summary);
	for (id = 0; id < CO_NR; id++)
		if (cmd->options & (1u << id))
			option_help_print(cmd_options[id].synopsis, cmd_options[id].help);
	for (id = 0; id < ARRAY_SIZE(global_options); id++)
		option_help_print(global_options[id][0], global_options[id][1]);
}

/* Option help, naming the commands that take each command option. */
static void options_usage_print(void)
{
	const char *sep;
	unsigned int id;
	size_t i;

	for (id = 0; id < ARRAY_SIZE(global_options); id++)
		option_help_print(global_options[id][0], global_options[id][1]);
	for (id = 0; id < CO_NR; id++) {
		printf("  %-30s %s [", cmd_options[id].synopsis, cmd_options[id].help);
		sep = "";
		for (i = 0; i < ARRAY_SIZE(commands); i++) {
			if (commands[i].options & (1u << id)) {
				printf("%s%s", sep, commands[i].name);
				sep = " ";
			}
		}
		puts("]");
	}
}

static void usage_print(const struct command *cmd)
{
	size_t i;

	if (cmd) {
		command_usage_print(cmd);
		return;
	}
	puts("USAGE\n"
	     "  pyleakctl [--socket PATH] [--json] COMMAND [OPTIONS]\n"
	     "\n"
	     "  Client of pyleakd, the memory-leak profiler for Python processes. Options may\n"
	     "  come before or after the command.\n"
	     "\n"
	     "COMMANDS");
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		printf("  %-8s %s\n", commands[i].name, commands[i].summary);
	printf("  %-8s %s\n", "help", "this help; help COMMAND shows a command's usage");
	puts("\nOPTIONS");
	options_usage_print();
	puts("\n"
	     "EXIT STATUS\n"
	     "  0 success, 1 failure (daemon error, cannot connect), 2 usage error.\n"
	     "  On failure one line on stderr; with --json also\n"
	     "  {\"error\": {\"code\": ..., \"message\": ...}} on stdout.\n"
	     "\n"
	     "EXAMPLES\n"
	     "  pyleakctl status\n"
	     "  pyleakctl attach -p 4242 --mode sampled --budget 0.005\n"
	     "  pyleakctl top -p 4242\n"
	     "  pyleakctl top -p 4242 --once --json | jq .types[0]\n"
	     "  pyleakctl leaks -p 4242 --window 120\n"
	     "  pyleakctl sites -p 4242 --type str\n"
	     "  pyleakctl sites -p 4242 --type str --format folded | flamegraph.pl > str.svg\n"
	     "  pyleakctl sites -p 4242 --type str --format pprof -o str.pb.gz\n"
	     "  PYLEAKD_SOCKET=/tmp/p.sock pyleakctl status");
}

static void __attribute__((format(printf, 2, 3)))
usage_note(struct opts *o, const char *fmt, ...)
{
	va_list ap;

	if (o->usage_error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(o->usage_error, sizeof(o->usage_error), fmt, ap);
	va_end(ap);
}

static int positive_parse(const char *s, int *out)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > INT_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int interval_parse(const char *s, double *out)
{
	char *end;
	double v;

	if ((*s < '0' || *s > '9') && *s != '.')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v > 0 && v <= INTERVAL_MAX))
		return -EINVAL;
	*out = v;
	return 0;
}

static int choice_parse(const char *s, const char *const *set, int *out)
{
	int i;

	for (i = 0; set[i]; i++) {
		if (!strcmp(s, set[i])) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Stores the value of command option id in o. */
static int cmd_option_parse(struct opts *o, enum cmd_option id)
{
	switch (id) {
	case CO_PID:
		return positive_parse(optarg, &o->pid);
	case CO_MODE:
		return choice_parse(optarg, modes, &o->mode);
	case CO_BUDGET: {
		char *end;

		errno = 0;
		o->budget = strtod(optarg, &end);
		return *optarg && !*end && !errno && o->budget >= 0 && o->budget <= 1 ? 0 : -EINVAL;
	}
	case CO_ONCE:
		o->once = true;
		return 0;
	case CO_COUNT:
		return positive_parse(optarg, &o->count);
	case CO_INTERVAL:
		return interval_parse(optarg, &o->interval);
	case CO_SORT:
		return choice_parse(optarg, sorts, &o->sort);
	case CO_WINDOW:
		return positive_parse(optarg, &o->window);
	case CO_TYPE:
		o->type = optarg;
		return *optarg ? 0 : -EINVAL;
	case CO_OUTPUT:
		o->output = optarg;
		return *optarg ? 0 : -EINVAL;
	default:
		return choice_parse(optarg, formats, &o->format);
	}
}

/* val is one of cmd_options[]' codes: options_scan() handles the global ones itself. */
static enum cmd_option cmd_option_find(int val)
{
	enum cmd_option id = 0;

	while (id < CO_NR - 1 && cmd_options[id].val != val)
		id++;
	return id;
}

static void option_invalid_note(struct opts *o, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		usage_note(o, "option '%s' needs a value", arg);
	else if (optopt && strchr(arg, '='))	/* getopt's optopt names a known flag */
		usage_note(o, "option '%.*s' takes no value", (int)strcspn(arg, "="), arg);
	else if (optopt > 0 && optopt < 0x80 && arg[1] != '-')
		usage_note(o, "unknown option '-%c'", optopt);
	else
		usage_note(o, "unknown option '%s'", arg);
}

static void options_scan(struct opts *o, int argc, char **argv)
{
	enum cmd_option id;
	const char *syn;
	int c;

	opterr = 0;	/* errors are reported once, after --json is known */
	while ((c = getopt_long(argc, argv, ":p:n:o:h", long_options, NULL)) != -1) {
		switch (c) {
		case 'S':
			o->socket = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			o->help = true;
			break;
		case 'V':
			o->version = true;
			break;
		case ':':
		case '?':
			option_invalid_note(o, c, argv);
			break;
		default:
			id = cmd_option_find(c);
			syn = cmd_options[id].synopsis;
			if (cmd_option_parse(o, id))
				usage_note(o, "invalid %.*s '%s': expected %s",
					   option_name_len(id), syn, optarg,
					   cmd_options[id].expected ?: strchr(syn, ' ') + 1);
			o->seen |= 1u << id;
		}
	}
}

/* Options valid for some command but not this one, and the ones it cannot do without. */
static void command_check(struct opts *o)
{
	unsigned int extra = o->seen & ~o->cmd->options;
	unsigned int missing = o->cmd->required & ~o->seen;

	if (extra)
		usage_note(o, "%s does not take %.*s", o->cmd->name,
			   option_name_len(__builtin_ctz(extra)),
			   cmd_options[__builtin_ctz(extra)].synopsis);
	else if (missing)
		usage_note(o, "%s needs %s", o->cmd->name,
			   cmd_options[__builtin_ctz(missing)].synopsis);
}

static int opts_parse(struct opts *o, int argc, char **argv)
{
	options_scan(o, argc, argv);
	if (optind < argc && !strcmp(argv[optind], "help")) {
		o->help = true;
		optind++;
	}
	if (optind < argc) {
		o->cmd = command_find(argv[optind]);
		if (!o->cmd)
			usage_note(o, "unknown command '%s'", argv[optind]);
		optind++;
	}
	if (optind < argc)
		usage_note(o, "unexpected argument '%s'", argv[optind]);
	if (o->cmd && !o->help && !o->version)
		command_check(o);
	if (!o->usage_error[0])
		return 0;
	return fail(o->json, -EINVAL, "bad_request", "%s (see 'pyleakctl %s%s--help')",
		    o->usage_error, o->cmd ? o->cmd->name : "", o->cmd ? " " : "");
}

static int reply_print(const struct opts *o, FILE *out, json_t *reply)
{
	int err;

	if (o->json) {
		json_print(out, reply);
		return 0;
	}
	err = json_sanitize(reply);
	if (!err)
		err = o->cmd->render(out, reply, o);
	if (err)
		return fail(o->json, err, "internal", "cannot show the reply: %s", strerror(-err));
	return 0;
}

/* The reply on stdout or, with -o, in that file, created only once there is a reply. */
static int reply_output(const struct opts *o, json_t *reply)
{
	FILE *out;
	bool bad;
	int err;

	if (!o->output)
		return reply_print(o, stdout, reply);
	out = fopen(o->output, "we");
	if (!out)
		return fail(o->json, -errno, "internal", "cannot create %s: %s", o->output,
			    strerror(errno));
	err = reply_print(o, out, reply);
	bad = ferror(out);
	if ((fclose(out) || bad) && !err)
		err = fail(o->json, -EIO, "internal", "cannot write %s: %s", o->output,
			   strerror(errno));
	return err;
}

/* Binary output would garble a terminal: pprof goes to a file or a pipe. */
static int output_check(const struct opts *o)
{
	if (o->format != FORMAT_PPROF || o->json || o->output || !isatty(STDOUT_FILENO))
		return 0;
	return fail(o->json, -EINVAL, "bad_request",
		    "pprof output is binary and stdout is a terminal: use -o FILE or redirect it");
}

static void stop_handle(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/*
 * SIGINT/SIGTERM stay blocked except inside ppoll(), so a stop between two checks is not lost.
 * saved gets the mask to restore; waitmask the one to wait with.
 */
static int signals_catch(sigset_t *saved, sigset_t *waitmask)
{
	struct sigaction sa = { .sa_handler = stop_handle };
	sigset_t stop;

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigemptyset(&sa.sa_mask);
	if (sigprocmask(SIG_BLOCK, &stop, saved) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGTERM, &sa, NULL) < 0)
		return -errno;
	*waitmask = *saved;
	sigdelset(waitmask, SIGINT);
	sigdelset(waitmask, SIGTERM);
	return 0;
}

static int interval_sleep(double seconds, const sigset_t *waitmask)
{
	struct timespec ts = {
		.tv_sec = (time_t)seconds,
		.tv_nsec = (long)((seconds - (time_t)seconds) * 1e9),
	};

	if (ppoll(NULL, 0, &ts, waitmask) < 0 && errno == EINTR && stop_requested)
		return -EINTR;
	return 0;
}

/* top's refresh loop on one connection; a stop signal ends it with success. */
static int top_watch(const struct opts *o, struct client *c, json_t *req)
{
	bool tty = isatty(STDOUT_FILENO);
	sigset_t saved, waitmask;
	json_t *reply;
	int err, frames;

	err = signals_catch(&saved, &waitmask);
	if (err)
		return fail(o->json, err, "internal", "cannot catch signals: %s", strerror(-err));
	client_waitmask_set(c, &waitmask);
	/* Whole frames per write, so a refresh does not flicker line by line. */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	for (frames = 0; !err; frames++) {
		err = reply_get(o, c, req, &reply);
		if (err)
			break;
		if (tty)
			fputs(SCREEN_CLEAR, stdout);
		else if (frames)
			putchar('\n');
		err = reply_print(o, stdout, reply);
		json_decref(reply);
		/* A failed write is reported by main(), which checks stdout last. */
		if (!err && fflush(stdout))
			err = -EIO;
		if (!err)
			err = interval_sleep(o->interval, &waitmask);
	}
	/* A late second signal (timeout(1) also signals the group) now only sets the flag. */
	client_waitmask_set(c, NULL);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	return err == -EINTR ? 0 : err;
}

static int command_run(const struct opts *o)
{
	const char *path = o->socket ? o->socket : getenv("PYLEAKD_SOCKET");
	struct client_error e;
	struct client *c = NULL;
	json_t *req, *reply = NULL;
	int err;

	err = output_check(o);
	if (err)
		return err;
	req = o->cmd->request(o);
	if (!req)
		return fail(o->json, -EINVAL, "bad_request", "arguments must be valid UTF-8");
	err = client_open(path && *path ? path : DEFAULT_SOCKET, &c, &e);
	if (err) {
		fail(o->json, err, e.code, "%s", e.message);
		goto cleanup;
	}
	if (o->cmd->refresh && !o->once && !o->json) {
		err = top_watch(o, c, req);
		goto cleanup;
	}
	err = reply_get(o, c, req, &reply);
	if (!err)
		err = reply_output(o, reply);
cleanup:
	json_decref(reply);
	json_decref(req);
	client_close(c);
	return err;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.count = DEFAULT_COUNT,
		.window = DEFAULT_WINDOW,
		.interval = DEFAULT_INTERVAL,
	};
	int err = 0;

	if (opts_parse(&o, argc, argv))
		return EXIT_USAGE;
	if (o.version)
		puts("pyleakctl " PYLEAK_VERSION);
	else if (o.help || !o.cmd)
		usage_print(o.cmd);
	else
		err = command_run(&o);
	if (fflush(stdout) || ferror(stdout)) {
		fail(false, -EIO, "internal", "cannot write the output: %s", strerror(errno));
		return EXIT_FAILURE;
	}
	return err ? EXIT_FAILURE : EXIT_SUCCESS;
}
