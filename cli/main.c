// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * pyleakctl: the command-line client of pyleakd. Each command sends one JSON request over the
 * daemon's Unix socket (docs/protocol.md) and prints the reply as a table or, with --json, as
 * the daemon's own document (../shared/cli-contract.md).
 *
 * This file: the commands (what each sends, which renderer shows its reply) and running one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "client.h"
#include "common.h"
#include "failure.h"
#include "path.h"
#include "render.h"
#include "reply.h"
#include "report.h"
#include "snapshot.h"
#include "watch.h"

#define EXIT_USAGE		2

static json_t *plain_request(const struct opts *o)
{
	return json_pack("{s:s}", "cmd", o->cmd->name);
}

/* How to attach, as given (else the daemon's); req is returned, NULL stays NULL. */
static json_t *attach_fields_set(json_t *req, const struct opts *o)
{
	if (req && (o->seen & CO(MODE)))
		json_object_set_new(req, "mode", json_string(modes[o->mode]));
	if (req && (o->seen & CO(BUDGET)))
		json_object_set_new(req, "budget", json_real(o->budget));
	if (req && o->force)
		json_object_set_new(req, "force", json_true());
	return req;
}

static json_t *attach_request(const struct opts *o)
{
	return attach_fields_set(json_pack("{s:s,s:i}", "cmd", "attach", "pid", o->pid), o);
}

static json_t *detach_request(const struct opts *o)
{
	return json_pack("{s:s,s:i}", "cmd", "detach", "pid", o->pid);
}

static json_t *top_request(const struct opts *o)
{
	/* The refresh interval: each row's delta then covers one refresh. */
	return attach_fields_set(json_pack("{s:s,s:i,s:i,s:s,s:f}", "cmd", "top", "pid", o->pid,
					   "n", o->count, "sort", sorts[o->sort], "interval", o->interval), o);
}

static json_t *leaks_request(const struct opts *o)
{
	return attach_fields_set(json_pack("{s:s,s:i,s:i,s:i}", "cmd", "leaks", "pid", o->pid,
					   "window", o->window, "n", o->count), o);
}

static json_t *sites_request(const struct opts *o)
{
	return attach_fields_set(json_pack("{s:s,s:i,s:s,s:i}", "cmd", "sites", "pid", o->pid,
					   "type", o->type, "n", o->count), o);
}

static json_t *native_request(const struct opts *o)
{
	return attach_fields_set(json_pack("{s:s,s:i}", "cmd", "native", "pid", o->pid), o);
}

static json_t *postmortem_request(const struct opts *o)
{
	json_t *req = json_pack("{s:s}", "cmd", "postmortem");

	if (req && (o->seen & CO(PID)))
		json_object_set_new(req, "pid", json_integer(o->pid));
	return req;
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
		.options = CO(PID) | CO(MODE) | CO(BUDGET) | CO(FORCE),
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
		.options = CO(PID) | CO(ONCE) | CO(COUNT) | CO(INTERVAL) | CO(SORT) | CO(MODE) |
			   CO(FORCE),
		.required = CO(PID),
		.refresh = true,
		.request = top_request,
		.render = top_render,
	}, {
		.name = "leaks",
		.summary = "ranked leak suspects with evidence",
		.options = CO(PID) | CO(WINDOW) | CO(COUNT) | CO(MODE) | CO(FORCE),
		.required = CO(PID),
		.request = leaks_request,
		.render = leaks_render,
	}, {
		.name = "sites",
		.summary = "where the live objects of a type were allocated",
		.options = CO(PID) | CO(TYPE) | CO(COUNT) | CO(FORMAT) | CO(OUTPUT) | CO(MODE) |
			   CO(FORCE),
		.required = CO(PID) | CO(TYPE),
		.request = sites_request,
		.render = sites_render,
	}, {
		.name = "path",
		.summary = "how the live objects of a type are kept alive: paths from a root",
		.options = CO(PID) | CO(TYPE) | CO(MODE),
		.required = CO(PID) | CO(TYPE),
		.run = path_run,
		.render = path_render,
	}, {
		.name = "native",
		.summary = "resident memory outside Python objects, by Python line and by mapping",
		.options = CO(PID) | CO(MODE) | CO(FORCE),
		.required = CO(PID),
		.request = native_request,
		.render = native_render,
	}, {
		.name = "snapshot",
		.summary = "save a process's top, leaks and top suspects' sites in a JSON file",
		.options = CO(PID) | CO(WINDOW) | CO(OUTPUT),
		.required = CO(PID) | CO(OUTPUT),
		.run = snapshot_take,
		.render = snapshot_render,
	}, {
		.name = "report",
		.summary = "write a process's top, leaks, histories and sites as one HTML page",
		.options = CO(PID) | CO(WINDOW) | CO(OUTPUT),
		.required = CO(PID) | CO(OUTPUT),
		.run = report_write,
		.render = report_render,
	}, {
		.name = "postmortem",
		.summary = "the saved last words of tracked processes that died; of one with PID",
		.operands = "[PID]",
		.noperands = 1,
		.pid_operand = true,
		.options = CO(PID),
		.request = postmortem_request,
		.render = postmortem_render,
	}, {
		.name = "diff",
		.summary = "what grew between snapshot files A and B (no daemon needed)",
		.operands = "A B",
		.noperands = 2,
		.offline = true,
		.run = snapshot_diff,
		.render = diff_render,
	},
};

const size_t commands_nr = ARRAY_SIZE(commands);

/* Binary output would garble a terminal: pprof goes to a file or a pipe. */
static int output_check(const struct opts *o)
{
	if (o->format != FORMAT_PPROF || o->json || o->output || !isatty(STDOUT_FILENO))
		return 0;
	return fail(o->json, -EINVAL, "bad_request",
		    "pprof output is binary and stdout is a terminal: use -o FILE or redirect it");
}

static int command_run(const struct opts *o)
{
	const char *path = o->socket ? o->socket : getenv("PYLEAKD_SOCKET");
	struct client_error e;
	struct client *c = NULL;
	json_t *req, *reply = NULL;
	int err;

	if (o->cmd->offline)
		return o->cmd->run(o, NULL);
	err = output_check(o);
	if (err)
		return err;
	req = o->cmd->run ? NULL : o->cmd->request(o);
	if (!req && !o->cmd->run)
		return fail(o->json, -EINVAL, "bad_request", "arguments must be valid UTF-8");
	err = client_open(path && *path ? path : DEFAULT_SOCKET, &c, &e);
	if (err) {
		fail(o->json, err, e.code, "%s", e.message);
		goto cleanup;
	}
	if (o->cmd->run) {
		err = o->cmd->run(o, c);
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
	/* diff's input that is not a snapshot: as wrong as a bad option. */
	if (err == -EBADMSG)
		return EXIT_USAGE;
	return err ? EXIT_FAILURE : EXIT_SUCCESS;
}
