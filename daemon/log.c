// SPDX-License-Identifier: MIT
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

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_threshold)
		return;
	/* Under systemd, "<N>" prefixes are read by journald as the syslog priority. */
	if (getenv("JOURNAL_STREAM"))
		fprintf(stderr, "<%d>", level == LOG_LEVEL_ERROR ? 3 : level == LOG_LEVEL_WARN ? 4 :
			level == LOG_LEVEL_INFO ? 6 : 7);
	fprintf(stderr, "pyleakd: %s: ", level_names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
