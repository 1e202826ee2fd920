// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Failure reports (failure.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "failure.h"
#include "format.h"

/*
 * What to do about a failure, by its code and, where one code has several causes, a word of
 * its message; the first match wins, so a code's catch-all (cause NULL) comes last.
 */
static const struct {
	const char *code;
	const char *cause;
	const char *hint;
} hints[] = {
	{ "no_daemon", NULL,
	  "start it with `systemctl start pyleakd` or `sudo pyleakd`, or give its socket with "
	  "--socket or $PYLEAKD_SOCKET" },
	{ "permission_denied", "pid ",
	  "a member of pyleakd's group may only inspect processes of its own user: run as root "
	  "or as the process's user" },
	{ "permission_denied", NULL,
	  "run as root (sudo pyleakctl ...) or ask for membership of pyleakd's group "
	  "(pyleakd --group, or group= in pyleakd.conf)" },
	{ "not_python", NULL, "`pyleakctl ps` lists the Python processes" },
	{ "unsupported_python", "allocation sites",
	  "`pyleakctl top` and `pyleakctl leaks` still work for it" },
	{ "unsupported_python", NULL,
	  "pyleak supports CPython 3.8 to 3.13 on x86-64, not free-threaded builds nor "
	  "PYTHONMALLOC=malloc" },
	{ "no_such_process", "while tracked",
	  "the process has ended; `pyleakctl detach -p PID` frees what pyleakd kept of it" },
	{ "no_such_process", NULL, "`pyleakctl ps` lists the running Python processes" },
	{ "not_attached", NULL, "`pyleakctl status` lists the tracked processes" },
	{ "busy", "max_targets",
	  "detach a process (`pyleakctl status` lists them) or raise max_targets in pyleakd.conf" },
	{ "busy", "file descriptors",
	  "detach a process, or raise pyleakd's file limit (LimitNOFILE= in its unit)" },
	{ "busy", NULL, "wait a moment and try again; fewer pyleakctl commands at once help" },
	{ "bad_request", "not a pyleak snapshot", "make one with `pyleakctl snapshot -p PID -o FILE`" },
};

static const char *hint_find(const char *code, const char *message)
{
	size_t i;

	for (i = 0; code && i < ARRAY_SIZE(hints); i++)
		if (!strcmp(hints[i].code, code) &&
		    (!hints[i].cause || strstr(message, hints[i].cause)))
			return hints[i].hint;
	return NULL;
}

void failure_print(bool json, json_t *doc, const char *message)
{
	json_t *error = json_object_get(doc, "error");
	const char *hint = hint_find(json_string_value(json_object_get(error, "code")), message);

	/* The hint shares the cause's line: a failure is one line on stderr. */
	fputs("pyleakctl: ", stderr);
	text_put(stderr, message);
	if (hint)
		fprintf(stderr, " — %s", hint);
	putc('\n', stderr);
	if (hint)
		json_object_set_new(error, "hint", json_string(hint));
	if (json && doc)
		json_print(stdout, doc);
}

static json_t *error_doc(const char *code, const char *message)
{
	return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
}

int fail(bool json, int err, const char *code, const char *fmt, ...)
{
	char message[1024];
	json_t *doc;
	va_list ap;
	char *p;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	doc = error_doc(code, message);
	if (!doc) {
		/* Arguments may be any bytes; keep the ASCII so the document can still be made. */
		for (p = message; *p; p++)
			if (*p & 0x80)
				*p = '?';
		doc = error_doc(code, message);
	}
	failure_print(json, doc, message);
	json_decref(doc);
	return err;
}
