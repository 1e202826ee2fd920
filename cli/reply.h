/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* A command's reply: getting it, and showing it as text or, with --json, as the document. */
#ifndef PYLEAKCTL_REPLY_H
#define PYLEAKCTL_REPLY_H

#include <jansson.h>
#include <stdio.h>

#include "args.h"
#include "client.h"

/*
 * One request, one reply: an object without "error", or a reported failure (the daemon's own
 * error document with --json). -EINTR, reported by no one, when a stop signal ended the wait.
 */
int reply_get(const struct opts *o, struct client *c, json_t *req, json_t **reply);

/* The reply on out: with --json as the daemon sent it, else by the command's renderer. */
int reply_print(const struct opts *o, FILE *out, json_t *reply);

/* The reply on stdout or, with -o, in that file, created only once there is a reply. */
int reply_output(const struct opts *o, json_t *reply);

#endif
