// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The views of top's full screen (screen.h). Each part is printed as text, by the plain
 * renderers where they fit, then painted line by line, cut to the screen's width.
 */
#define _GNU_SOURCE
#include <curses.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "format.h"
#include "render.h"
#include "screen.h"
#include "table.h"
#include "term.h"

#define LEAKS_SHOWN		3	/* suspects named in the header */
#define MARGIN			2	/* left of the table: room for the selection mark */

static const char *const view_keys[] = {
	[VIEW_TYPES] = "q quit  s/l/b/g sort  p pause  j/k select  Enter sites  K leaks",
	[VIEW_SITES] = "q quit  Esc back  j/k scroll  p pause  K leaks",
	[VIEW_LEAKS] = "q quit  Esc back  j/k scroll  p pause",
};

/* The text a printer makes, in *text (to free). */
static int text_make(char **text, int (*print)(FILE *out, struct screen *s), struct screen *s)
{
	size_t len;
	FILE *mem = open_memstream(text, &len);
	int err;

	if (!mem)
		return -ENOMEM;
	err = print(mem, s);
	if (fclose(mem) && !err)
		err = -ENOMEM;
	if (err) {
		free(*text);
		*text = NULL;
	}
	return err;
}

static size_t lines_count(const char *text)
{
	size_t n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

static void line_paint(int y, int x, const char *line)
{
	if (x < COLS)
		mvaddnstr(y, x, line, (int)text_fit(line, COLS - x));
}

/* Paints the lines of text, the first skip left out, from row y until row end: the next row. */
static int lines_paint(char *text, size_t skip, int y, int end)
{
	char *line, *nl;
	bool last;

	for (line = text; *line && y < end; line = nl + 1) {
		nl = strchrnul(line, '\n');
		last = !*nl;
		*nl = '\0';
		if (skip)
			skip--;
		else
			line_paint(y++, 0, line);
		if (last)
			break;
	}
	return y;
}

/* A share as a percentage with one decimal: a probe's cost is often well under 1%. */
static const char *share_text(json_t *v, char *buf)
{
	if (!json_is_number(v))
		return value_text(v, buf);
	snprintf(buf, CELL_MAX, "%.1f%%", json_number_value(v) * 100);
	return buf;
}

static json_t *suspect_find(const struct screen *s, const char *type)
{
	json_t *suspect;
	size_t i;

	json_array_foreach(field(s->leaks, "suspects"), i, suspect)
		if (!strcmp(json_string_value(field(suspect, "type")) ?: "", type))
			return suspect;
	return NULL;
}

static void leaks_line_print(FILE *out, const struct screen *s)
{
	json_t *suspects = field(s->leaks, "suspects"), *suspect;
	char b[3][CELL_MAX];
	size_t i;

	if (!s->leaks) {
		fputs("leaks: not judged yet\n", out);
		return;
	}
	fprintf(out, "leaks over %s s:", value_text(field(s->leaks, "window_s"), b[0]));
	json_array_foreach(suspects, i, suspect) {
		if (i == LEAKS_SHOWN)
			break;
		fprintf(out, "%s %s score %s", i ? "," : "", value_text(field(suspect, "type"), b[1]),
			decimal_text(field(suspect, "score"), "", b[2]));
	}
	if (json_array_size(suspects) > LEAKS_SHOWN)
		fprintf(out, ", %zu more (K)", json_array_size(suspects) - LEAKS_SHOWN);
	fputs(json_array_size(suspects) ? "\n" : " no suspects\n", out);
}

/* Where the figures come from, what they cost and how they are shown; wrapped to the screen. */
static int header_print(FILE *out, struct screen *s)
{
	json_t *gov = field(s->target, "governor");
	char b[5][CELL_MAX], line[512];

	snprintf(line, sizeof(line), "pid %d  python %s  mode %s  cost %s of its CPU (budget %s)  %s",
		 s->o->pid, value_text(field(s->top, "python"), b[0]),
		 value_text(field(s->top, "mode"), b[1]), share_text(field(gov, "spent_ratio"), b[2]),
		 share_text(field(gov, "budget"), b[3]), time_text(field(s->top, "time"), b[4]));
	text_wrap_print(out, "", line, COLS);
	text_wrap_print(out, "counts (SOURCE): ", "probes = born since attach and still alive;  "
			"census = every live object", COLS);
	snprintf(line, sizeof(line), "%s  every %gs%s", sorts[s->sort], s->o->interval,
		 s->paused ? "  PAUSED" : "");
	text_wrap_print(out, "sort: ", line, COLS);
	if (s->message[0])
		text_wrap_print(out, "pyleakd: ", s->message, COLS);
	top_gc_print(out, field(s->top, "gc"), COLS);
	leaks_line_print(out, s);
	return 0;
}

/* The leak column: a mark and the score for suspects, the mark ! from a score of 0.5 on. */
static const char *leak_text(const struct screen *s, const char *type, char *buf)
{
	json_t *suspect = suspect_find(s, type), *score = field(suspect, "score");
	char b[CELL_MAX];

	if (!suspect)
		return "";
	snprintf(buf, CELL_MAX, "%s %s", json_number_value(score) >= 0.5 ? "!" : "?",
		 decimal_text(score, "", b));
	return buf;
}

/* The row of the selected type after the keys' moves; the type follows. */
static int selection_update(struct screen *s, json_t **shown, size_t n)
{
	size_t i, at = 0;
	long want;
	char *type;

	for (i = 0; s->type && i < n; i++)
		if (!strcmp(json_string_value(field(shown[i], "type")) ?: "", s->type))
			at = i;
	want = (long)at + s->move;
	s->move = 0;
	at = want < 0 || !n ? 0 : (size_t)want >= n ? n - 1 : (size_t)want;
	if (!n)
		return 0;
	type = strdup(json_string_value(field(shown[at], "type")) ?: "");
	if (!type)
		return -ENOMEM;
	free(s->type);
	s->type = type;
	return (int)at;
}

/* The rows shown, in s->top's order. */
static size_t rows_pick(const struct screen *s, json_t **shown)
{
	json_t *row;
	size_t i, n = 0;

	json_array_foreach(field(s->top, "types"), i, row)
		if (top_row_shown(row, sorts[s->sort]))
			shown[n++] = row;
	return n;
}

static int table_make(struct screen *s, json_t **shown, size_t n, char **text)
{
	static const char *const names[] = {
		"TYPE", "LIVE", "BYTES", "DELTA", "SOURCE", "TREND", "LEAK",
	};
	const char *heads[ARRAY_SIZE(names)];
	struct table t = TABLE_INIT(heads, COL(1) | COL(2) | COL(3));
	char head[CELL_MAX], trend[SPARK_TEXT_MAX], leak[CELL_MAX], *extra = NULL;
	const char *type;
	size_t i, len;
	FILE *mem;
	int err = 0;

	/* The column the rows are sorted by is marked. */
	memcpy(heads, names, sizeof(heads));
	snprintf(head, sizeof(head), "%s%s", names[s->sort + 1], s->utf8 ? "▼" : "*");
	heads[s->sort + 1] = head;
	for (i = 0; i < n; i++) {
		type = json_string_value(field(shown[i], "type")) ?: "";
		free(extra);
		if (asprintf(&extra, "\t%s\t%s", sparks_text(&s->sparks, type, s->utf8, trend),
			     leak_text(s, type, leak)) < 0) {
			extra = NULL;
			err = -ENOMEM;
			goto cleanup;
		}
		err = top_row_add(&t, shown[i], extra);
		if (err)
			goto cleanup;
	}
	mem = open_memstream(text, &len);
	if (!mem) {
		err = -ENOMEM;
		goto cleanup;
	}
	table_print(&t, mem);
	if (fclose(mem))
		err = -ENOMEM;
cleanup:
	free(extra);
	table_free(&t);
	return err;
}

static int notes_print(FILE *out, struct screen *s)
{
	top_notes_print(out, s->top, COLS);
	return 0;
}

/* The table of types from row y, the selected one marked, then the notes if there is room. */
static int types_draw(struct screen *s, int y)
{
	size_t n, i, room;
	char *table = NULL, *notes = NULL, *line, *save;
	json_t **shown;
	int at, err;

	shown = calloc(json_array_size(field(s->top, "types")) + 1, sizeof(*shown));
	if (!shown)
		return -ENOMEM;
	n = rows_pick(s, shown);
	at = selection_update(s, shown, n);
	err = at < 0 ? at : table_make(s, shown, n, &table);
	if (!err)
		err = text_make(&notes, notes_print, s);
	if (err)
		goto cleanup;
	if (!n) {
		line_paint(y, MARGIN, s->top ? "no objects counted yet" : "waiting for pyleakd");
		goto cleanup;
	}
	/* Rows under the head, down to the footer; the selection stays in sight. */
	room = LINES - 1 > y + 1 ? (size_t)(LINES - 2 - y) : 1;
	if ((size_t)at < s->scroll)
		s->scroll = at;
	else if ((size_t)at >= s->scroll + room)
		s->scroll = at - room + 1;
	line_paint(y++, MARGIN, strtok_r(table, "\n", &save));	/* the head */
	for (i = 0; (line = strtok_r(NULL, "\n", &save)); i++) {
		if (i < s->scroll || i >= s->scroll + room)
			continue;
		if (i == (size_t)at)
			mvaddstr(y, 0, ">");
		line_paint(y, MARGIN, line);
		if (i == (size_t)at)
			mvchgat(y, 0, -1, A_REVERSE, 0, NULL);
		y++;
	}
	if (y < LINES - 1 && lines_count(notes) <= (size_t)(LINES - 1 - y))
		lines_paint(notes, 0, y, LINES - 1);
cleanup:
	free(notes);
	free(table);
	free(shown);
	return err;
}

static int sites_print(FILE *out, struct screen *s)
{
	struct opts o = *s->o;
	char b[CELL_MAX];

	fprintf(out, "allocation sites of %s (%s live)\n", s->type,
		value_text(field(s->sites, "live"), b));
	if (json_is_string(field(s->sites, "sampled")))
		text_wrap_print(out, "", json_string_value(field(s->sites, "sampled")), COLS);
	putc('\n', out);
	o.type = s->type;
	o.format = FORMAT_TABLE;
	return sites_render(out, s->sites, &o);
}

static int leaks_print(FILE *out, struct screen *s)
{
	fputs("leak suspects\n\n", out);
	return leaks_render(out, s->leaks, s->o);
}

/* Rewraps each line of *text at spaces to the screen's width, under its own indent. */
static int page_wrap(char **text)
{
	char *wrapped, *line, *nl, indent[64];
	FILE *mem = open_memstream(&wrapped, &(size_t){ 0 });
	size_t n;
	bool last;

	if (!mem)
		return -ENOMEM;
	for (line = *text; *line; line = nl + 1) {
		nl = strchrnul(line, '\n');
		last = !*nl || !nl[1];
		*nl = '\0';
		n = strspn(line, " ");
		n = n < sizeof(indent) ? n : sizeof(indent) - 1;
		memset(indent, ' ', n);
		indent[n] = '\0';
		text_wrap_print(mem, indent, line + n, COLS);
		if (last)
			break;
	}
	if (fclose(mem)) {
		free(wrapped);
		return -ENOMEM;
	}
	free(*text);
	*text = wrapped;
	return 0;
}

/* A scrolled page of text: the sites of the selected type or the leak suspects. */
static int page_draw(struct screen *s, int y)
{
	json_t *reply = s->view == VIEW_SITES ? s->sites : s->leaks;
	char *text;
	size_t lines;
	int err;

	if (!reply) {
		line_paint(y, 0, "waiting for pyleakd");
		return 0;
	}
	err = text_make(&text, s->view == VIEW_SITES ? sites_print : leaks_print, s);
	if (err)
		return err;
	err = page_wrap(&text);
	if (err) {
		free(text);
		return err;
	}
	lines = lines_count(text);
	if (s->move < 0 && (size_t)-s->move > s->scroll)
		s->scroll = 0;
	else
		s->scroll += s->move;
	s->move = 0;
	if (s->scroll >= lines)
		s->scroll = lines ? lines - 1 : 0;
	lines_paint(text, s->scroll, y, LINES - 1);
	free(text);
	return 0;
}

int screen_draw(struct screen *s)
{
	char *header;
	int err, y;

	erase();
	err = text_make(&header, header_print, s);
	if (err)
		return err;
	y = lines_paint(header, 0, 0, LINES - 1) + 1;
	free(header);
	err = s->view == VIEW_TYPES ? types_draw(s, y) : page_draw(s, y);
	if (err)
		return err;
	line_paint(LINES - 1, 0, view_keys[s->view]);
	mvchgat(LINES - 1, 0, -1, A_REVERSE, 0, NULL);
	refresh();
	return 0;
}
