// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Census of a running CPython heap, read from outside with process_vm_readv. The target keeps
 * running: every structure read is validated and a torn one is skipped, never trusted. Memory
 * use is bounded by one chunk of pools and the capped hash tables.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>

#include "census.h"
#include "cpython.h"
#include "procfs.h"
#include "procmem.h"
#include "u64map.h"

#define POOL_SIZE_MIN		4096u
#define POOL_BLOCKS_MAX		(CENSUS_POOL_MAX / 16)
#define CHUNK_SIZE		(1u << 20)
#define CHUNK_POOLS_MAX		(CHUNK_SIZE / POOL_SIZE_MIN)

_Static_assert(CENSUS_TYPE_LEN == CPY_TP_DICTOFFSET + 8, "the type fields read");

#define REFCNT_MAX		(1ull << 33)
#define TYPE_DEPTH_MAX		8
/* Pointers of x86-64 user space: below 2^47, above the first page. */
#define USER_ADDR_MIN		4096ull
#define USER_ADDR_MAX		(1ull << 47)
/* A list cannot hold more pointers than user space has room for. */
#define LIST_LEN_MAX		(USER_ADDR_MAX / 8)
/* Non-type addresses cached at most; beyond, they are re-validated each time (memory bound). */
#define NEGATIVES_MAX		(1u << 18)
/* Bounds on what a hostile heap can make the tables hold: a real program has thousands of
 * types, and sites are at most the recorded pages; beyond, the rest goes uncounted (types)
 * or unattributed (sites), and is reported. */
#define TYPES_MAX		(1u << 19)
#define SITES_MAX		(1u << 20)
/* Pools torn while copied: a few under churn; more than this share of them is not a heap. */
#define TORN_MIN		64u
#define TORN_SHARE		4u	/* 1 in 4 */

struct pool_header {
	uint32_t count;
	uint32_t pad;
	uint64_t freeblock;
	uint64_t nextpool;
	uint64_t prevpool;
	uint32_t arenaindex;
	uint32_t szidx;
	uint32_t nextoffset;
	uint32_t maxnextoffset;
};
_Static_assert(sizeof(struct pool_header) == CPY_POOL_HEADER_SIZE, "pymalloc's pool header");

/* One address seen as a possible type object: the validation verdict, then its tally. */
struct type_entry {
	uint64_t addr;
	uint64_t flags;
	uint64_t count;
	uint64_t bytes;
	int64_t dictoffset;	/* > 0: where an instance keeps its __dict__ pointer (checked) */
	struct u64map *sites;	/* site -> struct census_site, when the layout has site_of */
	bool is_type;
};

struct mapping {
	uint64_t start;
	uint64_t end;
	bool pools;		/* private, writable, anonymous: where pymalloc arenas live */
};

struct census_ctx {
	pid_t pid;
	const struct census_layout *layout;
	struct census *out;
	int err;		/* sticky fatal error: target gone, no permission, no memory, a table full */
	struct mapping *maps;
	size_t nmaps;
	struct u64map *types;	/* address -> struct type_entry */
	size_t negatives;
	uint64_t memo_addr;	/* last address resolved: blocks of a pool mostly share a type */
	struct type_entry *memo;
	uint64_t instance_dicts;	/* __dict__ pointers set in counted pool objects */
	uint8_t *chunk;
	uint8_t *headers;
	uint32_t *offsets;
	struct iovec *local;
	struct iovec *remote;
	size_t nsites;		/* (type, site) tallies, all types */
	uint64_t pools, torn;	/* pools seen, and those that changed under the copy */
	uint64_t scanned;	/* bytes of address space scanned */
	struct timespec start;
};

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline bool refcnt_plausible(uint64_t refcnt)
{
	return refcnt - 1 < REFCNT_MAX;
}

static bool sizes_valid(uint32_t pool_size, uint32_t max_block)
{
	return pool_size >= POOL_SIZE_MIN && pool_size <= CENSUS_POOL_MAX &&
	       !(pool_size & (pool_size - 1)) && max_block >= 16 && !(max_block % 16) &&
	       max_block <= pool_size - CPY_POOL_HEADER_SIZE;
}

/* Returns the block size if the header can be a live pool's, else -EINVAL. */
static int pool_header_check(const struct pool_header *h, uint64_t pool_addr, uint32_t pool_size,
			     uint32_t max_block)
{
	uint32_t size;

	if (h->szidx >= max_block / 16)
		return -EINVAL;
	size = (h->szidx + 1) * 16;
	if (h->maxnextoffset != pool_size - size || h->nextoffset > pool_size ||
	    h->nextoffset < CPY_POOL_HEADER_SIZE + size ||
	    (h->nextoffset - CPY_POOL_HEADER_SIZE) % size)
		return -EINVAL;
	if (h->freeblock && (h->freeblock < pool_addr || h->freeblock - pool_addr >= pool_size))
		return -EINVAL;
	return size;
}

int census_pool_used_blocks(const uint8_t *pool, uint64_t pool_addr, uint32_t pool_size,
			    uint32_t max_block, uint32_t *block_size, uint32_t *offsets)
{
	uint64_t free_map[POOL_BLOCKS_MAX / 64];
	struct pool_header h;
	uint32_t size, touched, nfree = 0, nused = 0, i;
	uint64_t f;
	int ret;

	if (!sizes_valid(pool_size, max_block) || (pool_addr & (pool_size - 1)))
		return -EINVAL;
	memcpy(&h, pool, sizeof(h));
	ret = pool_header_check(&h, pool_addr, pool_size, max_block);
	if (ret < 0)
		return ret;
	size = ret;
	touched = (h.nextoffset - CPY_POOL_HEADER_SIZE) / size;
	memset(free_map, 0, (touched + 63) / 64 * sizeof(free_map[0]));

	/*
	 * The free list is walked in the copy: a link off the touched blocks, off a block boundary
	 * or back to a block already seen means the pool changed while it was copied.
	 */
	for (f = h.freeblock; f; ) {
		uint64_t off = f - pool_addr;

		if (f < pool_addr + CPY_POOL_HEADER_SIZE || off >= h.nextoffset ||
		    (off - CPY_POOL_HEADER_SIZE) % size)
			return -EAGAIN;
		i = (off - CPY_POOL_HEADER_SIZE) / size;
		if (free_map[i / 64] & (1ull << (i % 64)))
			return -EAGAIN;
		free_map[i / 64] |= 1ull << (i % 64);
		nfree++;
		memcpy(&f, pool + off, sizeof(f));
	}
	if (touched - nfree != h.count)
		return -EAGAIN;

	for (i = 0; i < touched; i++)
		if (!(free_map[i / 64] & (1ull << (i % 64))))
			offsets[nused++] = CPY_POOL_HEADER_SIZE + i * size;
	*block_size = size;
	return nused;
}

/* Reads through procmem; only a vanished or forbidden target ends the census. */
static int ctx_read(struct census_ctx *ctx, uint64_t addr, void *buf, size_t len)
{
	int err = procmem_read(ctx->pid, addr, buf, len);

	if (err == -ESRCH || err == -EPERM)
		ctx->err = err;
	return err;
}

/* Batched read; returns the bytes read (a prefix of the remote iovecs), 0 on failure. */
static size_t ctx_readv(struct census_ctx *ctx, const struct iovec *local, unsigned long nlocal,
			const struct iovec *remote, unsigned long nremote)
{
	ssize_t n = process_vm_readv(ctx->pid, local, nlocal, remote, nremote, 0);

	if (n < 0) {
		if (errno == ESRCH || errno == EPERM)
			ctx->err = -errno;
		return 0;
	}
	return n;
}

/* Notes data that cannot be a live heap's; the last one is kept, in words. */
static void __attribute__((format(printf, 2, 3))) ctx_corrupt(struct census_ctx *ctx,
							      const char *fmt, ...)
{
	va_list ap;

	ctx->out->corrupt++;
	va_start(ap, fmt);
	vsnprintf(ctx->out->corrupt_last, sizeof(ctx->out->corrupt_last), fmt, ap);
	va_end(ap);
}

static double ctx_elapsed(const struct census_ctx *ctx)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - ctx->start.tv_sec) + (now.tv_nsec - ctx->start.tv_nsec) / 1e9;
}

static const struct mapping *maps_find(const struct census_ctx *ctx, uint64_t addr)
{
	size_t lo = 0, hi = ctx->nmaps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < ctx->maps[mid].start)
			hi = mid;
		else if (addr >= ctx->maps[mid].end)
			lo = mid + 1;
		else
			return &ctx->maps[mid];
	}
	return NULL;
}

static int maps_load(struct census_ctx *ctx)
{
	struct procfs_maps *maps;
	struct procfs_map m;
	size_t room = 0;
	int ret;

	ret = procfs_maps_open(ctx->pid, &maps);
	if (ret)
		return ret;
	while ((ret = procfs_maps_next(maps, &m)) > 0) {
		if (m.perms[0] != 'r')
			continue;
		if (ctx->nmaps == room) {
			size_t n = room ? room * 2 : 256;
			struct mapping *grown = realloc(ctx->maps, n * sizeof(*grown));

			if (!grown) {
				ret = -ENOMEM;
				break;
			}
			ctx->maps = grown;
			room = n;
		}
		ctx->maps[ctx->nmaps++] = (struct mapping){
			.start = m.start,
			.end = m.end,
			/* arenas are mmap'd anonymous: [heap], [stack] and files hold none */
			.pools = m.perms[1] == 'w' && m.perms[3] == 'p' && m.inode == 0 &&
				 (!m.path[0] || !strncmp(m.path, "[anon:", 6)),
		};
	}
	procfs_maps_close(maps);
	return ret < 0 ? ret : 0;
}

static struct type_entry *type_resolve(struct census_ctx *ctx, uint64_t addr, int depth);

int census_type_check(const uint8_t *raw, size_t len, struct census_type *out, const char **why)
{
	uint64_t name;

	*why = NULL;
	if (len < CENSUS_TYPE_LEN)
		return -EINVAL;
	name = load64(raw + CPY_TP_NAME);
	out->meta = load64(raw + CPY_OB_TYPE);
	out->flags = load64(raw + CPY_TP_FLAGS);
	out->basicsize = (int64_t)load64(raw + CPY_TP_BASICSIZE);
	out->itemsize = (int64_t)load64(raw + CPY_TP_ITEMSIZE);
	out->dictoffset = (int64_t)load64(raw + CPY_TP_DICTOFFSET);
	if (!refcnt_plausible(load64(raw)) || !name || !(out->flags & CPY_TPFLAGS_READY))
		return -EINVAL;
	if (name < USER_ADDR_MIN || name >= USER_ADDR_MAX)
		*why = "tp_name";
	else if (out->basicsize < 16 || out->basicsize > CENSUS_TYPE_SIZE_MAX)
		*why = "tp_basicsize";
	else if (out->itemsize < 0 || out->itemsize > CENSUS_TYPE_ITEMSIZE_MAX)
		*why = "tp_itemsize";
	/* negative: counted from the end of a variable-size object; positive: inside it */
	else if (out->dictoffset < -CENSUS_TYPE_SIZE_MAX || out->dictoffset > out->basicsize - 8)
		*why = "tp_dictoffset";
	return *why ? -ERANGE : 0;
}

/*
 * A type object is ready, sized sanely, and its own type is a type subclass.  One that passes
 * for a type but has a field out of range is reported and treated as none: its objects go
 * uncounted rather than measured with that field.
 */
static bool type_validate(struct census_ctx *ctx, struct type_entry *t, int depth)
{
	uint8_t raw[CENSUS_TYPE_LEN];
	struct census_type ty;
	const char *why;
	uint64_t meta_flags;
	int ret;

	if (depth > TYPE_DEPTH_MAX || ctx_read(ctx, t->addr, raw, sizeof(raw)))
		return false;
	ret = census_type_check(raw, sizeof(raw), &ty, &why);
	if (ret == -EINVAL)
		return false;
	t->flags = ty.flags;
	t->dictoffset = ty.dictoffset;
	if (ty.meta == t->addr) {
		meta_flags = ty.flags;
	} else {
		const struct type_entry *m = type_resolve(ctx, ty.meta, depth + 1);

		if (!m)
			return false;
		meta_flags = m->flags;
	}
	if (!(meta_flags & CPY_TPFLAGS_TYPE_SUBCLASS))
		return false;
	if (ret) {
		ctx_corrupt(ctx, "census: %s out of range in type at %#llx", why,
			    (unsigned long long)t->addr);
		return false;
	}
	return true;
}

/* Returns the table entry of the type object at addr, or NULL if addr is not one. */
static struct type_entry *type_resolve(struct census_ctx *ctx, uint64_t addr, int depth)
{
	struct type_entry *e, fresh = { .addr = addr };
	void *slot;
	int ret;

	if (addr == ctx->memo_addr)
		return ctx->memo;
	e = u64map_lookup(ctx->types, addr);
	if (!e) {
		/* Values that point nowhere are rejected without a read and without an entry. */
		if (!addr || (addr & 7) || !maps_find(ctx, addr))
			return NULL;
		fresh.is_type = type_validate(ctx, &fresh, depth);
		if (!fresh.is_type && ctx->negatives >= NEGATIVES_MAX)
			return NULL;
		/* an insert may move the entries; validation may have added this one (a loop of
		 * metatypes) */
		ctx->memo_addr = 0;
		ctx->memo = NULL;
		ret = u64map_insert(ctx->types, addr, &slot);
		if (ret == -E2BIG) {
			ctx_corrupt(ctx, "census: more than %u type objects", TYPES_MAX);
			return NULL;
		}
		if (ret < 0) {
			ctx->err = ret;
			return NULL;
		}
		e = slot;
		if (ret) {
			*e = fresh;
			ctx->negatives += !fresh.is_type;
		}
	}
	ctx->memo_addr = addr;
	ctx->memo = e->is_type ? e : NULL;
	return ctx->memo;
}

/* Where a type's objects start in their block: after the GC header and any pre-header. */
static inline uint32_t type_object_offset(uint64_t flags, uint64_t preheader_flags)
{
	if (!(flags & CPY_TPFLAGS_HAVE_GC))
		return 0;
	return CPY_GC_HEAD_SIZE + (flags & preheader_flags ? CPY_PREHEADER_SIZE : 0);
}

/* Keeps the CENSUS_TOP_LISTS longest lists, longest first (insertion into a short array). */
static void list_note(struct census *out, uint64_t addr, int64_t len)
{
	int i;

	if (out->nlists == CENSUS_TOP_LISTS && len <= out->lists[CENSUS_TOP_LISTS - 1].len)
		return;
	if (out->nlists < CENSUS_TOP_LISTS)
		out->nlists++;
	for (i = out->nlists - 1; i > 0 && out->lists[i - 1].len < len; i--)
		out->lists[i] = out->lists[i - 1];
	out->lists[i] = (struct census_container){ addr, len };
}

/* A list's length is noted if it can be one (torn or forged ones are reported). */
static void list_check(struct census_ctx *ctx, uint64_t addr, uint64_t len)
{
	if (len > LIST_LEN_MAX) {
		ctx_corrupt(ctx, "census: ob_size out of range in list at %#llx",
			    (unsigned long long)addr);
		return;
	}
	list_note(ctx->out, addr, (int64_t)len);
}

static void site_note(struct census_ctx *ctx, struct type_entry *e, uint64_t block, uint32_t size,
		      uint64_t pool)
{
	double weight = 1;
	uint64_t site = ctx->layout->site_of(ctx->layout->site_arg, block, size, pool, &weight);
	struct census_site *s;
	void *slot;
	int ret = 0;

	/* past the cap, the tally is the type's own count, without sites */
	if (ctx->nsites >= SITES_MAX)
		return;
	if (!e->sites)
		ret = u64map_new(sizeof(*s), SITES_MAX, &e->sites);
	if (!ret)
		ret = u64map_insert(e->sites, site, &slot);
	if (ret < 0) {
		ctx->err = ret;
		return;
	}
	s = slot;
	if (ret) {
		*s = (struct census_site){ e->addr, site, 0, 0 };
		ctx->nsites++;
	}
	s->count++;
	s->estimate += site ? weight : 1;
}

static void pool_count(struct census_ctx *ctx, const uint8_t *pool, uint64_t pool_addr,
		       uint32_t size, int nused)
{
	uint64_t pre = ctx->layout->preheader_flags;
	uint32_t last = CPY_GC_HEAD_SIZE + (pre ? CPY_PREHEADER_SIZE : 0);
	int i;

	for (i = 0; i < nused; i++) {
		const uint8_t *block = pool + ctx->offsets[i];
		uint32_t off;

		/* The first candidate whose type agrees with the offset it was found at wins. */
		for (off = 0; off <= last && off + 16 <= size; off += 16) {
			struct type_entry *e;

			if (!refcnt_plausible(load64(block + off)))
				continue;
			e = type_resolve(ctx, load64(block + off + CPY_OB_TYPE), 0);
			if (e && type_object_offset(e->flags, pre) == off) {
				e->count++;
				e->bytes += size;
				ctx->out->objects++;
				if (ctx->layout->site_of)
					site_note(ctx, e, pool_addr + ctx->offsets[i], size,
						  pool_addr);
				if (e->addr == ctx->layout->list_type && off + CPY_OB_SIZE + 8 <= size)
					list_check(ctx, pool_addr + ctx->offsets[i] + off,
						   load64(block + off + CPY_OB_SIZE));
				/* dictoffset is in [1, 2^24] here (census_type_check) */
				if (e->dictoffset > 0 && off + (uint64_t)e->dictoffset + 8 <= size &&
				    load64(block + off + e->dictoffset))
					ctx->instance_dicts++;
				break;
			}
		}
	}
}

static void pool_process(struct census_ctx *ctx, const uint8_t *copy, uint64_t addr)
{
	uint32_t size;
	int n;

	n = census_pool_used_blocks(copy, addr, ctx->layout->pool_size, ctx->layout->max_block,
				    &size, ctx->offsets);
	/* not a pool, or one that changed while it was copied: skipped */
	if (n == -EINVAL)
		return;
	ctx->pools++;
	if (n < 0) {
		ctx->torn++;
		return;
	}
	pool_count(ctx, copy, addr, size, n);
}

/* Scans npools consecutive pool-aligned slots starting at base (one chunk). */
static void chunk_scan(struct census_ctx *ctx, uint64_t base, uint32_t npools)
{
	uint32_t psize = ctx->layout->pool_size, max_block = ctx->layout->max_block;
	size_t got, nio = 0, i, done;
	struct iovec *local = ctx->local, *remote = ctx->remote;

	/* Headers first: much of an anonymous mapping may be no pool, or an empty one. */
	for (i = 0; i < npools; i++)
		remote[i] = (struct iovec){ (void *)(uintptr_t)(base + i * psize),
					    CPY_POOL_HEADER_SIZE };
	local[0] = (struct iovec){ ctx->headers, (size_t)npools * CPY_POOL_HEADER_SIZE };
	got = ctx_readv(ctx, local, 1, remote, npools) / CPY_POOL_HEADER_SIZE;

	for (i = 0; i < got; i++) {
		uint64_t addr = base + i * psize;
		struct pool_header h;

		memcpy(&h, ctx->headers + i * CPY_POOL_HEADER_SIZE, sizeof(h));
		if (!h.count || pool_header_check(&h, addr, psize, max_block) < 0)
			continue;
		/* contiguous pools are read with one iovec */
		if (nio && (uintptr_t)remote[nio - 1].iov_base + remote[nio - 1].iov_len == addr) {
			remote[nio - 1].iov_len += psize;
			local[nio - 1].iov_len += psize;
			continue;
		}
		remote[nio] = (struct iovec){ (void *)(uintptr_t)addr, psize };
		local[nio] = (struct iovec){ ctx->chunk + i * psize, psize };
		nio++;
	}
	if (!nio)
		return;

	done = ctx_readv(ctx, local, nio, remote, nio);
	for (i = 0; i < nio && done >= psize && !ctx->err; i++) {
		size_t len = remote[i].iov_len < done ? remote[i].iov_len : done;
		uint64_t addr = (uintptr_t)remote[i].iov_base;
		size_t off;

		for (off = 0; off + psize <= len && !ctx->err; off += psize)
			pool_process(ctx, (uint8_t *)local[i].iov_base + off, addr + off);
		done -= len;
	}
}

/* Whether the budget is spent; the first time, the census is marked cut short. */
static bool budget_spent(struct census_ctx *ctx)
{
	const struct census_layout *l = ctx->layout;
	uint64_t max_bytes = l->max_bytes ? l->max_bytes : CENSUS_MAX_BYTES_DEFAULT;
	double max_seconds = l->max_seconds > 0 ? l->max_seconds : CENSUS_MAX_SECONDS_DEFAULT;
	double spent;

	if (ctx->out->cut_short)
		return true;
	spent = ctx_elapsed(ctx);
	if (ctx->scanned < max_bytes && spent < max_seconds)
		return false;
	ctx->out->cut_short = true;
	ctx_corrupt(ctx, "census: cut short after %.1f s and %llu MiB of address space",
		    spent, (unsigned long long)(ctx->scanned >> 20));
	return true;
}

static void pools_scan(struct census_ctx *ctx)
{
	uint64_t psize = ctx->layout->pool_size;
	size_t m;

	for (m = 0; m < ctx->nmaps && !ctx->err; m++) {
		uint64_t addr = (ctx->maps[m].start + psize - 1) & ~(psize - 1);
		uint64_t end = ctx->maps[m].end & ~(psize - 1);

		if (!ctx->maps[m].pools)
			continue;
		for (; addr < end && !ctx->err; addr += CHUNK_SIZE) {
			uint64_t len = end - addr < CHUNK_SIZE ? end - addr : CHUNK_SIZE;

			if (budget_spent(ctx))
				return;
			chunk_scan(ctx, addr, len / psize);
			ctx->scanned += len;
		}
	}
	if (ctx->torn > TORN_MIN && ctx->torn > ctx->pools / TORN_SHARE)
		ctx_corrupt(ctx, "census: %llu of %llu pools inconsistent",
			    (unsigned long long)ctx->torn, (unsigned long long)ctx->pools);
}

static int count_compare(const void *a, const void *b)
{
	const struct census_count *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	return (x->type > y->type) - (x->type < y->type);
}

/* Orders sites as sites_births does: by type, then site. */
static int site_compare(const void *a, const void *b)
{
	const struct census_site *x = a, *y = b;

	if (x->type != y->type)
		return (x->type > y->type) - (x->type < y->type);
	return (x->site > y->site) - (x->site < y->site);
}

static int counts_build(struct census_ctx *ctx)
{
	struct census *out = ctx->out;
	size_t pos, spos, n = 0, nsites = 0;
	uint64_t key;
	void *slot;

	for (pos = 0; u64map_next(ctx->types, &pos, &key, &slot);) {
		const struct type_entry *e = slot;

		n += e->is_type && e->count;
		nsites += e->sites ? u64map_count(e->sites) : 0;
	}
	out->counts = calloc(n ? n : 1, sizeof(*out->counts));
	if (!out->counts)
		return -ENOMEM;
	if (nsites) {
		out->sites = calloc(nsites, sizeof(*out->sites));
		if (!out->sites)
			return -ENOMEM;
	}
	for (pos = 0; u64map_next(ctx->types, &pos, &key, &slot);) {
		const struct type_entry *e = slot;
		void *site;

		if (e->is_type && e->count)
			out->counts[out->n++] = (struct census_count){
				e->addr, e->count, e->bytes,
				e->addr == ctx->layout->dict_type ? ctx->instance_dicts : 0,
			};
		for (spos = 0; e->sites && u64map_next(e->sites, &spos, &key, &site);)
			out->sites[out->nsites++] = *(const struct census_site *)site;
	}
	qsort(out->counts, out->n, sizeof(*out->counts), count_compare);
	/* No sites, no array: qsort() may not be handed NULL, even for nothing. */
	if (out->nsites)
		qsort(out->sites, out->nsites, sizeof(*out->sites), site_compare);
	return 0;
}

static int ctx_init(struct census_ctx *ctx)
{
	int err = u64map_new(sizeof(struct type_entry), TYPES_MAX, &ctx->types);

	if (err)
		return err;
	ctx->chunk = malloc(CHUNK_SIZE);
	ctx->headers = malloc(CHUNK_POOLS_MAX * CPY_POOL_HEADER_SIZE);
	ctx->offsets = malloc(POOL_BLOCKS_MAX * sizeof(*ctx->offsets));
	ctx->local = calloc(CHUNK_POOLS_MAX, sizeof(*ctx->local));
	ctx->remote = calloc(CHUNK_POOLS_MAX, sizeof(*ctx->remote));
	if (!ctx->chunk || !ctx->headers || !ctx->offsets || !ctx->local || !ctx->remote)
		return -ENOMEM;
	return 0;
}

static void ctx_release(struct census_ctx *ctx)
{
	size_t pos = 0;
	uint64_t key;
	void *slot;

	while (ctx->types && u64map_next(ctx->types, &pos, &key, &slot))
		u64map_free(((struct type_entry *)slot)->sites);
	u64map_free(ctx->types);
	free(ctx->maps);
	free(ctx->chunk);
	free(ctx->headers);
	free(ctx->offsets);
	free(ctx->local);
	free(ctx->remote);
}

int census_run(pid_t pid, const struct census_layout *layout, struct census *out)
{
	struct census_ctx ctx = { .pid = pid, .layout = layout, .out = out };
	int err;

	memset(out, 0, sizeof(*out));
	if (pid <= 0 || !sizes_valid(layout->pool_size, layout->max_block))
		return -EINVAL;
	clock_gettime(CLOCK_MONOTONIC, &ctx.start);
	err = ctx_init(&ctx);
	if (err)
		goto cleanup;
	err = maps_load(&ctx);
	if (err)
		goto cleanup;
	pools_scan(&ctx);
	err = ctx.err;
	if (err)
		goto cleanup;
	err = counts_build(&ctx);
	if (err)
		goto cleanup;
	out->seconds = ctx_elapsed(&ctx);
cleanup:
	ctx_release(&ctx);
	if (err)
		census_free(out);
	return err;
}

void census_free(struct census *c)
{
	free(c->counts);
	free(c->sites);
	c->counts = NULL;
	c->sites = NULL;
	c->n = c->nsites = 0;
}
