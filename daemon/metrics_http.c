// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "log.h"
#include "loop.h"
#include "metrics_http.h"

/* Request headers a connection may send (a scrape's are a few hundred bytes). */
#define CONNECTION_MEMORY	(32 * 1024)
#define CONTENT_TYPE		"text/plain; version=0.0.4; charset=utf-8"
/* Kernel send buffer of a connection (the kernel doubles it), instead of autotuning up to
 * 4 MiB: a slow reader is paced by the server from the shared snapshot, not by copies of it
 * in the kernel. */
#define SEND_BUFFER		(64 * 1024)

/* What a response copies at a time into its connection's buffer (CONNECTION_MEMORY). */
#define BLOCK_SIZE		(16 * 1024)

/* The text served, shared by the connections sending it: freed by its last user. */
struct snapshot {
	uint32_t refs;
	uint32_t mark;		/* counted by the publish of this number */
	size_t len;
	char *text;
};

/* A response being sent: its snapshot, until it ends or is cut off. */
struct reader {
	struct reader *prev, *next;
	struct snapshot *s;	/* NULL: cut off */
	double deadline;	/* monotonic */
};

static struct MHD_Daemon *httpd;
static char listen_addr[80];
static uint16_t listen_port;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Under lock: the latest text, the responses (newest first), what older texts they keep. */
static struct snapshot *current;
static struct reader *readers;
static size_t pinned;
static uint32_t publishes;
static uint64_t cut;
/* Written by the server's thread, read by the loop's. */
static uint64_t scrapes, refused, connections;
static bool scraped;

static void snapshot_put(struct snapshot *s)
{
	if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		free(s->text);
		free(s);
	}
}

static struct snapshot *snapshot_get(void)
{
	struct snapshot *s;

	pthread_mutex_lock(&lock);
	s = current;
	if (s)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&lock);
	return s;
}

/* Under lock: r lets its snapshot go (its connection ends at its next read). */
static void reader_cut(struct reader *r)
{
	snapshot_put(r->s);
	r->s = NULL;
	cut++;
}

/* Under lock: the responses past their deadline, then the oldest past what older snapshots may
 * keep, are cut off; pinned: what the others keep. */
static void readers_bound(void)
{
	double now = loop_mono();
	struct reader *r;

	pinned = 0;
	publishes++;
	for (r = readers; r; r = r->next) {
		if (!r->s || r->s == current)
			continue;
		if (now > r->deadline ||
		    (r->s->mark != publishes && pinned + r->s->len > METRICS_HTTP_PINNED_MAX)) {
			reader_cut(r);
			continue;
		}
		if (r->s->mark != publishes)
			pinned += r->s->len;
		r->s->mark = publishes;
	}
}

void metrics_http_publish(char *text, size_t len)
{
	struct snapshot *s = malloc(sizeof(*s)), *old;

	if (!s) {
		free(text);
		return;		/* the previous text stays */
	}
	*s = (struct snapshot){ .refs = 1, .len = len, .text = text };
	pthread_mutex_lock(&lock);
	old = current;
	current = s;
	readers_bound();
	pthread_mutex_unlock(&lock);
	snapshot_put(old);
}

/* In the server's thread: the next block of r's text, or its end (cut off: an error, which
 * closes the connection). */
static ssize_t reader_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct reader *r = cls;
	ssize_t n;

	pthread_mutex_lock(&lock);
	if (r->s && loop_mono() > r->deadline)
		reader_cut(r);
	if (!r->s) {
		n = MHD_CONTENT_READER_END_WITH_ERROR;
	} else if (pos >= r->s->len) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		n = r->s->len - pos < max ? r->s->len - pos : max;
		memcpy(buf, r->s->text + pos, n);
	}
	pthread_mutex_unlock(&lock);
	return n;
}

static void reader_free(void *cls)
{
	struct reader *r = cls;

	pthread_mutex_lock(&lock);
	if (r->prev)
		r->prev->next = r->next;
	else
		readers = r->next;
	if (r->next)
		r->next->prev = r->prev;
	snapshot_put(r->s);
	pthread_mutex_unlock(&lock);
	free(r);
}

/* A response of the latest snapshot (its reader listed, with its deadline), or NULL. */
static struct MHD_Response *reader_new(void)
{
	struct MHD_Response *resp;
	struct reader *r;
	struct snapshot *s;

	s = snapshot_get();
	if (!s)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r) {
		snapshot_put(s);
		return NULL;
	}
	r->s = s;
	r->deadline = loop_mono() + METRICS_HTTP_DEADLINE_S;
	resp = MHD_create_response_from_callback(s->len, BLOCK_SIZE, reader_read, r, reader_free);
	if (!resp) {
		snapshot_put(s);
		free(r);
		return NULL;
	}
	pthread_mutex_lock(&lock);
	r->next = readers;
	if (readers)
		readers->prev = r;
	readers = r;
	pthread_mutex_unlock(&lock);
	return resp;
}

int metrics_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN + 1];
	bool v6 = *s == '[';
	const char *end, *port_s;
	unsigned long port;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (v6) {
		s++;
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		port_s = end + 2;
	} else {
		end = strrchr(s, ':');
		if (!end)
			return -EINVAL;
		port_s = end + 1;
	}
	n = end - s;
	/* digits only (strtoul would take blanks, signs and "0x"), 5 at most */
	if (!n || n >= sizeof(host) || !*port_s || strlen(port_s) > 5 ||
	    strspn(port_s, "0123456789") != strlen(port_s))
		return -EINVAL;
	port = strtoul(port_s, NULL, 10);
	if (port > 65535)
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	if (!v6 && inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len = sizeof(*in);
		return 0;
	}
	if (v6 && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

static enum MHD_Result reply_static(struct MHD_Connection *c, unsigned int code, const char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* In the server's thread: the latest snapshot, by reference (the response frees it). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **con_cls)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)cls, (void)version, (void)upload;
	/* Refused at the headers, before any body is read. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		__atomic_add_fetch(&refused, 1, __ATOMIC_RELAXED);
		return reply_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	}
	/* The first call has the headers; the answer goes at the last (a body is dropped). */
	if (!*con_cls) {
		*con_cls = c;
		return MHD_YES;
	}
	if (*upload_len) {
		*upload_len = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/metrics")) {
		__atomic_add_fetch(&refused, 1, __ATOMIC_RELAXED);
		return reply_static(c, MHD_HTTP_NOT_FOUND, "not found: pyleakd serves /metrics\n");
	}
	r = reader_new();
	if (!r)
		return reply_static(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no metrics yet\n");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	__atomic_add_fetch(&scrapes, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&scraped, true, __ATOMIC_RELEASE);
	return ret;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	const union MHD_ConnectionInfo *info;
	int size = SEND_BUFFER;

	(void)cls, (void)socket_ctx;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		__atomic_add_fetch(&connections, 1, __ATOMIC_RELAXED);
		info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (info)
			setsockopt(info->connect_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	} else
		__atomic_sub_fetch(&connections, 1, __ATOMIC_RELAXED);
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("metrics: %s", msg);
}

int metrics_http_start(const char *listen)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	socklen_t len;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

	if (metrics_listen_parse(listen, &ss, &len)) {
		log_error("metrics_listen %s: expected IPv4:PORT or [IPv6]:PORT", listen);
		return -EINVAL;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	httpd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
				 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				 MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_HTTP_CONNECTIONS,
				 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)METRICS_HTTP_TIMEOUT_S,
				 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
				 MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)METRICS_HTTP_CONNECTIONS,
				 MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
				 MHD_OPTION_EXTERNAL_LOGGER, on_log, NULL,
				 MHD_OPTION_END);
	if (!httpd) {
		log_error("metrics_listen %s: cannot listen (address in use or not local?)", listen);
		return -EADDRNOTAVAIL;
	}
	snprintf(listen_addr, sizeof(listen_addr), "%s", listen);
	info = MHD_get_daemon_info(httpd, MHD_DAEMON_INFO_BIND_PORT);
	listen_port = info ? info->port : 0;
	log_info("metrics on http://%s/metrics (port %u)", listen, listen_port);
	return 0;
}

void metrics_http_stop(void)
{
	if (httpd)
		MHD_stop_daemon(httpd);
	httpd = NULL;
	/* the server's thread is gone: no connection holds the snapshot any more */
	snapshot_put(current);
	current = NULL;
}

uint64_t metrics_http_scrapes(void)
{
	return __atomic_load_n(&scrapes, __ATOMIC_RELAXED);
}

bool metrics_http_scraped(void)
{
	return __atomic_exchange_n(&scraped, false, __ATOMIC_ACQ_REL);
}

json_t *metrics_http_status_json(void)
{
	json_int_t pinned_now, cut_now;

	if (!httpd)
		return NULL;
	pthread_mutex_lock(&lock);
	pinned_now = pinned;
	cut_now = cut;
	pthread_mutex_unlock(&lock);
	return json_pack("{s:s, s:i, s:I, s:I, s:I, s:i, s:i, s:i, s:I, s:I, s:I}",
		"listen", listen_addr, "port", listen_port,
		"connections", (json_int_t)__atomic_load_n(&connections, __ATOMIC_RELAXED),
		"scrapes", (json_int_t)metrics_http_scrapes(),
		"requests_refused", (json_int_t)__atomic_load_n(&refused, __ATOMIC_RELAXED),
		"max_connections", METRICS_HTTP_CONNECTIONS, "timeout_s", METRICS_HTTP_TIMEOUT_S,
		"deadline_s", METRICS_HTTP_DEADLINE_S, "pinned_bytes", pinned_now,
		"pinned_max_bytes", (json_int_t)METRICS_HTTP_PINNED_MAX, "responses_cut", cut_now);
}
