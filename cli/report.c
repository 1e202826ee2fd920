// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* report: a process's snapshot, with histories, as one self-contained HTML page (report.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "failure.h"
#include "format.h"
#include "reply.h"
#include "report.h"
#include "snapshot.h"

#define REPORT_ROWS		100	/* top rows asked for: as many as the daemon gives history */
#define REPORT_HISTORY_S	86400	/* every sample the daemon keeps */
#define REPORT_CHARTED		8	/* largest types the page charts beside the suspects */

static json_t *top_request(const struct opts *o)
{
	return json_pack("{s:s,s:i,s:i,s:s,s:i}", "cmd", "top", "pid", o->pid, "n", REPORT_ROWS,
			 "sort", "live", "history", REPORT_HISTORY_S);
}

/* The page charts the largest types and the suspects: other rows' histories only weigh. */
static void histories_trim(json_t *doc)
{
	json_t *suspects = field(field(doc, "leaks"), "suspects"), *row, *suspect;
	size_t i, j;
	bool keep;

	json_array_foreach(field(field(doc, "top"), "types"), i, row) {
		keep = i < REPORT_CHARTED;
		json_array_foreach(suspects, j, suspect)
			keep = keep || json_equal(field(suspect, "type"), field(row, "type"));
		if (!keep)
			json_object_del(row, "history");
	}
}

/*
 * The data where the page's script reads it, in a script element: each '<' escaped (JSON
 * allows \u003c in strings, the only place one can be), so that no string, some being the
 * traced program's, can end the element or open a comment in it.
 */
static int data_write(FILE *out, json_t *doc)
{
	char *s = json_dumps(doc, JSON_COMPACT), *p;
	size_t len;

	if (!s)
		return -ENOMEM;
	for (p = s; *p; p += len) {
		len = strcspn(p, "<");
		fwrite(p, 1, len, out);
		if (p[len] == '<') {
			fputs("\\u003c", out);
			len++;
		}
	}
	free(s);
	return 0;
}

/* The policy keeps the page offline: it may load nothing, only run what it carries. */
static int page_write(FILE *out, const struct opts *o, json_t *doc)
{
	int err;

	fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		"script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		"<title>pyleak report: pid %d</title>\n<style>\n", o->pid);
	fwrite(page_css, 1, page_css_len, out);
	fputs("</style>\n</head>\n<body>\n"
	      "<noscript>This report draws its data with JavaScript: allow it for this file.</noscript>\n"
	      "<div id=\"app\"></div>\n<script type=\"application/json\" id=\"pyleak-data\">", out);
	err = data_write(out, doc);
	fputs("</script>\n<script>\n", out);
	fwrite(chart_min_js, 1, chart_min_js_len, out);
	fputs("\n</script>\n<script>\n", out);
	fwrite(page_js, 1, page_js_len, out);
	fputs("</script>\n</body>\n</html>\n", out);
	return err;
}

static int page_save(const struct opts *o, json_t *doc)
{
	bool to_stdout = !strcmp(o->output, "-");
	FILE *out = to_stdout ? stdout : fopen(o->output, "we");
	bool bad;
	int err;

	if (!out)
		return fail(o->json, -errno, "internal", "cannot create %s: %s", o->output,
			    strerror(errno));
	err = page_write(out, o, doc);
	if (err)
		fail(o->json, err, "internal", "cannot write the page: %s", strerror(-err));
	bad = ferror(out);
	if (!to_stdout && (fclose(out) || bad) && !err)
		err = fail(o->json, -EIO, "internal", "cannot write %s: %s", o->output,
			   strerror(errno));
	return err;
}

int report_write(const struct opts *o, struct client *c)
{
	bool to_stdout = !strcmp(o->output, "-");
	json_t *doc = NULL, *summary = NULL, *suspects;
	int err;

	if (to_stdout && o->json)
		return fail(o->json, -EINVAL, "bad_request",
			    "-o - writes the page on stdout, where --json would write its document");
	err = snapshot_collect(o, c, top_request(o), &doc);
	if (err)
		return err;
	histories_trim(doc);
	suspects = field(field(doc, "leaks"), "suspects");
	summary = json_pack("{s:s,s:i,s:O*,s:i,s:O*}", "file", o->output, "pid", o->pid,
			    "time", field(doc, "time"), "suspects", (int)json_array_size(suspects),
			    "top_suspect", field(json_array_get(suspects, 0), "type"));
	if (!summary) {
		err = fail(o->json, -ENOMEM, "internal", "out of memory");
		goto cleanup;
	}
	err = page_save(o, doc);
	if (!err && !to_stdout)
		err = reply_print(o, stdout, summary);
cleanup:
	json_decref(summary);
	json_decref(doc);
	return err;
}

int report_render(FILE *out, json_t *summary, const struct opts *o)
{
	json_t *top = field(summary, "top_suspect");
	char b[2][CELL_MAX];

	fprintf(out, "report of pid %d at %s written to %s: %s suspects", o->pid,
		time_text(field(summary, "time"), b[0]), o->output,
		value_text(field(summary, "suspects"), b[1]));
	if (json_is_string(top)) {
		fputs(", first ", out);
		text_put(out, json_string_value(top));
	}
	fputc('\n', out);
	return 0;
}
