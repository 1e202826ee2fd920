/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Tables of text: a row of heads, then rows whose cells are padded to the widest in each
 * column, and lines of detail under a row. A table lives on its user's stack (TABLE_INIT).
 */
#ifndef PYLEAKCTL_TABLE_H
#define PYLEAKCTL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common.h"

#define TABLE_COLS_MAX		8
#define COL(i)			(1u << (i))

struct table_row {
	char *text;				/* owns the cells, split at tabs */
	const char *cell[TABLE_COLS_MAX];
	bool line;				/* detail under a row, from the second column on */
};

struct table {
	const char *const *heads;
	size_t ncols;
	unsigned int right;			/* COL(i): column i holds numbers, aligned right */
	struct table_row *rows;
	size_t nrows;
	size_t cap;
};

#define TABLE_INIT(h, r)	{ .heads = (h), .ncols = ARRAY_SIZE(h), .right = (r) }

/* Adds a row whose cells fmt separates with tabs. */
int __attribute__((format(printf, 2, 3))) table_add(struct table *t, const char *fmt, ...);

/* Adds a line of detail under the last row, not aligned in columns. */
int __attribute__((format(printf, 2, 3))) table_add_line(struct table *t, const char *fmt, ...);

void table_print(const struct table *t, FILE *out);
void table_free(struct table *t);

#endif
