/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * top on the full screen (ncurses): the types with their trend and leak score, the allocation
 * sites of one, the leak suspects; keys change the order and the view. screen.c runs it (the
 * terminal, the keys, the requests), screen_draw.c draws the views.
 */
#ifndef PYLEAKCTL_SCREEN_H
#define PYLEAKCTL_SCREEN_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>

#include "args.h"
#include "client.h"
#include "spark.h"

enum view {
	VIEW_TYPES,
	VIEW_SITES,
	VIEW_LEAKS,
};

struct screen {
	const struct opts *o;
	struct client *c;
	json_t *top_req;	/* its "sort" follows the keys */
	json_t *top;		/* the latest replies, NULL until one came */
	json_t *leaks;
	json_t *target;		/* this target's entry in the latest status */
	json_t *sites;		/* of type, while the sites view shows them */
	struct sparks sparks;
	enum view view;
	int sort;		/* index into sorts[] */
	char *type;		/* the selected type, which stays selected across refreshes */
	int move;		/* rows to move the selection (or scroll a list) by at the next draw */
	size_t scroll;		/* first row or line shown of the view's list */
	bool paused;
	bool utf8;		/* the locale's; else ASCII sparklines and marks */
	char message[1024];	/* the last request that failed, shown until the next refresh */
};

/* Until q, Ctrl-C or SIGTERM (0), or a failure (reported); restores the terminal on each. */
int screen_run(const struct opts *o, struct client *c, json_t *req, const sigset_t *waitmask);

/* Draws the current view on stdscr; 0 or -ENOMEM. */
int screen_draw(struct screen *s);

#endif
