// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The connection to pyleakd (client.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"

#define REPLY_INITIAL		(64u << 10)
#define REPLY_MAX		(64u << 20)	/* longest reply line accepted */

struct client {
	int fd;
	char *buf;			/* bytes received and not yet parsed */
	size_t len;
	size_t cap;
	const sigset_t *waitmask;	/* mask while waiting (top's refresh loop), or NULL */
	client_wait_fn wait_fn;		/* told each second of waiting, or NULL */
	void *wait_ctx;
	unsigned int waited;		/* seconds waited for the reply being read */
};

/* Fills e; returns err so that callers can return it at once. */
static int __attribute__((format(printf, 4, 5)))
error_set(struct client_error *e, int err, const char *code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return err;
}

/* What to do about it is the reporter's hint (failure.c), chosen by the code. */
static int connect_error(struct client_error *e, const char *path, int err)
{
	const char *code = err == -EACCES || err == -EPERM ? "permission_denied" : "no_daemon";

	return error_set(e, err, code, "cannot connect to pyleakd at %s: %s", path, strerror(-err));
}

static int client_connect(struct client *c, const char *path, struct client_error *e)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = strlen(path);

	if (len >= sizeof(addr.sun_path))
		return error_set(e, -ENAMETOOLONG, "bad_request", "socket path too long: %s", path);
	memcpy(addr.sun_path, path, len + 1);
	c->buf = malloc(REPLY_INITIAL);
	if (!c->buf)
		return error_set(e, -ENOMEM, "internal", "out of memory");
	c->cap = REPLY_INITIAL;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return error_set(e, -errno, "internal", "cannot create a socket: %s",
				 strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return connect_error(e, path, -errno);
	return 0;
}

int client_open(const char *path, struct client **out, struct client_error *e)
{
	struct client *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return error_set(e, -ENOMEM, "internal", "out of memory");
	c->fd = -1;
	err = client_connect(c, path, e);
	if (err) {
		client_close(c);
		return err;
	}
	*out = c;
	return 0;
}

void client_close(struct client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
}

void client_waitmask_set(struct client *c, const sigset_t *waitmask)
{
	c->waitmask = waitmask;
}

static int client_send(struct client *c, json_t *req, struct client_error *e)
{
	size_t len, off;
	char *line;
	ssize_t n;
	int err = 0;

	len = json_dumpb(req, NULL, 0, JSON_COMPACT);
	line = len ? malloc(len + 1) : NULL;
	if (!line || json_dumpb(req, line, len, JSON_COMPACT) != len) {
		err = error_set(e, -ENOMEM, "internal", "out of memory");
		goto cleanup;
	}
	line[len++] = '\n';
	for (off = 0; off < len; off += n) {
		/* MSG_NOSIGNAL: a daemon gone away is an error to report, not a SIGPIPE. */
		n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) {
			n = 0;
		} else if (n < 0) {
			err = error_set(e, -errno, "internal", "cannot send to pyleakd: %s",
					strerror(errno));
			goto cleanup;
		}
	}
cleanup:
	free(line);
	return err;
}

static int client_grow(struct client *c)
{
	size_t cap = 2 * c->cap < REPLY_MAX ? 2 * c->cap : REPLY_MAX;
	char *buf;

	if (c->cap >= REPLY_MAX)
		return -EMSGSIZE;
	buf = realloc(c->buf, cap);
	if (!buf)
		return -ENOMEM;
	c->buf = buf;
	c->cap = cap;
	return 0;
}

/*
 * Reads what is there; returns 0 to be called again, -EINTR when a signal arrived: only top's
 * loop lets one through (waitmask), and it catches only the signals that stop it.
 */
static int client_fill(struct client *c, struct client_error *e)
{
	static const struct timespec second = { .tv_sec = 1 };
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	ssize_t n;
	int err;

	if (c->len == c->cap) {
		err = client_grow(c);
		if (err == -EMSGSIZE)
			return error_set(e, err, "internal", "reply from pyleakd exceeds %u MiB",
					 REPLY_MAX >> 20);
		if (err)
			return error_set(e, err, "internal", "out of memory");
	}
	/* Waiting in ppoll() with the loop's mask lets Ctrl-C through only here: never lost. */
	n = ppoll(&pfd, 1, c->wait_fn ? &second : NULL, c->waitmask);
	if (n == 0) {
		c->wait_fn(c->wait_ctx, ++c->waited);
		return 0;
	}
	if (n > 0)
		n = read(c->fd, c->buf + c->len, c->cap - c->len);
	if (n > 0) {
		c->len += n;
		return 0;
	}
	if (n == 0)
		return error_set(e, -ECONNRESET, "internal",
				 "pyleakd closed the connection without replying");
	if (errno == EINTR)
		return -EINTR;
	return error_set(e, -errno, "internal", "cannot read from pyleakd: %s", strerror(errno));
}

/* Receives one reply line; bytes after it stay buffered for the next one. */
static int client_recv(struct client *c, json_t **doc, struct client_error *e)
{
	size_t scanned = 0, used;
	json_error_t jerr;
	char *nl;
	int err;

	while (!(nl = memchr(c->buf + scanned, '\n', c->len - scanned))) {
		scanned = c->len;
		err = client_fill(c, e);
		if (err)
			return err;
	}
	*doc = json_loadb(c->buf, nl - c->buf, JSON_DECODE_ANY, &jerr);
	used = nl + 1 - c->buf;
	c->len -= used;
	memmove(c->buf, c->buf + used, c->len);
	if (!*doc)
		return error_set(e, -EPROTO, "internal", "invalid reply from pyleakd: %s",
				 jerr.text);
	return 0;
}

void client_wait_fn_set(struct client *c, client_wait_fn fn, void *ctx)
{
	c->wait_fn = fn;
	c->wait_ctx = ctx;
}

int client_request(struct client *c, json_t *req, json_t **reply, struct client_error *e)
{
	json_t *doc;
	int err;

	c->waited = 0;
	err = client_send(c, req, e);
	if (!err)
		err = client_recv(c, &doc, e);
	if (err)
		return err;
	if (!json_is_object(doc)) {
		json_decref(doc);
		return error_set(e, -EPROTO, "internal",
				 "invalid reply from pyleakd: not a JSON object");
	}
	*reply = doc;
	return 0;
}
