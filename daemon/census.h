/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Counting the live objects of a running CPython process by type, from outside: the pymalloc
 * pools found in its anonymous mappings are copied with process_vm_readv and their used blocks
 * classified; objects outside pymalloc (over 512 bytes, or malloc'd by C code) are found on
 * the GC generation lists and among the items of the lists and tuples counted.
 */
#ifndef PYLEAK_CENSUS_H
#define PYLEAK_CENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Largest pool size accepted in a layout; bounds the per-pool scratch space. */
#define CENSUS_POOL_MAX 65536u

struct census_layout {
	uint32_t pool_size;      /* pymalloc pool: 4096 on 3.8/3.9, 16384 on 3.10+ */
	uint32_t max_block;      /* 512: larger objects come from malloc, not pymalloc */
	uint64_t preheader_flags;/* tp_flags bits that put 2 words before the GC header: 0 on <=3.10, 1<<4 on 3.11, (1<<3)|(1<<4) on 3.12+ */
	uint64_t list_type;      /* &PyList_Type: the longest lists are reported (what holds a leak), 0 = no */
	uint64_t dict_type;      /* &PyDict_Type: instance __dict__s are told apart, 0 = no */
	uint64_t tuple_type;     /* &PyTuple_Type: items followed, GC-untracked ones told apart */
	uint64_t str_type;       /* &PyUnicode_Type: variable-size despite tp_itemsize 0 */
	uint16_t str_ascii_data, str_compact_data;	/* a compact str's data: ASCII, other */
	/* The GC state: at gc_state, or (3.9+) at gc_state past the interpreter whose address
	 * is stored at gc_interp_ptr; gc_state 0: no GC walk. Offsets in it: generations (3, of
	 * gc_generation_size, head first), the permanent generation, collecting (int). */
	uint64_t gc_interp_ptr;
	uint64_t gc_state;
	uint32_t gc_generations, gc_generation_size, gc_permanent, gc_collecting;
	/* Optional: the allocation site of the pool block at block (its copy: size bytes, the
	 * object at off) and the allocations it stands for; 0 = none known.  Pool objects are
	 * then also tallied per (type, site); arg may keep state across the census's blocks. */
	uint64_t (*site_of)(void *arg, uint64_t block, const uint8_t *bytes, uint32_t size,
			    uint32_t off, double *weight);
	void *site_arg;
	/* Budget of one census (0: the defaults below): address space scanned, seconds spent.
	 * A census that runs out stops there, counts what it saw and says it was cut short.
	 * Its pool set takes max_bytes / pool_size / 8 bytes (2 MiB by default). */
	uint64_t max_bytes;
	double max_seconds;
};

#define CENSUS_MAX_BYTES_DEFAULT	(64ull << 30)
#define CENSUS_MAX_SECONDS_DEFAULT	5.0

#define CENSUS_TOP_LISTS 8

struct census_container { uint64_t addr; int64_t len; };

/* instance_dicts (dict only): objects that are the __dict__ of a counted instance (3.8-3.10
 * classes; 3.11+ keep attributes inline), which live and die with their owner. */
/* complete: every live heap object of the type was enumerable (census_count_complete()). */
struct census_count {
	uint64_t type; uint64_t count; uint64_t bytes; uint64_t instance_dicts; bool complete;
};

/* Objects of one type attributed to one site (site 0: no site known): count objects were
 * found, standing for estimate allocations (sampling). */
struct census_site { uint64_t type; uint64_t site; uint64_t count; double estimate; };

struct census {
	struct census_count *counts;  /* one per type object address, sorted by count desc */
	size_t n;
	struct census_site *sites;    /* with layout->site_of: per (type, site), by type then site */
	size_t nsites;
	uint64_t objects;
	double seconds;
	struct census_container lists[CENSUS_TOP_LISTS];  /* the longest lists, longest first */
	int nlists;
	bool cut_short;		/* the budget ran out: counts are of the part scanned */
	bool gc_walked;		/* every GC generation was followed to its end */
	/* Data that cannot be a live heap's (a type or list field out of range, most pools
	 * torn): how many times, and the last, in words. Such data is skipped, never used. */
	uint64_t corrupt;
	char corrupt_last[160];
};

/* Counts live objects by type; 0 or negative errno. */
int census_run(pid_t pid, const struct census_layout *layout, struct census *out);
void census_free(struct census *c);

/* Whether a copy of the CPY_POOL_HEADER_SIZE bytes at pool_addr (pool_size-aligned) can be a
 * live pymalloc pool's header: its block size, or -EINVAL. */
int census_pool_header_check(const uint8_t *hdr, uint64_t pool_addr, uint32_t pool_size,
			     uint32_t max_block);

/*
 * Validates a local copy of one pymalloc pool (pool_addr: its address in the target) and writes
 * the offsets of its used blocks, ascending, to offsets (room for pool_size / 16 entries) and the
 * block size to block_size. Returns the number of used blocks, -EINVAL if the header is not a
 * pool's, or -EAGAIN if the pool is inconsistent (its free list or count changed under the copy).
 */
int census_pool_used_blocks(const uint8_t *pool, uint64_t pool_addr, uint32_t pool_size,
			    uint32_t max_block, uint32_t *block_size, uint32_t *offsets);

/*
 * Checks one node of a GC generation list as read from the target (_gc_next, _gc_prev: flag
 * bits masked): 0 and *next if its prev is the node walked from, -EAGAIN if not (the list
 * changed under the read), -EINVAL if next cannot point to a node.
 */
int census_gc_node_check(const uint64_t node[2], uint64_t prev, uint64_t *next);

/* The bytes of a possible type object census_type_check() looks at. */
#define CENSUS_TYPE_LEN		296

struct census_type {
	uint64_t meta;		/* its own type: a type subclass if it is a type */
	uint64_t flags;
	int64_t dictoffset;	/* in [-CENSUS_TYPE_SIZE_MAX, basicsize - 8] */
	int64_t basicsize;	/* in [16, CENSUS_TYPE_SIZE_MAX] */
	int64_t itemsize;	/* in [0, CENSUS_TYPE_ITEMSIZE_MAX] */
};

#define CENSUS_TYPE_SIZE_MAX		(1ll << 24)
#define CENSUS_TYPE_ITEMSIZE_MAX	(1ll << 16)

/*
 * Validates a copy (len bytes) of a possible type object, its metatype aside: 0 and out filled
 * if it can be one, -EINVAL if it is none (not referenced, not ready, unnamed), -ERANGE if it
 * looks like one but a size, offset or its name pointer is out of range (why: which).
 */
int census_type_check(const uint8_t *raw, size_t len, struct census_type *out, const char **why);

/* How an object outside pymalloc is read (what census_object_parse() looks for). */
enum census_kind { CENSUS_KIND_OTHER, CENSUS_KIND_STR, CENSUS_KIND_LIST, CENSUS_KIND_TUPLE };

/* The bytes census_object_parse() needs at most: refcnt, type, size, then a str's state. */
#define CENSUS_OBJECT_LEN	40

struct census_object {
	uint64_t bytes;		/* its size, GC header and pre-header included */
	uint64_t items;		/* list or tuple: the address of its item pointers */
	uint64_t nitems;	/* how many: at most CENSUS_ITEMS_MAX */
};

#define CENSUS_ITEMS_MAX	(1ull << 44)	/* pointers that fit in user space */

/*
 * Reads the first len bytes of an object at addr outside pymalloc, whose type (ty, of kind; its
 * fields as census_type_check() accepts them) is known: 0 and out, -EINVAL if it cannot be a
 * live object (refcount, too short), -ERANGE if its item count is out of range (its size then
 * counts the header only).
 */
int census_object_parse(const uint8_t *raw, size_t len, uint64_t addr,
			const struct census_type *ty, enum census_kind kind,
			uint64_t preheader_flags, struct census_object *out);

#endif
