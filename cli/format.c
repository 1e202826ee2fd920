// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Formatting of reply values for tables and lines of text (format.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format.h"

void json_print(FILE *out, json_t *doc)
{
	json_dumpf(doc, out, JSON_INDENT(2));
	putc('\n', out);
}

/* Bytes of the control character at s (C0, DEL, or a C1 one: U+0080-U+009F, which some
 * terminals obey as escape sequences), 0 if none: what a name from a target must not send to
 * a terminal. */
static size_t control_len(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	if (u[0] < 0x20 || u[0] == 0x7f)
		return 1;
	return u[0] == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f ? 2 : 0;
}

void text_put(FILE *out, const char *s)
{
	size_t n;

	while (*s) {
		n = control_len(s);
		putc(n ? '?' : *s, out);
		s += n ? n : 1;
	}
}

static bool real_is_whole(double x)
{
	return x > -1e15 && x < 1e15 && x == (double)(long long)x;
}

static void number_format(json_t *v, bool sign, char *buf)
{
	double x;

	if (json_is_integer(v)) {
		snprintf(buf, CELL_MAX, sign ? "%+" JSON_INTEGER_FORMAT : "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return;
	}
	x = json_real_value(v);
	snprintf(buf, CELL_MAX, sign ? "%+.*f" : "%.*f", real_is_whole(x) ? 0 : 2, x);
}

const char *value_text(json_t *v, char *buf)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_boolean(v))
		return json_is_true(v) ? "yes" : "no";
	if (json_is_number(v))
		number_format(v, false, buf);
	else if (json_is_array(v))
		snprintf(buf, CELL_MAX, "%zu", json_array_size(v));
	else
		return json_is_object(v) ? "{...}" : "-";
	return buf;
}

void value_print(FILE *out, json_t *v)
{
	char b[CELL_MAX];

	if (json_is_array(v) || json_is_object(v))
		json_dumpf(v, out, JSON_COMPACT);
	else
		fputs(value_text(v, b), out);
}

const char *signed_text(json_t *v, char *buf)
{
	if (!json_is_number(v))
		return value_text(v, buf);
	number_format(v, true, buf);
	return buf;
}

const char *bytes_text(json_t *v, double unit, char *buf)
{
	static const char units[] = "KMGTPE";
	double x;
	int i;

	if (!json_is_number(v))
		return value_text(v, buf);
	x = json_number_value(v) * unit;
	for (i = -1; (x >= 1024 || x <= -1024) && i + 1 < (int)sizeof(units) - 1; i++)
		x /= 1024;
	if (i < 0)
		snprintf(buf, CELL_MAX, "%.0f", x);
	else
		snprintf(buf, CELL_MAX, "%.1f%c", x, units[i]);
	return buf;
}

const char *duration_text(json_t *v, char *buf)
{
	double x = json_number_value(v);
	long long s;

	/* Out of range would overflow the conversion: show the raw value instead. */
	if (!json_is_number(v) || !(x >= 0 && x < 1e12))
		return value_text(v, buf);
	s = (long long)x;
	if (s < 60)
		snprintf(buf, CELL_MAX, "%llds", s);
	else if (s < 3600)
		snprintf(buf, CELL_MAX, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, CELL_MAX, "%lldh%02lldm", s / 3600, s / 60 % 60);
	else
		snprintf(buf, CELL_MAX, "%lldd%02lldh", s / 86400, s / 3600 % 24);
	return buf;
}

const char *decimal_text(json_t *v, const char *suffix, char *buf)
{
	if (!json_is_number(v))
		return value_text(v, buf);
	snprintf(buf, CELL_MAX, "%.2f%s", json_number_value(v), suffix);
	return buf;
}

const char *percent_text(json_t *v, char *buf)
{
	if (!json_is_number(v))
		return value_text(v, buf);
	snprintf(buf, CELL_MAX, "%.0f%%", json_number_value(v) * 100);
	return buf;
}

const char *time_text(json_t *v, char *buf)
{
	double x = json_number_value(v);
	time_t t = json_is_number(v) && x > -1e15 && x < 1e15 ? (time_t)x : time(NULL);
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, CELL_MAX, "%Y-%m-%d %H:%M:%S", &tm))
		return "-";
	return buf;
}

void frame_text_get(struct frame_text *ft, json_t *frame)
{
	ft->function = value_text(field(frame, "function"), ft->buf[0]);
	ft->file = value_text(field(frame, "file"), ft->buf[1]);
	ft->line = value_text(field(frame, "line"), ft->buf[2]);
}

static int string_sanitize(json_t *s)
{
	const char *text = json_string_value(s);
	size_t len = json_string_length(s), i, j, n;
	char *copy;
	int err;

	for (i = 0; i < len && !control_len(text + i); i++)
		;
	if (i == len)
		return 0;
	copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, i);
	for (j = i; i < len; i += n ? n : 1) {
		n = control_len(text + i);
		copy[j++] = n ? '?' : text[i];
	}
	err = json_string_setn_nocheck(s, copy, j) ? -ENOMEM : 0;
	free(copy);
	return err;
}

int json_sanitize(json_t *v)
{
	const char *key;
	json_t *item;
	size_t i;
	int err = 0;

	if (json_is_string(v))
		return string_sanitize(v);
	json_object_foreach(v, key, item) {
		err = json_sanitize(item);
		if (err)
			return err;
	}
	json_array_foreach(v, i, item) {
		err = json_sanitize(item);
		if (err)
			return err;
	}
	return 0;
}
