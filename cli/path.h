/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* path: the retention paths of a type's objects, asked for until the daemon's walk is complete. */
#ifndef PYLEAKCTL_PATH_H
#define PYLEAKCTL_PATH_H

#include "args.h"
#include "client.h"

/* The command's run: requests until the reply's walk is complete (or PATH_WAIT_S), then shows it. */
int path_run(const struct opts *o, struct client *c);

#endif
