// SPDX-License-Identifier: MIT
/* Failure reports (failure.h). */
#include <stdarg.h>
#include <stdio.h>

#include "failure.h"
#include "format.h"

void failure_print(bool json, json_t *doc, const char *message)
{
	fputs("pyleakctl: ", stderr);
	text_put(stderr, message);
	putc('\n', stderr);
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
