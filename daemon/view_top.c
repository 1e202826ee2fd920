// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpython.h"
#include "sampler.h"
#include "view.h"

/* Rows that carry their history: charts show a few, and 100 rows of HISTORY_CAP samples keep a
 * reply under 2 MB. */
#define HISTORY_ROWS_MAX	100

/* A row to list, with what it is sorted by. */
struct top_entry {
	const struct type_row *r;
	int64_t key;
	int64_t delta;
};

static const char *const sort_names[] = {
	[VIEW_SORT_LIVE] = "live", [VIEW_SORT_BYTES] = "bytes", [VIEW_SORT_GROWTH] = "growth",
};

int view_sort_parse(const char *s, enum view_sort *out)
{
	size_t i;

	for (i = 0; i < sizeof(sort_names) / sizeof(sort_names[0]); i++) {
		if (!strcmp(s, sort_names[i])) {
			*out = (enum view_sort)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Descending. */
static int entry_cmp(const void *a, const void *b)
{
	const struct top_entry *x = a, *y = b;

	return (y->key > x->key) - (y->key < x->key);
}

static json_t *row_json(const struct type_row *r, int64_t delta)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:s}", "type", r->name, "live", (json_int_t)r->live,
			      "delta", (json_int_t)delta, "source", r->census ? "census" : "probes");

	if (!o)
		return NULL;
	json_object_set_new(o, "bytes", r->bytes >= 0 ? json_integer(r->bytes) : json_null());
	/* a probe row counts every birth and death: a full object map loses sampled sites only */
	json_object_set_new(o, "complete", json_boolean(!r->census || r->complete));
	if (r->instance_dicts)
		json_object_set_new(o, "instance_dicts", json_integer(r->instance_dicts));
	if (!r->census) {
		json_object_set_new(o, "net", json_integer(r->net));
		json_object_set_new(o, "born", json_integer(r->st.born));
		json_object_set_new(o, "died", json_integer(r->st.died));
		if (r->st.dropped)
			json_object_set_new(o, "dropped", json_integer(r->st.dropped));
	}
	return o;
}

/*
 * The row's samples of the last history_s seconds as [ms, value] pairs, ms <= 0 before now:
 * integers, which JSON carries exactly and briefly. The value is what delta and the leak
 * score follow (the live count, or a probe row's net population change since attach).
 */
static json_t *history_json(const struct type_row *r, double now, double history_s)
{
	json_t *arr = json_array();
	uint32_t i;

	for (i = 0; arr && r->hist && i < r->hist->n; i++) {
		const struct history_sample *s = history_sample(r->hist, i);

		if (s->t < now - history_s)
			continue;
		json_array_append_new(arr, json_pack("[I, I]", (json_int_t)lround((s->t - now) * 1000),
						     (json_int_t)s->live));
	}
	return arr;
}

static json_t *notes_json(struct target *t)
{
	json_t *notes = json_array();
	uint64_t cnt[PYLEAK_CNT_MAX];
	char buf[512];
	int i, n = 0;

	if (!notes)
		return NULL;
	json_array_append_new(notes, json_string(
		"probes rows count objects born since attach and still alive, at least: births minus "
		"deaths since attach (net), exact unless objects older than the attach died; census "
		"rows count every live object"));
	if (t->ncensus) {
		for (i = 0; i < t->plan.ncensus && n < (int)sizeof(buf); i++)
			n += snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? ", " : "", t->plan.census[i]);
		snprintf(buf + n, sizeof(buf) - n > 0 ? sizeof(buf) - n : 0,
			 ": %s, so they are counted by heap census (pymalloc blocks; objects over "
			 "%u bytes on the GC lists or as list and tuple items)", t->plan.census_why,
			 CPY_SMALL_REQUEST_MAX);
		json_array_append_new(notes, json_string(buf));
	}
	json_array_append_new(notes, json_string(
		"complete: false (* after the source) means not every live object of the type could be "
		"enumerated: census rows see objects in pymalloc blocks, GC-tracked objects of any size "
		"(on the collector's lists), and larger untracked ones (str, bytes, int, big tuples) only "
		"as items of the lists and tuples counted, not of dicts or sets"));
	if (!probes_read_counters(&t->probes, cnt) && cnt[PYLEAK_CNT_OBJS_FULL]) {
		snprintf(buf, sizeof(buf), "%lu sampled births not kept for their sites: object map "
			 "full (max_objects); counts are not affected",
			 cnt[PYLEAK_CNT_OBJS_FULL]);
		json_array_append_new(notes, json_string(buf));
	}
	return notes;
}

json_t *view_top_json(struct target *t, int n, enum view_sort sort, double span,
		      double history_s)
{
	double now = loop_mono();
	struct top_entry *e;
	json_t *doc, *types;
	size_t i, m = 0;

	if (span <= 0)
		span = sampler_interval();
	e = calloc(t->rows.n ? t->rows.n : 1, sizeof(*e));
	if (!e)
		return NULL;
	for (i = 0; i < t->rows.n; i++) {
		const struct type_row *r = &t->rows.v[i];
		int64_t delta = row_delta(r, now, span);

		if (!r->seen || !(r->live || delta || r->census))
			continue;
		e[m] = (struct top_entry){ r, sort == VIEW_SORT_BYTES ? r->bytes :
					      sort == VIEW_SORT_GROWTH ? delta : r->live, delta };
		m++;
	}
	qsort(e, m, sizeof(*e), entry_cmp);
	types = json_array();
	for (i = 0; types && i < m && (n <= 0 || (int)i < n); i++) {
		json_t *row = row_json(e[i].r, e[i].delta);

		if (row && history_s > 0 && i < HISTORY_ROWS_MAX)
			json_object_set_new(row, "history", history_json(e[i].r, now, history_s));
		json_array_append_new(types, row);
	}
	free(e);
	doc = json_pack("{s:i, s:s, s:s, s:f, s:f, s:o, s:o}", "pid", t->pid, "python", t->py.version,
			"mode", target_mode_name(t->opt.mode), "time", loop_now(), "since", t->attached_at,
			"types", types, "notes", notes_json(t));
	if (doc && t->ncensus)
		json_object_set_new(doc, "census_s", json_real(t->census_seconds));
	if (doc)
		view_budget_add(t, doc, json_object_get(doc, "notes"));
	if (doc)
		json_object_set_new(doc, "gc", view_gc_json(t));
	if (doc)
		view_label_add(&t->label, t->pid, doc);
	if (doc)
		view_native_top_add(t, doc);
	return doc;
}
