// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "request.h"

static const char *const cmd_names[] = {
	[REQUEST_STATUS] = "status", [REQUEST_PS] = "ps", [REQUEST_ATTACH] = "attach",
	[REQUEST_DETACH] = "detach", [REQUEST_TOP] = "top", [REQUEST_LEAKS] = "leaks",
	[REQUEST_SITES] = "sites", [REQUEST_POSTMORTEM] = "postmortem", [REQUEST_PATH] = "path",
	[REQUEST_NATIVE] = "native",
};

static int request_fail(struct request *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int request_fail(struct request *req, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(req->error, sizeof(req->error), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Reads an optional integer field; -EINVAL if present but not an integer in [lo, hi]. */
static int field_int(json_t *doc, const char *key, long lo, long hi, long *out)
{
	json_t *v = json_object_get(doc, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return -EINVAL;
	*out = json_integer_value(v);
	return 0;
}

/* Reads an optional number field; -EINVAL if present but not a number in [lo, hi]. */
static int field_number(json_t *doc, const char *key, double lo, double hi, bool *has, double *out)
{
	json_t *v = json_object_get(doc, key);

	if (!v)
		return 0;
	if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi)
		return -EINVAL;
	*out = json_number_value(v);
	if (has)
		*has = true;
	return 0;
}

static int field_str(json_t *doc, const char *key, const char **out)
{
	json_t *v = json_object_get(doc, key);

	if (!v)
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	*out = json_string_value(v);
	return 0;
}

static int field_pid(json_t *doc, pid_t *pid)
{
	long v = 0;

	if (field_int(doc, "pid", 1, INT_MAX, &v) || !v)
		return -EINVAL;
	*pid = v;
	return 0;
}

/* How to attach (attach, and top, leaks, sites attaching on demand): "mode", "budget", "force". */
static int attach_fields_parse(struct request *req)
{
	const char *cmd = cmd_names[req->cmd], *mode = NULL;
	json_t *force = json_object_get(req->doc, "force");

	if (field_str(req->doc, "mode", &mode) || (mode && target_mode_parse(mode, &req->mode)))
		return request_fail(req, "%s: \"mode\" must be \"precise\" or \"sampled\"", cmd);
	req->has_mode = mode != NULL;
	if (field_number(req->doc, "budget", 0, 1, &req->has_budget, &req->budget))
		return request_fail(req, "%s: \"budget\" must be a fraction of the target's CPU in [0, 1]", cmd);
	if (force && !json_is_boolean(force))
		return request_fail(req, "%s: \"force\" must be true or false", cmd);
	req->force = json_is_true(force);
	return 0;
}

static int attach_parse(struct request *req)
{
	if (field_pid(req->doc, &req->pid))
		return request_fail(req, "attach: needs an integer \"pid\" > 0");
	return attach_fields_parse(req);
}

static int top_parse(struct request *req)
{
	const char *sort = "live";

	if (field_pid(req->doc, &req->pid) || field_int(req->doc, "n", 0, 100000, &req->n) ||
	    field_str(req->doc, "sort", &sort) || field_int(req->doc, "history", 0, 86400, &req->history))
		return request_fail(req, "top: needs an integer \"pid\" > 0, optional \"n\", \"sort\" and \"history\"");
	if (field_number(req->doc, "interval", 0, 86400, NULL, &req->interval))
		return request_fail(req, "top: \"interval\" must be a number of seconds");
	if (view_sort_parse(sort, &req->sort))
		return request_fail(req, "top: sort must be live, bytes or growth");
	return attach_fields_parse(req);
}

static int leaks_parse(struct request *req)
{
	if (field_pid(req->doc, &req->pid) || field_int(req->doc, "window", 1, 86400, &req->window) ||
	    field_int(req->doc, "n", 0, 100000, &req->n))
		return request_fail(req, "leaks: needs an integer \"pid\" > 0, optional \"window\" and \"n\"");
	return attach_fields_parse(req);
}

static int sites_parse(struct request *req)
{
	if (field_pid(req->doc, &req->pid) || field_str(req->doc, "type", &req->type) || !req->type ||
	    !*req->type || field_int(req->doc, "n", 0, 100000, &req->n))
		return request_fail(req, "sites: needs an integer \"pid\" > 0, a string \"type\", optional \"n\"");
	return attach_fields_parse(req);
}

static int path_parse(struct request *req)
{
	if (field_pid(req->doc, &req->pid) || field_str(req->doc, "type", &req->type) || !req->type ||
	    !*req->type)
		return request_fail(req, "path: needs an integer \"pid\" > 0 and a string \"type\"");
	return attach_fields_parse(req);
}

int request_parse(const char *line, struct request *req)
{
	json_error_t jerr;
	const char *cmd;
	size_t i;

	*req = (struct request){ .n = 20, .sort = VIEW_SORT_LIVE, .window = 60 };
	req->doc = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	if (!req->doc)
		return request_fail(req, "malformed JSON: %s", jerr.text);
	if (!json_is_object(req->doc) || !json_is_string(json_object_get(req->doc, "cmd")))
		return request_fail(req, "request must be an object with a string \"cmd\"");
	cmd = json_string_value(json_object_get(req->doc, "cmd"));
	for (i = 0; i < sizeof(cmd_names) / sizeof(cmd_names[0]) && strcmp(cmd, cmd_names[i]); i++)
		;
	req->cmd = (enum request_cmd)i;
	switch (i) {
	case REQUEST_STATUS:
	case REQUEST_PS:
		return 0;
	case REQUEST_ATTACH:
		return attach_parse(req);
	case REQUEST_DETACH:
		return field_pid(req->doc, &req->pid) ?
			request_fail(req, "detach: needs an integer \"pid\" > 0") : 0;
	case REQUEST_TOP:
		return top_parse(req);
	case REQUEST_LEAKS:
		return leaks_parse(req);
	case REQUEST_SITES:
		return sites_parse(req);
	case REQUEST_POSTMORTEM:
		return json_object_get(req->doc, "pid") && field_pid(req->doc, &req->pid) ?
			request_fail(req, "postmortem: \"pid\", if given, must be an integer > 0") : 0;
	case REQUEST_PATH:
		return path_parse(req);
	case REQUEST_NATIVE:
		if (field_pid(req->doc, &req->pid))
			return request_fail(req, "native: needs an integer \"pid\" > 0");
		return attach_fields_parse(req);
	default:
		return request_fail(req, "unknown command \"%.64s\"", cmd);
	}
}

void request_release(struct request *req)
{
	json_decref(req->doc);
	req->doc = NULL;
	req->type = NULL;
}
