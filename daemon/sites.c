// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Allocation sites.  BPF records, at the first touch of each page of the target, the Python
 * stack of the faulting thread and the pymalloc block that allocation got (page -> sample).
 * A census then finds every pool object and tallies (type, sample's stack) where the object
 * is still the sampled one, and the objects of each type on sampled pages are shared among
 * its sites by those samples; a stack is named here, frame by frame, from the code objects it
 * points at.  Leaked objects accumulate in fresh pages, so the sites of a growing type are
 * where it grows.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cpython.h"
#include "log.h"
#include "pystack.h"
#include "sites.h"
#include "u64map.h"

/* The recorded samples: page number -> struct pyleak_page_site, the same by the block each
 * sample allocated, when BPF found it, and recycled pools by address. */
struct sample_maps {
	struct u64map *pages, *blocks, *pools;
	struct u64map *loops;	/* stack id -> 1: names objects, 2: a GET_ITER's (stack_of()) */
	struct probes *p;
	struct pystack_cache *code;
	const struct census_layout *layout;
	int err;
};

/* Census objects on a sampled page other than the sampled block (an even id: stack ids are odd). */
#define SITE_PAGE	2

/*
 * The site a sample names.  One taken at a GET_ITER allocated the loop's iterator, a
 * temporary, and a survivor of its size class takes its block when the loop ends (the size
 * check cannot tell them apart but for str).  The carve order of a loop's allocations repeats
 * with every pool, so the iterator faults the same pages of every pool or none:
 * three_sites.py's `for` line named 0-52% of its Items, by heap layout.  Such samples name no
 * object: their pages' objects are shared among the type's other sites (SITE_PAGE).
 */
static uint64_t stack_of(struct sample_maps *m, uint64_t stack)
{
	struct pyleak_stack st;
	uint8_t *verdict;

	if (!m->code || u64map_insert(m->loops, stack, (void **)&verdict) < 0)
		return stack;
	if (!*verdict)
		*verdict = !probes_read_stack(m->p, stack, &st) && st.depth &&
			   pystack_frame_gets_iter(m->code, st.frames[0].code,
						   st.frames[0].offset) == 1 ? 2 : 1;
	return *verdict == 2 ? SITE_PAGE : stack;
}

static void sample_add(void *ctx, uint64_t page, const void *value)
{
	struct pyleak_page_site s = *(const struct pyleak_page_site *)value;
	struct sample_maps *m = ctx;
	void *slot;
	int ret;

	s.stack = stack_of(m, s.stack);
	/* -E2BIG: dropped, as a full table did */
	ret = u64map_insert(m->pages, page, &slot);
	if (ret >= 0)
		memcpy(slot, &s, sizeof(s));
	if (ret >= 0 && s.block) {
		ret = u64map_insert(m->blocks, s.block, &slot);
		if (ret >= 0)
			memcpy(slot, &s, sizeof(s));
	}
	if (ret == -ENOMEM && !m->err)
		m->err = ret;
}

/* A recycled pool's sample, and whether its first block still holds the object the
 * initialisation allocated (1; -1 no or cannot tell; 0 not seen yet): the census meets it
 * first, its blocks ascending. */
struct pool_sample {
	struct pyleak_page_site s;
	int first;
};

static void pool_add(void *ctx, uint64_t pool, const void *value)
{
	struct sample_maps *m = ctx;
	struct pool_sample *ps;
	void *slot;
	int ret;

	ret = u64map_insert(m->pools, pool, &slot);
	if (ret >= 0) {
		ps = slot;
		memcpy(&ps->s, value, sizeof(ps->s));
		ps->s.stack = stack_of(m, ps->s.stack);
		ps->first = 0;
	}
	if (ret == -ENOMEM && !m->err)
		m->err = ret;
}

/* Whether the object at obj, len bytes of it read, is a str. */
static bool obj_is_str(const struct census_layout *l, const uint8_t *obj, uint32_t len)
{
	uint64_t type;

	if (len < CPY_OB_TYPE + sizeof(type))
		return false;
	memcpy(&type, obj + CPY_OB_TYPE, sizeof(type));
	return type == l->str_type;
}

/* The bytes a compact str at obj asked pymalloc for; 0 if it is no such str. */
static uint32_t str_request(const struct census_layout *l, const uint8_t *obj, uint32_t len)
{
	uint32_t state, kind;
	uint64_t n;

	if (len < CPY_STR_STATE + 4 || !l->str_ascii_data || !obj_is_str(l, obj, len))
		return 0;
	memcpy(&n, obj + CPY_STR_LENGTH, sizeof(n));
	memcpy(&state, obj + CPY_STR_STATE, sizeof(state));
	kind = (state >> CPY_STR_KIND_SHIFT) & CPY_STR_KIND_MASK;
	if (!(state & CPY_STR_COMPACT) || !kind || n > CPY_SMALL_REQUEST_MAX)
		return 0;
	return (state & CPY_STR_ASCII ? l->str_ascii_data : l->str_compact_data) + (n + 1) * kind;
}

/* Whether the object in a sampled block is the one the sample allocated: 1 yes, 0 cannot
 * tell, -1 no: a str of another size took the block after the sampled object died. */
static int request_check(const struct sample_maps *m, const struct pyleak_page_site *s,
			 const uint8_t *bytes, uint32_t size, uint32_t off)
{
	uint32_t cls = size / 16 - 1, want, n;

	if (off || cls >= 32 || (s->unsure >> cls & 1))
		return 0;
	want = s->request[cls / 16] >> (cls % 16 * 4) & 15;
	n = str_request(m->layout, bytes, size);
	if (!want || !n)
		return 0;
	return n == cls * 16 + want ? 1 : -1;
}

/*
 * A sample is the allocation of one block (found by BPF at the fault); it counts if that block
 * still holds the object it allocated.  A temporary that carved fresh blocks is gone by then,
 * and the survivor that took its block is told apart by its size.  Samples at a pool's
 * initialisation that cannot be checked get an even id (see sites_share_pages()); the other
 * objects of sampled pages are tallied as SITE_PAGE.  An object counts if its own page (or its
 * recycled pool) was sampled, 1 in `every` then (pyleak.bpf.c, page_sampled()), with that
 * sample's weight, `every`: an expected weight of 1.  The sample that names its block (from
 * the next page, at a carve) gives a stack only: its page may have faulted at another rate.
 */
static uint64_t block_site(void *arg, uint64_t block, const uint8_t *bytes, uint32_t size,
			   uint32_t off, double *weight)
{
	struct sample_maps *m = arg;
	const struct pyleak_page_site *s, *own;
	struct pool_sample *ps;
	int checked = -1;

	/* A recycled pool (its initialisation faulted nothing, its pages' samples are from an
	 * earlier life) whose first block still holds the object its initialisation allocated was
	 * filled by that stack, not by temporaries that died and left it to others. */
	ps = u64map_lookup(m->pools, block & ~(uint64_t)(m->layout->pool_size - 1));
	/*
	 * Only a str's size can tell; a pool it cannot vouch for (other types, a first block left
	 * free) stays unnamed: its objects go to the type's unattributed rest, shared among the
	 * type's other sites.  Trusting them named three_sites' Items after the `for` line's
	 * temporaries (13-52% on 3.10-3.12) and wordsegment's words after line 42 (72-82%).
	 */
	if (ps && block == ps->s.block) {
		checked = request_check(m, &ps->s, bytes, size, off);
		ps->first = checked > 0 ? 1 : -1;
	}
	if (ps) {
		/* its pages' own samples were dropped (BPF) with its earlier life */
		*weight = ps->s.every ? ps->s.every : 1;
		if (ps->first > 0)
			return ps->s.stack;
		/*
		 * Another type's first block is one sample, as a page sample's block is (unchecked:
		 * it counts for a type without a checked sample): left out, a class whose pools
		 * all came recycled had no site (the postmortem test's Leaf on Debian's 3.11);
		 * naming its whole pool skewed three_sites' shares by 6-11 points (16 KiB pools).
		 */
		return block == ps->s.block && !checked && off <= size &&
		       !obj_is_str(m->layout, bytes + off, size - off) ?
		       ps->s.stack & ~1ull : SITE_PAGE;
	}
	own = u64map_lookup(m->pages, block >> PYLEAK_PAGE_SHIFT);
	if (!own)
		return 0;
	*weight = own->every ? own->every : 1;
	s = u64map_lookup(m->blocks, block);
	checked = s ? request_check(m, s, bytes, size, off) : -1;
	if (checked < 0) {
		/* BPF did not find the block: the carve's usual case, the one below the fault */
		s = u64map_lookup(m->pages, (block + size) >> PYLEAK_PAGE_SHIFT);
		checked = s && !s->block && s->addr == block + size ? 0 : -1;
	}
	if (checked < 0)
		return SITE_PAGE;
	/* unchecked at a pool's initialisation (fault below the block): trusted only if the
	 * type has no checked sample */
	return checked || s->addr > s->block ? s->stack : s->stack & ~1ull;
}

/*
 * Each type's objects on sampled pages (every sampled page stands for `every` pages) are
 * shared among its sites in proportion to their surviving samples; SITE_PAGE becomes part of
 * the unattributed rest (site 0).  Samples that could not be checked (even ids) count only
 * for a type that has no checked one.  out->sites is sorted by type.
 */
static void sites_share_pages(struct census *c)
{
	size_t i, j, k, w = 0, zero;

	for (i = 0; i < c->nsites; i = j) {
		double pages = 0, samples = 0;
		bool checked = false;

		for (j = i; j < c->nsites && c->sites[j].type == c->sites[i].type; j++)
			checked |= c->sites[j].site & 1;
		for (k = i; k < j; k++) {
			struct census_site *s = &c->sites[k];

			if (s->site && s->site != SITE_PAGE && !(s->site & 1))
				s->site = checked ? SITE_PAGE : s->site | 1;
			if (!s->site)
				continue;
			pages += s->estimate;
			if (s->site != SITE_PAGE)
				samples += s->estimate;
		}
		/* one site-0 row per type: the census's own and the pages' merged (compacted to w) */
		for (zero = SIZE_MAX, k = i; k < j; k++) {
			struct census_site s = c->sites[k];

			if (s.site == SITE_PAGE)
				s = (struct census_site){ s.type, 0, s.count, (double)s.count };
			else if (s.site)
				s.estimate = pages * s.estimate / samples;
			if (!s.site && zero != SIZE_MAX) {
				c->sites[zero].count += s.count;
				c->sites[zero].estimate += s.estimate;
				continue;
			}
			if (!s.site)
				zero = w;
			c->sites[w++] = s;
		}
	}
	c->nsites = w;
}

int sites_census(struct probes *p, const struct python_info *py, const struct census_layout *l,
		 uint32_t max_pages, struct census *out)
{
	struct census_layout layout = *l;
	struct sample_maps m = { .layout = l, .p = p };
	long n;
	int err;

	/* The map changes while it is read, so it may list more pages than it holds at once;
	 * beyond twice as many, they are dropped. */
	err = u64map_new(sizeof(struct pyleak_page_site), 2ull * max_pages, &m.pages);
	if (!err)
		err = u64map_new(sizeof(struct pyleak_page_site), 2ull * max_pages, &m.blocks);
	if (!err)	/* as the BPF map: a pool per 4 pages */
		err = u64map_new(sizeof(struct pool_sample), max_pages / 2 + 1, &m.pools);
	if (!err)	/* a stack per sample at most */
		err = u64map_new(sizeof(uint8_t), 3ull * max_pages, &m.loops);
	if (err)
		goto cleanup;
	/* without it (no memory), samples are taken as they are */
	m.code = pystack_cache_new(py);
	n = probes_for_each_page(p, sample_add, &m);
	if (n >= 0 && !m.err)
		n = probes_for_each_pool(p, pool_add, &m);
	if (n < 0 || m.err) {
		err = n < 0 ? (int)n : m.err;
		log_warn("read page sites of pid %d: %s", p->pid, strerror(-err));
		goto cleanup;
	}
	layout.site_of = block_site;
	layout.site_arg = &m;
	err = census_run(p->pid, &layout, out);
	if (!err)
		sites_share_pages(out);
cleanup:
	pystack_cache_free(m.code);
	u64map_free(m.pages);
	u64map_free(m.blocks);
	u64map_free(m.pools);
	u64map_free(m.loops);
	return err;
}

struct birth_tally {
	struct census_site *v;
	size_t n, cap;
	double every;
	int err;
};

static void birth_add(void *ctx, uint64_t addr, const void *value)
{
	const struct pyleak_obj *o = value;
	struct birth_tally *b = ctx;
	struct census_site *v;

	(void)addr;
	if (!o->stack || b->err)
		return;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 1024;
		v = realloc(b->v, b->cap * sizeof(*v));
		if (!v) {
			b->err = -ENOMEM;
			return;
		}
		b->v = v;
	}
	b->v[b->n++] = (struct census_site){ o->type, o->stack, 1, b->every };
}

static int type_site_cmp(const void *a, const void *b)
{
	const struct census_site *x = a, *y = b;

	if (x->type != y->type)
		return (x->type > y->type) - (x->type < y->type);
	return (x->site > y->site) - (x->site < y->site);
}

int sites_births(struct probes *p, uint32_t every, struct census *out)
{
	struct birth_tally b = { .every = every };
	size_t i, k = 0;
	long n;

	memset(out, 0, sizeof(*out));
	n = probes_for_each_obj(p, birth_add, &b);
	if (n < 0 || b.err) {
		free(b.v);
		return n < 0 ? (int)n : b.err;
	}
	/* No births sampled, no array: qsort() may not be handed NULL, even for nothing. */
	if (b.n)
		qsort(b.v, b.n, sizeof(*b.v), type_site_cmp);
	for (i = 0; i < b.n; i++) {
		if (k && b.v[k - 1].type == b.v[i].type && b.v[k - 1].site == b.v[i].site) {
			b.v[k - 1].count++;
			b.v[k - 1].estimate += b.every;
		} else {
			b.v[k++] = b.v[i];
		}
	}
	out->sites = b.v;
	out->nsites = k;
	return 0;
}

void sites_totals(const struct census *c, uint64_t type, uint64_t *live, double *attributed,
		  uint64_t *samples)
{
	size_t i;

	*live = *samples = 0;
	*attributed = 0;
	for (i = 0; i < c->nsites; i++) {
		if (c->sites[i].type != type)
			continue;
		*live += c->sites[i].count;
		if (c->sites[i].site) {
			*attributed += c->sites[i].estimate;
			*samples += c->sites[i].count;
		}
	}
}

static int site_cmp(const void *a, const void *b)
{
	const struct census_site *x = a, *y = b;

	return (x->estimate < y->estimate) - (x->estimate > y->estimate);
}

static json_t *frame_json(const struct pystack_frame *f)
{
	return json_pack("{s:s,s:s,s:i}", "function", f->function, "file", f->file, "line",
			 f->line);
}

/* One site: its innermost frame's function, file and line, its live count and its stack. */
static json_t *site_json(struct probes *p, struct pystack_cache *cache,
			 const struct census_site *s)
{
	struct pystack_frame f = { .function = "<unknown>", .file = "", .line = -1 };
	struct pyleak_stack st;
	json_t *site, *stack;
	uint32_t i;

	stack = json_array();
	if (!stack)
		return NULL;
	if (probes_read_stack(p, s->site, &st))
		st.depth = 0;
	for (i = 0; i < st.depth && i < PYLEAK_STACK_DEPTH; i++) {
		struct pystack_frame g;

		if (pystack_frame_resolve(cache, st.frames[i].code, st.frames[i].offset, &g)) {
			snprintf(g.function, sizeof(g.function), "<code %#llx gone>",
				 (unsigned long long)st.frames[i].code);
			g.file[0] = '\0';
			g.line = -1;
		}
		if (!i)
			f = g;
		json_array_append_new(stack, frame_json(&g));
	}
	site = frame_json(&f);
	if (site) {
		json_object_set_new(site, "live", json_integer((json_int_t)(s->estimate + 0.5)));
		json_object_set_new(site, "samples", json_integer((json_int_t)s->count));
		json_object_set_new(site, "truncated", json_boolean(st.depth && st.truncated));
		json_object_set_new(site, "stack", stack);
	} else {
		json_decref(stack);
	}
	return site;
}

json_t *sites_json(struct probes *p, const struct python_info *py, const struct census *c,
		   uint64_t type, int n)
{
	struct census_site *mine = NULL;
	struct pystack_cache *cache = NULL;
	json_t *arr = json_array();
	size_t i, k = 0;

	if (!arr)
		return NULL;
	mine = calloc(c->nsites ? c->nsites : 1, sizeof(*mine));
	cache = pystack_cache_new(py);
	if (!mine || !cache)
		goto cleanup;
	for (i = 0; i < c->nsites; i++)
		if (c->sites[i].type == type && c->sites[i].site)
			mine[k++] = c->sites[i];
	qsort(mine, k, sizeof(*mine), site_cmp);
	for (i = 0; i < k && (n <= 0 || (int)i < n); i++)
		json_array_append_new(arr, site_json(p, cache, &mine[i]));
cleanup:
	free(mine);
	pystack_cache_free(cache);
	return arr;
}

json_t *sites_list_json(struct probes *p, const struct python_info *py,
			const struct census_site *v, size_t n)
{
	struct pystack_cache *cache = pystack_cache_new(py);
	json_t *arr = json_array();
	size_t i;

	for (i = 0; arr && cache && i < n; i++)
		json_array_append_new(arr, site_json(p, cache, &v[i]));
	pystack_cache_free(cache);
	return arr;
}

/* Stacks that first touched the pages of one address range (a container's array). */
#define RANGE_STACKS_MAX 64

struct range_tally {
	uint64_t lo, hi;	/* page numbers, [lo, hi) */
	struct census_site v[RANGE_STACKS_MAX];
	size_t n;
};

static void range_add(void *ctx, uint64_t page, const void *value)
{
	const struct pyleak_page_site *s = value;
	struct range_tally *r = ctx;
	size_t i;

	if (page < r->lo || page >= r->hi || !s->stack)
		return;
	for (i = 0; i < r->n && r->v[i].site != s->stack; i++)
		;
	if (i == r->n) {
		if (r->n == RANGE_STACKS_MAX)
			return;
		r->v[r->n++] = (struct census_site){ .site = s->stack };
	}
	r->v[i].count++;
	r->v[i].estimate += s->every ? s->every : 1;
}

json_t *sites_range_json(struct probes *p, const struct python_info *py, uint64_t start,
			 uint64_t end)
{
	struct range_tally *r = calloc(1, sizeof(*r));
	struct pystack_cache *cache = NULL;
	const struct census_site *best = NULL;
	json_t *site = NULL;
	size_t i;

	if (!r || end <= start)
		goto cleanup;
	r->lo = start >> PYLEAK_PAGE_SHIFT;
	r->hi = ((end - 1) >> PYLEAK_PAGE_SHIFT) + 1;
	if (probes_for_each_page(p, range_add, r) < 0)
		goto cleanup;
	for (i = 0; i < r->n; i++)
		if (!best || r->v[i].estimate > best->estimate)
			best = &r->v[i];
	cache = best ? pystack_cache_new(py) : NULL;
	if (!cache)
		goto cleanup;
	site = site_json(p, cache, best);
	if (site) {
		json_object_del(site, "live");
		json_object_set_new(site, "pages", json_integer((json_int_t)(best->estimate + 0.5)));
	}
cleanup:
	pystack_cache_free(cache);
	free(r);
	return site;
}
