// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* A command's reply (reply.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "failure.h"
#include "format.h"
#include "reply.h"

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

/* A reply that takes time (attaching to a big process, its first census): say so on a
 * terminal, on one line that is erased once the reply is there. */
struct wait_line {
	int pid;
	bool shown;
};

static void wait_show(void *ctx, unsigned int seconds)
{
	struct wait_line *w = ctx;

	if (w->pid)
		fprintf(stderr, "\rpyleakctl: pid %d: attaching or counting its heap... %u s ",
			w->pid, seconds);
	else
		fprintf(stderr, "\rpyleakctl: waiting for pyleakd... %u s ", seconds);
	w->shown = true;
}

int reply_get(const struct opts *o, struct client *c, json_t *req, json_t **reply)
{
	struct wait_line w = { .pid = o->pid };
	struct client_error e;
	json_t *doc;
	int err;

	client_wait_fn_set(c, isatty(STDERR_FILENO) ? wait_show : NULL, &w);
	err = client_request(c, req, &doc, &e);
	client_wait_fn_set(c, NULL, NULL);
	if (w.shown)
		fputs("\r\033[K", stderr);
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

int reply_print(const struct opts *o, FILE *out, json_t *reply)
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

int reply_output(const struct opts *o, json_t *reply)
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
