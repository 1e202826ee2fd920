// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* snapshot: a process's top, leaks and suspects' sites, saved as the daemon sent them (snapshot.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "failure.h"
#include "format.h"
#include "reply.h"
#include "snapshot.h"

#define SNAPSHOT_SUSPECTS	3	/* suspects whose sites are kept, as `leaks` gives them */

/* One request whose failure ends the snapshot; req is consumed. */
static int request_get(const struct opts *o, struct client *c, json_t *req, json_t **reply)
{
	int err;

	if (!req)
		return fail(o->json, -ENOMEM, "internal", "out of memory");
	err = reply_get(o, c, req, reply);
	json_decref(req);
	return err;
}

/* The target's executable as `ps` names it; null if ps does not list it. */
static json_t *exe_find(json_t *ps, int pid)
{
	json_t *proc;
	size_t i;

	json_array_foreach(field(ps, "processes"), i, proc)
		if (json_integer_value(field(proc, "pid")) == pid)
			return field(proc, "exe");
	return json_null();
}

/*
 * The sites of the top suspects. A type whose sites the daemon cannot give (an interpreter
 * without stacks, a process that just ended) keeps the error document instead: the rest of
 * the snapshot is still worth having.
 */
static int suspects_sites_get(const struct opts *o, struct client *c, json_t *leaks,
			      json_t *sites)
{
	struct client_error e;
	json_t *suspect, *req, *reply;
	const char *type;
	size_t i;
	int err;

	json_array_foreach(field(leaks, "suspects"), i, suspect) {
		if (i == SNAPSHOT_SUSPECTS)
			break;
		type = json_string_value(field(suspect, "type"));
		if (!type)
			continue;
		req = json_pack("{s:s,s:i,s:s}", "cmd", "sites", "pid", o->pid, "type", type);
		if (!req)
			return fail(o->json, -ENOMEM, "internal", "out of memory");
		err = client_request(c, req, &reply, &e);
		json_decref(req);
		if (err)
			return fail(o->json, err, e.code, "%s", e.message);
		if (json_object_set_new(sites, type, reply))
			return fail(o->json, -ENOMEM, "internal", "out of memory");
	}
	return 0;
}

static int snapshot_write(const struct opts *o, json_t *doc)
{
	FILE *out = fopen(o->output, "we");
	bool bad;

	if (!out)
		return fail(o->json, -errno, "internal", "cannot create %s: %s", o->output,
			    strerror(errno));
	json_print(out, doc);
	bad = ferror(out);
	if (fclose(out) || bad)
		return fail(o->json, -EIO, "internal", "cannot write %s: %s", o->output,
			    strerror(errno));
	return 0;
}

/* Every top row: a diff must see the types that were small in the first snapshot too. */
static json_t *top_request(const struct opts *o)
{
	return json_pack("{s:s,s:i,s:i}", "cmd", "top", "pid", o->pid, "n", 0);
}

static json_t *leaks_request(const struct opts *o)
{
	return json_pack("{s:s,s:i,s:i}", "cmd", "leaks", "pid", o->pid, "window", o->window);
}

int snapshot_collect(const struct opts *o, struct client *c, json_t *top_req, json_t **out)
{
	json_t *ps = NULL, *top = NULL, *leaks = NULL, *sites = json_object(), *doc = NULL;
	char host[256] = "";
	int err;

	err = request_get(o, c, json_pack("{s:s}", "cmd", "ps"), &ps);
	if (!err)
		err = request_get(o, c, top_req, &top);
	else
		json_decref(top_req);
	if (!err)
		err = request_get(o, c, leaks_request(o), &leaks);
	if (!err)
		err = sites ? suspects_sites_get(o, c, leaks, sites) :
			      fail(o->json, -ENOMEM, "internal", "out of memory");
	if (err)
		goto cleanup;
	gethostname(host, sizeof(host) - 1);
	doc = json_pack("{s:i,s:s,s:s,s:i,s:O,s:O*,s:O*,s:O*,s:O,s:O,s:O}",
			"pyleak_snapshot", SNAPSHOT_FORMAT, "pyleak_version", PYLEAK_VERSION,
			"host", host, "pid", o->pid, "exe", exe_find(ps, o->pid),
			"python", field(top, "python"), "mode", field(top, "mode"),
			"time", field(top, "time"), "top", top, "leaks", leaks, "sites", sites);
	if (!doc)
		err = fail(o->json, -ENOMEM, "internal", "out of memory");
	*out = doc;
cleanup:
	json_decref(sites);
	json_decref(leaks);
	json_decref(top);
	json_decref(ps);
	return err;
}

int snapshot_take(const struct opts *o, struct client *c)
{
	json_t *doc = NULL, *summary = NULL;
	int err;

	err = snapshot_collect(o, c, top_request(o), &doc);
	if (err)
		return err;
	summary = json_pack("{s:s,s:i,s:O*,s:i,s:i,s:i}", "file", o->output, "pid", o->pid,
			    "time", field(doc, "time"),
			    "types", (int)json_array_size(field(field(doc, "top"), "types")),
			    "suspects", (int)json_array_size(field(field(doc, "leaks"), "suspects")),
			    "sites", (int)json_object_size(field(doc, "sites")));
	if (!summary)
		err = fail(o->json, -ENOMEM, "internal", "out of memory");
	if (!err)
		err = snapshot_write(o, doc);
	if (!err)
		err = reply_print(o, stdout, summary);
	json_decref(summary);
	json_decref(doc);
	return err;
}

int snapshot_render(FILE *out, json_t *summary, const struct opts *o)
{
	char b[4][CELL_MAX];

	fprintf(out, "snapshot of pid %d at %s written to %s: %s types, %s suspects, sites of %s\n",
		o->pid, time_text(field(summary, "time"), b[0]), o->output,
		value_text(field(summary, "types"), b[1]), value_text(field(summary, "suspects"), b[2]),
		value_text(field(summary, "sites"), b[3]));
	return 0;
}
