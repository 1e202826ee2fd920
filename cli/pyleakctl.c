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
#include "render.h"

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
