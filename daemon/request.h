/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * A client's request line parsed and checked (docs/protocol.md), apart from its execution: no
 * process is looked at here, so anything a client can send can be tried on it alone.
 */
#ifndef PYLEAK_REQUEST_H
#define PYLEAK_REQUEST_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "target.h"
#include "view.h"

enum request_cmd {
	REQUEST_STATUS,
	REQUEST_PS,
	REQUEST_ATTACH,
	REQUEST_DETACH,
	REQUEST_TOP,
	REQUEST_LEAKS,
	REQUEST_SITES,
	REQUEST_POSTMORTEM,
	REQUEST_PATH,
	REQUEST_NATIVE,
};

struct request {
	enum request_cmd cmd;
	pid_t pid;			/* every command but status and ps; postmortem: 0 lists */
	long n;				/* top, leaks, sites: rows (0: all) */
	enum view_sort sort;		/* top */
	double interval;		/* top: seconds of the growth column (0: one sample) */
	long history;			/* top: seconds of each row's history to include (0: none) */
	long window;			/* leaks: seconds */
	const char *type;		/* sites, path: a type name, valid until request_release() */
	/* attach, and top, leaks, sites when they attach: given, else the daemon's */
	bool has_mode, has_budget;
	enum target_mode mode;
	double budget;
	bool force;			/* precise mode stays over budget */
	json_t *doc;			/* the parsed line, which type points into */
	char error[512];		/* why it is a bad_request */
};

/* Parses one request line; 0, or -EINVAL with req->error set (the message of a bad_request
 * reply). request_release() frees it either way. */
int request_parse(const char *line, struct request *req);
void request_release(struct request *req);

#endif
