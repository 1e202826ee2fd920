// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * `native`, and native growth in `leaks` and `top`: the estimates of native.h named frame by
 * frame, each joined to the class whose construction touched it: the stack's innermost
 * __init__ or __new__ was called from a line, and the class whose objects (their page sites)
 * were allocated at that line, or in that constructor called from there, is the one being
 * built.  This works alike on every interpreter, with qualified code names or without.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "procfs.h"
#include "pystack.h"
#include "pytype.h"
#include "sampler.h"
#include "sites.h"
#include "view.h"

/* Sites shown by `native` (the largest), and census sites looked at for owners. */
#define NATIVE_VIEW_SITES	20
#define OWNER_SITES_MAX		4096
/* Native sites looked at for those a type owns. */
#define OWNED_SITES_MAX		256
/* A native site is a leak suspect from this growth on (bytes in the window). */
#define NATIVE_GROWTH_MIN	(256u << 10)

struct frames {
	struct pystack_frame f[PYLEAK_STACK_DEPTH];
	uint32_t depth;
	bool truncated;
};

static void frames_read(struct target *t, struct pystack_cache *cache, uint64_t stack,
			struct frames *out)
{
	struct pyleak_stack st;
	uint32_t i;

	out->depth = 0;
	out->truncated = false;
	if (probes_read_stack(&t->probes, stack, &st))
		return;
	for (i = 0; i < st.depth && i < PYLEAK_STACK_DEPTH; i++) {
		struct pystack_frame *g = &out->f[i];

		if (pystack_frame_resolve(cache, st.frames[i].code, st.frames[i].offset, g)) {
			snprintf(g->function, sizeof(g->function), "<code %#llx gone>",
				 (unsigned long long)st.frames[i].code);
			g->file[0] = '\0';
			g->line = -1;
		}
	}
	out->depth = i;
	out->truncated = st.truncated;
}

static json_t *frame_json(const struct pystack_frame *f)
{
	return json_pack("{s:s,s:s,s:i}", "function", f->function, "file", f->file, "line", f->line);
}

/* The innermost constructor (__init__, __new__) frame of the stack in *ctor and the frame
 * that called it in *caller: 0, or -ENOENT. */
static int constructor_find(const struct frames *fr, uint32_t *ctor, uint32_t *caller)
{
	uint32_t i, j;

	for (i = 0; i < fr->depth; i++) {
		if (strcmp(fr->f[i].function, "__init__") && strcmp(fr->f[i].function, "__new__"))
			continue;
		/* past any frame of the interpreter's own (3.13's "<shim>" of a class call) */
		for (j = i + 1; j < fr->depth; j++) {
			if (fr->f[j].line >= 0 && fr->f[j].file[0] != '<') {
				*ctor = i;
				*caller = j;
				return 0;
			}
		}
		return -ENOENT;
	}
	return -ENOENT;
}

/* Owners: the innermost frames of the sites of classes (owners_sites()), read once per
 * reply. */
struct owner_site {
	uint64_t type, count;
	uint64_t type_count;	/* the sampled objects of all the type's sites */
	struct pystack_frame g[2];
	uint32_t n;
};

struct owners {
	struct owner_site *v;
	size_t n;
	bool tried;
};

static void owners_free(struct owners *o)
{
	free(o->v);
}

/* Each site's type_count (the sites come sorted by type). */
static void owners_total(struct owners *o)
{
	size_t i, j, k;
	uint64_t sum;

	for (i = 0; i < o->n; i = j) {
		sum = 0;
		for (j = i; j < o->n && o->v[j].type == o->v[i].type; j++)
			sum += o->v[j].count;
		for (k = i; k < j; k++)
			o->v[k].type_count = sum;
	}
}

/* The sites owners come from: precise mode's sampled births (their stacks are exact: page
 * samples credit a class's objects to the temporaries that carved its pages, as 3.11's
 * StreamCrypto's to update()'s c_int on a loaded machine), else the page samples' census,
 * kept a minute. */
static const struct census *owners_sites(struct target *t, struct census *births)
{
	if (t->opt.birth_sample_every && !target_sampled(t))
		return sites_births(&t->probes, t->opt.birth_sample_every, births) ? NULL : births;
	if (!t->sites_cache_at || loop_mono() - t->sites_cache_at > 60) {
		census_free(&t->sites_cache);
		t->sites_cache_at = 0;
		if (!sites_census(&t->probes, &t->py, &t->layout, t->opt.max_pages,
				  &t->sites_cache))
			t->sites_cache_at = loop_mono();
	}
	return t->sites_cache_at ? &t->sites_cache : NULL;
}

static void owners_load(struct target *t, struct pystack_cache *cache, struct owners *o)
{
	struct census births = {};
	const struct census *c;
	uint64_t type = 0;
	struct pyleak_stack st;
	bool heap = false;
	size_t i;

	o->tried = true;
	c = owners_sites(t, &births);
	if (!c || !c->nsites)
		goto cleanup;
	o->v = calloc(c->nsites < OWNER_SITES_MAX ? c->nsites : OWNER_SITES_MAX, sizeof(*o->v));
	for (i = 0; o->v && i < c->nsites && o->n < OWNER_SITES_MAX; i++) {
		const struct census_site *s = &c->sites[i];
		struct owner_site *w = &o->v[o->n];

		if (!s->site)
			continue;
		/* sites are sorted by type: one look per type */
		if (s->type != type) {
			type = s->type;
			heap = pytype_is_heap(t->pid, type);
		}
		if (!heap || probes_read_stack(&t->probes, s->site, &st))
			continue;
		for (w->n = 0; w->n < 2 && w->n < st.depth; w->n++)
			if (pystack_frame_resolve(cache, st.frames[w->n].code, st.frames[w->n].offset,
						  &w->g[w->n]))
				break;
		w->type = s->type;
		w->count = s->count;
		o->n += w->n > 0;
	}
	owners_total(o);
cleanup:
	census_free(&births);
}

static bool frame_same_function(const struct pystack_frame *a, const struct pystack_frame *b)
{
	return !strcmp(a->function, b->function) && !strcmp(a->file, b->file);
}

/* How well a census site's innermost frames g[0..n) match a constructor called from caller:
 * 3 allocated at the caller's line (the object the constructor then builds), 2 in the
 * constructor called from that line, 1 the same from another line of the caller's function
 * (the line's own objects may all be unsampled), 0 not. */
static int owner_match(const struct pystack_frame *g, uint32_t n, const struct pystack_frame *ctor,
		       const struct pystack_frame *caller)
{
	if (frame_same_function(&g[0], caller) && g[0].line == caller->line)
		return 3;
	if (n >= 2 && frame_same_function(&g[0], ctor) && frame_same_function(&g[1], caller))
		return g[1].line == caller->line ? 2 : 1;
	return frame_same_function(&g[0], caller);
}

/*
 * The class being built when the stack's native bytes were touched: the class whose objects
 * were allocated at the line that called the constructor (before it ran) or in the
 * constructor called from there, for the largest share of its sampled objects (page samples
 * credit some objects to a neighbour's line: a class allocated deeper, whose objects are
 * mostly elsewhere, is not the one being built); failing that, the same from the caller's
 * function.  A class qualifies with a quarter of its objects there.
 */
#define OWNER_SHARE_MIN 0.25

static int owner_find(struct target *t, struct pystack_cache *cache, struct owners *o,
		      const struct frames *fr, char *name, size_t len)
{
	const struct owner_site *best = NULL;
	double share, best_share = 0;
	uint64_t matched;
	uint32_t ci, ki;
	size_t i, j;
	int m, level;

	if (constructor_find(fr, &ci, &ki))
		return -ENOENT;
	if (!o->tried)
		owners_load(t, cache, o);
	/* level 1: at the caller's line, or in the constructor called from it; 0: its function */
	for (level = 1; level >= 0 && !best; level--) {
		for (i = 0; i < o->n; i = j) {
			matched = 0;
			for (j = i; j < o->n && o->v[j].type == o->v[i].type; j++) {
				m = owner_match(o->v[j].g, o->v[j].n, &fr->f[ci], &fr->f[ki]);
				if (level ? m >= 2 : m >= 1)
					matched += o->v[j].count;
			}
			share = o->v[i].type_count ? (double)matched / o->v[i].type_count : 0;
			if (share >= OWNER_SHARE_MIN && share > best_share) {
				best_share = share;
				best = &o->v[i];
			}
		}
	}
	if (!best)
		return -ENOENT;
	return pytype_name(t->pid, best->type, name, len);
}

static json_t *site_json(struct target *t, struct pystack_cache *cache, struct owners *o,
			 const struct native_estimate *e)
{
	static const struct pystack_frame unknown = { .function = "<unknown>", .line = -1 };
	struct frames *fr = malloc(sizeof(*fr));
	json_t *site = NULL, *stack;
	char owner[128];
	uint32_t i;

	stack = json_array();
	if (!fr || !stack)
		goto cleanup;
	frames_read(t, cache, e->stack, fr);
	for (i = 0; i < fr->depth; i++)
		json_array_append_new(stack, frame_json(&fr->f[i]));
	site = frame_json(fr->depth ? &fr->f[0] : &unknown);
	if (!site)
		goto cleanup;
	json_object_set_new(site, "bytes", json_integer((json_int_t)(e->bytes + 0.5)));
	json_object_set_new(site, "samples", json_integer((json_int_t)e->samples));
	json_object_set_new(site, "source", json_string(native_source_name(e->source)));
	/* distinct stacks may name the same lines: the id tells them apart */
	json_object_set_new(site, "stack_id", json_integer((json_int_t)e->stack));
	json_object_set_new(site, "owner_type", !owner_find(t, cache, o, fr, owner, sizeof(owner)) ?
			    json_string(owner) : json_null());
	json_object_set_new(site, "truncated", json_boolean(fr->truncated));
	json_object_set(site, "stack", stack);
cleanup:
	json_decref(stack);
	free(fr);
	return site;
}

static json_t *mappings_json(const struct native *nat)
{
	json_t *arr = json_array();
	int k;

	for (k = 0; arr && k < NATIVE_KINDS; k++)
		json_array_append_new(arr, json_pack("{s:s,s:I,s:I}", "kind", native_kind_name(k),
			"bytes", (json_int_t)nat->kind_rss[k], "sampled_bytes",
			(json_int_t)nat->kind_sampled[k]));
	return arr;
}

void view_native_top_add(const struct target *t, json_t *doc)
{
	uint64_t kb;

	if (!procfs_status_read(t->pid, "VmRSS", &kb, 1))
		json_object_set_new(doc, "rss_bytes", json_integer((json_int_t)(kb << 10)));
	json_object_set_new(doc, "python_objects_bytes", json_integer((json_int_t)t->census_bytes));
	if (t->native && t->native->scans)
		json_object_set_new(doc, "native_bytes",
				    json_integer((json_int_t)(native_bytes(t->native) + 0.5)));
}

int view_native_json(struct target *t, json_t **out)
{
	struct pystack_cache *cache = NULL;
	struct native *nat = t->native;
	struct owners o = {};
	json_t *sites, *doc;
	double nb, explained;
	size_t i;

	*out = NULL;
	if (!t->sites)
		return -EOPNOTSUPP;
	/* No scan yet, or the sample before it failed (not the target's fault). */
	if (!nat || !nat->scans)
		return -EAGAIN;
	native_rss_read(nat, t->pid);	/* a failure keeps the last reading */
	cache = pystack_cache_new(&t->py);
	sites = json_array();
	if (!cache || !sites) {
		pystack_cache_free(cache);
		json_decref(sites);
		return -ENOMEM;
	}
	for (i = 0; i < nat->nrows && i < NATIVE_VIEW_SITES; i++)
		json_array_append_new(sites, site_json(t, cache, &o, &nat->rows[i]));
	owners_free(&o);
	pystack_cache_free(cache);
	nb = native_bytes(nat);
	explained = nat->rss_bytes ? (nb + (double)t->census_bytes) / (double)nat->rss_bytes : 0;
	doc = json_pack("{s:i, s:I, s:I, s:I, s:f, s:o, s:o, s:f, s:f, s:f, s:{s:I,s:I,s:I,s:I}, s:s}",
		"pid", t->pid, "rss_bytes", (json_int_t)nat->rss_bytes,
		"python_objects_bytes", (json_int_t)t->census_bytes,
		"native_bytes", (json_int_t)(nb + 0.5),
		"explained_fraction", explained > 1 ? 1.0 : explained,
		"sites", sites, "mappings", mappings_json(nat),
		"scan_seconds", nat->seconds, "age_s", loop_mono() - nat->at,
		"mappings_age_s", nat->rss_at ? loop_mono() - nat->rss_at : -1.0,
		"pages", "sampled", (json_int_t)nat->pages_seen, "resident",
		(json_int_t)nat->pages_resident, "in_pools", (json_int_t)nat->pages_python,
		"sample_every", (json_int_t)(sampler_page_mask(t) + 1),
		"note", "a site's bytes: its sampled pages still resident in the heap or anonymous "
		"mappings outside pymalloc pools, each standing for the pages the sampling skipped "
		"(pages touched before the attach, or by threads outside Python, are not attributed)");
	*out = doc;
	return doc ? 0 : -ENOMEM;
}

json_t *view_native_sites_json(struct target *t, const char *owner, int n)
{
	struct pystack_cache *cache = NULL;
	struct native *nat = t->native;
	struct owners o = {};
	json_t *arr = json_array(), *site;
	size_t i, want;

	if (!arr || !nat || !nat->scans)
		return arr;
	/* owned sites are looked for among the largest; all of them when not filtered */
	want = owner || n <= 0 ? OWNED_SITES_MAX : (size_t)n;
	cache = pystack_cache_new(&t->py);
	for (i = 0; cache && i < nat->nrows && i < want &&
		    (n <= 0 || json_array_size(arr) < (size_t)n); i++) {
		site = site_json(t, cache, &o, &nat->rows[i]);

		const char *ot = json_string_value(json_object_get(site, "owner_type"));

		if (site && owner && (!ot || strcmp(ot, owner)))
			json_decref(site);
		else if (site)
			json_array_append_new(arr, site);
	}
	owners_free(&o);
	pystack_cache_free(cache);
	return arr;
}

/* The followed sites that grew over the window, as `leaks` suspects of type "native". */
size_t view_native_suspects(struct target *t, double now, double window_s, json_t **docs,
			    double *scores, size_t max)
{
	struct pystack_cache *cache = NULL;
	struct native *nat = t->native;
	struct owners o = {};
	size_t m = 0;
	int i;

	if (!nat)
		return 0;
	for (i = 0; i < nat->nsites && m < max; i++) {
		const struct native_site *s = &nat->sites[i];
		struct leak_score sc;
		json_t *site, *doc;

		if (history_score(s->hist, now, window_s, &sc) ||
		    sc.growth_score < HISTORY_SCORE_LIKELY || sc.growth < (int64_t)NATIVE_GROWTH_MIN)
			continue;
		if (!cache)
			cache = pystack_cache_new(&t->py);
		if (!cache)
			break;
		site = site_json(t, cache, &o, &s->e);
		if (!site)
			continue;
		/* the contract's suspect sites carry live: here, bytes */
		json_object_set(site, "live", json_object_get(site, "bytes"));
		doc = json_pack("{s:s, s:I, s:I, s:f, s:f, s:f, s:s, s:I, s:i, s:f, s:s, s:s, s:b, s:O, "
				"s:[O]}",
			"type", "native", "live", (json_int_t)s->e.bytes, "bytes", (json_int_t)s->e.bytes,
			"growth_per_min", sc.growth_per_min, "score", sc.growth_score,
			"freed_by_gc_fraction", 0.0, "evidence", sc.evidence,
			"growth", (json_int_t)sc.growth, "samples", sc.samples, "span_s", sc.span_s,
			"source", "native", "unit", "bytes", "class", false,
			"owner_type", json_object_get(site, "owner_type"), "sites", site);
		json_decref(site);
		if (!doc)
			continue;
		json_object_set(doc, "site", json_array_get(json_object_get(doc, "sites"), 0));
		docs[m] = doc;
		scores[m++] = sc.growth_score;
	}
	owners_free(&o);
	pystack_cache_free(cache);
	return m;
}
