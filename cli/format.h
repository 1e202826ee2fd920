/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Values of a reply as text: numbers, sizes, durations, times, frames; control characters out. */
#ifndef PYLEAKCTL_FORMAT_H
#define PYLEAKCTL_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#define CELL_MAX		48	/* room for any number, size, duration or date we format */

static inline json_t *field(json_t *obj, const char *key)
{
	return json_object_get(obj, key);
}

/* A document as --json shows it: indented, then a newline. */
void json_print(FILE *out, json_t *doc);

/* Control characters would break "one line on stderr" and could drive the terminal. */
void text_put(FILE *out, const char *s);

/*
 * Strings in a reply come partly from the traced process (type names, paths): replace control
 * characters before they reach a terminal. Tables also rely on it: a tab separates their cells.
 */
int json_sanitize(json_t *v);

/*
 * Each *_text() returns the text of v, written to buf (CELL_MAX bytes) or constant; a value
 * that is not of the kind expected is shown as value_text() shows it.
 */

/* A value as a cell: numbers exact (reals to two places), a list as its length, "-" if missing. */
const char *value_text(json_t *v, char *buf);

/* Scalars as in a cell; lists and objects as compact JSON, there being room on a line. */
void value_print(FILE *out, json_t *v);

/* A number with its sign, + included. */
const char *signed_text(json_t *v, char *buf);

/* Sizes in binary units (12.3M); unit is the size of one counted thing (1024 for KiB fields). */
const char *bytes_text(json_t *v, double unit, char *buf);

/* Seconds as 42s, 3m07s, 5h02m or 2d03h. */
const char *duration_text(json_t *v, char *buf);

/* Two decimals and suffix. */
const char *decimal_text(json_t *v, const char *suffix, char *buf);

/* A fraction as a whole percentage. */
const char *percent_text(json_t *v, char *buf);

/* Local time of an epoch timestamp, or of now when the reply has none. */
const char *time_text(json_t *v, char *buf);

/* The printable parts of a site or stack frame object. */
struct frame_text {
	const char *function;
	const char *file;
	const char *line;
	char buf[3][CELL_MAX];
};

#define FRAME_FMT		"%s (%s:%s)"
#define FRAME_ARGS(ft)		(ft).function, (ft).file, (ft).line

void frame_text_get(struct frame_text *ft, json_t *frame);

#endif
