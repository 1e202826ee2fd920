// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Text on a terminal (term.h). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "term.h"

/* Columns of the first len bytes of s. */
static size_t span_width(const char *s, size_t len)
{
	size_t n = 0, i;

	for (i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

size_t text_width(const char *s)
{
	return span_width(s, strlen(s));
}

size_t text_fit(const char *s, size_t cols)
{
	size_t i = 0;

	for (; s[i]; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80 && cols-- == 0)
			break;
	return i;
}

size_t term_columns(int fd)
{
	const char *env = getenv("COLUMNS");
	struct winsize ws;
	char *end;
	long v;

	if (env && *env >= '0' && *env <= '9') {
		v = strtol(env, &end, 10);
		if (!*end && v > 0 && v < 100000)
			return (size_t)v;
	}
	if (!ioctl(fd, TIOCGWINSZ, &ws) && ws.ws_col)
		return ws.ws_col;
	return TERM_COLUMNS_DEFAULT;
}

void text_wrap_print(FILE *out, const char *prefix, const char *text, size_t width)
{
	size_t indent = text_width(prefix), col = indent, gap, n;
	const char *s = text + strspn(text, " ");

	fputs(prefix, out);
	while (*s) {
		n = strcspn(s, " ");
		gap = strspn(s + n, " ");
		fwrite(s, 1, n, out);
		col += span_width(s, n);
		s += n + gap;
		if (!*s)
			break;
		/* The spaces between two words on a line stay as they were; a break eats them. */
		n = strcspn(s, " ");
		if (col + gap + span_width(s, n) > width) {
			fprintf(out, "\n%*s", (int)indent, "");
			col = indent;
		} else {
			fprintf(out, "%*s", (int)gap, "");
			col += gap;
		}
	}
	putc('\n', out);
}
