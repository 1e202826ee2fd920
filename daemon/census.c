// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Census of a running CPython heap, read from outside with process_vm_readv. The target keeps
 * running: every structure read is validated and a torn one is skipped, never trusted. Memory
 * use is bounded by one chunk of pools, the GC window cache, the queues, the capped hash tables
 * and the pool set (a bit per pool slot the byte budget covers).
 *
 * Three passes: the pool headers (which pools hold objects), the pools' used blocks, then the
 * objects outside pymalloc: GC-tracked ones from the generation lists, the others (and
 * GC-untracked tuples) as items of the lists and tuples counted, each counted once.
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

/* A GC list node as read: _gc_next, _gc_prev (low 2 bits are flags), then the object. */
#define GC_NODE_WORDS		5
#define GC_NODE_LEN		(GC_NODE_WORDS * 8)
#define GC_PTR_MASK		(~3ull)
/* Nodes followed per list at most (a real heap has tens of millions of objects), and walks of a
 * list torn by the running target before it is given up (counted so far, marked incomplete). */
#define GC_NODES_MAX		(1ull << 28)
#define GC_TRIES		3
/* GC nodes mostly sit near their neighbours: aligned windows of the target, cached. */
#define WIN_SIZE		16384u
#define WIN_COUNT		256u
/* Nodes between two looks at the budget. */
#define BUDGET_EVERY		4096u
/* Objects outside pymalloc counted per census: beyond, the rest goes uncounted and the census
 * says so (memory bound). */
#define OUTSIDE_MAX		(1u << 22)
/* Item arrays are queued in pieces of at most ITEMS_CHUNK pointers, ITEMS_QUEUE_MAX pieces at
 * most (beyond, the rest goes unwalked and the census says so), and drained during the pool
 * walk once ITEMS_DRAIN are queued. Reads take up to IOV_BATCH pieces or objects at once. */
#define ITEMS_CHUNK		8192u
#define ITEMS_QUEUE_MAX		(1u << 22)
#define ITEMS_DRAIN		4096u
#define IOV_BATCH		CHUNK_POOLS_MAX
#define BUF_SIZE		(ITEMS_CHUNK * 8 * 16)

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
	int64_t basicsize, itemsize;	/* checked: census_type_check() */
	struct u64map *sites;	/* site -> struct census_site, when the layout has site_of */
	bool is_type;
};

struct mapping {
	uint64_t start;
	uint64_t end;
	bool pools;		/* private, writable, anonymous: where pymalloc arenas live */
	/* Anonymous, or the interpreter's own writable data: where objects are read. A file the
	 * target serves (FUSE) could block process_vm_readv, and the daemon's loop with it. */
	bool objects;
	bool writable;
	uint64_t dev, inode;	/* the file mapped, inode 0: none */
	uint64_t slot0;		/* pools: the pool set's bit of its first aligned pool slot */
};

/* A cached window of target memory for the GC walk; [lo, hi) holds valid bytes. */
struct window {
	uint64_t base;
	uint64_t lo;
	uint64_t hi;
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
	uint64_t scanned;	/* bytes of address space scanned, and read outside pools */
	/* Pools with objects (header pass), one bit per pool slot of the pool mappings in scan
	 * order: their objects are counted by the pool walk. Only the slots the byte budget lets
	 * the header pass scan have a bit: a hostile heap cannot grow it. */
	uint64_t *poolset;
	uint64_t poolset_bits;
	uint64_t indexed;	/* slots the header pass scanned: the pool walk goes no further */
	struct u64map *outside;	/* objects outside pymalloc, counted or queued */
	bool referents_cut;	/* some of them were not: a memory bound was reached */
	struct window *wins;
	uint8_t *win_data;
	struct census_container *items;	/* item arrays to read: address, pointers */
	size_t nitems, items_room;
	uint64_t *refs;		/* objects outside pymalloc whose header is to be read */
	size_t nrefs, refs_room;
	uint8_t *buf;		/* what the queues read (BUF_SIZE) */
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

int census_pool_header_check(const uint8_t *hdr, uint64_t pool_addr, uint32_t pool_size,
			     uint32_t max_block)
{
	struct pool_header h;

	if (!sizes_valid(pool_size, max_block) || (pool_addr & (pool_size - 1)))
		return -EINVAL;
	memcpy(&h, hdr, sizeof(h));
	return pool_header_check(&h, pool_addr, pool_size, max_block);
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

/* The pool set's bit of the pool slot at addr (pool-aligned), or -1 if it has none. */
static int64_t poolset_bit(const struct census_ctx *ctx, uint64_t addr)
{
	const struct mapping *m = maps_find(ctx, addr);
	uint64_t psize = ctx->layout->pool_size, bit;

	if (!m || !m->pools)
		return -1;
	bit = m->slot0 + (addr - ((m->start + psize - 1) & ~(psize - 1))) / psize;
	return bit < ctx->poolset_bits ? (int64_t)bit : -1;
}

static bool poolset_has(const struct census_ctx *ctx, uint64_t addr)
{
	int64_t bit = poolset_bit(ctx, addr & ~(uint64_t)(ctx->layout->pool_size - 1));

	return bit >= 0 && (ctx->poolset[bit / 64] & (1ull << (bit % 64)));
}

static uint64_t budget_bytes(const struct census_layout *l)
{
	return l->max_bytes ? l->max_bytes : CENSUS_MAX_BYTES_DEFAULT;
}

/*
 * Numbers the pool slots of the pool mappings in scan order and allocates the pool set's bits
 * for those the header pass can reach: the byte budget's worth and the chunk that its last look
 * at the budget lets through (2 MiB for the default 64 GiB of 4 KiB pools).
 */
static int poolset_init(struct census_ctx *ctx)
{
	uint64_t psize = ctx->layout->pool_size, slots = 0, cap;
	size_t m;

	for (m = 0; m < ctx->nmaps; m++) {
		uint64_t start = (ctx->maps[m].start + psize - 1) & ~(psize - 1);
		uint64_t end = ctx->maps[m].end & ~(psize - 1);

		ctx->maps[m].slot0 = slots;
		if (ctx->maps[m].pools && end > start)
			slots += (end - start) / psize;
	}
	cap = budget_bytes(ctx->layout) / psize + CHUNK_POOLS_MAX;
	ctx->poolset_bits = slots < cap ? slots : cap;
	ctx->poolset = calloc(ctx->poolset_bits / 64 + 1, sizeof(*ctx->poolset));
	return ctx->poolset ? 0 : -ENOMEM;
}

/* Whether [addr, addr + len) lies in one mapping objects are read from. */
static bool maps_objects(const struct census_ctx *ctx, uint64_t addr, uint64_t len)
{
	const struct mapping *m = maps_find(ctx, addr);

	return m && m->objects && len <= m->end - addr;
}

/* *v (*room elements of size bytes, 0: none yet) reallocated to twice as many, or first: the
 * new array (*room updated), or NULL (v unchanged) on no memory. */
static void *array_grow(void *v, size_t *room, size_t size, size_t first)
{
	size_t n = *room ? *room * 2 : first;
	void *grown = realloc(v, n * size);

	if (grown)
		*room = n;
	return grown;
}

/* Marks the mappings objects are read from: the interpreter's is the file holding its static
 * types (the first the layout knows). */
static void maps_objects_mark(struct census_ctx *ctx)
{
	const struct census_layout *l = ctx->layout;
	uint64_t anchor = l->tuple_type ?: l->list_type ?: l->str_type ?: l->dict_type;
	const struct mapping *interp = maps_find(ctx, anchor);
	uint64_t dev = interp ? interp->dev : 0, inode = interp ? interp->inode : 0;
	size_t i;

	for (i = 0; i < ctx->nmaps; i++) {
		struct mapping *m = &ctx->maps[i];

		m->objects = !m->inode || (inode && m->writable && m->inode == inode &&
					   m->dev == dev);
	}
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
			struct mapping *grown = array_grow(ctx->maps, &room, sizeof(*grown), 256);

			if (!grown) {
				ret = -ENOMEM;
				break;
			}
			ctx->maps = grown;
		}
		ctx->maps[ctx->nmaps++] = (struct mapping){
			.start = m.start,
			.end = m.end,
			/* arenas are mmap'd anonymous: [heap], [stack] and files hold none */
			.pools = m.perms[1] == 'w' && m.perms[3] == 'p' && m.inode == 0 &&
				 (!m.path[0] || !strncmp(m.path, "[anon:", 6)),
			.writable = m.perms[1] == 'w',
			.dev = (uint64_t)m.dev_major << 32 | m.dev_minor,
			.inode = m.inode,
		};
	}
	procfs_maps_close(maps);
	if (ret < 0)
		return ret;
	maps_objects_mark(ctx);
	return 0;
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
	t->basicsize = ty.basicsize;
	t->itemsize = ty.itemsize;
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

/* The walk of objects outside pymalloc reached a memory bound: the rest goes uncounted. */
static void referents_cut(struct census_ctx *ctx)
{
	if (!ctx->referents_cut)
		ctx_corrupt(ctx, "census: more than %u objects or %u item arrays outside pymalloc",
			    OUTSIDE_MAX, ITEMS_QUEUE_MAX);
	ctx->referents_cut = true;
}

/*
 * An item of a counted container: queued for counting if it is outside the pools with objects
 * (whose blocks the pool walk counts) and new. The outside map is what makes each object
 * outside pymalloc counted once, found by the GC walk or as an item.
 */
static void referent_note(struct census_ctx *ctx, uint64_t addr)
{
	uint64_t *grown;
	void *slot;
	int ret;

	if (addr < USER_ADDR_MIN || addr >= USER_ADDR_MAX || (addr & 7) || poolset_has(ctx, addr) ||
	    u64map_lookup(ctx->outside, addr) || !maps_objects(ctx, addr, 8))
		return;
	if (ctx->nrefs == ctx->refs_room) {
		grown = array_grow(ctx->refs, &ctx->refs_room, sizeof(*grown), 1024);
		if (!grown) {
			ctx->err = -ENOMEM;
			return;
		}
		ctx->refs = grown;
	}
	ret = u64map_insert(ctx->outside, addr, &slot);
	if (ret == -E2BIG) {
		referents_cut(ctx);
		return;
	}
	if (ret < 0) {
		ctx->err = ret;
		return;
	}
	ctx->refs[ctx->nrefs++] = addr;
}

/*
 * Queues the item array of a container (n pointers at addr), in pieces of at most ITEMS_CHUNK
 * pointers. The array must lie in one mapping: that bounds a forged length by the mapping.
 */
static void items_push(struct census_ctx *ctx, uint64_t owner, uint64_t addr, uint64_t n)
{
	const struct mapping *m;
	struct census_container *grown;

	if (!n)
		return;
	m = (addr & 7) ? NULL : maps_find(ctx, addr);
	if (!m || !m->objects || n > (m->end - addr) / 8) {
		ctx_corrupt(ctx, "census: items out of range in container at %#llx",
			    (unsigned long long)owner);
		return;
	}
	for (; n; ) {
		uint64_t piece = n < ITEMS_CHUNK ? n : ITEMS_CHUNK;

		if (ctx->nitems == ctx->items_room) {
			/* doubled past the queue's bound */
			if (ctx->items_room > ITEMS_QUEUE_MAX / 2) {
				referents_cut(ctx);
				return;
			}
			grown = array_grow(ctx->items, &ctx->items_room, sizeof(*grown), 1024);
			if (!grown) {
				ctx->err = -ENOMEM;
				return;
			}
			ctx->items = grown;
		}
		ctx->items[ctx->nitems++] = (struct census_container){ addr, (int64_t)piece };
		addr += piece * 8;
		n -= piece;
	}
}

/* A list's length is noted if it can be one (torn or forged ones are reported), its items
 * queued. */
static void list_check(struct census_ctx *ctx, uint64_t addr, uint64_t len, uint64_t items)
{
	if (len > LIST_LEN_MAX) {
		ctx_corrupt(ctx, "census: ob_size out of range in list at %#llx",
			    (unsigned long long)addr);
		return;
	}
	list_note(ctx->out, addr, (int64_t)len);
	items_push(ctx, addr, items, len);
}

/* A tuple in a pool block (len bytes of it copied): its items are in the copy. */
static void tuple_items_note(struct census_ctx *ctx, const uint8_t *obj, uint32_t len)
{
	uint64_t n = load64(obj + CPY_OB_SIZE), i;

	for (i = 0; i < n && CPY_TUPLE_ITEMS + (i + 1) * 8 <= len; i++)
		referent_note(ctx, load64(obj + CPY_TUPLE_ITEMS + i * 8));
}

static void site_note(struct census_ctx *ctx, struct type_entry *e, uint64_t block,
		      const uint8_t *bytes, uint32_t size, uint32_t off)
{
	double weight = 1;
	uint64_t site = ctx->layout->site_of(ctx->layout->site_arg, block, bytes, size, off,
					     &weight);
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
					site_note(ctx, e, pool_addr + ctx->offsets[i], block, size,
						  off);
				if (e->addr == ctx->layout->list_type &&
				    off + CPY_LIST_ITEMS + 8 <= size)
					list_check(ctx, pool_addr + ctx->offsets[i] + off,
						   load64(block + off + CPY_OB_SIZE),
						   load64(block + off + CPY_LIST_ITEMS));
				if (e->addr == ctx->layout->tuple_type)
					tuple_items_note(ctx, block + off, size - off);
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

/* Reads the headers of npools consecutive pool slots at base; returns how many were read. */
static size_t chunk_headers(struct census_ctx *ctx, uint64_t base, uint32_t npools)
{
	uint32_t psize = ctx->layout->pool_size, i;
	struct iovec local = { ctx->headers, (size_t)npools * CPY_POOL_HEADER_SIZE };

	for (i = 0; i < npools; i++)
		ctx->remote[i] = (struct iovec){ (void *)(uintptr_t)(base + i * psize),
						 CPY_POOL_HEADER_SIZE };
	return ctx_readv(ctx, &local, 1, ctx->remote, npools) / CPY_POOL_HEADER_SIZE;
}

/* Notes the pools of npools slots at base that hold objects. */
static void chunk_index(struct census_ctx *ctx, uint64_t base, uint32_t npools)
{
	uint32_t psize = ctx->layout->pool_size;
	size_t got = chunk_headers(ctx, base, npools), i;
	int64_t bit = poolset_bit(ctx, base);

	for (i = 0; i < got && bit >= 0 && (uint64_t)bit + i < ctx->poolset_bits; i++) {
		uint64_t addr = base + i * psize, b = bit + i;
		struct pool_header h;

		memcpy(&h, ctx->headers + i * CPY_POOL_HEADER_SIZE, sizeof(h));
		if (h.count && pool_header_check(&h, addr, psize, ctx->layout->max_block) >= 0)
			ctx->poolset[b / 64] |= 1ull << (b % 64);
	}
}

/* Scans npools consecutive pool-aligned slots starting at base (one chunk). */
static void chunk_scan(struct census_ctx *ctx, uint64_t base, uint32_t npools)
{
	uint32_t psize = ctx->layout->pool_size, max_block = ctx->layout->max_block;
	size_t got, nio = 0, i, done;
	struct iovec *local = ctx->local, *remote = ctx->remote;

	/* Headers first: much of an anonymous mapping may be no pool, or an empty one. */
	got = chunk_headers(ctx, base, npools);

	for (i = 0; i < got; i++) {
		uint64_t addr = base + i * psize;
		struct pool_header h;

		memcpy(&h, ctx->headers + i * CPY_POOL_HEADER_SIZE, sizeof(h));
		/* a pool new since the header pass: its objects may be counted as outside ones */
		if (!h.count || pool_header_check(&h, addr, psize, max_block) < 0 ||
		    !poolset_has(ctx, addr))
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

/* Whether the budget (its time only: !bytes) is spent; the first time, the census is marked
 * cut short. */
static bool over_budget(struct census_ctx *ctx, bool bytes)
{
	const struct census_layout *l = ctx->layout;
	double max_seconds = l->max_seconds > 0 ? l->max_seconds : CENSUS_MAX_SECONDS_DEFAULT;
	double spent;

	if (ctx->out->cut_short && bytes)
		return true;
	spent = ctx_elapsed(ctx);
	if ((!bytes || ctx->scanned < budget_bytes(l)) && spent < max_seconds)
		return false;
	if (!ctx->out->cut_short)
		ctx_corrupt(ctx, "census: cut short after %.1f s and %llu MiB of address space",
			    spent, (unsigned long long)(ctx->scanned >> 20));
	ctx->out->cut_short = true;
	return true;
}

static bool budget_spent(struct census_ctx *ctx)
{
	return over_budget(ctx, true);
}

static void referents_drain(struct census_ctx *ctx);

/*
 * Runs one pass over the pool slots of the anonymous mappings, a chunk at a time. The header
 * pass (index) scans the address space within the budget; the pool pass copies the pools it
 * found, within the time budget (even when the header pass ran out of bytes: what it found is
 * counted), and drains the item queue as it goes (memory bound).
 */
static void pools_pass(struct census_ctx *ctx, bool index)
{
	uint64_t psize = ctx->layout->pool_size;
	size_t m;

	for (m = 0; m < ctx->nmaps && !ctx->err; m++) {
		uint64_t start = (ctx->maps[m].start + psize - 1) & ~(psize - 1), addr = start;
		uint64_t end = ctx->maps[m].end & ~(psize - 1);

		if (!ctx->maps[m].pools)
			continue;
		for (; addr < end && !ctx->err; addr += CHUNK_SIZE) {
			uint64_t len = end - addr < CHUNK_SIZE ? end - addr : CHUNK_SIZE;
			uint64_t slot = ctx->maps[m].slot0 + (addr - start) / psize;

			if (index ? budget_spent(ctx) :
				    slot >= ctx->indexed || over_budget(ctx, false))
				return;
			if (!index) {
				chunk_scan(ctx, addr, len / psize);
				if (ctx->nitems >= ITEMS_DRAIN)
					referents_drain(ctx);
				continue;
			}
			chunk_index(ctx, addr, len / psize);
			ctx->scanned += len;
			ctx->indexed = slot + len / psize;
		}
	}
}

static void pools_scan(struct census_ctx *ctx)
{
	pools_pass(ctx, true);
	if (ctx->err)
		return;
	pools_pass(ctx, false);
	if (ctx->torn > TORN_MIN && ctx->torn > ctx->pools / TORN_SHARE)
		ctx_corrupt(ctx, "census: %llu of %llu pools inconsistent",
			    (unsigned long long)ctx->torn, (unsigned long long)ctx->pools);
}

int census_object_parse(const uint8_t *raw, size_t len, uint64_t addr,
			const struct census_type *ty, enum census_kind kind,
			uint64_t preheader_flags, struct census_object *out)
{
	uint64_t n, unit = ty->itemsize;

	memset(out, 0, sizeof(*out));
	if (len < CPY_OB_SIZE + 8 || !refcnt_plausible(load64(raw)) ||
	    (kind == CENSUS_KIND_LIST && len < CPY_LIST_ITEMS + 8))
		return -EINVAL;
	out->bytes = ty->basicsize + type_object_offset(ty->flags, preheader_flags);
	n = load64(raw + CPY_OB_SIZE);
	if (kind == CENSUS_KIND_STR) {
		uint32_t state;

		if (len < CPY_STR_STATE + 4)
			return -EINVAL;
		/* the length, then one character more (the terminator), of 1, 2 or 4 bytes */
		memcpy(&state, raw + CPY_STR_STATE, sizeof(state));
		unit = (state >> CPY_STR_KIND_SHIFT) & CPY_STR_KIND_MASK;
		if (unit != 1 && unit != 2 && unit != 4)
			return -ERANGE;
		n++;
	} else if (kind == CENSUS_KIND_OTHER) {
		/* fixed size: the word read as a size is its first field (a pointer, say) */
		if (!unit)
			return 0;
		if ((int64_t)n < 0)
			n = -n;		/* an int's size carries its sign */
	}
	if (n > CENSUS_ITEMS_MAX)
		return -ERANGE;
	/* itemsize <= 2^16 (census_type_check), n <= 2^44: no overflow */
	out->bytes += n * unit;
	if (kind == CENSUS_KIND_LIST || kind == CENSUS_KIND_TUPLE) {
		out->items = kind == CENSUS_KIND_LIST ? load64(raw + CPY_LIST_ITEMS)
						      : addr + CPY_TUPLE_ITEMS;
		out->nitems = n;
	}
	return 0;
}

/* Counts the object outside pymalloc at addr (len bytes of it read) and queues its items. */
static void referent_count(struct census_ctx *ctx, uint64_t addr, const uint8_t *raw, size_t len)
{
	const struct census_layout *l = ctx->layout;
	struct census_object obj;
	struct census_type ty;
	struct type_entry *e;
	enum census_kind kind;
	int ret;

	if (len < CPY_OB_TYPE + 8)
		return;
	e = type_resolve(ctx, load64(raw + CPY_OB_TYPE), 0);
	if (!e)
		return;
	kind = e->addr == l->str_type ? CENSUS_KIND_STR : e->addr == l->list_type ? CENSUS_KIND_LIST :
	       e->addr == l->tuple_type ? CENSUS_KIND_TUPLE : CENSUS_KIND_OTHER;
	ty = (struct census_type){ .flags = e->flags, .basicsize = e->basicsize,
				   .itemsize = e->itemsize };
	ret = census_object_parse(raw, len, addr, &ty, kind, l->preheader_flags, &obj);
	if (ret == -EINVAL)
		return;
	/* an object with a forged size is counted, by its header, and its items are not read */
	if (ret == -ERANGE)
		ctx_corrupt(ctx, "census: size out of range in %s at %#llx",
			    kind == CENSUS_KIND_OTHER ? "object" : kind == CENSUS_KIND_STR ? "str" :
			    kind == CENSUS_KIND_LIST ? "list" : "tuple", (unsigned long long)addr);
	e->count++;
	e->bytes += obj.bytes;
	ctx->out->objects++;
	if (ret)
		return;
	if (kind == CENSUS_KIND_LIST)
		list_check(ctx, addr, obj.nitems, obj.items);
	else
		items_push(ctx, addr, obj.items, obj.nitems);
}

/*
 * Reads n pieces of target memory into ctx->buf, back to back (the caller keeps them within
 * BUF_SIZE); returns how many were read whole. The one after them, if any, could not be read.
 */
static size_t batch_read(struct census_ctx *ctx, const struct iovec *remote, size_t n)
{
	struct iovec local = { ctx->buf, 0 };
	size_t i, got, whole = 0;

	for (i = 0; i < n; i++)
		local.iov_len += remote[i].iov_len;
	got = ctx_readv(ctx, &local, 1, remote, n);
	ctx->scanned += got;
	for (i = 0; i < n && got >= remote[i].iov_len; i++, whole++)
		got -= remote[i].iov_len;
	return whole;
}

/* Reads and counts up to IOV_BATCH queued objects (the last ones queued). */
static void refs_batch(struct census_ctx *ctx)
{
	size_t lo = ctx->nrefs > IOV_BATCH ? ctx->nrefs - IOV_BATCH : 0, n = 0, i, whole, off = 0;
	struct iovec *remote = ctx->remote;
	uint64_t *addr = ctx->refs + lo;

	for (i = 0; i < ctx->nrefs - lo; i++) {
		const struct mapping *m = maps_find(ctx, addr[i]);

		/* read up to the end of the object's mapping (referent_note found one) */
		if (!m)
			continue;
		addr[n] = addr[i];
		remote[n++] = (struct iovec){ (void *)(uintptr_t)addr[i],
			m->end - addr[i] < CENSUS_OBJECT_LEN ? m->end - addr[i] : CENSUS_OBJECT_LEN };
	}
	ctx->nrefs = lo;
	while (n && !ctx->err) {
		whole = batch_read(ctx, remote, n);
		for (i = 0, off = 0; i < whole; off += remote[i].iov_len, i++)
			referent_count(ctx, addr[i], ctx->buf + off, remote[i].iov_len);
		/* the one that failed is dropped (freed meanwhile), the rest read again */
		whole += whole < n;
		memmove(remote, remote + whole, (n - whole) * sizeof(*remote));
		memmove(addr, addr + whole, (n - whole) * sizeof(*addr));
		n -= whole;
	}
}

/* Reads the last queued item arrays (up to IOV_BATCH pieces, BUF_SIZE bytes) and notes the
 * items. Only referent_count() queues items, and it is not called from here. */
static void items_batch(struct census_ctx *ctx)
{
	struct iovec *remote = ctx->remote;
	size_t n = 0, bytes = 0, i, j, whole, off;

	while (ctx->nitems && n < IOV_BATCH &&
	       bytes + ctx->items[ctx->nitems - 1].len * 8 <= BUF_SIZE) {
		const struct census_container *c = &ctx->items[--ctx->nitems];

		remote[n++] = (struct iovec){ (void *)(uintptr_t)c->addr, (size_t)c->len * 8 };
		bytes += c->len * 8;
	}
	while (n && !ctx->err) {
		whole = batch_read(ctx, remote, n);
		for (i = 0, off = 0; i < whole; off += remote[i].iov_len, i++)
			for (j = 0; j < remote[i].iov_len / 8; j++)
				referent_note(ctx, load64(ctx->buf + off + j * 8));
		whole += whole < n;
		memmove(remote, remote + whole, (n - whole) * sizeof(*remote));
		n -= whole;
	}
}

/* Counts what the queues hold, and what that queues in turn, within the budget. */
static void referents_drain(struct census_ctx *ctx)
{
	while ((ctx->nrefs || ctx->nitems) && !ctx->err) {
		/* the census is then marked cut short: what is queued goes uncounted */
		if (budget_spent(ctx)) {
			ctx->nrefs = ctx->nitems = 0;
			return;
		}
		if (ctx->nrefs)
			refs_batch(ctx);
		else
			items_batch(ctx);
	}
}

int census_gc_node_check(const uint64_t node[2], uint64_t prev, uint64_t *next)
{
	if ((node[1] & GC_PTR_MASK) != prev)
		return -EAGAIN;
	*next = node[0] & GC_PTR_MASK;
	if (*next < USER_ADDR_MIN || *next >= USER_ADDR_MAX || (*next & 7))
		return -EINVAL;
	return 0;
}

/* Loads the aligned window holding [node, node + GC_NODE_LEN), clipped to node's mapping. */
static int window_load(struct census_ctx *ctx, struct window *win, uint8_t *data, uint64_t base,
		       uint64_t node)
{
	const struct mapping *m = maps_find(ctx, node);
	uint64_t lo, hi;

	win->hi = 0;
	if (!m || node + GC_NODE_LEN > m->end)
		return -EFAULT;
	lo = base > m->start ? base : m->start;
	hi = base + WIN_SIZE < m->end ? base + WIN_SIZE : m->end;
	ctx->scanned += hi - lo;
	if (ctx_read(ctx, lo, data + (lo - base), hi - lo))
		return -EFAULT;
	win->base = base;
	win->lo = lo;
	win->hi = hi;
	return 0;
}

/* A node's words, from the window cache (fresh: read directly). */
static int gc_node_read(struct census_ctx *ctx, uint64_t node, uint64_t w[GC_NODE_WORDS],
			bool fresh)
{
	uint64_t base = node & ~(uint64_t)(WIN_SIZE - 1);
	size_t slot = (base / WIN_SIZE) & (WIN_COUNT - 1);
	struct window *win = &ctx->wins[slot];
	uint8_t *data = ctx->win_data + slot * WIN_SIZE;

	if (!maps_objects(ctx, node, GC_NODE_LEN))
		return -EFAULT;
	if (fresh || node + GC_NODE_LEN > base + WIN_SIZE)
		return ctx_read(ctx, node, w, GC_NODE_LEN);
	if ((win->base != base || node < win->lo || node + GC_NODE_LEN > win->hi) &&
	    window_load(ctx, win, data, base, node))
		return -EFAULT;
	memcpy(w, data + (node - base), GC_NODE_LEN);
	return 0;
}

/*
 * Follows one generation's circular list from its head, queueing the objects outside the pools
 * with objects. Each node's _gc_prev must be the node before it, so the walk is a simple path
 * while the memory holds still (a node seen twice would need its predecessor seen twice, back
 * to the head, which ends the walk); a target rewriting it under the walk meets GC_NODES_MAX
 * and the time budget. 0, -EAGAIN (torn: the target changed it), or another negative errno.
 */
static int gc_list_walk(struct census_ctx *ctx, uint64_t head)
{
	uint64_t w[GC_NODE_WORDS], prev = head, node, next, n = 0;
	int ret;

	if (gc_node_read(ctx, head, w, true))
		return -EFAULT;
	node = w[0] & GC_PTR_MASK;
	while (node != head) {
		if (ctx->err)
			return ctx->err;
		if (++n > GC_NODES_MAX) {
			ctx_corrupt(ctx, "census: a GC list longer than %llu nodes",
				    (unsigned long long)GC_NODES_MAX);
			return -ELOOP;
		}
		if (!(n % BUDGET_EVERY) && budget_spent(ctx))
			return -ETIME;
		ret = gc_node_read(ctx, node, w, false) ?: census_gc_node_check(w, prev, &next);
		/* a stale window may disagree where the target does not: read the node itself */
		if (ret)
			ret = gc_node_read(ctx, node, w, true) ?: census_gc_node_check(w, prev, &next);
		/* unreadable, or not linked back: the target changed the list under the walk */
		if (ret)
			return ret == -EINVAL ? ret : -EAGAIN;
		referent_note(ctx, node + CPY_GC_HEAD_SIZE);
		prev = node;
		node = next;
	}
	return 0;
}

/* The GC state's address: 0, or -ENOENT if there is none to walk. */
static int gc_state_find(struct census_ctx *ctx, uint64_t *gc)
{
	const struct census_layout *l = ctx->layout;
	uint64_t interp;

	if (!l->gc_state)
		return -ENOENT;
	*gc = l->gc_state;
	if (!l->gc_interp_ptr)
		return 0;
	if (ctx_read(ctx, l->gc_interp_ptr, &interp, sizeof(interp)) ||
	    !maps_objects(ctx, interp, 1) ||
	    interp + l->gc_state >= USER_ADDR_MAX)
		return -ENOENT;
	*gc = interp + l->gc_state;
	return 0;
}

/*
 * Walks the three generations and the permanent one. A list torn by the running target is
 * walked again (objects already queued are not counted twice), GC_TRIES times at most; during
 * a collection _gc_prev holds refcount copies, so none is walked then. gc_walked says whether
 * every list was followed to its end.
 */
static void gc_walk(struct census_ctx *ctx)
{
	const struct census_layout *l = ctx->layout;
	uint64_t gc, head;
	int32_t collecting;
	bool whole = true;
	int i, try, ret = 0;

	if (gc_state_find(ctx, &gc) ||
	    !maps_objects(ctx, gc + l->gc_collecting, sizeof(collecting)) ||
	    ctx_read(ctx, gc + l->gc_collecting, &collecting, sizeof(collecting)) || collecting)
		return;
	for (i = 0; i < 4 && !ctx->err; i++) {
		head = gc + (i < 3 ? l->gc_generations + i * l->gc_generation_size : l->gc_permanent);
		for (try = 0; try < GC_TRIES; try++) {
			ret = gc_list_walk(ctx, head);
			if (ret != -EAGAIN)
				break;
			memset(ctx->wins, 0, WIN_COUNT * sizeof(*ctx->wins));
		}
		if (ret == -EINVAL)
			ctx_corrupt(ctx, "census: a GC list link out of range");
		whole &= !ret;
		referents_drain(ctx);
	}
	ctx->out->gc_walked = whole && !ctx->err && !ctx->out->cut_short;
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

/*
 * Whether every live heap object of the type was enumerable: fixed-size objects that fit a
 * pymalloc block are all in the pools; GC-tracked ones of any size are on the generation
 * lists, if every list was walked (tuples may be untracked). The rest (str, bytes, int, big
 * untracked tuples) is counted only as far as the items of lists and tuples reach.
 */
static bool type_complete(const struct census_ctx *ctx, const struct type_entry *e)
{
	const struct census_layout *l = ctx->layout;

	if (ctx->out->cut_short)
		return false;
	if (!e->itemsize && e->addr != l->str_type &&
	    type_object_offset(e->flags, l->preheader_flags) + (uint64_t)e->basicsize <=
	    l->max_block)
		return true;
	return (e->flags & CPY_TPFLAGS_HAVE_GC) && ctx->out->gc_walked && e->addr != l->tuple_type;
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
				type_complete(ctx, e),
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

	if (!err)
		err = u64map_new(0, OUTSIDE_MAX, &ctx->outside);
	if (err)
		return err;
	ctx->wins = calloc(WIN_COUNT, sizeof(*ctx->wins));
	ctx->win_data = malloc((size_t)WIN_COUNT * WIN_SIZE);
	ctx->buf = malloc(BUF_SIZE);
	ctx->chunk = malloc(CHUNK_SIZE);
	ctx->headers = malloc(CHUNK_POOLS_MAX * CPY_POOL_HEADER_SIZE);
	ctx->offsets = malloc(POOL_BLOCKS_MAX * sizeof(*ctx->offsets));
	ctx->local = calloc(CHUNK_POOLS_MAX, sizeof(*ctx->local));
	ctx->remote = calloc(CHUNK_POOLS_MAX, sizeof(*ctx->remote));
	if (!ctx->chunk || !ctx->headers || !ctx->offsets || !ctx->local || !ctx->remote ||
	    !ctx->wins || !ctx->win_data || !ctx->buf)
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
	free(ctx->poolset);
	u64map_free(ctx->outside);
	free(ctx->wins);
	free(ctx->win_data);
	free(ctx->buf);
	free(ctx->items);
	free(ctx->refs);
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
	err = maps_load(&ctx) ?: poolset_init(&ctx);
	if (err)
		goto cleanup;
	pools_scan(&ctx);
	referents_drain(&ctx);
	if (!ctx.err && !out->cut_short)
		gc_walk(&ctx);
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
