/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * top's refresh loop: a new reply every --interval until Ctrl-C or SIGTERM, shown on the full
 * screen (screen.h) on a terminal, else as one table after the other.
 */
#ifndef PYLEAKCTL_WATCH_H
#define PYLEAKCTL_WATCH_H

#include <jansson.h>
#include <signal.h>

#include "args.h"
#include "client.h"

/* Sends req on c, shows each reply; a stop signal ends it with success. */
int top_watch(const struct opts *o, struct client *c, json_t *req);

/*
 * Waits up to seconds for fd (-1: none) to be readable, letting waitmask's signals through:
 * 1 readable, 0 on time out or another signal, -EINTR on a stop signal.
 */
int watch_wait(int fd, double seconds, const sigset_t *waitmask);

#endif
