/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* The recent live counts of each type, kept across top's replies, and their sparklines. */
#ifndef PYLEAKCTL_SPARK_H
#define PYLEAKCTL_SPARK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define SPARK_LEN		12	/* values drawn per type */
#define SPARK_TEXT_MAX		(SPARK_LEN * 3 + 1)	/* a UTF-8 block is 3 bytes */

struct spark {
	char *type;
	long long live[SPARK_LEN];	/* a ring: the newest at (n - 1) % SPARK_LEN */
	size_t n;			/* values recorded */
};

struct sparks {
	struct spark *v;
	size_t n, cap;
};

/* Appends the live count of each row of a top reply's types to its type's history. */
int sparks_record(struct sparks *s, json_t *types);

/* The history of type as ▁▂▃▄▅▆▇█ (ASCII unless utf8), oldest first; "" if none. */
const char *sparks_text(const struct sparks *s, const char *type, bool utf8, char *buf);

void sparks_free(struct sparks *s);

#endif
