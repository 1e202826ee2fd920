// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "sampler.h"
#include "server.h"
#include "view.h"

#define REQUEST_MAX (64 * 1024)
#define CLIENTS_MAX 64
#define SEND_TIMEOUT_S 2

struct client {
	struct watcher w;
	struct client *next;
	pid_t pid;
	uid_t uid;
	bool allowed;
	size_t len;
	char buf[REQUEST_MAX + 1];
};

static struct server_options opts;
static struct watcher listener = { .fd = -1 };
static struct client *clients;
static int nclients;
static double started_mono;
static unsigned long requests, request_errors;

static json_t *error_new(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static json_t *error_new(const char *code, const char *fmt, ...)
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
		return error_new("no_such_process", "pid %d: no such process", pid);
	case -ENOEXEC:
		return error_new("not_python", "pid %d: not a Python process", pid);
	case -EPROTONOSUPPORT:
		return error_new("unsupported_python", "pid %d: unsupported Python (supported: CPython 3.8-3.13)", pid);
	case -EACCES:
	case -EPERM:
		return error_new("permission_denied", "pid %d: permission denied", pid);
	default:
		return error_new("internal", "pid %d: attach failed: %s", pid, strerror(-err));
	}
}

/* Reads an optional integer field; -EINVAL if present but not an integer in [lo, hi]. */
static int field_int(json_t *req, const char *key, long lo, long hi, long *out)
{
	json_t *v = json_object_get(req, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return -EINVAL;
	*out = json_integer_value(v);
	return 0;
}

static int field_str(json_t *req, const char *key, const char **out)
{
	json_t *v = json_object_get(req, key);

	if (!v)
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	*out = json_string_value(v);
	return 0;
}

static int field_pid(json_t *req, pid_t *pid)
{
	long v = 0;

	if (field_int(req, "pid", 1, INT_MAX, &v) || !v)
		return -EINVAL;
	*pid = v;
	return 0;
}

static long self_rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static json_t *handle_status(void)
{
	struct rusage ru;
	json_t *arr = json_array(), *doc;
	struct target *t;

	for (t = target_list(); t; t = t->next) {
		target_check(t);
		json_array_append_new(arr, view_status_json(t));
	}
	getrusage(RUSAGE_SELF, &ru);
	doc = json_pack("{s:s, s:f, s:i, s:f, s:I, s:o, s:{s:I, s:I, s:i}}",
			"version", PYLEAK_VERSION, "uptime_s", loop_mono() - started_mono, "pid", getpid(),
			"cpu_s", ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
				(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
			"rss_kib", (json_int_t)self_rss_kib(), "targets", arr,
			"counters", "requests", (json_int_t)requests, "request_errors",
			(json_int_t)request_errors, "clients", nclients);
	return doc;
}

static json_t *handle_ps(void)
{
	json_t *arr = json_array();
	struct dirent *de;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return error_new("internal", "open /proc: %s", strerror(errno));
	while ((de = readdir(d))) {
		struct python_info py;
		struct target *t;
		pid_t pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = atoi(de->d_name);
		if (pid == getpid() || python_inspect(pid, &py))
			continue;
		t = target_find(pid);
		json_array_append_new(arr, json_pack("{s:i, s:s, s:s, s:b}", "pid", pid, "exe", py.exe,
						     "python", py.version, "tracked",
						     t && t->state == TARGET_TRACKING));
		python_release(&py);
	}
	closedir(d);
	return json_pack("{s:o}", "processes", arr);
}

/* The tracked target of pid, attaching on demand; NULL with *err set to the error reply. */
static struct target *target_get(pid_t pid, json_t **err)
{
	struct target *t = target_find(pid);
	int ret;

	if (t && t->state != TARGET_TRACKING) {
		*err = error_new("no_such_process", "pid %d: %s while tracked", pid, target_state_name(t->state));
		return NULL;
	}
	if (t)
		return t;
	ret = target_attach(pid, &opts.target, &t);
	if (ret) {
		*err = error_attach(pid, ret);
		return NULL;
	}
	return t;
}

static json_t *handle_attach(json_t *req)
{
	struct target_options topt = opts.target;
	const char *mode = NULL;
	json_t *budget;
	struct target *t;
	pid_t pid;
	int ret;

	if (field_pid(req, &pid) || field_str(req, "mode", &mode))
		return error_new("bad_request", "attach: needs an integer \"pid\" > 0 and a string \"mode\"");
	if (mode && target_mode_parse(mode, &topt.mode))
		return error_new("bad_request", "attach: mode must be precise or sampled");
	budget = json_object_get(req, "budget");
	if (budget && (!json_is_number(budget) || json_number_value(budget) < 0 ||
		       json_number_value(budget) > 1))
		return error_new("bad_request", "attach: \"budget\" must be a fraction of the target's CPU in [0, 1]");
	if (budget)
		topt.budget = json_number_value(budget);
	t = target_find(pid);
	ret = t && t->state == TARGET_TRACKING ? -EALREADY : target_attach(pid, &topt, &t);
	if (ret && ret != -EALREADY)
		return error_attach(pid, ret);
	return json_pack("{s:i, s:s, s:s, s:b}", "pid", pid, "python", t->py.version,
			 "mode", target_mode_name(t->opt.mode), "attached", ret == 0);
}

static json_t *handle_detach(json_t *req)
{
	struct target *t;
	pid_t pid;

	if (field_pid(req, &pid))
		return error_new("bad_request", "detach: needs an integer \"pid\" > 0");
	t = target_find(pid);
	if (!t || t->state != TARGET_TRACKING)
		return error_new("not_attached", "pid %d: not attached", pid);
	target_detach(t);
	return json_pack("{s:i, s:b}", "pid", pid, "detached", 1);
}

static json_t *handle_top(json_t *req)
{
	const char *sort = "live";
	json_t *err = NULL, *iv;
	enum view_sort order;
	double interval = 0;
	struct target *t;
	long n = 20;
	pid_t pid;
	int ret;

	if (field_pid(req, &pid) || field_int(req, "n", 0, 100000, &n) || field_str(req, "sort", &sort))
		return error_new("bad_request", "top: needs an integer \"pid\" > 0, optional \"n\" and \"sort\"");
	iv = json_object_get(req, "interval");
	if (iv && (!json_is_number(iv) || json_number_value(iv) < 0 || json_number_value(iv) > 86400))
		return error_new("bad_request", "top: \"interval\" must be a number of seconds");
	if (iv)
		interval = json_number_value(iv);
	if (view_sort_parse(sort, &order))
		return error_new("bad_request", "top: sort must be live, bytes or growth");
	t = target_get(pid, &err);
	if (!t)
		return err;
	ret = sampler_sample(t, true);
	if (ret == -ESRCH)
		return error_new("no_such_process", "pid %d: %s while tracked", pid, target_state_name(t->state));
	if (ret)
		return error_new("internal", "pid %d: sample: %s", pid, strerror(-ret));
	return view_top_json(t, n, order, interval);
}

static json_t *handle_leaks(json_t *req)
{
	json_t *err = NULL;
	struct target *t;
	long window = 60, n = 20;
	pid_t pid;

	if (field_pid(req, &pid) || field_int(req, "window", 1, 86400, &window) ||
	    field_int(req, "n", 0, 100000, &n))
		return error_new("bad_request", "leaks: needs an integer \"pid\" > 0, optional \"window\" and \"n\"");
	t = target_get(pid, &err);
	if (!t)
		return err;
	if (target_check(t))
		return error_new("no_such_process", "pid %d: %s while tracked", pid, target_state_name(t->state));
	return view_leaks_json(t, window, n);
}

static json_t *handle_sites(json_t *req)
{
	const char *type = NULL;
	json_t *err = NULL, *doc;
	struct target *t;
	long n = 20;
	pid_t pid;
	int ret;

	if (field_pid(req, &pid) || field_str(req, "type", &type) || !type || !*type ||
	    field_int(req, "n", 0, 100000, &n))
		return error_new("bad_request", "sites: needs an integer \"pid\" > 0, a string \"type\", optional \"n\"");
	t = target_get(pid, &err);
	if (!t)
		return err;
	ret = sampler_sample(t, false);
	if (ret == -ESRCH)
		return error_new("no_such_process", "pid %d: %s while tracked", pid, target_state_name(t->state));
	ret = view_sites_json(t, type, n, &doc);
	if (!ret)
		return doc;
	if (ret == -EOPNOTSUPP)
		return error_new("unsupported_python", "pid %d: Python %s: allocation sites are not supported",
				 pid, t->py.version);
	if (ret == -ESRCH)
		return error_new("no_such_process", "pid %d: exited", pid);
	return error_new("internal", "pid %d: sites: %s", pid, strerror(-ret));
}

static json_t *handle_request(struct client *c, const char *line)
{
	json_error_t jerr;
	const char *cmd;
	json_t *req, *reply;

	requests++;
	if (!c->allowed)
		return error_new("permission_denied", "uid %u may not use pyleakd", c->uid);
	req = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	if (!req)
		return error_new("bad_request", "malformed JSON: %s", jerr.text);
	if (!json_is_object(req) || !json_is_string(json_object_get(req, "cmd"))) {
		reply = error_new("bad_request", "request must be an object with a string \"cmd\"");
		goto cleanup;
	}
	cmd = json_string_value(json_object_get(req, "cmd"));
	if (!strcmp(cmd, "status"))
		reply = handle_status();
	else if (!strcmp(cmd, "ps"))
		reply = handle_ps();
	else if (!strcmp(cmd, "attach"))
		reply = handle_attach(req);
	else if (!strcmp(cmd, "detach"))
		reply = handle_detach(req);
	else if (!strcmp(cmd, "top"))
		reply = handle_top(req);
	else if (!strcmp(cmd, "leaks"))
		reply = handle_leaks(req);
	else if (!strcmp(cmd, "sites"))
		reply = handle_sites(req);
	else
		reply = error_new("bad_request", "unknown command \"%.64s\"", cmd);
cleanup:
	json_decref(req);
	return reply;
}

static void client_close(struct client *c)
{
	struct client **pp;

	for (pp = &clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	loop_del(&c->w);
	close(c->w.fd);
	free(c);
	nclients--;
}

/* Writes the whole reply; a client that stops reading is dropped after SEND_TIMEOUT_S. */
static int client_reply(struct client *c, json_t *reply)
{
	char *s;
	size_t len, off = 0;
	int err = 0;

	if (!reply)
		reply = error_new("internal", "out of memory");
	s = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	if (!s)
		return -ENOMEM;
	len = strlen(s);
	s[len] = '\n';	/* json_dumps leaves room: replace the NUL, write len + 1 bytes */
	while (off < len + 1) {
		ssize_t n = send(c->w.fd, s + off, len + 1 - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		off += n;
	}
	free(s);
	return err;
}

static void on_client(struct watcher *w, uint32_t events)
{
	struct client *c = (struct client *)w;
	char *nl;
	ssize_t n;

	if (events & (EPOLLHUP | EPOLLERR) && !(events & EPOLLIN)) {
		client_close(c);
		return;
	}
	n = recv(c->w.fd, c->buf + c->len, REQUEST_MAX - c->len, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_close(c);
		return;
	}
	if (n < 0)
		return;
	c->len += n;
	c->buf[c->len] = '\0';
	while ((nl = memchr(c->buf, '\n', c->len))) {
		size_t used = nl - c->buf + 1;

		*nl = '\0';
		if (client_reply(c, handle_request(c, c->buf))) {
			client_close(c);
			return;
		}
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		c->buf[c->len] = '\0';
	}
	if (c->len == REQUEST_MAX) {
		client_reply(c, error_new("bad_request", "request longer than %d bytes", REQUEST_MAX));
		client_close(c);
	}
}

/* Root, the daemon's own user, or a member of the configured group. */
static bool peer_allowed(pid_t pid, uid_t uid, gid_t gid)
{
	char path[64], line[512];
	bool ok = false;
	FILE *f;

	if (uid == 0 || uid == geteuid())
		return true;
	if (!opts.has_group)
		return false;
	if (gid == opts.group)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!ok && fgets(line, sizeof(line), f)) {
		char *p = line + 7, *end;

		if (strncmp(line, "Groups:", 7))
			continue;
		for (;;) {
			unsigned long g = strtoul(p, &end, 10);

			if (end == p)
				break;
			if (g == opts.group)
				ok = true;
			p = end;
		}
	}
	fclose(f);
	return ok;
}

static void on_accept(struct watcher *w, uint32_t events)
{
	struct timeval tv = { .tv_sec = SEND_TIMEOUT_S };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct client *c;
	int fd;

	(void)events;
	fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (nclients >= CLIENTS_MAX) {
		static const char busy[] =
			"{\"error\":{\"code\":\"busy\",\"message\":\"too many clients\"}}\n";

		send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		free(c);
		close(fd);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c->w = (struct watcher){ .fd = fd, .fn = on_client };
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->allowed = peer_allowed(cred.pid, cred.uid, cred.gid);
	if (loop_add(&c->w, EPOLLIN | EPOLLRDHUP)) {
		close(fd);
		free(c);
		return;
	}
	c->next = clients;
	clients = c;
	nclients++;
}

int server_start(const struct server_options *o)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, err;

	opts = *o;
	started_mono = loop_mono();
	if (strlen(o->path) >= sizeof(addr.sun_path)) {
		log_error("socket path too long: %s", o->path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, o->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A stale socket from a crashed daemon would block bind; a live one must not be stolen. */
	if (!connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		log_error("socket %s: another pyleakd is listening", o->path);
		err = -EADDRINUSE;
		goto cleanup;
	}
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(o->path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(fd, 64)) {
		err = -errno;
		log_error("socket %s: %s", o->path, strerror(-err));
		goto cleanup;
	}
	if (chmod(o->path, o->has_group ? 0660 : 0600) ||
	    (o->has_group && chown(o->path, -1, o->group))) {
		err = -errno;
		log_error("socket %s: set permissions: %s", o->path, strerror(-err));
		goto cleanup;
	}
	listener = (struct watcher){ .fd = fd, .fn = on_accept };
	err = loop_add(&listener, EPOLLIN);
	if (err)
		goto cleanup;
	return 0;
cleanup:
	close(fd);
	return err;
}

void server_stop(void)
{
	while (clients)
		client_close(clients);
	if (listener.fd >= 0) {
		loop_del(&listener);
		close(listener.fd);
		unlink(opts.path);
		listener.fd = -1;
	}
}
