/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Serving /metrics over HTTP (libmicrohttpd, in its own thread): it only ever sees the latest
 * snapshot the loop published, an immutable text shared by reference, so that no scraper
 * touches the daemon's state or makes its loop wait.
 */
#ifndef PYLEAK_METRICS_HTTP_H
#define PYLEAK_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

/* Connections served at once (more wait in the backlog, then are refused), and the seconds a
 * connection may stay idle (a scraper that reads nothing is cut off). */
#define METRICS_HTTP_CONNECTIONS	16
#define METRICS_HTTP_TIMEOUT_S		10

/* Parses "IPv4:PORT" or "[IPv6]:PORT" (numeric: no name is looked up; PORT 0: any free one)
 * into *ss and *len; 0 or -EINVAL. */
int metrics_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* Listens on listen ("HOST:PORT"); 0, -EINVAL (bad address) or -EADDRNOTAVAIL (no listener:
 * address in use, not local...), logged. */
int metrics_http_start(const char *listen);
void metrics_http_stop(void);
/* Replaces the text served with text (len bytes, malloc'ed: taken over). */
void metrics_http_publish(char *text, size_t len);
/* Scrapes answered with the text so far. */
uint64_t metrics_http_scrapes(void);
/* {"listen", "port", "connections", "scrapes", "requests_refused"}; NULL when not serving. */
json_t *metrics_http_status_json(void);

#endif
