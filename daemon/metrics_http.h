/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Serving /metrics over HTTP (libmicrohttpd, in its own thread): it only ever sees the latest
 * snapshot the loop published, an immutable text shared by reference, so that no scraper
 * touches the daemon's state or makes its loop wait.
 */
#ifndef PYLEAK_METRICS_HTTP_H
#define PYLEAK_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

/* Connections served at once (more wait in the backlog, then are refused), and the seconds a
 * connection may stay idle (a scraper that reads nothing is cut off). */
#define METRICS_HTTP_CONNECTIONS	16
#define METRICS_HTTP_TIMEOUT_S		10
/* A response is cut off this long after it started, however it reads (the idle timeout does
 * not end a reader taking a byte at a time): its snapshot is let go at once. */
#define METRICS_HTTP_DEADLINE_S		60
/* Bytes of older snapshots that responses may keep (the latest is always served): past it the
 * oldest responses are cut off. */
#define METRICS_HTTP_PINNED_MAX		(16u << 20)

/* Parses "IPv4:PORT" or "[IPv6]:PORT" (numeric: no name is looked up; PORT 0: any free one)
 * into *ss and *len; 0 or -EINVAL. */
int metrics_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* Listens on listen ("HOST:PORT"); 0, -EINVAL (bad address) or -EADDRNOTAVAIL (no listener:
 * address in use, not local...), logged. */
int metrics_http_start(const char *listen);
void metrics_http_stop(void);
/* Replaces the text served with text (len bytes, malloc'ed: taken over); cuts off the
 * responses past their deadline, and the oldest past METRICS_HTTP_PINNED_MAX. */
void metrics_http_publish(char *text, size_t len);
/* Scrapes answered with the text so far. */
uint64_t metrics_http_scrapes(void);
/* Whether a scrape was answered since the last call (then the loop renders a new text). */
bool metrics_http_scraped(void);
/* {"listen", "port", "connections", "scrapes", "requests_refused", "pinned_bytes",
 * "responses_cut", ...}; NULL when not serving. */
json_t *metrics_http_status_json(void);

#endif
