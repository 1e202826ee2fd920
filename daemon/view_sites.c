// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pytype.h"
#include "sampler.h"
#include "sites.h"
#include "view.h"

/* `sites` names the list holding a type's growth over leaks' default window. */
#define SITES_HOLDER_WINDOW 60.0

/* The `sites` reply: what was sampled (note), the type's live count and the part of it the
 * sampled sites stand for. */
static json_t *sites_doc(const struct target *t, const char *type_name, const char *note,
			 int64_t live, double attributed, uint64_t samples, json_t *sites)
{
	return json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "pid", t->pid,
			 "type", type_name, "mode", target_mode_name(t->opt.mode), "sampled", note,
			 "live", (json_int_t)live, "attributed", (json_int_t)(attributed + 0.5),
			 "samples", (json_int_t)samples, "sites", sites);
}

/* Sites of a type counted by per-object probes: from the births whose stack was sampled. */
static int births_sites_json(struct target *t, const struct type_row *r, int n, json_t **out)
{
	uint32_t every = t->opt.birth_sample_every;
	uint64_t live = 0, samples = 0;
	double attributed = 0;
	struct census c;
	char note[512];
	int err;

	err = sites_births(&t->probes, every, &c);
	if (err)
		return err;
	sites_totals(&c, r->type, &live, &attributed, &samples);
	snprintf(note, sizeof(note),
		 "sampled: 1 birth in %u has its Python stack recorded; a site's live is its %lu "
		 "sampled %s objects still alive times %u, %.0f in all of the %ld live %s objects born "
		 "since attach", every, samples, r->name, every, attributed, (long)r->live, r->name);
	*out = sites_doc(t, r->name, note, r->live, attributed, samples,
			 sites_json(&t->probes, &t->py, &c, r->type, n));
	census_free(&c);
	return *out ? 0 : -ENOMEM;
}

/* Sites of a type counted by census: from the sampled fresh pages its objects are in. */
static int pages_sites_json(struct target *t, const char *type_name, int n, json_t **out)
{
	uint64_t live = 0, samples = 0, type = 0, forgotten, cnt[PYLEAK_CNT_MAX] = {};
	double attributed = 0;
	struct census c = {};
	char name[64], note[640];
	size_t i;
	int err;

	err = sites_census(&t->probes, &t->py, &t->layout, t->opt.max_pages, &c);
	if (err)
		return err;
	/* Counts are sorted: the most numerous type of that name (names need not be unique). */
	for (i = 0; i < c.n && !type; i++)
		if (!pytype_name(t->pid, c.counts[i].type, name, sizeof(name)) &&
		    !strcmp(name, type_name))
			type = c.counts[i].type;
	if (type)
		sites_totals(&c, type, &live, &attributed, &samples);
	probes_read_counters(&t->probes, cnt);
	forgotten = cnt[PYLEAK_CNT_PAGES] > t->opt.max_pages ? cnt[PYLEAK_CNT_PAGES] - t->opt.max_pages : 0;
	snprintf(note, sizeof(note),
		 "sampled: one allocation per fresh 4 KiB heap page (1 page in %lu now) has its "
		 "Python stack recorded; the %s objects on sampled pages are shared among the sites "
		 "of the %lu sampled objects still alive in their own block (a block another object "
		 "took, told by its size, is no sample), %.0f in all of the %lu live %s objects "
		 "in pymalloc pools (the rest are older than the attach, or not sampled%s)",
		 sampler_page_mask(t) + 1, type_name, samples, attributed, live, type_name,
		 forgotten ? ", or on the oldest sampled pages, forgotten: see pages_forgotten" : "");
	*out = sites_doc(t, type_name, note, live, attributed, samples,
			 type ? sites_json(&t->probes, &t->py, &c, type, n) : json_array());
	census_free(&c);
	if (!*out)
		return -ENOMEM;
	json_object_set_new(*out, "pages_sampled", json_integer(cnt[PYLEAK_CNT_PAGES]));
	json_object_set_new(*out, "pages_forgotten", json_integer(forgotten));
	return 0;
}

/* A `sites` reply for a type that is growing gains the list holding the growth, if any, and
 * where that list grows (leaks' judgement over its default window). */
static void holder_add(struct target *t, const char *type_name, json_t *doc)
{
	double now = loop_mono();
	struct leak_score sc;
	json_t *holder;
	size_t i;

	for (i = 0; i < t->rows.n; i++) {
		const struct type_row *r = &t->rows.v[i];

		if (strcmp(r->name, type_name) || !r->hist ||
		    history_score(r->hist, now, SITES_HOLDER_WINDOW, &sc) || sc.growth_score < HISTORY_SCORE_LIKELY)
			continue;
		holder = view_holder_json(t, now - SITES_HOLDER_WINDOW, sc.growth, sc.evidence,
					  sizeof(sc.evidence));
		if (holder)
			json_object_set_new(doc, "held_by", holder);
		break;
	}
}

int view_sites_json(struct target *t, const char *type_name, int n, json_t **out)
{
	const struct type_row *r = NULL;
	size_t i;
	int err;

	*out = NULL;
	if (!t->sites)
		return -EOPNOTSUPP;
	/* "native": every native site, no object */
	if (!strcmp(type_name, "native")) {
		*out = sites_doc(t, type_name, "native bytes by Python site (see `native`)", 0, 0, 0,
				 json_array());
		if (*out)
			json_object_set_new(*out, "native", view_native_sites_json(t, NULL, n));
		return *out ? 0 : -ENOMEM;
	}
	for (i = 0; i < t->rows.n && !r; i++)
		if (!t->rows.v[i].census && !strcmp(t->rows.v[i].name, type_name))
			r = &t->rows.v[i];
	if (r && t->opt.birth_sample_every && !target_sampled(t))
		err = births_sites_json(t, r, n, out);
	else
		err = pages_sites_json(t, type_name, n, out);
	if (!err)
		holder_add(t, type_name, *out);
	/* the native bytes this type's constructors touched */
	if (!err)
		json_object_set_new(*out, "native", view_native_sites_json(t, type_name, n));
	return err;
}
