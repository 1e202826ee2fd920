// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf.h"
#include "log.h"
#include "nativealloc.h"
#include "procfs.h"
#include "sites.h"
#include "u64map.h"

/*
 * Which mapped libraries are allocators: libc, and those a program preloads or links to
 * replace it (their malloc then serves every call, libc's none).  By name: a target maps
 * hundreds of libraries, and only these are worth opening as ELF files.
 */
static const char *const allocator_names[] = { "libc.so", "libjemalloc", "libtcmalloc",
					       "libmimalloc" };
#define NATIVEALLOC_MAX_LIBS 4
/* Allocator-named libraries opened, hooked or not. */
#define NATIVEALLOC_MAX_TRIED 16

static const struct {
	const char *symbol;
	int kind;
	int arg;	/* where free's block is (the others are read by their programs) */
} allocator_funcs[] = {
	/* First: without free every sampled block would stay outstanding forever. */
	{ "free", PYLEAK_HOOK_FREE, PYLEAK_REG_RDI },
	{ "malloc", PYLEAK_HOOK_MALLOC, -1 },
	{ "calloc", PYLEAK_HOOK_CALLOC, -1 },
	{ "realloc", PYLEAK_HOOK_REALLOC, -1 },
	{ "aligned_alloc", PYLEAK_HOOK_ALIGNED, -1 },
	{ "memalign", PYLEAK_HOOK_ALIGNED, -1 },
};
#define ALLOCATOR_FUNCS (sizeof(allocator_funcs) / sizeof(allocator_funcs[0]))

struct nativealloc {
	uint64_t sample_bytes;
	int nlibs;
	char libs[NATIVEALLOC_MAX_LIBS][128];
	int nhooks;
};

/* Stacks aggregated per walk: 4 times the BPF stacks map's default (main.c); past it, the
 * blocks of further stacks are left out (block_add()), not the walk failed. */
#define NATIVEALLOC_MAX_STACKS (1u << 16)

void nativealloc_intervals(uint64_t sample_bytes, uint64_t out[PYLEAK_NATIVE_INTERVALS])
{
	int i;

	/* Midpoint quantiles of an exponential of mean sample_bytes (at least 1 byte each). */
	for (i = 0; i < PYLEAK_NATIVE_INTERVALS; i++) {
		double u = (i + 0.5) / PYLEAK_NATIVE_INTERVALS;
		double d = -log(u) * (double)sample_bytes;

		out[i] = d < 1 ? 1 : (uint64_t)(d + 0.5);
	}
}

double nativealloc_weight(uint64_t size, uint64_t sample_bytes)
{
	double p;

	if (!size || !sample_bytes)
		return 0;
	p = -expm1(-(double)size / (double)sample_bytes);
	return p > 0 ? size / p : 0;
}

static bool allocator_named(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t i;

	base = base ? base + 1 : path;
	for (i = 0; i < sizeof(allocator_names) / sizeof(allocator_names[0]); i++)
		if (!strncmp(base, allocator_names[i], strlen(allocator_names[i])))
			return true;
	return false;
}

/* Hooks one allocator library, mapped by m (any of its mappings: they share one load bias). */
static int library_hook(struct nativealloc *na, struct probes *p, pid_t pid,
			const struct procfs_map *m)
{
	uint64_t base, vaddr, size, placed[ALLOCATOR_FUNCS] = {};
	struct elf_file *ef = NULL;
	int fds[ALLOCATOR_FUNCS];
	char what[64];
	size_t i, j;
	int fd, err, n = 0, hooked = 0;

	/* elf_file_open() owns fd from here, on failure too. */
	err = procfs_map_file_open(pid, m, &fd);
	if (!err)
		err = elf_file_open(fd, &ef);
	if (!err)
		err = elf_file_offset_to_vaddr(ef, m->pgoff, &base);
	if (err)
		goto cleanup;
	for (i = 0; i < ALLOCATOR_FUNCS; i++) {
		if (elf_file_symbol(ef, allocator_funcs[i].symbol, &vaddr, &size) || !vaddr)
			continue;
		if (!elf_file_is_exec(ef))
			vaddr += m->start - base;
		/* an alias (glibc's memalign is aligned_alloc) is one probe, counted once */
		for (j = 0; j < i && !(placed[j] == vaddr &&
				       allocator_funcs[j].kind == allocator_funcs[i].kind); j++)
			;
		if (j < i)
			continue;
		snprintf(what, sizeof(what), "native %s", allocator_funcs[i].symbol);
		if (!probes_hook(p, vaddr, size, allocator_funcs[i].kind, allocator_funcs[i].arg, what)) {
			placed[i] = vaddr;
			hooked++;
		} else if (!i) {
			break;
		}
	}
	if (hooked < 2) {
		/* free alone (or nothing) measures nothing: its traps would cost for nothing */
		for (i = 0; i < ALLOCATOR_FUNCS; i++)
			if (placed[i])
				n += probes_take_links(p, placed[i], allocator_funcs[i].kind, fds + n,
						       ALLOCATOR_FUNCS - n);
		probes_close_links(fds, n);
		err = -ENOENT;
		goto cleanup;
	}
	snprintf(na->libs[na->nlibs++], sizeof(na->libs[0]), "%s", m->path);
	na->nhooks += hooked;
cleanup:
	elf_file_close(ef);
	return err;
}

int nativealloc_attach(struct probes *p, pid_t pid, uint64_t sample_bytes,
		       struct nativealloc **out)
{
	uint64_t tried[NATIVEALLOC_MAX_TRIED];
	struct procfs_maps *maps = NULL;
	struct nativealloc *na;
	struct procfs_map m;
	int i, ntried = 0, ret;

	na = calloc(1, sizeof(*na));
	if (!na)
		return -ENOMEM;
	na->sample_bytes = sample_bytes;
	ret = procfs_maps_open(pid, &maps);
	if (ret)
		goto cleanup;
	while (na->nlibs < NATIVEALLOC_MAX_LIBS && ntried < NATIVEALLOC_MAX_TRIED &&
	       (ret = procfs_maps_next(maps, &m)) > 0) {
		if (!m.inode || m.truncated || !allocator_named(m.path))
			continue;
		/* a library maps 4-5 times: each is opened and parsed once, hooked or not */
		for (i = 0; i < ntried && tried[i] != m.inode; i++)
			;
		if (i < ntried)
			continue;
		tried[ntried++] = m.inode;
		if (library_hook(na, p, pid, &m))
			log_debug("pid %d: no allocator hooked in %s", pid, m.path);
	}
	if (ret >= 0)
		ret = na->nlibs ? 0 : -ENOENT;
cleanup:
	procfs_maps_close(maps);
	if (ret) {
		free(na);
		return ret;
	}
	*out = na;
	return 0;
}

void nativealloc_detach(struct nativealloc *na)
{
	free(na);
}

struct tally {
	struct u64map *stacks;	/* stack id -> struct native_estimate */
	uint64_t sample_bytes;
	int err;
};

static void block_add(void *ctx, uint64_t addr, const void *value)
{
	const struct pyleak_native_block *b = value;
	struct tally *t = ctx;
	struct native_estimate *r;
	int added;

	(void)addr;
	if (t->err)
		return;
	added = u64map_insert(t->stacks, b->stack, (void **)&r);
	if (added == -E2BIG)
		return;	/* only the stacks kept count */
	if (added < 0) {
		t->err = added;
		return;
	}
	r->stack = b->stack;
	r->source = NATIVE_SRC_MALLOC;
	r->bytes += (uint64_t)(nativealloc_weight(b->size, t->sample_bytes) + 0.5);
	r->samples++;
}

long nativealloc_rows(struct nativealloc *na, struct probes *p, struct native_estimate **rows)
{
	struct tally t = { .sample_bytes = na->sample_bytes };
	struct native_estimate *v = NULL, *r;
	size_t pos = 0, n = 0;
	uint64_t key;
	long ret;

	ret = u64map_new(sizeof(struct native_estimate), NATIVEALLOC_MAX_STACKS, &t.stacks);
	if (ret)
		return ret;
	ret = probes_for_each_native(p, block_add, &t);
	if (ret >= 0 && t.err)
		ret = t.err;
	if (ret < 0)
		goto cleanup;
	v = malloc((u64map_count(t.stacks) ? u64map_count(t.stacks) : 1) * sizeof(*v));
	if (!v) {
		ret = -ENOMEM;
		goto cleanup;
	}
	while (u64map_next(t.stacks, &pos, &key, (void **)&r))
		v[n++] = *r;
	native_estimates_sort(v, n);
	*rows = v;
	ret = n;
cleanup:
	u64map_free(t.stacks);
	return ret;
}

json_t *nativealloc_json(struct nativealloc *na, struct probes *p, const struct python_info *py,
			 uint64_t trap_ns, int n)
{
	uint64_t cnt[PYLEAK_CNT_MAX] = {}, hits, bytes = 0, blocks = 0;
	struct native_estimate *rows = NULL;
	struct census_site *sites = NULL;
	json_t *o, *libs, *top = NULL;
	long nrows, i, k;
	double cost_s;

	probes_read_counters(p, cnt);
	cost_s = probes_native_cost_ns(p, trap_ns, &hits) / 1e9;
	nrows = nativealloc_rows(na, p, &rows);
	for (i = 0; i < nrows; i++) {
		bytes += (uint64_t)rows[i].bytes;	/* whole bytes (block_add()) */
		blocks += rows[i].samples;
	}
	k = nrows < n ? nrows : n;
	sites = calloc(k > 0 ? k : 1, sizeof(*sites));
	if (sites) {
		for (i = 0; i < k; i++)
			sites[i] = (struct census_site){ .site = rows[i].stack,
				.count = rows[i].samples, .estimate = rows[i].bytes };
		top = sites_list_json(p, py, sites, k > 0 ? k : 0);
	}
	/* The sites' estimate is bytes here. */
	for (i = 0; top && i < (long)json_array_size(top); i++) {
		json_t *s = json_array_get(top, i);

		json_object_set(s, "bytes", json_object_get(s, "live"));
		json_object_del(s, "live");
	}
	libs = json_array();
	for (i = 0; libs && i < na->nlibs; i++)
		json_array_append_new(libs, json_string(na->libs[i]));
	o = json_pack("{s:I, s:o*, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:o*}",
		"sample_bytes", (json_int_t)na->sample_bytes, "allocators", libs,
		"probes", na->nhooks, "samples", (json_int_t)cnt[PYLEAK_CNT_NATIVE_SAMPLES],
		"freed", (json_int_t)cnt[PYLEAK_CNT_NATIVE_FREED],
		"dropped", (json_int_t)cnt[PYLEAK_CNT_NATIVE_DROPPED],
		"outstanding", (json_int_t)blocks, "outstanding_bytes", (json_int_t)bytes,
		"probe_hits", (json_int_t)hits, "cost_s", cost_s, "top", top);
	if (o && nrows < 0)
		json_object_set_new(o, "error", json_string(strerror(-nrows)));
	free(sites);
	free(rows);
	return o;
}
