// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <stdlib.h>
#include <string.h>

#include "pytype.h"
#include "rows.h"

void rows_free(struct rows *rs)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		free(rs->v[i].hist);
	free(rs->v);
	rs->v = NULL;
	rs->n = rs->cap = 0;
}

static struct type_row *rows_find(struct rows *rs, uint64_t type)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		if (rs->v[i].type == type)
			return &rs->v[i];
	return NULL;
}

static struct type_row *rows_get(struct rows *rs, uint64_t type)
{
	struct type_row *r = rows_find(rs, type);

	if (r)
		return r;
	if (rs->n == ROWS_MAX)
		return NULL;
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;

		r = realloc(rs->v, cap * sizeof(*r));
		if (!r)
			return NULL;
		rs->v = r;
		rs->cap = cap;
	}
	r = &rs->v[rs->n++];
	memset(r, 0, sizeof(*r));
	r->type = type;
	pytype_name(rs->pid, type, r->name, sizeof(r->name));
	return r;
}

static void row_set(struct type_row *r, int64_t live, int64_t net, int64_t bytes)
{
	if (r->seen) {
		r->prev_net = r->net;
		r->has_prev = true;
	}
	r->live = live;
	r->net = net;
	r->bytes = bytes;
	r->seen = true;
}

void rows_update_probed(struct rows *rs, uint64_t type, const struct pyleak_type_stats *st)
{
	struct type_row *r = rows_get(rs, type);
	int64_t net, live;
	double bytes;

	if (!r)
		return;
	r->st = *st;
	/* Deaths count older objects' too (only a sampled birth's address is known), so births
	 * minus deaths is the population change, and a lower bound of the objects born since
	 * attach and alive: exact unless objects older than the attach died. */
	net = (int64_t)(st->born - st->died);
	live = net > 0 ? net : 0;
	/* Their bytes: exact for a fixed size; a variable-size type's at its births' mean (a
	 * death's size is not read: older objects' were never added). */
	bytes = st->itemsize && st->born ? (double)st->bytes_born / st->born : st->basicsize;
	row_set(r, live, net, (int64_t)(bytes * live));
}

void rows_update_deaths(struct rows *rs, uint64_t type, const struct pyleak_type_stats *st)
{
	struct type_row *r = rows_get(rs, type);

	if (!r)
		return;
	r->st.died = st->died;
	r->st.gc_died = st->gc_died;
}

/*
 * A census row follows its objects minus the instance __dict__s among them: those live and die
 * with their owners (whose growth, and deaths in collections, are judged on the owner's row),
 * so a churn of cyclic-garbage instances does not read as dict growth on 3.8-3.10.
 */
static void census_row_set(struct type_row *r, const struct census_count *cc)
{
	r->census = true;
	r->complete = cc->complete;
	row_set(r, cc->count, cc->count - cc->instance_dicts, cc->bytes);
	r->instance_dicts = cc->instance_dicts;
}

void rows_update_census(struct rows *rs, const struct census *c, const uint64_t *types, int n)
{
	int j;

	for (j = 0; j < n; j++) {
		struct type_row *r = rows_get(rs, types[j]);
		struct census_count none = { .type = types[j] };
		size_t i;

		if (!r)
			continue;
		for (i = 0; i < c->n && c->counts[i].type != types[j]; i++)
			;
		census_row_set(r, i < c->n ? &c->counts[i] : &none);
	}
}

/* Drops census rows long absent, and probe rows if probed; the others keep their order. */
static void rows_prune(struct rows *rs, bool probed)
{
	size_t i, k = 0;

	for (i = 0; i < rs->n; i++) {
		if (rs->v[i].census ? rs->v[i].unseen >= ROW_UNSEEN_MAX : probed) {
			free(rs->v[i].hist);
			continue;
		}
		rs->v[k++] = rs->v[i];
	}
	rs->n = k;
}

static bool type_probed(const struct rows *rs, uint64_t type, const uint64_t *probed, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (probed[i] == type)
			return true;
	return pytype_is_heap(rs->pid, type);
}

/* When all is false (precise mode), only the rows of types no probe counts are made and
 * updated here (listed_only); probed[] lists the static types probes count. */
static void census_all_update(struct rows *rs, const struct census *c, bool all,
			      const uint64_t *probed, int nprobed, uint64_t min_count)
{
	struct type_row *r;
	size_t i;

	for (i = 0; i < rs->n; i++) {
		if (all || rs->v[i].listed_only)
			rs->v[i].seen = false;
		/* Sampled mode (after a fall back too) judges every census row. */
		if (all)
			rs->v[i].listed_only = false;
	}
	for (i = 0; i < c->n; i++) {
		r = rows_find(rs, c->counts[i].type);
		if (r ? !all && !r->listed_only :
		    c->counts[i].count < min_count ||
		    (!all && type_probed(rs, c->counts[i].type, probed, nprobed)))
			continue;
		if (!r) {
			r = rows_get(rs, c->counts[i].type);
			if (!r)
				continue;
			r->listed_only = !all;
		}
		r->st.flags = pytype_is_heap(rs->pid, r->type) ? PYLEAK_TYPE_HEAP : 0;
		census_row_set(r, &c->counts[i]);
	}
	for (i = 0; i < rs->n; i++) {
		r = &rs->v[i];
		if (!all && !r->listed_only)
			continue;
		r->unseen = r->seen ? 0 : r->unseen + 1;
		if (!r->seen && r->has_prev)
			row_set(r, 0, 0, 0);
	}
	rows_prune(rs, false);
}

void rows_drop_probed(struct rows *rs)
{
	rows_prune(rs, true);
}

void rows_forget_probed(struct rows *rs, uint64_t type)
{
	size_t i;

	for (i = 0; i < rs->n; i++) {
		if (rs->v[i].type == type && !rs->v[i].census) {
			free(rs->v[i].hist);
			rs->v[i] = rs->v[--rs->n];
			return;
		}
	}
}

void rows_update_census_all(struct rows *rs, const struct census *c, uint64_t min_count)
{
	census_all_update(rs, c, true, NULL, 0, min_count);
}

void rows_update_census_unprobed(struct rows *rs, const struct census *c, const uint64_t *probed,
				 int nprobed, uint64_t min_count)
{
	census_all_update(rs, c, false, probed, nprobed, min_count);
}

void rows_history_record(struct rows *rs, double now)
{
	struct history_sample hs = { .t = now };
	size_t i;

	for (i = 0; i < rs->n; i++) {
		struct type_row *r = &rs->v[i];

		if (!r->seen || r->listed_only)
			continue;
		if (!r->hist) {
			r->hist = calloc(1, sizeof(*r->hist));
			if (!r->hist)
				continue;
		}
		r->hist->census = r->census;
		hs.live = r->net;
		hs.deaths = r->st.died;
		hs.gc_deaths = r->st.gc_died;
		history_push(r->hist, &hs);
	}
}

int64_t row_delta(const struct type_row *r, double now, double span)
{
	const struct history_sample *s = r->hist ? history_at(r->hist, now - span) : NULL;

	if (s)
		return r->net - s->live;
	return r->has_prev ? r->net - r->prev_net : r->net;
}
