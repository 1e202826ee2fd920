// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: a client's request line, through jansson's parser and the checks of every
 * command. Whatever the line, request_parse() must not crash, leak or accept a field outside
 * its documented range; it never acts on a process, so nothing here can.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

static void request_check(const struct request *req)
{
	switch (req->cmd) {
	case REQUEST_STATUS:
	case REQUEST_PS:
		return;
	case REQUEST_ATTACH:
		if (req->has_budget && !(req->budget >= 0 && req->budget <= 1))
			abort();
		break;
	case REQUEST_TOP:
		if (req->n < 0 || req->n > 100000 || !(req->interval >= 0 && req->interval <= 86400))
			abort();
		break;
	case REQUEST_LEAKS:
		if (req->n < 0 || req->n > 100000 || req->window < 1 || req->window > 86400)
			abort();
		break;
	case REQUEST_SITES:
		if (!req->type || !*req->type || req->n < 0 || req->n > 100000)
			abort();
		break;
	case REQUEST_PATH:
		if (!req->type || !*req->type)
			abort();
		break;
	case REQUEST_DETACH:
	case REQUEST_NATIVE:
		break;
	case REQUEST_POSTMORTEM:
		/* no pid: the list */
		if (req->pid < 0)
			abort();
		return;
	default:
		abort();
	}
	if (req->pid <= 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request req;
	char *line;

	/* The server hands over one NUL-terminated line. */
	line = malloc(size + 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	if (request_parse(line, &req)) {
		if (!req.error[0] || strlen(req.error) >= sizeof(req.error))
			abort();
	} else {
		request_check(&req);
	}
	request_release(&req);
	free(line);
	return 0;
}
