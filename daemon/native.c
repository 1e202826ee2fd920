// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Native memory by Python stack.  BPF records the Python stack of the first touch of sampled
 * pages of the target (bpf/pyleak.bpf.c, pyleak_fault): pymalloc's, but also the brk heap's
 * and anonymous mmaps' that malloc hands to C code.  A scan keeps the pages that are still
 * resident (/proc/PID/pagemap) in the heap or an anonymous mapping and are not in a pymalloc
 * pool (whose header is checked in the target's memory): each stands for `every` pages of
 * native memory its stack touched first.  Memory freed but kept by malloc stays counted; what
 * was touched before the attach, or by a thread outside Python, is not.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cpython.h"
#include "log.h"
#include "loop.h"
#include "native.h"
#include "procfs.h"
#include "procmem.h"
#include "u64map.h"

/* Mappings of a process (vm.max_map_count's default is 65530). */
#define NATIVE_MAPS_MAX		65536
#define PAGE_BYTES		(1ull << PYLEAK_PAGE_SHIFT)

static const char *const kind_names[NATIVE_KINDS] = {
	[NATIVE_HEAP] = "heap", [NATIVE_ANON] = "anon", [NATIVE_FILE] = "file",
	[NATIVE_STACK] = "stack", [NATIVE_OTHER] = "other",
};

static const char *const source_names[NATIVE_SOURCES] = {
	[NATIVE_SRC_PAGES] = "pages", [NATIVE_SRC_MALLOC] = "malloc",
};

const char *native_kind_name(enum native_kind k)
{
	return k < NATIVE_KINDS ? kind_names[k] : "other";
}

const char *native_source_name(enum native_source s)
{
	return s < NATIVE_SOURCES ? source_names[s] : "unknown";
}

enum native_kind native_kind_of(const char *path)
{
	if (!*path || !strncmp(path, "[anon:", 6))
		return NATIVE_ANON;
	if (!strcmp(path, "[heap]"))
		return NATIVE_HEAP;
	if (!strcmp(path, "[stack]") || !strncmp(path, "[stack:", 7))
		return NATIVE_STACK;
	return path[0] == '/' ? NATIVE_FILE : NATIVE_OTHER;
}

int native_new(struct native **out)
{
	struct native *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->total = calloc(1, sizeof(*n->total));
	if (!n->total) {
		free(n);
		return -ENOMEM;
	}
	n->total->census = true;
	*out = n;
	return 0;
}

void native_free(struct native *n)
{
	int i;

	if (!n)
		return;
	for (i = 0; i < NATIVE_SOURCES; i++)
		free(n->est[i]);
	free(n->rows);
	for (i = 0; i < n->nsites; i++)
		free(n->sites[i].hist);
	free(n->total);
	free(n);
}

int native_due(const struct native *n, double now, double period)
{
	return !n->at || now - n->at >= period;
}

/* A sampled page: its number and its page map entry. */
struct page_row {
	uint64_t page;
	struct pyleak_page_site s;
};

struct page_rows {
	struct page_row *v;
	size_t n, cap, max;
	int err;
};

static void page_row_add(void *ctx, uint64_t page, const void *value)
{
	struct page_rows *r = ctx;

	/* The map changes while it is read: beyond max rows, the rest is dropped. */
	if (r->err || r->n == r->max)
		return;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 4096;
		struct page_row *v;

		cap = cap < r->max ? cap : r->max;
		v = realloc(r->v, cap * sizeof(*v));
		if (!v) {
			r->err = -ENOMEM;
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n].page = page;
	memcpy(&r->v[r->n].s, value, sizeof(r->v[r->n].s));
	r->n++;
}

static int page_row_cmp(const void *a, const void *b)
{
	const struct page_row *x = a, *y = b;

	return (x->page > y->page) - (x->page < y->page);
}

struct map_range {
	uint64_t start, end;
	enum native_kind kind;
};

/* The heap and anonymous ranges (ascending) into *out. */
static int maps_read(pid_t pid, struct map_range **out, size_t *nout)
{
	struct procfs_maps *maps = NULL;
	struct map_range *v = NULL;
	struct procfs_map m;
	size_t k = 0, cap = 0;
	int ret, err;

	*out = NULL;
	*nout = 0;
	err = procfs_maps_open(pid, &maps);
	if (err)
		return err;
	while ((ret = procfs_maps_next(maps, &m)) > 0) {
		enum native_kind kind = m.truncated ? NATIVE_FILE : native_kind_of(m.path);

		if ((kind != NATIVE_HEAP && kind != NATIVE_ANON) || k == NATIVE_MAPS_MAX)
			continue;
		if (k == cap) {
			struct map_range *w;

			cap = cap ? cap * 2 : 256;
			w = realloc(v, cap * sizeof(*v));
			if (!w) {
				err = -ENOMEM;
				goto cleanup;
			}
			v = w;
		}
		v[k++] = (struct map_range){ m.start, m.end, kind };
	}
	err = ret;
cleanup:
	procfs_maps_close(maps);
	if (err) {
		free(v);
		return err;
	}
	*out = v;
	*nout = k;
	return 0;
}

int native_rss_read(struct native *n, pid_t pid)
{
	struct procfs_maps *maps = NULL;
	uint64_t kb, rss[NATIVE_KINDS] = {};
	struct procfs_map m;
	double now = loop_mono();
	int ret;

	/* A client repeating `native` must not stall the loop with smaps walks. */
	if (n->rss_at && now - n->rss_at < NATIVE_RSS_MAX_AGE)
		return 0;
	ret = procfs_smaps_open(pid, &maps);
	if (ret)
		return ret;
	while ((ret = procfs_smaps_next(maps, &m, &kb)) > 0)
		rss[m.truncated ? NATIVE_FILE : native_kind_of(m.path)] += kb << 10;
	procfs_maps_close(maps);
	if (!ret) {
		memcpy(n->kind_rss, rss, sizeof(rss));
		n->rss_at = now;
	}
	return ret;
}

/* Whether the page at addr is in a pymalloc pool, its pool's header read once per pool
 * (pages come in address order): 1, 0, or 0 when unreadable (then not a pool either). */
struct pool_memo {
	uint64_t pool;
	int in_pool;
};

static int pool_page(pid_t pid, const struct census_layout *l, uint64_t addr,
		     struct pool_memo *memo)
{
	uint8_t hdr[CPY_POOL_HEADER_SIZE];
	uint64_t pool;

	if (!l || !l->pool_size || (l->pool_size & (l->pool_size - 1)))
		return 0;
	pool = addr & ~(uint64_t)(l->pool_size - 1);
	if (memo->pool != pool) {
		memo->pool = pool;
		memo->in_pool = !procmem_read(pid, pool, hdr, sizeof(hdr)) &&
				census_pool_header_check(hdr, pool, l->pool_size, l->max_block) > 0;
	}
	return memo->in_pool;
}

struct stack_tally {
	double bytes;
	uint64_t samples;
};

static int estimate_cmp(const void *a, const void *b)
{
	const struct native_estimate *x = a, *y = b;

	return (x->bytes < y->bytes) - (x->bytes > y->bytes);
}

void native_estimates_sort(struct native_estimate *v, size_t k)
{
	if (k)
		qsort(v, k, sizeof(*v), estimate_cmp);
}

/* By stack, then the larger estimate first (on a tie, the first source). */
static int stack_cmp(const void *a, const void *b)
{
	const struct native_estimate *x = a, *y = b;

	if (x->stack != y->stack)
		return (x->stack > y->stack) - (x->stack < y->stack);
	if (x->bytes != y->bytes)
		return (x->bytes < y->bytes) - (x->bytes > y->bytes);
	return (int)x->source - (int)y->source;
}

/* The tallies as estimates of the pages source, the largest NATIVE_ESTIMATES_MAX. */
static int tallies_set(struct native *n, struct u64map *tally)
{
	size_t pos = 0, k = 0, cnt = u64map_count(tally);
	struct native_estimate *v;
	uint64_t stack;
	void *val;
	int err;

	v = calloc(cnt ? cnt : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	while (u64map_next(tally, &pos, &stack, &val) && k < cnt) {
		const struct stack_tally *s = val;

		v[k++] = (struct native_estimate){ stack, s->bytes, s->samples, NATIVE_SRC_PAGES };
	}
	native_estimates_sort(v, k);
	err = native_estimates_set(n, NATIVE_SRC_PAGES, v, k < NATIVE_ESTIMATES_MAX ? k :
				   NATIVE_ESTIMATES_MAX);
	free(v);
	return err;
}

int native_scan(struct native *n, struct probes *p, pid_t pid, const struct census_layout *l,
		uint32_t max_pages)
{
	struct page_rows rows = { .max = 2ull * max_pages };
	double t0 = loop_mono();
	struct map_range *maps = NULL;
	struct pool_memo memo = {};
	struct u64map *tally = NULL;
	uint64_t *pages = NULL, status_kb;
	uint8_t *present = NULL;
	size_t nmaps = 0, i, m = 0, k = 0;
	enum native_kind *kinds = NULL;
	long got;
	int err;

	n->at = t0;
	err = procfs_status_read(pid, "VmRSS", &status_kb, 1);
	if (err)
		goto cleanup;
	n->rss_bytes = status_kb << 10;
	err = maps_read(pid, &maps, &nmaps);
	if (err)
		goto cleanup;
	got = probes_for_each_page(p, page_row_add, &rows);
	if (got < 0 || rows.err) {
		err = got < 0 ? (int)got : rows.err;
		goto cleanup;
	}
	err = -ENOMEM;
	if (rows.n)
		qsort(rows.v, rows.n, sizeof(*rows.v), page_row_cmp);
	/* The pages in heap and anonymous mappings (both lists ascending). */
	pages = calloc(rows.n ? rows.n : 1, sizeof(*pages));
	kinds = calloc(rows.n ? rows.n : 1, sizeof(*kinds));
	present = calloc(rows.n ? rows.n : 1, 1);
	if (!pages || !kinds || !present)
		goto cleanup;
	for (i = 0; i < rows.n; i++) {
		uint64_t addr = rows.v[i].page << PYLEAK_PAGE_SHIFT;

		while (m < nmaps && maps[m].end <= addr)
			m++;
		if (m == nmaps)
			break;
		if (addr < maps[m].start)
			continue;
		rows.v[k] = rows.v[i];
		kinds[k] = maps[m].kind;
		pages[k++] = rows.v[i].page;
	}
	err = procfs_pagemap_present(pid, pages, k, present);
	if (err)
		goto cleanup;
	err = u64map_new(sizeof(struct stack_tally), NATIVE_ESTIMATES_MAX * 16, &tally);
	if (err)
		goto cleanup;
	memset(n->kind_sampled, 0, sizeof(n->kind_sampled));
	n->pages_seen = rows.n;
	n->pages_resident = n->pages_python = 0;
	for (i = 0; i < k; i++) {
		const struct pyleak_page_site *s = &rows.v[i].s;
		double bytes = (double)(s->every ? s->every : 1) * PAGE_BYTES;
		struct stack_tally *st;
		void *slot;
		int ret;

		if (!present[i])
			continue;
		n->pages_resident++;
		n->kind_sampled[kinds[i]] += (uint64_t)bytes;
		if (pool_page(pid, l, pages[i] << PYLEAK_PAGE_SHIFT, &memo)) {
			n->pages_python++;
			continue;
		}
		ret = u64map_insert(tally, s->stack, &slot);
		if (ret < 0)
			continue;	/* -E2BIG: more stacks than kept, the rest dropped */
		st = slot;	/* a new one zero-filled (u64map.h) */
		st->bytes += bytes;
		st->samples++;
	}
	err = tallies_set(n, tally);
cleanup:
	if (err) {
		n->errors++;
		if (err != -ESRCH)
			log_warn("native scan of pid %d: %s", pid, strerror(-err));
	} else {
		n->scans++;
	}
	n->seconds = loop_mono() - t0;
	u64map_free(tally);
	free(present);
	free(kinds);
	free(pages);
	free(rows.v);
	free(maps);
	return err;
}

/* The followed site of stack, or -1. */
static int site_find(const struct native *n, uint64_t stack)
{
	int i;

	for (i = 0; i < n->nsites; i++)
		if (n->sites[i].e.stack == stack)
			return i;
	return -1;
}

/* A slot for a new site of `bytes`: a free one, or the smallest site's if it is less than
 * half as big (its history starts over); -1 if none. */
static int site_slot(struct native *n, double bytes)
{
	int i, small = -1;

	if (n->nsites < NATIVE_SITES_MAX) {
		n->sites[n->nsites].hist = calloc(1, sizeof(struct history));
		if (!n->sites[n->nsites].hist)
			return -1;
		n->sites[n->nsites].hist->census = true;
		return n->nsites++;
	}
	for (i = 0; i < n->nsites; i++)
		if (small < 0 || n->sites[i].e.bytes < n->sites[small].e.bytes)
			small = i;
	if (small < 0 || n->sites[small].e.bytes * 2 >= bytes)
		return -1;
	memset(n->sites[small].hist, 0, sizeof(struct history));
	n->sites[small].hist->census = true;
	return small;
}

/* Every source's estimates in rows (room for all), one per stack: its largest; how many. */
static size_t rows_merge(const struct native *n, struct native_estimate *rows)
{
	size_t i, k = 0, m = 0;
	int s;

	for (s = 0; s < NATIVE_SOURCES; s++)
		for (i = 0; i < n->nest[s]; i++)
			rows[k++] = n->est[s][i];
	if (k)
		qsort(rows, k, sizeof(*rows), stack_cmp);
	for (i = 0; i < k; i++)
		if (!m || rows[m - 1].stack != rows[i].stack)
			rows[m++] = rows[i];
	native_estimates_sort(rows, m);
	return m;
}

int native_estimates_set(struct native *n, enum native_source source,
			 const struct native_estimate *v, size_t k)
{
	struct native_estimate *copy, *rows;
	size_t i, total = k;
	int s, j;

	if (source >= NATIVE_SOURCES)
		return -EINVAL;
	for (s = 0; s < NATIVE_SOURCES; s++)
		total += s == (int)source ? 0 : n->nest[s];
	copy = malloc((k ? k : 1) * sizeof(*copy));
	rows = malloc((total ? total : 1) * sizeof(*rows));
	if (!copy || !rows) {
		free(copy);
		free(rows);
		return -ENOMEM;
	}
	for (i = 0; i < k; i++) {
		copy[i] = v[i];
		copy[i].source = source;
	}
	free(n->est[source]);
	n->est[source] = copy;
	n->nest[source] = k;
	free(n->rows);
	n->rows = rows;
	n->nrows = rows_merge(n, rows);
	/* Not the rows' sum: a page's first toucher and a block's allocator are often different
	 * stacks, so the same memory would count twice. */
	n->bytes = 0;
	for (s = 0; s < NATIVE_SOURCES; s++) {
		double sum = 0;

		for (i = 0; i < n->nest[s]; i++)
			sum += n->est[s][i].bytes;
		if (sum > n->bytes)
			n->bytes = sum;
	}
	for (j = 0; j < n->nsites; j++)
		n->sites[j].e.bytes = 0;
	for (i = 0; i < n->nrows; i++) {
		j = site_find(n, rows[i].stack);
		if (j < 0)
			j = site_slot(n, rows[i].bytes);
		if (j >= 0)
			n->sites[j].e = rows[i];
	}
	return 0;
}

double native_bytes(const struct native *n)
{
	return n->bytes;
}

void native_history_record(struct native *n, double now)
{
	struct history_sample s = { .t = now };
	int i;

	if (!n->scans)
		return;
	for (i = 0; i < n->nsites; i++) {
		s.live = (int64_t)n->sites[i].e.bytes;
		history_push(n->sites[i].hist, &s);
	}
	s.live = (int64_t)native_bytes(n);
	history_push(n->total, &s);
}

uint64_t native_memory_bytes(const struct native *n)
{
	uint64_t b = sizeof(*n) + sizeof(struct history) * (1 + (uint64_t)n->nsites);
	int s;

	for (s = 0; s < NATIVE_SOURCES; s++)
		b += n->nest[s] * sizeof(struct native_estimate);
	return b + n->nrows * sizeof(struct native_estimate);
}
