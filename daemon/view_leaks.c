// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"
#include "sites.h"
#include "view.h"

/* A suspect that much retained per owner of the leader is the leader's doing. */
#define FOLD_PER_OWNER_MIN 0.5

/* A suspect's reply entry, with what suspects are ranked by. */
struct suspect {
	json_t *doc;
	double score, growth_per_min;
	bool class;
	bool native;	/* a native site: its growth is in bytes, not objects */
};

/* By score, then classes before builtins (what a user can act on), then types before native
 * sites (growth in objects and in bytes do not compare), then by growth rate. */
static int suspect_cmp(const void *a, const void *b)
{
	const struct suspect *x = a, *y = b;

	if (x->score != y->score)
		return (y->score > x->score) - (y->score < x->score);
	if (x->class != y->class)
		return y->class - x->class;
	if (x->native != y->native)
		return x->native - y->native;
	return (y->growth_per_min > x->growth_per_min) - (y->growth_per_min < x->growth_per_min);
}

json_t *view_holder_json(struct target *t, double since, int64_t growth, char *evidence,
			 size_t len)
{
	return holders_json(&t->holders, since, growth, evidence, len, t->sites ? &t->probes : NULL,
			    &t->py);
}

/*
 * `leaks` may be polled: sites (a census with page sites, or a walk of the object map that
 * may hold millions of entries) are reused for a census period, at least 10 s, so that
 * polling does not stall the daemon's loop.
 */
static int sites_cache_refresh(struct target *t, bool births)
{
	struct census *c = births ? &t->births_cache : &t->sites_cache;
	double *at = births ? &t->births_cache_at : &t->sites_cache_at;
	double now = loop_mono(), period = sampler_census_period(t);
	int err;

	if (*at && now - *at < (period > 10 ? period : 10))
		return 0;
	census_free(c);
	*at = 0;
	err = births ? sites_births(&t->probes, t->opt.birth_sample_every, c) :
		       sites_census(&t->probes, &t->py, &t->layout, t->opt.max_pages, c);
	if (!err)
		*at = now;
	return err;
}

/* Sites: from sampled births for probe-counted types, from heap pages for the others; each
 * source refreshed once per reply, for the first suspect that needs it. */
struct sites_sources {
	bool pages_tried, births_tried;
	int pages_err, births_err;
};

static json_t *suspect_sites_json(struct target *t, const struct type_row *r,
				  struct sites_sources *s)
{
	bool births = !r->census && t->opt.birth_sample_every && !target_sampled(t);
	bool *tried = births ? &s->births_tried : &s->pages_tried;
	int *err = births ? &s->births_err : &s->pages_err;

	if (!t->sites)
		return NULL;
	if (!*tried) {
		*err = sites_cache_refresh(t, births);
		*tried = true;
	}
	if (*err)
		return NULL;
	return sites_json(&t->probes, &t->py, births ? &t->births_cache : &t->sites_cache, r->type, 3);
}

static json_t *suspect_json(const struct type_row *r, const struct leak_score *sc,
			    json_t *holder)
{
	json_t *o = json_pack("{s:s, s:I, s:f, s:f, s:f, s:s, s:I, s:i, s:f, s:s, s:b, s:[]}",
		"type", r->name, "live", (json_int_t)r->live, "growth_per_min", sc->growth_per_min,
		"score", sc->score, "freed_by_gc_fraction", sc->gc_fraction < 0 ? 0.0 : sc->gc_fraction,
		"evidence", sc->evidence, "growth", (json_int_t)sc->growth, "samples", sc->samples,
		"span_s", sc->span_s, "source", r->census ? "census" : "probes",
		"class", (r->st.flags & PYLEAK_TYPE_HEAP) != 0, "sites");

	if (o && holder)
		json_object_set_new(o, "held_by", holder);
	else
		json_decref(holder);
	return o;
}

int view_leak_judge(const struct target *t, const struct type_row *r, double now,
		    double window_s, struct leak_score *sc)
{
	if (!r->hist || history_score(r->hist, now, window_s, sc))
		return -ENODATA;
	/* A class that swings like cyclic garbage is judged once a window has measured how it
	 * dies: its sawtooth would otherwise pass for growth. */
	if (sc->gc_fraction < 0 && gcwatch_measuring(&t->gcwatch, r->type))
		return 0;
	return sc->score >= 0.1 || sc->gc_fraction >= 0.5;
}

/*
 * One leak per root.  The walk is of the first class among the likely leaks (a class owns the
 * builtins that grow with it), else of the first suspect; of the class already walked if it
 * is among them, as classes that grow together (an owner and its ctypes buffers) swap places
 * from one sample to the next, and each switch would start the walk anew.  Its path and what each of its
 * objects holds alone ("retains", "retained_bytes") go to it, and the other suspects it
 * retains, FOLD_PER_OWNER_MIN or more per owner, are folded into it: each goes, marked "retained_by", under
 * its "retains" entry ("suspect") instead of being ranked.  An owner that folds a suspect
 * ranked above it leads.
 */
static size_t leader_pick(struct target *t, const struct suspect *list, size_t m)
{
	const char *walked = view_path_walked(t);
	size_t i, first = m;

	for (i = 0; i < m && list[i].score >= HISTORY_SCORE_LIKELY; i++) {
		if (!list[i].class || !list[i].doc)
			continue;
		if (walked && !strcmp(json_string_value(json_object_get(list[i].doc, "type")), walked))
			return i;
		if (first == m)
			first = i;
	}
	return first < m ? first : 0;
}

const char *view_leaks_leader(struct target *t, double window_s)
{
	struct suspect best = { .score = -1 }, best_class = { .score = -1 }, s;
	const char *name = NULL, *class_name = NULL, *walked = view_path_walked(t);
	double now = loop_mono();
	struct leak_score sc;
	size_t i;

	for (i = 0; i < t->rows.n; i++) {
		const struct type_row *r = &t->rows.v[i];

		if (view_leak_judge(t, r, now, window_s, &sc) != 1 || sc.score < HISTORY_SCORE_LIKELY)
			continue;
		s = (struct suspect){ NULL, sc.score, sc.growth_per_min,
				      (r->st.flags & PYLEAK_TYPE_HEAP) != 0, false };
		if (!name || suspect_cmp(&s, &best) < 0) {
			best = s;
			name = r->name;
		}
		if (s.class && class_name && walked && !strcmp(class_name, walked))
			continue;
		if (s.class && (!class_name || suspect_cmp(&s, &best_class) < 0 ||
				(walked && !strcmp(r->name, walked)))) {
			best_class = s;
			class_name = r->name;
		}
	}
	return class_name ? class_name : name;
}

static void leader_set(struct suspect *list, size_t m, size_t k, json_t *path)
{
	json_t *lead = list[k].doc, *retains = json_object_get(path, "retains"), *r;
	const char *type = json_string_value(json_object_get(lead, "type"));
	struct suspect owner = list[k];
	bool above = false;
	size_t i, j;

	static const char *const moved[] = { "retains", "retained_bytes", "retained_covered",
					     "retained_graph" };

	for (i = 0; retains && i < sizeof(moved) / sizeof(moved[0]); i++) {
		json_object_set(lead, moved[i], json_object_get(path, moved[i]));
		json_object_del(path, moved[i]);
	}
	json_object_del(path, "owners");
	json_object_set_new(lead, "path", path);
	json_array_foreach(retains, j, r)
		for (i = 0; i < m; i++)
			if (i != k && list[i].doc &&
			    json_real_value(json_object_get(r, "per_owner")) >= FOLD_PER_OWNER_MIN &&
			    json_equal(json_object_get(r, "type"), json_object_get(list[i].doc, "type"))) {
				json_object_set_new(list[i].doc, "retained_by", json_string(type));
				json_object_set_new(r, "suspect", list[i].doc);
				list[i].doc = NULL;
				above |= i < k;
			}
	if (above) {
		memmove(list + 1, list, k * sizeof(*list));
		list[0] = owner;
	}
}

/* Native sites that grow rank with the types (view_native.c). */
static size_t native_suspects_add(struct target *t, double now, double window_s,
				  struct suspect *out)
{
	json_t *docs[NATIVE_SITES_MAX];
	double scores[NATIVE_SITES_MAX];
	size_t i, k;

	k = view_native_suspects(t, now, window_s, docs, scores, NATIVE_SITES_MAX);
	for (i = 0; i < k; i++)
		out[i] = (struct suspect){ docs[i], scores[i],
			json_real_value(json_object_get(docs[i], "growth_per_min")), false, true };
	return k;
}

json_t *view_leaks_json(struct target *t, double window_s, int n)
{
	json_t *suspects = json_array(), *notes = json_array(), *doc;
	struct sites_sources src = {};
	struct suspect *list;
	double now = loop_mono();
	size_t i, k, m = 0;
	int ready = 0, err;

	list = calloc(t->rows.n + NATIVE_SITES_MAX, sizeof(*list));
	if (!list || !suspects || !notes)
		goto fail;
	for (i = 0; i < t->rows.n; i++) {
		const struct type_row *r = &t->rows.v[i];
		struct leak_score sc;
		json_t *holder = NULL, *sites;

		err = view_leak_judge(t, r, now, window_s, &sc);
		if (err < 0)
			continue;
		ready++;
		if (!err)
			continue;
		if (sc.growth_score >= HISTORY_SCORE_LIKELY)
			holder = view_holder_json(t, now - window_s, sc.growth, sc.evidence,
						  sizeof(sc.evidence));
		list[m] = (struct suspect){ suspect_json(r, &sc, holder), sc.score,
					    sc.growth_per_min, (r->st.flags & PYLEAK_TYPE_HEAP) != 0, false };
		if (list[m].doc && sc.growth_score >= HISTORY_SCORE_LIKELY) {
			sites = suspect_sites_json(t, r, &src);
			if (sites)
				json_object_set_new(list[m].doc, "sites", sites);
		}
		m++;
	}
	m += native_suspects_add(t, now, window_s, list + m);
	qsort(list, m, sizeof(*list), suspect_cmp);
	/* The first suspect's retention path, from the reference walk: one budgeted slice per
	 * reply until it is complete, then the kept walk. */
	k = leader_pick(t, list, m);
	if (m && list[k].doc && list[k].score >= HISTORY_SCORE_LIKELY &&
	    strcmp(json_string_value(json_object_get(list[k].doc, "type")), "native")) {
		json_t *path = view_path_first_json(t, json_string_value(json_object_get(list[k].doc, "type")));

		if (path && !json_object_get(list[k].doc, "held_by"))
			json_object_set_new(list[k].doc, "held_by", view_path_holder_json(path));
		if (path)
			leader_set(list, m, k, path);
	}
	for (i = 0; i < m; i++) {
		if (!list[i].doc)
			continue;
		if (n > 0 && (int)json_array_size(suspects) >= n)
			json_decref(list[i].doc);
		else
			json_array_append_new(suspects, list[i].doc);
	}
	if (!ready)
		json_array_append_new(notes, json_string(
			"collecting history: a type needs 3 samples in the window to be judged"));
	if (t->gcwatch.windows)
		json_array_append_new(notes, json_sprintf(
			"deaths of %d classes whose census count swings are probed in windows (%lu so "
			"far, %.0f s, %.1f ms of the target's CPU; `status` gc_deaths): their "
			"freed_by_gc_fraction is measured there", t->gcwatch.ntypes,
			(unsigned long)t->gcwatch.windows, t->gcwatch.open_s, t->gcwatch.cost_ns / 1e6));
	if (t->ncensus || target_sampled(t))
		json_array_append_new(notes, json_string(t->gcwatch.windows ?
			"other census types have no death counts: freed_by_gc_fraction is 0 for them" :
			"census types have no death counts: freed_by_gc_fraction is 0 for them"));
	if (!t->sites)
		json_array_append_new(notes, json_string(
			"no allocation sites: this interpreter's stacks cannot be read"));
	free(list);
	doc = json_pack("{s:i, s:s, s:f, s:f, s:o, s:o, s:O}", "pid", t->pid, "python", t->py.version,
			"window_s", window_s, "sample_interval_s", sampler_interval(),
			"suspects", suspects, "gc", view_gc_json(t), "notes", notes);
	if (doc)
		view_budget_add(t, doc, notes);
	json_decref(notes);
	return doc;
fail:
	free(list);
	json_decref(suspects);
	json_decref(notes);
	return NULL;
}
