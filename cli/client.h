/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The connection to pyleakd: a JSON request line, a JSON reply line (docs/protocol.md).
 * Nothing here prints: a failed call says why in a struct client_error, for the caller to report.
 */
#ifndef PYLEAKCTL_CLIENT_H
#define PYLEAKCTL_CLIENT_H

#include <jansson.h>
#include <signal.h>

struct client;

/* Why a call failed: the code and message of the error document to report. */
struct client_error {
	const char *code;
	char message[1024];
};

/* Connects to the daemon's socket at path; 0 or a negative errno. */
int client_open(const char *path, struct client **out, struct client_error *e);
void client_close(struct client *c);

/*
 * The signal mask to wait for a reply with, or NULL for the caller's: top's refresh loop lets
 * its stop signals through only while waiting, so that none is lost between two checks.
 */
void client_waitmask_set(struct client *c, const sigset_t *waitmask);

/* Called once a second while a reply is awaited, with the seconds waited (a progress line for
 * a slow attach or census); NULL: none. */
typedef void (*client_wait_fn)(void *ctx, unsigned int seconds);
void client_wait_fn_set(struct client *c, client_wait_fn fn, void *ctx);

/*
 * One request, one reply: *reply is a JSON object, which may be the daemon's error document.
 * -EINTR (with nothing in e) when a signal ended the wait.
 */
int client_request(struct client *c, json_t *req, json_t **reply, struct client_error *e);

#endif
