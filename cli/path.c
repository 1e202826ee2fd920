// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* path: the daemon walks a bounded slice of the target's heap per request; asking again goes on. */
#include <errno.h>
#include <time.h>

#include "common.h"
#include "failure.h"
#include "format.h"
#include "path.h"
#include "reply.h"

#define PATH_WAIT_S	120

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static json_t *path_request(const struct opts *o)
{
	json_t *req = json_pack("{s:s,s:i,s:s}", "cmd", "path", "pid", o->pid, "type", o->type);

	if (req && (o->seen & CO(MODE)))
		json_object_set_new(req, "mode", json_string(modes[o->mode]));
	return req;
}

int path_run(const struct opts *o, struct client *c)
{
	double start = now_mono();
	json_t *req = path_request(o), *reply = NULL;
	int err;

	if (!req)
		return fail(o->json, -EINVAL, "bad_request", "arguments must be valid UTF-8");
	for (;;) {
		err = reply_get(o, c, req, &reply);
		if (err || json_is_true(field(field(reply, "walk"), "complete")) ||
		    now_mono() - start > PATH_WAIT_S)
			break;
		json_decref(reply);
		reply = NULL;
	}
	if (!err)
		err = reply_output(o, reply);
	json_decref(reply);
	json_decref(req);
	return err;
}
