// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Sparklines of the live counts per type (spark.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "spark.h"

static struct spark *spark_find(const struct sparks *s, const char *type)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].type, type))
			return &s->v[i];
	return NULL;
}

static struct spark *spark_add(struct sparks *s, const char *type)
{
	struct spark *sp;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 32;

		sp = reallocarray(s->v, cap, sizeof(*sp));
		if (!sp)
			return NULL;
		s->v = sp;
		s->cap = cap;
	}
	sp = &s->v[s->n];
	*sp = (struct spark){ .type = strdup(type) };
	if (!sp->type)
		return NULL;
	s->n++;
	return sp;
}

int sparks_record(struct sparks *s, json_t *types)
{
	const char *type;
	struct spark *sp;
	json_t *row;
	size_t i;

	json_array_foreach(types, i, row) {
		type = json_string_value(json_object_get(row, "type"));
		if (!type)
			continue;
		sp = spark_find(s, type);
		if (!sp)
			sp = spark_add(s, type);
		if (!sp)
			return -ENOMEM;
		sp->live[sp->n++ % SPARK_LEN] = json_integer_value(json_object_get(row, "live"));
	}
	return 0;
}

const char *sparks_text(const struct sparks *s, const char *type, bool utf8, char *buf)
{
	static const char *const blocks[] = { "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" };
	static const char ascii[] = "_.,-=+*#";
	const struct spark *sp = spark_find(s, type);
	size_t count, first, i, level;
	long long lo, hi, v, range;
	char *p = buf;

	*buf = '\0';
	if (!sp)
		return buf;
	count = sp->n < SPARK_LEN ? sp->n : SPARK_LEN;
	first = sp->n - count;
	lo = hi = sp->live[first % SPARK_LEN];
	for (i = first; i < sp->n; i++) {
		v = sp->live[i % SPARK_LEN];
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	/* At least 1% of the peak: a steady count's jitter stays flat instead of filling the
	 * height. */
	range = hi - lo > hi / 100 ? hi - lo : hi / 100;
	for (i = first; i < sp->n; i++) {
		v = sp->live[i % SPARK_LEN];
		level = range ? (size_t)((v - lo) * (long long)(ARRAY_SIZE(blocks) - 1) / range) : 0;
		if (utf8)
			p = stpcpy(p, blocks[level]);
		else
			*p++ = ascii[level];
	}
	*p = '\0';
	return buf;
}

void sparks_free(struct sparks *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i].type);
	free(s->v);
}
