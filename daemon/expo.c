// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expo.h"
#include "text.h"

/* A sample line's bytes at most: name, EXPO_LABELS_MAX escaped values and their names. */
#define LINE_MAX (EXPO_LABELS_MAX * (2 * EXPO_LABEL_MAX + 64) + 256)

void expo_init(struct expo *e, size_t limit)
{
	*e = (struct expo){ .limit = limit };
}

void expo_free(struct expo *e)
{
	free(e->buf);
	expo_init(e, e->limit);
}

char *expo_take(struct expo *e)
{
	char *s = e->buf;

	e->buf = NULL;
	e->len = e->cap = 0;
	return s;
}

void expo_label(struct expo_labels *l, const char *name, const char *value)
{
	if (l->n >= EXPO_LABELS_MAX)
		return;
	l->name[l->n] = name;
	l->value[l->n] = value;
	l->n++;
}

/* Appends line (n bytes) whole, or nothing: 0 or -ENOSPC. */
static int append(struct expo *e, const char *line, size_t n)
{
	size_t cap;
	char *p;

	if (e->len + n > e->limit) {
		e->dropped++;
		return -ENOSPC;
	}
	if (e->len + n + 1 > e->cap) {
		cap = e->cap ? e->cap : 4096;
		while (cap < e->len + n + 1)
			cap *= 2;
		p = realloc(e->buf, cap);
		if (!p) {
			e->dropped++;
			return -ENOSPC;
		}
		e->buf = p;
		e->cap = cap;
	}
	memcpy(e->buf + e->len, line, n);
	e->len += n;
	e->buf[e->len] = '\0';
	return 0;
}

size_t expo_escape(const char *s, char *out)
{
	char raw[EXPO_LABEL_MAX + 1];
	size_t i, n = 0;

	/* Cut first: a cut inside a UTF-8 sequence then becomes '?' too. */
	snprintf(raw, sizeof(raw), "%s", s ? s : "");
	text_utf8_fix(raw);
	for (i = 0; raw[i]; i++) {
		switch (raw[i]) {
		case '\\':
		case '"':
			out[n++] = '\\';
			out[n++] = raw[i];
			break;
		case '\n':
			out[n++] = '\\';
			out[n++] = 'n';
			break;
		default:
			out[n++] = raw[i];
		}
	}
	out[n] = '\0';
	return n;
}

void expo_family(struct expo *e, const char *name, const char *type, const char *help)
{
	char line[1024];
	int n;

	/* names, types and help are the daemon's own constants: nothing to escape */
	n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	if (n > 0 && (size_t)n < sizeof(line))
		append(e, line, n);
}

/* The value as the format writes it: integers in full, NaN and infinities by name. */
static int value_format(double v, char *buf, size_t len)
{
	if (isnan(v))
		return snprintf(buf, len, "NaN");
	if (isinf(v))
		return snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		return snprintf(buf, len, "%.0f", v);
	return snprintf(buf, len, "%.10g", v);
}

int expo_sample(struct expo *e, const char *name, const struct expo_labels *l, double value)
{
	char line[LINE_MAX];
	size_t n;
	int i;

	n = snprintf(line, sizeof(line), "%s", name);
	for (i = 0; l && i < l->n && n < sizeof(line) - 2 * EXPO_LABEL_MAX - 128; i++) {
		n += snprintf(line + n, sizeof(line) - n, "%s%s=\"", i ? "," : "{", l->name[i]);
		n += expo_escape(l->value[i], line + n);
		line[n++] = '"';
	}
	if (l && l->n)
		line[n++] = '}';
	line[n++] = ' ';
	n += value_format(value, line + n, sizeof(line) - n - 1);
	line[n++] = '\n';
	return append(e, line, n);
}
