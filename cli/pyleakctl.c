// SPDX-License-Identifier: MIT
/*
 * pyleakctl: the command-line client of pyleakd. Each command sends one JSON request over the
 * daemon's Unix socket (docs/protocol.md) and prints the reply as a table or, with --json, as
 * the daemon's own document (../shared/cli-contract.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "client.h"
#include "common.h"
#include "failure.h"
#include "format.h"
#include "pprof.h"
#include "table.h"

#ifndef PYLEAK_VERSION
#define PYLEAK_VERSION		"0.1.0"	/* the Makefile passes its VERSION */
#endif
#define EXIT_USAGE		2
#define SCREEN_CLEAR		"\033[H\033[2J"

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

const struct command commands[] = {
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

const size_t commands_nr = ARRAY_SIZE(commands);

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
	struct opts o;
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
