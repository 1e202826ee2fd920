/* SPDX-License-Identifier: MIT */
/* top's refresh loop: a new table every --interval until Ctrl-C or SIGTERM. */
#ifndef PYLEAKCTL_WATCH_H
#define PYLEAKCTL_WATCH_H

#include <jansson.h>

#include "args.h"
#include "client.h"

/* Sends req on c, shows each reply; a stop signal ends it with success. */
int top_watch(const struct opts *o, struct client *c, json_t *req);

#endif
