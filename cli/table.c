// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Tables of text (table.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"
#include "term.h"

static int table_vadd(struct table *t, bool line, const char *fmt, va_list ap)
{
	struct table_row *row;
	size_t i;
	char *tab;

	if (t->nrows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;

		row = reallocarray(t->rows, cap, sizeof(*row));
		if (!row)
			return -ENOMEM;
		t->rows = row;
		t->cap = cap;
	}
	row = &t->rows[t->nrows];
	if (vasprintf(&row->text, fmt, ap) < 0)
		return -ENOMEM;
	row->line = line;
	row->cell[0] = row->text;
	for (i = 1; !line && i < t->ncols; i++) {
		tab = strchr(row->cell[i - 1], '\t');
		if (tab)
			*tab++ = '\0';
		row->cell[i] = tab ? tab : "";
	}
	t->nrows++;
	return 0;
}

int table_add(struct table *t, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = table_vadd(t, false, fmt, ap);
	va_end(ap);
	return err;
}

int table_add_line(struct table *t, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = table_vadd(t, true, fmt, ap);
	va_end(ap);
	return err;
}

static void table_cells_print(const struct table *t, FILE *out, const char *const *cell,
			      const size_t *width)
{
	size_t i;
	int pad;

	for (i = 0; i < t->ncols; i++) {
		pad = (int)(width[i] - text_width(cell[i]));
		if (i)
			fputs("  ", out);
		if (t->right & COL(i))
			fprintf(out, "%*s%s", pad, "", cell[i]);
		else if (i + 1 < t->ncols)
			fprintf(out, "%s%*s", cell[i], pad, "");
		else
			fputs(cell[i], out);	/* no trailing blanks */
	}
	putc('\n', out);
}

void table_print(const struct table *t, FILE *out)
{
	size_t width[TABLE_COLS_MAX], i, r, w;

	for (i = 0; i < t->ncols; i++)
		width[i] = text_width(t->heads[i]);
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; !t->rows[r].line && i < t->ncols; i++) {
			w = text_width(t->rows[r].cell[i]);
			if (w > width[i])
				width[i] = w;
		}
	}
	table_cells_print(t, out, t->heads, width);
	for (r = 0; r < t->nrows; r++) {
		if (t->rows[r].line)
			fprintf(out, "%*s%s\n", (int)width[0] + 2, "", t->rows[r].text);
		else
			table_cells_print(t, out, t->rows[r].cell, width);
	}
}

void table_free(struct table *t)
{
	size_t r;

	for (r = 0; r < t->nrows; r++)
		free(t->rows[r].text);
	free(t->rows);
}
