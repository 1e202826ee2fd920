/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* The Unix socket: peer credentials, bounded line reads, request -> handler -> JSON reply. */
#ifndef PYLEAK_SERVER_H
#define PYLEAK_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "discovery.h"
#include "metrics.h"
#include "target.h"

struct server_options {
	const char *path;
	gid_t group;		/* members may use the socket too */
	bool has_group;
	const char *state_dir;	/* postmortem reports (postmortem.h) */
	struct target_options target;
	struct discovery_options discovery;	/* watch rules and the host-wide budget */
	struct metrics_options metrics;
};

int server_start(const struct server_options *opt);
void server_stop(void);

#endif
