// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum log_level log_threshold = LOG_LEVEL_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_parse_level(const char *s)
{
	int i;

	for (i = 0; i <= LOG_LEVEL_DEBUG; i++)
		if (!strcmp(s, level_names[i]))
			return i;
	return -1;
}

/*
 * Messages carry strings a target controls (type names, paths): control characters are
 * escaped, so that a newline cannot forge a journal line nor an escape sequence a terminal,
 * and so is the backslash, so that an escape cannot be forged either.
 */
void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[2048], out[4 * sizeof(msg)], *o = out;
	const unsigned char *p;
	va_list ap;

	if (level > log_threshold)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (p = (const unsigned char *)msg; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			o += sprintf(o, "\\x%02x", *p);
		else
			*o++ = (char)*p;
	}
	*o = '\0';
	/* Under systemd, "<N>" prefixes are read by journald as the syslog priority. */
	if (getenv("JOURNAL_STREAM"))
		fprintf(stderr, "<%d>", level == LOG_LEVEL_ERROR ? 3 : level == LOG_LEVEL_WARN ? 4 :
			level == LOG_LEVEL_INFO ? 6 : 7);
	fprintf(stderr, "pyleakd: %s: %s\n", level_names[level], out);
}
