// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The Unix socket.  Every client socket is non-blocking with its own input and output
 * buffers: a client that sends slowly, or reads its replies slowly or never, holds only its
 * own buffers and is dropped when it makes no progress for CLIENT_IDLE_S; it never delays
 * another client or the daemon's loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "handlers.h"
#include "log.h"
#include "loop.h"
#include "server.h"

#define REQUEST_MAX (64 * 1024)
#define REPLY_MAX (64u << 20)		/* the longest reply line a client accepts */
#define CLIENTS_MAX 64
#define CLIENTS_PER_USER 16		/* connections of one unprivileged user */
#define CLIENT_IDLE_S 60.0		/* a request or a reply stuck half-way this long */
/* Requests per second a client may send on average, and in a burst. */
#define CLIENT_RATE 20.0
#define CLIENT_BURST 40.0

struct client {
	struct watcher w;
	struct client *next;
	struct peer peer;
	double active_at;		/* monotonic time of its last progress */
	double tokens, tokens_at;	/* rate cap: a token bucket */
	char *out;			/* the reply being sent, out_off of out_len bytes sent */
	size_t out_len, out_off;
	size_t len;
	char buf[REQUEST_MAX + 1];
};

static struct server_options opts;
static struct watcher listener = { .fd = -1 };
static struct watcher idle_timer = { .fd = -1 };
static int spare_fd = -1;	/* closed to accept (and refuse) a client when out of fds */
static bool listener_paused;	/* out of fds without a spare: resumed by the idle tick */
static struct client *clients;
static int nclients;

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
	free(c->out);
	free(c);
	nclients--;
}

/* Sends what it can of the pending reply; 0 when all is sent, -EAGAIN if the client is not
 * reading, or another negative errno (the client is gone). */
static int client_flush(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->w.fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->out_off += n;
		c->active_at = loop_mono();
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return 0;
}

/* Queues a reply line and starts sending it. */
static int client_reply(struct client *c, json_t *reply)
{
	char *s;
	size_t len;

	if (!reply)
		reply = reply_error("internal", "out of memory");
	s = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	if (!s)
		return -ENOMEM;
	len = strlen(s);
	if (len >= REPLY_MAX) {
		free(s);
		reply = reply_error("internal", "reply of %zu bytes is too long: ask for fewer rows", len);
		s = json_dumps(reply, JSON_COMPACT);
		json_decref(reply);
		if (!s)
			return -ENOMEM;
		len = strlen(s);
	}
	s[len] = '\n';	/* json_dumps leaves room: replace the NUL, send len + 1 bytes */
	c->out = s;
	c->out_len = len + 1;
	c->out_off = 0;
	return client_flush(c);
}

/* Takes one token from the client's bucket; false if it sends faster than its rate. */
static bool client_rate_ok(struct client *c, double now)
{
	c->tokens += (now - c->tokens_at) * CLIENT_RATE;
	if (c->tokens > CLIENT_BURST)
		c->tokens = CLIENT_BURST;
	c->tokens_at = now;
	if (c->tokens < 1)
		return false;
	c->tokens--;
	return true;
}

/* Answers the complete request lines buffered, one at a time: while a reply is still being
 * sent, the next waits (the client's own backpressure).  0, or a negative errno to drop it. */
static int client_serve(struct client *c)
{
	char *nl;
	int err;

	while (!c->out && (nl = memchr(c->buf, '\n', c->len))) {
		size_t used = nl - c->buf + 1;
		double now = loop_mono();

		*nl = '\0';
		c->active_at = now;
		err = client_reply(c, client_rate_ok(c, now) ?
				  handlers_reply(&c->peer, c->buf, nclients) :
				  reply_error("busy", "more than %.0f requests per second", CLIENT_RATE));
		if (err && err != -EAGAIN)
			return err;
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		c->buf[c->len] = '\0';
	}
	if (!c->out && c->len == REQUEST_MAX) {
		client_reply(c, reply_error("bad_request", "request longer than %d bytes", REQUEST_MAX));
		return -E2BIG;
	}
	/* Wait for room to send, or for more requests; never both (a client that keeps sending
	 * while not reading would make its input readable forever), and no EPOLLRDHUP while
	 * sending: a peer that shut its writing side would keep waking the loop. */
	return loop_mod(&c->w, c->out ? EPOLLOUT : EPOLLIN | EPOLLRDHUP);
}

static void on_client(struct watcher *w, uint32_t events)
{
	struct client *c = (struct client *)w;
	ssize_t n;
	int err;

	if (c->out) {
		err = client_flush(c);
		if (err == -EAGAIN && !(events & (EPOLLHUP | EPOLLERR)))
			return;
		if (err) {
			client_close(c);
			return;
		}
	} else if (events & EPOLLIN) {
		n = recv(c->w.fd, c->buf + c->len, REQUEST_MAX - c->len, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_close(c);
			return;
		}
		if (n > 0) {
			if (!c->len)
				c->active_at = loop_mono();	/* a request starts: its time runs */
			c->len += n;
			c->buf[c->len] = '\0';
		}
	} else if (events & (EPOLLHUP | EPOLLERR)) {
		client_close(c);
		return;
	}
	if (client_serve(c))
		client_close(c);
}

/* Drops clients stuck half-way for CLIENT_IDLE_S (a reader that stopped reading, a request
 * that never ends): they hold buffers.  An idle connection between requests is kept (`top`
 * refreshes on one); CLIENTS_PER_USER bounds how many one user holds. */
static void on_idle_tick(struct watcher *w, uint32_t events)
{
	struct client *c, *next;
	double now = loop_mono();
	uint64_t ticks;

	(void)events;
	if (read(w->fd, &ticks, sizeof(ticks)) < 0)
		return;
	if (listener_paused && !loop_add(&listener, EPOLLIN))
		listener_paused = false;
	for (c = clients; c; c = next) {
		next = c->next;
		if ((c->out || c->len) && now - c->active_at > CLIENT_IDLE_S) {
			log_debug("client pid %d: dropped after %.0f s without progress", c->peer.pid,
				  now - c->active_at);
			client_close(c);
		}
	}
}

static int user_clients(uid_t uid)
{
	struct client *c;
	int n = 0;

	for (c = clients; c; c = c->next)
		n += c->peer.uid == uid;
	return n;
}

static void refuse(int fd, const char *line)
{
	send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void on_accept(struct watcher *w, uint32_t events)
{
	struct client *c;
	int fd;

	(void)events;
	fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && spare_fd < 0) {
		/* Out of fds with no spare to refuse the connection with: it would keep the
		 * listener readable and the loop spinning. Stop listening for a second. */
		loop_del(&listener);
		listener_paused = true;
		log_warn("out of file descriptors: not accepting clients for a second");
		return;
	}
	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		/* Out of fds: the pending connection would keep the listener readable, and the
		 * loop spinning. Take it with the spare fd and refuse it. */
		close(spare_fd);
		fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0)
			refuse(fd, "{\"error\":{\"code\":\"busy\",\"message\":\"pyleakd is out of file descriptors\"}}\n");
		spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		log_warn("out of file descriptors: a client was refused");
		return;
	}
	if (fd < 0)
		return;
	if (nclients >= CLIENTS_MAX) {
		refuse(fd, "{\"error\":{\"code\":\"busy\",\"message\":\"too many clients\"}}\n");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || peer_read(fd, opts.has_group, opts.group, &c->peer)) {
		free(c);
		close(fd);
		return;
	}
	if (!c->peer.privileged && user_clients(c->peer.uid) >= CLIENTS_PER_USER) {
		free(c);
		refuse(fd, "{\"error\":{\"code\":\"busy\",\"message\":\"too many connections of this user\"}}\n");
		return;
	}
	c->w = (struct watcher){ .fd = fd, .fn = on_client };
	c->active_at = c->tokens_at = loop_mono();
	c->tokens = CLIENT_BURST;
	if (loop_add(&c->w, EPOLLIN | EPOLLRDHUP)) {
		close(fd);
		free(c);
		return;
	}
	c->next = clients;
	clients = c;
	nclients++;
}

/* A socket file at path that nobody accepts on (a crashed daemon's) may be replaced; a live
 * daemon's must not be stolen, even when its backlog is full (EAGAIN). */
static int socket_probe(const struct sockaddr_un *addr)
{
	int fd, err = 0;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (!connect(fd, (const struct sockaddr *)addr, sizeof(*addr)))
		err = -EADDRINUSE;
	else if (errno != ECONNREFUSED && errno != ENOENT)
		err = errno == EAGAIN ? -EADDRINUSE : -errno;
	close(fd);
	return err;
}

int server_start(const struct server_options *o)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = -1, err;

	opts = *o;
	handlers_init(&o->target);
	if (strlen(o->path) >= sizeof(addr.sun_path)) {
		log_error("socket path too long: %s", o->path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, o->path);
	err = socket_probe(&addr);
	if (err) {
		log_error("socket %s: %s", o->path, err == -EADDRINUSE ?
			  "another pyleakd is listening" : strerror(-err));
		return err;
	}
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
	spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	err = loop_timer_start(&idle_timer, on_idle_tick, 1, 1);
	if (err)
		goto cleanup;
	listener = (struct watcher){ .fd = fd, .fn = on_accept };
	err = loop_add(&listener, EPOLLIN);
	if (err)
		goto cleanup;
	return 0;
cleanup:
	listener.fd = -1;
	close(fd);
	server_stop();
	return err;
}

void server_stop(void)
{
	while (clients)
		client_close(clients);
	loop_timer_stop(&idle_timer);
	if (spare_fd >= 0)
		close(spare_fd);
	spare_fd = -1;
	if (listener.fd >= 0) {
		if (!listener_paused)
			loop_del(&listener);
		close(listener.fd);
		unlink(opts.path);
		listener.fd = -1;
	}
}
