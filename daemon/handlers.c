// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The protocol's commands: a request line from a peer in, a JSON reply out. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "discovery.h"
#include "ended.h"
#include "handlers.h"
#include "metrics.h"
#include "postmortem.h"
#include "procfs.h"
#include "request.h"
#include "sampler.h"
#include "view.h"

static struct target_options target_opt;
static double started_mono;
static unsigned long requests, request_errors;

void handlers_init(const struct target_options *opt)
{
	target_opt = *opt;
	started_mono = loop_mono();
}

json_t *reply_error(const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	request_errors++;
	return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
}

/* The error reply for a failed attach of pid. */
static json_t *error_attach(pid_t pid, int err)
{
	switch (err) {
	case -ESRCH:
		return reply_error("no_such_process", "pid %d: no such process", pid);
	case -ENOEXEC:
		return reply_error("not_python", "pid %d: not a Python process", pid);
	case -EPROTONOSUPPORT:
		return reply_error("unsupported_python", "pid %d: unsupported Python (supported: CPython 3.8-3.13)", pid);
	case -EACCES:
	case -EPERM:
		return reply_error("permission_denied", "pid %d: permission denied", pid);
	case -EUSERS:
		return reply_error("busy", "pid %d: already tracking %u processes (max_targets)", pid,
				 target_opt.max_targets);
	case -EMFILE:
	case -ENFILE:
		return reply_error("busy", "pid %d: pyleakd is out of file descriptors", pid);
	default:
		return reply_error("internal", "pid %d: attach failed: %s", pid, strerror(-err));
	}
}

/* The error reply for a peer that may not act on pid, or NULL if it may. */
static json_t *access_check(const struct peer *p, pid_t pid)
{
	switch (peer_may_access(p, pid)) {
	case 0:
		return NULL;
	case -ESRCH:
		return reply_error("no_such_process", "pid %d: no such process", pid);
	default:
		return reply_error("permission_denied", "pid %d: permission denied", pid);
	}
}

static json_t *handle_status(const struct peer *p, int clients)
{
	json_t *arr = json_array(), *doc;
	struct target *t;

	const struct ended *e;

	for (t = target_list(); t; t = t->next) {
		if (peer_may_access_target(p, t) || target_check(t))
			continue;
		json_array_append_new(arr, view_status_json(t));
	}
	/* Ended ones: their summaries, newest first. */
	for (e = ended_list(); e; e = e->next)
		if (!peer_may_access_uid(p, e->uid))
			json_array_append_new(arr, json_loads(e->status, 0, NULL));
	doc = json_pack("{s:s, s:f, s:i, s:f, s:I, s:o, s:{s:I, s:I, s:i}, s:o*}",
			"version", PYLEAK_VERSION, "uptime_s", loop_mono() - started_mono, "pid", getpid(),
			"cpu_s", procfs_self_cpu_seconds(false),
			"rss_kib", (json_int_t)(procfs_self_rss_bytes() >> 10), "targets", arr,
			"counters", "requests", (json_int_t)requests, "request_errors",
			(json_int_t)request_errors, "clients", clients,
			"discovery", discovery_status_json());
	if (doc) {
		json_object_set_new(doc, "metrics", metrics_status_json() ?: json_null());
		json_object_set_new(doc, "ended", ended_stats_json());
		json_object_set_new(doc, "postmortem", postmortem_stats_json());
		json_object_set_new(doc, "path_walk", view_paths_status_json());
	}
	return doc;
}

static json_t *handle_ps(const struct peer *p)
{
	json_t *arr = json_array();
	struct dirent *de;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return reply_error("internal", "open /proc: %s", strerror(errno));
	while ((de = readdir(d))) {
		struct container_label label;
		struct python_info py;
		struct target *t;
		json_t *row;
		pid_t pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = atoi(de->d_name);
		if (pid == getpid() || peer_may_access(p, pid) || python_inspect(pid, &py))
			continue;
		t = target_find(pid);
		row = json_pack("{s:i, s:s, s:s, s:b}", "pid", pid, "exe", py.exe, "python",
				py.version, "tracked", t && t->state == TARGET_TRACKING);
		if (row && !container_read(pid, &label))
			view_label_add(&label, pid, row);
		if (row && discovery_verdict(pid))
			json_object_set_new(row, "discovery", json_string(discovery_verdict(pid)));
		json_array_append_new(arr, row);
		python_release(&py);
	}
	closedir(d);
	return json_pack("{s:o}", "processes", arr);
}

/* Processes one unprivileged user may have tracked at once: the rest of max_targets stays
 * for others. */
#define USER_TARGETS_MAX 16

static unsigned int user_targets(uid_t uid)
{
	struct target *t;
	unsigned int n = 0;

	for (t = target_list(); t; t = t->next)
		n += t->state == TARGET_TRACKING && t->uid == uid;
	return n;
}

/*
 * Attaches pid for p (*attached: false if it was tracked already); NULL or the error reply.
 * Access is checked again once the target holds the process's pidfd: a pid that was recycled
 * between the caller's check and the attach must not stay probed for p.
 */
static json_t *attach_for(const struct peer *p, pid_t pid, const struct target_options *opt,
			  struct target **out, bool *attached)
{
	int ret;

	*attached = false;
	if (!p->privileged && user_targets(p->uid) >= USER_TARGETS_MAX)
		return reply_error("busy", "pid %d: uid %u already has %d processes tracked", pid,
				   p->uid, USER_TARGETS_MAX);
	ret = target_attach(pid, opt, out);
	if (ret == -EALREADY)
		return NULL;
	if (ret)
		return error_attach(pid, ret);
	if (peer_may_access(p, pid)) {
		target_detach(*out, NULL);
		return reply_error("permission_denied", "pid %d: permission denied", pid);
	}
	*attached = true;
	return NULL;
}

/* The daemon's attach options, with what the request sets. */
static struct target_options options_of(const struct request *req)
{
	struct target_options topt = target_opt;

	if (req->has_mode)
		topt.mode = req->mode;
	if (req->has_budget)
		topt.budget = req->budget;
	topt.force = req->force;
	return topt;
}

/* A command on one target. */
typedef json_t *target_handler(struct target *t, const struct request *req);

/* handle's reply on the tracked target of req->pid, attaching on demand as req says, or the
 * error reply getting it. */
static json_t *target_for(const struct peer *p, const struct request *req, target_handler *handle)
{
	struct target_options topt = options_of(req);
	const struct ended *e;
	pid_t pid = req->pid;
	struct target *t;
	bool attached;
	json_t *err;

	err = access_check(p, pid);
	if (err)
		return err;
	t = target_find(pid);
	if (!t) {
		e = ended_find(pid);
		if (e)
			return reply_error("no_such_process", "pid %d: %s while tracked", pid,
					   e->state);
		err = attach_for(p, pid, &topt, &t, &attached);
		if (err)
			return err;
	}
	return handle(t, req);
}

static json_t *handle_attach(const struct peer *p, const struct request *req)
{
	struct target_options topt = options_of(req);
	struct target *t;
	bool attached;
	json_t *err;

	err = access_check(p, req->pid);
	if (!err)
		err = attach_for(p, req->pid, &topt, &t, &attached);
	if (err)
		return err;
	return json_pack("{s:i, s:s, s:s, s:b}", "pid", req->pid, "python", t->py.version,
			 "mode", target_mode_name(t->opt.mode), "attached", attached);
}

static json_t *handle_detach(const struct peer *p, pid_t pid)
{
	struct target *t;
	double took, pending;
	json_t *o;

	/* Denied whether or not it is tracked: a member learns nothing of others' processes. */
	if (peer_may_access(p, pid) == -EACCES)
		return reply_error("permission_denied", "pid %d: permission denied", pid);
	t = target_find(pid);
	if (!t || t->state != TARGET_TRACKING)
		return reply_error("not_attached", "pid %d: not attached", pid);
	took = target_detach(t, &pending);
	o = json_pack("{s:i, s:b, s:f}", "pid", pid, "detached", 1, "detach_s", took);
	if (o && pending > 0)
		json_object_set_new(o, "pending_s", json_real(pending));
	return o;
}

/*
 * The reply of a view of t (`what` it shows, for -EOPNOTSUPP; cmd, for other errors) that
 * returned ret, doc when 0.  -ESRCH: t ended, whether its check said so or the view found it
 * gone before its pidfd did.
 */
static json_t *view_reply(const struct target *t, int ret, json_t *doc, const char *cmd,
			  const char *what)
{
	switch (ret) {
	case 0:
		return doc;
	case -EOPNOTSUPP:
		return reply_error("unsupported_python", "pid %d: Python %s: %s are not supported",
				   t->pid, t->py.version, what);
	case -ESRCH:
		return reply_error("no_such_process", "pid %d: %s while tracked", t->pid,
				   target_state_name(t->state == TARGET_TRACKING ? TARGET_EXITED : t->state));
	default:
		return reply_error("internal", "pid %d: %s: %s", t->pid, cmd, strerror(-ret));
	}
}

static json_t *handle_top(struct target *t, const struct request *req)
{
	int ret;

	ret = sampler_sample(t, true);
	if (ret)
		return view_reply(t, ret, NULL, "sample", "censuses");
	return view_top_json(t, req->n, req->sort, req->interval, req->history);
}

static json_t *handle_leaks(struct target *t, const struct request *req)
{
	int ret;

	ret = target_check(t);
	if (ret)
		return view_reply(t, ret, NULL, "leaks", NULL);
	return view_leaks_json(t, req->window, req->n);
}

static json_t *handle_sites(struct target *t, const struct request *req)
{
	json_t *doc = NULL;
	int ret;

	/* A census that failed otherwise leaves the sites of the last one to show. */
	ret = sampler_sample(t, false);
	if (ret != -ESRCH)
		ret = view_sites_json(t, req->type, req->n, &doc);
	return view_reply(t, ret, doc, "sites", "allocation sites");
}

static json_t *handle_postmortem(const struct peer *p, pid_t pid)
{
	json_t *doc;
	int err;

	if (!pid)
		return postmortem_list_json(p->privileged, p->uid);
	/* A member learns nothing of others' processes: theirs are "no report" too. */
	err = postmortem_get(pid, p->privileged, p->uid, &doc);
	if (!err)
		return doc;
	if (err == -ENOENT)
		return reply_error("no_such_process", "pid %d: no postmortem report", pid);
	return reply_error("internal", "pid %d: postmortem report: %s", pid, strerror(-err));
}

static json_t *handle_path(struct target *t, const struct request *req)
{
	json_t *doc = NULL;
	int ret;

	ret = target_check(t);
	if (!ret)
		ret = view_paths_json(t, req->type, &doc);
	if (ret == -EBUSY)
		return reply_error("busy", "pid %d: the reference walks hold their memory cap",
				   t->pid);
	return view_reply(t, ret, doc, "path", "reference walks");
}

static json_t *handle_native(struct target *t, const struct request *req)
{
	json_t *doc = NULL;
	int ret;

	(void)req;	/* `native` takes no option */
	/* Just attached: the first scan is taken now. */
	ret = sampler_sample(t, !t->native);
	if (ret != -ESRCH)
		ret = view_native_json(t, &doc);
	if (ret == -EAGAIN)
		return reply_error("busy", "pid %d: native memory not scanned yet: %s", t->pid,
				   t->native && t->native->errors ? "the scan failed (see the log)" :
				   "ask again in a few seconds");
	return view_reply(t, ret, doc, "native", "native sites (they need its stacks)");
}

json_t *handlers_reply(const struct peer *p, const char *line, int clients)
{
	json_t *reply = NULL;	/* every command is handled below */
	struct request req;

	requests++;
	if (!p->allowed)
		return reply_error("permission_denied", "uid %u may not use pyleakd", p->uid);
	if (request_parse(line, &req)) {
		reply = reply_error("bad_request", "%s", req.error);
		goto cleanup;
	}
	switch (req.cmd) {
	case REQUEST_STATUS:
		reply = handle_status(p, clients);
		break;
	case REQUEST_PS:
		reply = handle_ps(p);
		break;
	case REQUEST_ATTACH:
		reply = handle_attach(p, &req);
		break;
	case REQUEST_DETACH:
		reply = handle_detach(p, req.pid);
		break;
	case REQUEST_TOP:
		reply = target_for(p, &req, handle_top);
		break;
	case REQUEST_LEAKS:
		reply = target_for(p, &req, handle_leaks);
		break;
	case REQUEST_SITES:
		reply = target_for(p, &req, handle_sites);
		break;
	case REQUEST_POSTMORTEM:
		reply = handle_postmortem(p, req.pid);
		break;
	case REQUEST_PATH:
		reply = target_for(p, &req, handle_path);
		break;
	case REQUEST_NATIVE:
		reply = target_for(p, &req, handle_native);
		break;
	}
cleanup:
	request_release(&req);
	return reply;
}
