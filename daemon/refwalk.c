// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Breadth first over a target's containers.  The nodes array is both the queue (nodes[head..n)
 * are still to be expanded) and the parent links (each node names the index of the node it was
 * first reached from).  References are type-checked in batches, one readv of their headers
 * per PENDING_MAX, as most of them (a list's strs) are leaves that are only counted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "census.h"
#include "cpython.h"
#include "refwalk.h"
#include "u64map.h"

#define USER_ADDR_MIN		4096ull
#define USER_ADDR_MAX		(1ull << 47)
#define REFCNT_MAX		(1ull << 33)
#define NO_PARENT		UINT32_MAX
#define PENDING_MAX		1024u
/* Headers of pending references closer than RANGE_GAP are read as one range, of RANGE_MAX at
 * most: the scratch space is PENDING_MAX * (RANGE_GAP + 24) bytes. */
#define RANGE_GAP		256u
#define RANGE_MAX		(64u << 10)
#define CHUNK			512u	/* pointers or entries read at once */
#define ITEMS_MAX		(1u << 26)	/* items of one list, tuple or set followed */
#define TYPES_MAX		(1u << 16)
#define GROUPS_MAX		(1u << 16)
#define RETAINED_TYPES_MAX	4096u
#define TYPE_DEPTH_MAX		16
#define THREADS_MAX		256
#define FRAMES_MAX		1024
#define LOCALS_MAX		4096u
#define NAME_MAX_LEN		128
#define MEMO_KEYS		64
#define SLOTS_MAX		(1u << 16)	/* __slots__ of all classes */
#define TYPE_SLOTS_MAX		64u		/* of one class */
#define SLOTS_SPAN_MAX		4096u		/* bytes of an instance read for them */
#define FREEVARS_MAX		256u		/* a closure's cells named */
#define BLOCKLEN_MAX		64u		/* items in a deque's block */

struct node {
	uint64_t addr;
	uint64_t shape;		/* hash of the path's kinds, names and types, indices aside */
	uint64_t type;		/* as its header said when it was reached */
	uint64_t name;		/* str naming the edge, or 0 */
	uint64_t aux;		/* roots: owner; else the index */
	uint32_t parent;	/* NO_PARENT: a root */
	uint8_t edge;
	bool wanted;
};

struct tinfo {
	uint8_t kind;
	bool valid, heap, wanted;
	uint64_t flags;
	int64_t dictoffset, basicsize, itemsize;
	uint64_t cached_keys;	/* managed values' keys: read once, when needed */
	bool keys_read;
	uint8_t nslots;		/* __slots__ holding objects: w->slots[slot_first...] */
	uint32_t slot_first;
};

struct slot { uint64_t offset, name; };

struct ref {
	struct node n;
	uint64_t head[3];	/* refcount, type, size (a var-size object's, a str's length) */
};

struct group_val { uint64_t count; struct node first; };

struct retained_val { uint64_t count, bytes; };

/*
 * The retained-size graph, walked once the walk from the roots is complete: every object the
 * wanted containers (the owners) reach, once each, with its size (the malloc'd buffers of
 * builtin containers included), its refcount and the references to it found inside.  Vertex 0
 * stands for everything outside (an object referenced more often than from inside hangs from
 * it), vertex 1 for the owners together; the objects vertex 1 dominates are what the owners
 * retain: freeing them all would free those.
 */
#define DOM_VERTICES_MAX	(1u << 20)
#define DOM_EDGES_MAX		(4u << 20)
#define DOM_OUTSIDE		0u
#define DOM_OWNERS		1u
#define DOM_PASSES_MAX		64
/* Owners whose graph is walked: evenly spread over those reached; the figures per owner are
 * theirs, the totals scaled to all owners. */
#define DOM_SAMPLE_MAX		4096u
/* GC list nodes followed to find the owners there, all calls (census.c's bound). */
#define GC_NODES_MAX		(1ull << 28)
#define GC_PTR_MASK		(~3ull)
#define GC_LISTS		4	/* generations 0, 1, 2 and the permanent one */

/*
 * The owners found on the GC lists, when most wanted objects were reached from no root (kept
 * by reference cycles alone): the wanted objects on the generations' lists, every stride-th
 * one kept (the stride doubled, every other one dropped, when the sample is full).  A list is
 * followed while each node links back to the one before (census_gc_node_check()), up to the
 * node that was its last when it was started: the target appends to it meanwhile.
 */
struct gc_owner { uint64_t addr, type; };

struct gcscan {
	struct gc_owner *owners;	/* DOM_SAMPLE_MAX */
	uint32_t n;
	uint64_t stride, found, followed;
	uint64_t state;			/* the GC state's address */
	uint64_t prev, node, last;	/* where the list being followed is; node 0: not started */
	int list;			/* GC_LISTS: done */
	bool started;
};

struct vertex {
	uint64_t addr, type, size, refcnt;
	uint32_t in;		/* references from inside the graph */
	bool container, owner;
};

struct dom {
	struct vertex *v;
	uint32_t n, cap;
	uint32_t (*e)[2];	/* from, to */
	uint32_t ne, ecap;
	struct u64map *of;	/* address -> vertex (u32) */
	uint32_t head;		/* the next vertex to expand */
	uint32_t cur;		/* the vertex being expanded */
	bool started, done;
};

struct refwalk {
	struct refwalk_layout l;
	struct refwalk_limits lim;
	char wanted[NAME_MAX_LEN];
	struct node *nodes;
	uint32_t n, head, cap;
	bool roots_done;
	struct u64map *visited;	/* address -> node index (u32) */
	struct u64map *types;	/* type address -> struct tinfo */
	struct u64map *groups;	/* path shape -> struct group_val */
	struct slot *slots;
	uint32_t nslots;
	struct u64map *retained;	/* type -> struct retained_val: what the owners dominate */
	struct dom dom;
	uint64_t live;		/* the wanted objects as counted elsewhere (refwalk_expect()) */
	struct gcscan gcs;
	struct ref pending[PENDING_MAX];
	uint32_t npending;
	uint8_t scratch[PENDING_MAX * (RANGE_GAP + 24)];
	refwalk_readv_fn readv;
	void *arg;
	uint64_t cursor;	/* items of nodes[head] already followed: long lists span calls */
	uint64_t cursor_block;	/* a deque's: the block its item w->cursor is the first of */
	/* The last shared keys object read (class instances' attribute names), for this call:
	 * instances of one class share it. */
	uint64_t memo_keys;
	uint32_t memo_n;
	uint64_t memo_names[MEMO_KEYS];
	/* The last code object's free variable names: closures of one function share it. */
	uint64_t memo_code;
	uint32_t memo_nfree;
	uint64_t memo_free[FREEVARS_MAX];
	double call_start, call_seconds;
	uint64_t call_bytes;
	struct refwalk_stats st;
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool over_budget(const struct refwalk *w)
{
	return w->call_bytes > w->lim.max_bytes || mono() - w->call_start > w->call_seconds;
}

static bool user_addr(uint64_t addr, uint64_t len)
{
	return addr >= USER_ADDR_MIN && addr < USER_ADDR_MAX && len <= USER_ADDR_MAX - addr;
}

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static bool rd(struct refwalk *w, uint64_t addr, void *buf, size_t len)
{
	struct refwalk_iov v = { addr, buf, len };

	if (!user_addr(addr, len))
		return false;
	w->st.bytes += len;
	w->call_bytes += len;
	return w->readv(w->arg, &v, 1) == 1;
}

static bool rd64(struct refwalk *w, uint64_t addr, uint64_t *out)
{
	return rd(w, addr, out, sizeof(*out));
}

int refwalk_keys_parse(const struct cpython_offsets *o, const uint8_t *raw, size_t len,
		       uint64_t keys, struct refwalk_keys *out)
{
	uint64_t size, index_bytes, n;
	uint8_t kind = 0;

	if (len < REFWALK_KEYS_LEN || (uint64_t)o->dk_indices + 8 > len ||
	    (uint64_t)o->dk_nentries + 8 > len)
		return -EINVAL;
	n = load64(raw + o->dk_nentries);
	if (o->dk_size) {
		/* <= 3.10: dk_size slots, indices 1, 2, 4 or 8 bytes wide as the size needs */
		size = load64(raw + o->dk_size);
		if (size < 8 || size > (1ull << 30) || (size & (size - 1)))
			return -EINVAL;
		index_bytes = size * (size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffull ? 4 : 8);
	} else {
		uint8_t log2 = raw[o->dk_log2_size], log2ib = raw[o->dk_log2_index_bytes];

		kind = raw[o->dk_kind];
		if (log2 < 3 || log2 > 30 || log2ib < log2 || log2ib > log2 + 3)
			return -EINVAL;
		size = 1ull << log2;
		index_bytes = 1ull << log2ib;
	}
	if (n > size || n > REFWALK_ENTRIES_MAX)
		return -EINVAL;
	out->n = n;
	out->entries = keys + o->dk_indices + index_bytes;
	if (!o->dk_size && kind) {
		if (kind != o->dk_kind_unicode && kind != o->dk_kind_split)
			return -EINVAL;
		out->entry_size = o->dk_unicode_entry_size;
		out->key_off = 0;
	} else {
		out->entry_size = o->dk_entry_size;
		out->key_off = 8;	/* after the hash */
	}
	out->value_off = out->key_off + 8;
	/* The header, indices and entries (usable: two thirds of the slots), as allocated. */
	out->bytes = o->dk_indices + index_bytes + (size * 2 / 3) * out->entry_size;
	if (out->entry_size < out->value_off + 8 || !user_addr(out->entries, (uint64_t)n * out->entry_size))
		return -EINVAL;
	return 0;
}

/* A type's tp_name, NUL-terminated in buf (NAME_MAX_LEN + 1 bytes); false if unreadable. */
static bool type_name_read(struct refwalk *w, uint64_t name_ptr, char *buf)
{
	size_t got = 0, chunk;

	/* Chunks that do not cross 32-byte lines: a name near a mapping's end is still read. */
	while (got < NAME_MAX_LEN) {
		chunk = 32 - ((name_ptr + got) & 31);
		if (chunk > NAME_MAX_LEN - got)
			chunk = NAME_MAX_LEN - got;
		if (!rd(w, name_ptr + got, buf + got, chunk))
			return false;
		if (memchr(buf + got, '\0', chunk))
			break;
		got += chunk;
	}
	buf[NAME_MAX_LEN] = '\0';
	return true;
}

/* The __slots__ of a class that hold objects (T_OBJECT_EX members): PyMemberDefs follow the
 * type object, its metatype's tp_basicsize in; ob_size says how many. */
static void slots_read(struct refwalk *w, const uint8_t *raw, uint64_t type, struct tinfo *val)
{
	const struct cpython_offsets *o = w->l.o;
	uint8_t defs[TYPE_SLOTS_MAX * 64];
	uint64_t n = load64(raw + CPY_OB_SIZE), meta_size, i;

	if (!n || n > TYPE_SLOTS_MAX || o->member_size > 64 || !o->member_size ||
	    !rd64(w, load64(raw + CPY_OB_TYPE) + CPY_TP_BASICSIZE, &meta_size) ||
	    meta_size > CENSUS_TYPE_SIZE_MAX || !rd(w, type + meta_size, defs, n * o->member_size))
		return;
	val->slot_first = w->nslots;
	for (i = 0; i < n && w->nslots < SLOTS_MAX; i++) {
		const uint8_t *d = defs + i * o->member_size;
		int32_t mtype;
		int64_t off = (int64_t)load64(d + o->member_offset);

		memcpy(&mtype, d + o->member_type, sizeof(mtype));
		if (mtype != o->member_object_ex || off < 16 || off > val->basicsize - 8 || (off & 7))
			continue;
		if (!w->slots && !(w->slots = calloc(SLOTS_MAX, sizeof(*w->slots))))
			return;
		w->slots[w->nslots++] = (struct slot){ off, load64(d + o->member_name) };
		val->nslots++;
	}
}

/* What the object of type `type` is: its kind from the nearest builtin base, whether it is a
 * class instance, whether it is wanted.  NULL if no type can be there (cached as such). */
static const struct tinfo *tinfo_get(struct refwalk *w, uint64_t type)
{
	uint8_t raw[CENSUS_TYPE_LEN];
	struct census_type ct;
	struct tinfo *ti, val = { .kind = REFWALK_OPAQUE };
	char name[NAME_MAX_LEN + 1];
	const char *why;
	uint64_t t, meta_flags;
	int depth, k, ret;

	ti = u64map_lookup(w->types, type);
	if (ti)
		return ti->valid ? ti : NULL;
	if (rd(w, type, raw, sizeof(raw)) && !census_type_check(raw, sizeof(raw), &ct, &why) &&
	    (ct.meta == w->l.types[REFWALK_TYPE] ||
	     (rd64(w, ct.meta + CPY_TP_FLAGS, &meta_flags) && (meta_flags & CPY_TPFLAGS_TYPE_SUBCLASS)))) {
		val.valid = true;
		val.flags = ct.flags;
		val.heap = ct.flags & CPY_TPFLAGS_HEAPTYPE;
		val.dictoffset = ct.dictoffset;
		val.basicsize = ct.basicsize;
		val.itemsize = ct.itemsize;
		if (type_name_read(w, load64(raw + CPY_TP_NAME), name)) {
			const char *dot = strrchr(name, '.');

			val.wanted = !strcmp(dot ? dot + 1 : name, w->wanted);
			/* deque's type is static, named by no symbol in a stripped interpreter, or
			 * (3.12+) a heap type made by the module: found by its name. */
			if (!w->l.types[REFWALK_DEQUE] && !strcmp(name, "collections.deque"))
				w->l.types[REFWALK_DEQUE] = type;
		}
		if (val.heap)
			slots_read(w, raw, type, &val);
		for (t = type, depth = 0; t && depth < TYPE_DEPTH_MAX; depth++) {
			for (k = REFWALK_LIST; k < REFWALK_KINDS && w->l.types[k] != t; k++)
				;
			if (k < REFWALK_KINDS) {
				val.kind = k;
				break;
			}
			if (!rd64(w, t + w->l.o->tp_base, &t))
				break;
		}
	} else {
		w->st.corrupt++;
	}
	ret = u64map_insert(w->types, type, (void **)&ti);
	if (ret < 0)
		return NULL;
	*ti = val;
	return ti->valid ? ti : NULL;
}

/* Objects of these are expanded: the builtin containers, and class instances (attributes). */
static bool tinfo_followed(const struct tinfo *ti)
{
	return ti->heap || (ti->kind != REFWALK_OPAQUE && ti->kind != REFWALK_CODE &&
			    ti->kind != REFWALK_OBJECT);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 33);
}

/*
 * The shape of the path to n (of type `type`): what a user reads in it, so that objects kept
 * the same way (a million records' .name) make one group.  Names count where they are
 * attribute or variable names; a dict's keys and a sequence's indices do not.
 */
static uint64_t shape_of(const struct refwalk *w, const struct node *n, uint64_t type)
{
	uint64_t h = n->parent == NO_PARENT ? mix(n->aux, 1) : w->nodes[n->parent].shape;
	bool named = n->edge == REFWALK_EDGE_ATTRIBUTE || n->edge == REFWALK_EDGE_GLOBAL ||
		     n->edge == REFWALK_EDGE_LOCAL || n->edge == REFWALK_EDGE_SLOT;
	bool indexed = n->edge == REFWALK_EDGE_CLOSURE || n->edge == REFWALK_EDGE_DEFAULT;

	return mix(mix(mix(h, n->edge), named ? n->name : indexed ? n->aux : 0), type);
}

/* Wanted objects are grouped by the shape of their path. */
static void group_add(struct refwalk *w, const struct node *n)
{
	struct group_val *g;
	int ret;

	w->st.wanted++;
	ret = u64map_insert(w->groups, n->shape, (void **)&g);
	if (ret < 0) {
		w->st.cut = true;
		return;
	}
	if (ret == 1)
		g->first = *n;
	g->count++;
}

static int node_add(struct refwalk *w, const struct node *n)
{
	uint32_t *idx;
	int ret;

	if (w->n == w->lim.max_nodes) {
		w->st.cut = true;
		return 0;
	}
	if (w->n == w->cap) {
		uint32_t cap = w->cap ? w->cap * 2 : 4096;
		struct node *v;

		if (cap > w->lim.max_nodes)
			cap = w->lim.max_nodes;
		v = realloc(w->nodes, (size_t)cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		w->nodes = v;
		w->cap = cap;
	}
	ret = u64map_insert(w->visited, n->addr, (void **)&idx);
	if (ret < 0) {
		w->st.cut = true;
		return ret == -ENOMEM ? ret : 0;
	}
	if (ret == 0)
		return 0;
	*idx = w->n;
	w->nodes[w->n++] = *n;
	w->st.nodes++;
	return 0;
}

/* An object's size, roughly: its type's, its items' (var-size objects, list items, a str's
 * characters as if ASCII), its GC header; not the buffers it mallocs. */
static uint64_t size_of(const struct refwalk *w, const struct tinfo *ti, const uint64_t head[3],
			uint64_t type)
{
	uint64_t n = head[2] < ITEMS_MAX ? head[2] : 0, size = ti->basicsize;

	if (ti->kind == REFWALK_LIST)
		size += n * 8;
	else if (type == w->l.str_type)
		size = w->l.o->str_ascii_data + n + 1;
	else
		size += n * (uint64_t)ti->itemsize;	/* at most 2^26 * 2^16 */
	return size + (ti->flags & CPY_TPFLAGS_HAVE_GC ? CPY_GC_HEAD_SIZE : 0);
}

static void retained_add(struct refwalk *w, uint64_t type, uint64_t bytes)
{
	struct retained_val *v;

	if (u64map_insert(w->retained, type, (void **)&v) < 0) {
		w->st.retained_covered = false;
		return;
	}
	v->count++;
	v->bytes += bytes;
}

static bool dom_phase(const struct refwalk *w)
{
	return w->dom.started && !w->dom.done;
}

/* A vertex for the object at addr: its index, 0 if the graph is full (then not covered). */
static uint32_t vertex_add(struct refwalk *w, uint64_t addr, uint64_t type, bool container,
			   bool owner)
{
	struct dom *d = &w->dom;
	uint32_t *id;
	int ret;

	ret = u64map_insert(d->of, addr, (void **)&id);
	if (ret == 0)
		return *id;
	if (ret < 0 || d->n == DOM_VERTICES_MAX) {
		w->st.retained_covered = false;
		return DOM_OUTSIDE;	/* an id of 0 in the map: not a vertex */
	}
	if (d->n == d->cap) {
		uint32_t cap = d->cap * 2 < DOM_VERTICES_MAX ? d->cap * 2 : DOM_VERTICES_MAX;
		struct vertex *v = realloc(d->v, (size_t)cap * sizeof(*v));

		if (!v) {
			w->st.retained_covered = false;
			return DOM_OUTSIDE;
		}
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n] = (struct vertex){ .addr = addr, .type = type, .container = container,
				      .owner = owner };
	return *id = d->n++;
}

static void edge_add(struct refwalk *w, uint32_t from, uint32_t to)
{
	struct dom *d = &w->dom;

	if (d->ne == d->ecap) {
		uint32_t cap = d->ecap ? d->ecap * 2 : 4096;
		void *e;

		if (cap > DOM_EDGES_MAX)
			cap = DOM_EDGES_MAX;
		e = cap > d->ecap ? realloc(d->e, (size_t)cap * sizeof(*d->e)) : NULL;
		if (!e) {
			w->st.retained_covered = false;
			return;
		}
		d->e = e;
		d->ecap = cap;
	}
	d->e[d->ne][0] = from;
	d->e[d->ne++][1] = to;
	d->v[to].in++;
}

struct pend_order { uint64_t addr; uint32_t i; };

static int pend_cmp(const void *a, const void *b)
{
	const struct pend_order *x = a, *y = b;

	return (x->addr > y->addr) - (x->addr < y->addr);
}

/* One object's header alone: the smallest objects are 16 bytes, and one at a mapping's end
 * is read without its size. */
static bool head_read(struct refwalk *w, struct ref *r)
{
	if (rd(w, r->n.addr, r->head, 24))
		return true;
	r->head[2] = 0;
	return rd(w, r->n.addr, r->head, 16);
}

/*
 * Reads the pending references' headers into them (ok[i]: read).  Objects near each other (a
 * list's strs, made one after another) are read as one range: a batch costs a few reads of
 * the target's pages, not one per object.  A range that cannot be read (it spans a hole) is
 * read object by object.
 */
static void heads_read(struct refwalk *w, bool *ok)
{
	struct pend_order ord[PENDING_MAX];
	struct refwalk_iov v[PENDING_MAX];
	uint32_t first[PENDING_MAX + 1], np = w->npending, nr = 0, r, i, got;
	uint64_t end = 0, off = 0;

	for (i = 0; i < np; i++)
		ord[i] = (struct pend_order){ w->pending[i].n.addr, i };
	qsort(ord, np, sizeof(*ord), pend_cmp);
	for (i = 0; i < np; i++) {
		uint64_t a = ord[i].addr;

		if (!nr || a > end + RANGE_GAP || a + 24 - v[nr - 1].addr > RANGE_MAX) {
			if (nr)
				off += v[nr - 1].len = end - v[nr - 1].addr;
			first[nr] = i;
			v[nr++] = (struct refwalk_iov){ a, w->scratch + off, 0 };
			end = a;
		}
		if (a + 24 > end)
			end = a + 24;
	}
	if (!nr)
		return;
	v[nr - 1].len = end - v[nr - 1].addr;
	first[nr] = np;
	for (r = 0; r < nr; r++) {
		if (!user_addr(v[r].addr, v[r].len))
			continue;
		w->st.bytes += v[r].len;
		w->call_bytes += v[r].len;
	}
	for (r = 0; r < nr; ) {
		got = user_addr(v[r].addr, v[r].len) ? w->readv(w->arg, v + r, nr - r) : 0;
		for (; got > 0; got--, r++)
			for (i = first[r]; i < first[r + 1]; i++) {
				struct ref *p = &w->pending[ord[i].i];

				memcpy(p->head, (uint8_t *)v[r].buf + (ord[i].addr - v[r].addr), 24);
				ok[ord[i].i] = true;
			}
		if (r < nr) {
			for (i = first[r]; i < first[r + 1]; i++)
				ok[ord[i].i] = head_read(w, &w->pending[ord[i].i]);
			r++;
		}
	}
}

/* A reference found in the retained-size graph, from the vertex being expanded.  Classes and
 * modules are not expanded: many hold them, no instance retains one. */
static void dom_ref(struct refwalk *w, const struct ref *r, const struct tinfo *ti)
{
	bool container = tinfo_followed(ti) && ti->kind != REFWALK_TYPE &&
			 ti->kind != REFWALK_MODULE;
	uint32_t id = vertex_add(w, r->n.addr, r->head[1], container, false);
	struct vertex *v;
	uint64_t alloc;

	if (id == DOM_OUTSIDE)
		return;
	v = &w->dom.v[id];
	if (!v->refcnt) {
		v->refcnt = r->head[0];
		v->size = size_of(w, ti, r->head, r->head[1]);
		/* A bytearray's buffer: ob_alloc, after its header. */
		if (r->head[1] == w->l.bytearray_type && rd64(w, r->n.addr + 24, &alloc) &&
		    alloc < (1ull << 40))
			v->size += alloc;
		if (!tinfo_followed(ti) && ti->kind != REFWALK_CODE && (ti->flags & CPY_TPFLAGS_HAVE_GC))
			w->st.retained_opaque++;	/* what it holds is not known */
	}
	edge_add(w, w->dom.cur, id);
}

/* Type-checks the pending references, counts the wanted ones, queues the containers. */
static int pending_flush(struct refwalk *w)
{
	bool ok[PENDING_MAX] = { false };
	uint32_t i, np = w->npending;
	int err = 0;

	heads_read(w, ok);
	for (i = 0; i < np && !err; i++) {
		struct ref *r = &w->pending[i];
		const struct tinfo *ti;

		if (!ok[i] || r->head[0] < 1 || r->head[0] > REFCNT_MAX ||
		    !(ti = tinfo_get(w, r->head[1]))) {
			w->st.corrupt++;
			continue;
		}
		if (dom_phase(w)) {
			dom_ref(w, r, ti);
			continue;
		}
		w->st.objects++;
		r->n.shape = shape_of(w, &r->n, r->head[1]);
		r->n.type = r->head[1];
		if (!tinfo_followed(ti)) {
			w->st.opaque += ti->kind == REFWALK_OPAQUE;
			if (ti->wanted)
				group_add(w, &r->n);
			continue;
		}
		if (u64map_lookup(w->visited, r->n.addr))
			continue;
		r->n.wanted = ti->wanted;
		if (ti->wanted) {
			group_add(w, &r->n);
			w->st.owners++;
		}
		err = node_add(w, &r->n);
	}
	w->npending = 0;
	return err;
}

static int ref_add(struct refwalk *w, uint64_t addr, uint32_t parent, enum refwalk_edge edge,
		   uint64_t name, uint64_t aux)
{
	if (!addr)
		return 0;
	if (!user_addr(addr, 16) || (addr & 7)) {
		w->st.corrupt++;
		return 0;
	}
	/* Whether it was visited is asked once its type says it is a container: most are not. */
	w->pending[w->npending++] = (struct ref){ .n = { .addr = addr, .name = name, .aux = aux,
							  .parent = parent, .edge = edge } };
	return w->npending == PENDING_MAX ? pending_flush(w) : 0;
}

/* n pointers at addr, each a reference of edge (index: its position).  resumable: from
 * w->cursor on, and -EAGAIN if the budget runs out on the way, -EFAULT if the array cannot be
 * read (a list reallocated as it grows); the cursor says where. */
static int ptrs_add(struct refwalk *w, uint64_t addr, uint64_t n, uint32_t parent,
		    enum refwalk_edge edge, bool resumable)
{
	uint64_t buf[CHUNK], i, k, m;
	int err = 0;

	if (n > ITEMS_MAX) {
		w->st.cut = true;
		n = ITEMS_MAX;
	}
	for (i = resumable ? w->cursor : 0; i < n && !err; i += m) {
		m = n - i < CHUNK ? n - i : CHUNK;
		if (!rd(w, addr + i * 8, buf, m * 8)) {
			w->st.corrupt++;
			if (!resumable)
				break;
			w->cursor = i;
			return -EFAULT;
		}
		for (k = 0; k < m && !err; k++)
			err = ref_add(w, buf[k], parent, edge, 0, i + k);
		if (!err && resumable && ((i / CHUNK) & 15) == 15 && i + m < n && over_budget(w)) {
			w->cursor = i + m;
			return -EAGAIN;
		}
	}
	return err;
}

/* A list's items (size, at items, as its header was read); its array moves as it grows, so
 * a failed read is retried on the new one. */
static int list_refs(struct refwalk *w, uint64_t addr, uint32_t idx, uint64_t size,
		     uint64_t items)
{
	uint64_t f[2] = { size, items };	/* ob_size, then ob_item */
	int tries, err = 0;

	_Static_assert(CPY_LIST_ITEMS == CPY_OB_SIZE + 8, "ob_size, then ob_item");
	for (tries = 0; tries < 3; tries++) {
		if ((tries && !rd(w, addr + CPY_OB_SIZE, f, sizeof(f))) || (int64_t)f[0] < 0)
			return 0;
		err = ptrs_add(w, f[1], f[0], idx, REFWALK_EDGE_ITEM, true);
		if (err != -EFAULT)
			return err;
	}
	return 0;
}

typedef int (*entry_fn)(struct refwalk *w, void *ctx, uint64_t index, uint64_t key,
			uint64_t value);

/* Words read before a class instance: its managed dict and values pointers (3.11+). */
#define PRE_WORDS	4

static bool managed(const struct cpython_offsets *o, const struct tinfo *ti)
{
	return o->tpflags_managed_dict && (ti->flags & o->tpflags_managed_dict) &&
	       o->managed_dict >= -PRE_WORDS * 8 && o->managed_values >= -PRE_WORDS * 8 &&
	       o->managed_dict <= 0 && o->managed_values <= 0 && !(o->managed_dict % 8) &&
	       !(o->managed_values % 8);
}

/* The value slots of a split table's values array that can be read, n at most: its room
 * (3.13: the array's first byte) bounds them.  false if that cannot be read. */
static bool values_room(struct refwalk *w, uint64_t values, uint64_t *n)
{
	uint8_t capacity;

	if (!w->l.o->dict_values_items)
		return true;
	if (!rd(w, values, &capacity, 1))
		return false;
	if (*n > capacity)
		*n = capacity;
	return true;
}

/* Each value of a split table whose keys are the memo's. */
static int memo_each(struct refwalk *w, uint64_t values, entry_fn fn, void *ctx)
{
	const struct cpython_offsets *o = w->l.o;
	uint64_t vals[MEMO_KEYS], n = w->memo_n, i;
	int err = 0;

	if (!values_room(w, values, &n) || !n ||
	    !rd(w, values + o->dict_values_items, vals, n * 8))
		return 0;
	for (i = 0; i < n && !err; i++)
		if (vals[i])
			err = fn(w, ctx, i, w->memo_names[i], vals[i]);
	return err;
}

/* Each entry of a keys object (values: a split table's values array, or 0). */
static int keys_each(struct refwalk *w, uint64_t keys, uint64_t values, entry_fn fn, void *ctx)
{
	const struct cpython_offsets *o = w->l.o;
	uint8_t raw[REFWALK_KEYS_LEN], ents[CHUNK * 24];
	uint64_t vals[CHUNK], i, k, m, room;
	struct refwalk_keys ks;
	int err = 0;

	if (values && keys == w->memo_keys)
		return memo_each(w, values, fn, ctx);
	if (!rd(w, keys, raw, sizeof(raw)) || refwalk_keys_parse(o, raw, sizeof(raw), keys, &ks)) {
		w->st.corrupt++;
		return 0;
	}
	room = ks.n;
	if (values && !values_room(w, values, &room)) {
		w->st.corrupt++;
		return 0;
	}
	ks.n = room;
	for (i = 0; i < ks.n && !err; i += m) {
		m = ks.n - i < CHUNK ? ks.n - i : CHUNK;
		if (!rd(w, ks.entries + i * ks.entry_size, ents, m * ks.entry_size) ||
		    (values && !rd(w, values + o->dict_values_items + i * 8, vals, m * 8))) {
			w->st.corrupt++;
			break;
		}
		if (values && i == 0 && ks.n <= MEMO_KEYS) {
			w->memo_keys = keys;
			w->memo_n = ks.n;
			for (k = 0; k < m; k++)
				w->memo_names[k] = load64(ents + k * ks.entry_size + ks.key_off);
		}
		for (k = 0; k < m && !err; k++) {
			const uint8_t *e = ents + k * ks.entry_size;
			uint64_t value = values ? vals[k] : load64(e + ks.value_off);

			if (value)
				err = fn(w, ctx, i + k, load64(e + ks.key_off), value);
		}
	}
	return err;
}

/* Each entry of a dict object. */
static int dict_each(struct refwalk *w, uint64_t dict, entry_fn fn, void *ctx)
{
	uint64_t head[6];	/* refcnt, type, used, version, keys, values */
	const struct tinfo *ti;

	_Static_assert(sizeof(head) == 48, "dict fields read");
	if (!rd(w, dict, head, sizeof(head)) || !(ti = tinfo_get(w, head[1])) ||
	    ti->kind != REFWALK_DICT) {
		w->st.corrupt++;
		return 0;
	}
	return keys_each(w, load64((uint8_t *)head + w->l.o->dict_keys),
			 load64((uint8_t *)head + w->l.o->dict_values), fn, ctx);
}

struct entry_ctx { uint32_t parent; enum refwalk_edge edge; bool keys; };

static int entry_ref(struct refwalk *w, void *ctx, uint64_t index, uint64_t key, uint64_t value)
{
	struct entry_ctx *c = ctx;
	int err = 0;

	if (c->keys)
		err = ref_add(w, key, c->parent, REFWALK_EDGE_KEY, 0, index);
	return err ? err : ref_add(w, value, c->parent, c->edge, key, index);
}

static int dict_refs(struct refwalk *w, uint64_t dict, uint32_t parent, enum refwalk_edge edge,
		     bool keys)
{
	struct entry_ctx c = { parent, edge, keys };

	return dict && dict_each(w, dict, entry_ref, &c);
}

/* A class instance's attributes: its __dict__, or (3.11+) values kept apart from any dict.
 * pre: the words before the object, as node_expand() read them (managed ones). */
static int attrs_refs(struct refwalk *w, uint64_t addr, uint64_t type, uint32_t idx,
		      const uint64_t pre[PRE_WORDS])
{
	const struct cpython_offsets *o = w->l.o;
	struct entry_ctx c = { idx, REFWALK_EDGE_ATTRIBUTE, false };
	struct tinfo *ti = u64map_lookup(w->types, type);
	uint64_t dict = 0, values = 0;

	if (!ti)
		return 0;
	if (managed(o, ti)) {
		dict = pre[PRE_WORDS + o->managed_dict / 8];
		if (o->managed_values)
			values = pre[PRE_WORDS + o->managed_values / 8];
		if (!o->managed_values && (dict & 1)) {	/* 3.12: values, tagged as their address - 1 */
			values = dict + 1;
			dict = 0;
		}
		if (!dict && !values && o->tpflags_inline_values &&
		    (ti->flags & o->tpflags_inline_values)) {
			uint8_t prefix[4];	/* capacity, size, embedded, valid */

			if (rd(w, addr + ti->basicsize, prefix, sizeof(prefix)) && prefix[3])
				values = addr + ti->basicsize;
		}
	} else if (ti->dictoffset > 0) {
		if (!rd64(w, addr + ti->dictoffset, &dict))
			return 0;
	}
	/* The retained-size graph has the __dict__ as an object of its own (it has a size). */
	if (dict && dom_phase(w))
		return ref_add(w, dict, idx, REFWALK_EDGE_ATTRIBUTE, 0, 0);
	if (dict)
		return dict_refs(w, dict, idx, REFWALK_EDGE_ATTRIBUTE, false);
	if (!values)
		return 0;
	if (!ti->keys_read) {
		ti->keys_read = true;
		if (!rd64(w, type + o->ht_cached_keys, &ti->cached_keys))
			ti->cached_keys = 0;
	}
	return ti->cached_keys ? keys_each(w, ti->cached_keys, values, entry_ref, &c) : 0;
}

/* The objects in a class instance's __slots__. */
static int slots_refs(struct refwalk *w, uint64_t addr, const struct tinfo *ti, uint32_t idx)
{
	uint64_t obj[SLOTS_SPAN_MAX / 8], span = 0;
	uint32_t i;
	int err = 0;

	for (i = 0; i < ti->nslots; i++)
		if (w->slots[ti->slot_first + i].offset + 8 > span)
			span = w->slots[ti->slot_first + i].offset + 8;
	if (span > SLOTS_SPAN_MAX) {
		w->st.cut = true;
		span = SLOTS_SPAN_MAX;
	}
	if (!rd(w, addr, obj, span))
		return 0;
	for (i = 0; i < ti->nslots && !err; i++) {
		const struct slot *sl = &w->slots[ti->slot_first + i];

		if (sl->offset + 8 <= span)
			err = ref_add(w, obj[sl->offset / 8], idx, REFWALK_EDGE_SLOT, sl->name, 0);
	}
	return err;
}

/* The bytes of a node read at once: its header and the fields its kind follows (at most
 * HEAD_MAX). */
#define HEAD_MAX	(CPY_TP_DICTOFFSET + 8)

static size_t head_len(const struct cpython_offsets *o, uint8_t kind)
{
	size_t len = 24;	/* refcount, type, size */

#define FIELD(off)	do { if ((size_t)(off) + 8 > len) len = (size_t)(off) + 8; } while (0)
	switch (kind) {
	case REFWALK_LIST:
		FIELD(CPY_LIST_ITEMS + 8);	/* allocated */
		break;
	case REFWALK_DICT:
		FIELD(o->dict_keys);
		FIELD(o->dict_values);
		break;
	case REFWALK_SET:
	case REFWALK_FROZENSET:
		FIELD(o->set_mask);
		FIELD(o->set_table);
		break;
	case REFWALK_CELL:
		FIELD(o->cell_ref);
		break;
	case REFWALK_FUNCTION:
		FIELD(o->func_closure);
		FIELD(o->func_code);
		FIELD(o->func_defaults);
		FIELD(o->func_kwdefaults);
		break;
	case REFWALK_METHOD:
		FIELD(o->method_func);
		FIELD(o->method_self);
		break;
	case REFWALK_MODULE:
		FIELD(o->module_dict);
		break;
	case REFWALK_TYPE:
		FIELD(o->tp_dict);
		break;
	case REFWALK_GENERATOR:
	case REFWALK_COROUTINE:
	case REFWALK_ASYNCGEN:
		FIELD(o->gen_frame);
		FIELD(o->gen_frame_state);
		break;
	case REFWALK_FRAME:
		FIELD(o->frameobj_frame);
		break;
	case REFWALK_DEQUE:
		FIELD(o->deque_leftblock);
		FIELD(o->deque_rightblock);
		FIELD(o->deque_leftindex);
		FIELD(o->deque_rightindex);
		break;
	}
#undef FIELD
	return len < HEAD_MAX ? len : HEAD_MAX;
}

/* A tuple's items, the tuple not being a step (a function's closure or defaults). */
static int tuple_refs(struct refwalk *w, uint64_t tuple, uint32_t idx, enum refwalk_edge edge)
{
	uint64_t n;

	return tuple && rd64(w, tuple + CPY_OB_SIZE, &n) ?
	       ptrs_add(w, tuple + CPY_TUPLE_ITEMS, n, idx, edge, false) : 0;
}

/* A set's table, from w->cursor on: -EAGAIN if the budget runs out on the way, the cursor
 * saying where (a set of millions of entries spans slices). */
static int set_refs(struct refwalk *w, uint64_t mask, uint64_t table, uint32_t idx)
{
	uint64_t i, k, m, ents[CHUNK * 2];
	int err = 0;

	if (mask >= ITEMS_MAX || ((mask + 1) & mask) || w->l.o->set_entry_size != 16) {
		w->st.corrupt++;
		return 0;
	}
	for (i = w->cursor; i <= mask && !err; i += m) {
		m = mask + 1 - i < CHUNK ? mask + 1 - i : CHUNK;
		if (!rd(w, table + i * 16, ents, m * 16)) {
			w->st.corrupt++;
			break;
		}
		for (k = 0; k < m && !err; k++)
			err = ref_add(w, ents[2 * k], idx, REFWALK_EDGE_ITEM, 0, i + k);
		if (!err && ((i / CHUNK) & 15) == 15 && i + m <= mask && over_budget(w)) {
			w->cursor = i + m;
			return -EAGAIN;
		}
	}
	return err;
}

/* Up to n items of a tuple into out; how many. */
static uint64_t tuple_items(struct refwalk *w, uint64_t tuple, uint64_t *out, uint64_t n)
{
	uint64_t len;

	if (!tuple || !rd64(w, tuple + CPY_OB_SIZE, &len) || len > LOCALS_MAX)
		return 0;
	if (len > n)
		len = n;
	return len && rd(w, tuple + CPY_TUPLE_ITEMS, out, len * 8) ? len : 0;
}

/* Whether code is a code object, by its header. */
static bool code_is(struct refwalk *w, uint64_t code)
{
	uint64_t head[2];

	return rd(w, code, head, sizeof(head)) && head[1] == w->l.types[REFWALK_CODE];
}

/*
 * The locals of a frame (a thread's, a suspended generator's, a frame object's), each a
 * reference named by its variable: roots if parent is NO_PARENT (aux: the code object, which
 * names where they are), else of node parent.
 */
static int frame_locals(struct refwalk *w, uint64_t frame, uint32_t parent)
{
	const struct cpython_offsets *o = w->l.o;
	uint64_t code, names[LOCALS_MAX], vals[LOCALS_MAX], n = 0, i;
	uint8_t owner;
	int err = 0;

	if (o->frame_owner_cstack &&
	    (!rd(w, frame + o->frame_owner, &owner, 1) || owner == o->frame_owner_cstack))
		return 0;
	if (!rd64(w, frame + o->frame_code, &code) || !code_is(w, code))
		return 0;
	if (o->co_localsplusnames) {
		if (rd64(w, code + o->co_localsplusnames, &names[0]))
			n = tuple_items(w, names[0], names, LOCALS_MAX);
	} else {
		uint64_t t[3];
		const uint16_t offs[3] = { o->co_varnames, o->co_cellvars, o->co_freevars };

		for (i = 0; i < 3; i++)
			if (rd64(w, code + offs[i], &t[i]))
				n += tuple_items(w, t[i], names + n, LOCALS_MAX - n);
	}
	if (!n || !rd(w, frame + o->frame_localsplus, vals, n * 8))
		return 0;
	for (i = 0; i < n && !err; i++)
		err = ref_add(w, vals[i], parent, REFWALK_EDGE_LOCAL, names[i],
			      parent == NO_PARENT ? code : i);
	return err;
}

/* A generator's, coroutine's or async generator's locals while it is suspended (running,
 * its frame is a thread's: a root); h: its head as read. */
static int gen_refs(struct refwalk *w, uint64_t addr, const uint8_t *h, uint32_t idx)
{
	const struct cpython_offsets *o = w->l.o;
	int8_t state;

	if (o->gen_iframe) {
		memcpy(&state, h + o->gen_frame_state, 1);
		return state < (int8_t)o->frame_executing ? frame_locals(w, addr + o->gen_iframe, idx) : 0;
	}
	return o->gen_frame && load64(h + o->gen_frame) ? frame_locals(w, load64(h + o->gen_frame), idx) : 0;
}

/* A frame object's locals: its own (<=3.10), or those of the frame it stands for. */
static int frameobj_refs(struct refwalk *w, uint64_t addr, const uint8_t *h, uint32_t idx)
{
	const struct cpython_offsets *o = w->l.o;

	if (!o->frameobj_frame)
		return frame_locals(w, addr, idx);
	return load64(h + o->frameobj_frame) ? frame_locals(w, load64(h + o->frameobj_frame), idx) : 0;
}

/* The items of a deque, block after block, from w->cursor (at the start of block
 * w->cursor_block) on; h: its head as read.  -EAGAIN if the budget runs out on the way: a deque
 * of millions of items spans slices.  A block chain that comes back to the first block is a
 * cycle: the walk stops there. */
static int deque_refs(struct refwalk *w, const uint8_t *h, uint32_t idx)
{
	const struct cpython_offsets *o = w->l.o;
	uint64_t n = load64(h + CPY_OB_SIZE), first = load64(h + o->deque_leftblock);
	uint64_t i = load64(h + o->deque_leftindex), items[BLOCKLEN_MAX], pos = 0, m, k, b = first;
	uint64_t blocklen = (o->block_rightlink - o->block_data) / 8, blocks = 0;
	int err = 0;

	if (o->block_rightlink <= o->block_data || blocklen > BLOCKLEN_MAX || n > ITEMS_MAX ||
	    i >= blocklen) {
		w->st.corrupt++;
		return 0;
	}
	if (w->cursor) {
		pos = w->cursor;
		b = w->cursor_block;
		i = 0;
	}
	/* Each block gives at least one item: the walk ends after n items. */
	while (pos < n && !err) {
		m = blocklen - i < n - pos ? blocklen - i : n - pos;
		if (!rd(w, b + o->block_data + i * 8, items, m * 8)) {
			w->st.corrupt++;
			break;
		}
		for (k = 0; k < m && !err; k++)
			err = ref_add(w, items[k], idx, REFWALK_EDGE_ITEM, 0, pos + k);
		pos += m;
		i = 0;
		if (err || pos >= n || !rd64(w, b + o->block_rightlink, &b))
			break;
		if (b == first) {
			w->st.corrupt++;
			break;
		}
		if ((++blocks & 15) == 0 && over_budget(w)) {
			w->cursor = pos;
			w->cursor_block = b;
			return -EAGAIN;
		}
	}
	return err;
}

/* A function's free variable names, for its closure of n cells: into names (zero if not
 * known), the last code object's remembered. */
static void freevars_read(struct refwalk *w, uint64_t code, uint64_t *names, uint64_t n)
{
	const struct cpython_offsets *o = w->l.o;
	uint64_t tuple = 0, len = 0;
	int32_t nlp, nfree;

	memset(names, 0, n * 8);
	if (code != w->memo_code) {
		w->memo_code = code;
		w->memo_nfree = 0;
		if (!code_is(w, code))
			return;
		if (!o->co_nfreevars) {
			if (rd64(w, code + o->co_freevars, &tuple))
				w->memo_nfree = tuple_items(w, tuple, w->memo_free, FREEVARS_MAX);
		} else if (rd(w, code + o->co_nlocalsplus, &nlp, 4) &&
			   rd(w, code + o->co_nfreevars, &nfree, 4) && nfree > 0 &&
			   nfree <= (int32_t)FREEVARS_MAX && nfree <= nlp &&
			   rd64(w, code + o->co_localsplusnames, &tuple) &&
			   rd64(w, tuple + CPY_OB_SIZE, &len) && len == (uint64_t)nlp &&
			   rd(w, tuple + CPY_TUPLE_ITEMS + (uint64_t)(nlp - nfree) * 8, w->memo_free,
			      (uint64_t)nfree * 8)) {
			/* 3.11+: the free variables are the last of the locals' names */
			w->memo_nfree = nfree;
		}
	}
	if (w->memo_nfree == n)
		memcpy(names, w->memo_free, n * 8);
}

/* A function's closure cells, each named by its free variable where the code says. */
static int closure_refs(struct refwalk *w, uint64_t closure, uint64_t code, uint32_t idx)
{
	uint64_t cells[FREEVARS_MAX], names[FREEVARS_MAX], n, i;
	int err = 0;

	n = tuple_items(w, closure, cells, FREEVARS_MAX);
	freevars_read(w, code, names, n);
	for (i = 0; i < n && !err; i++)
		err = ref_add(w, cells[i], idx, REFWALK_EDGE_CLOSURE, names[i], i);
	return err;
}

/*
 * A container's size with the buffers it mallocs, read by layout (h: its head as read): a
 * list's item array, a dict's keys table (unless shared: a class's split keys) and values, a
 * set's table when it is not the one inside the object.
 */
static uint64_t buffers_size(struct refwalk *w, uint64_t addr, const struct tinfo *ti,
			     const uint64_t *head)
{
	const struct cpython_offsets *o = w->l.o;
	const uint8_t *h = (const uint8_t *)head;
	uint8_t raw[REFWALK_KEYS_LEN];
	uint64_t size = size_of(w, ti, head, head[1]), n, keys, values;
	struct refwalk_keys ks;

	switch (ti->kind) {
	case REFWALK_LIST:
		n = load64(h + CPY_LIST_ITEMS + 8);
		if (n >= head[2] && n < ITEMS_MAX)
			size += (n - head[2]) * 8;	/* size_of() counted the used ones */
		break;
	case REFWALK_DICT:
		keys = load64(h + o->dict_keys);
		values = load64(h + o->dict_values);
		if (!rd(w, keys, raw, sizeof(raw)) || refwalk_keys_parse(o, raw, sizeof(raw), keys, &ks))
			break;
		if (load64(raw) == 1)	/* dk_refcnt: this dict's own */
			size += ks.bytes;
		if (values)
			size += (uint64_t)ks.n * 8 + 8;
		break;
	case REFWALK_DEQUE:
		/* Its blocks, BLOCKLEN items each, from the first's leftindex on. */
		n = load64(h + CPY_OB_SIZE);
		if (o->block_rightlink > o->block_data && n < ITEMS_MAX &&
		    load64(h + o->deque_leftindex) < BLOCKLEN_MAX)
			size += ((load64(h + o->deque_leftindex) + n) /
				 ((o->block_rightlink - o->block_data) / 8) + 1) * (o->block_rightlink + 8);
		break;
	case REFWALK_SET:
	case REFWALK_FROZENSET:
		n = load64(h + o->set_mask);
		if (n < ITEMS_MAX && (load64(h + o->set_table) < addr ||
				      load64(h + o->set_table) >= addr + ti->basicsize))
			size += (n + 1) * o->set_entry_size;
		break;
	}
	return size;
}

/* The referents of the object at addr, of type type (node idx of the walk; in the retained
 * graph, vertex w->dom.cur). */
static int node_expand(struct refwalk *w, uint64_t addr, uint64_t type, uint32_t idx)
{
	const struct cpython_offsets *o = w->l.o;
	uint64_t words[PRE_WORDS + HEAD_MAX / 8] = { 0 }, *head = words + PRE_WORDS;
	const uint8_t *h = (const uint8_t *)head;
	const struct tinfo *tp = tinfo_get(w, type);
	struct entry_ctx c = { idx, REFWALK_EDGE_VALUE, true };
	struct tinfo ti;	/* a copy: the table moves as types are added */
	size_t len;
	bool pre;
	int err = 0;

	/* One read: the object's header and the fields followed, with the managed dict
	 * pointers before it if it has them. */
	if (!tp) {
		w->st.corrupt++;
		return 0;
	}
	ti = *tp;
	len = head_len(o, ti.kind);
	pre = managed(o, &ti);
	if (!(pre ? rd(w, addr - PRE_WORDS * 8, words, PRE_WORDS * 8 + len) : rd(w, addr, head, len)) ||
	    head[1] != type) {
		w->st.corrupt++;
		return 0;
	}
	if (dom_phase(w)) {
		w->dom.v[w->dom.cur].refcnt = head[0];
		w->dom.v[w->dom.cur].size = buffers_size(w, addr, &ti, head);
	}
	switch (ti.kind) {
	case REFWALK_LIST:
		err = list_refs(w, addr, idx, head[2], load64(h + CPY_LIST_ITEMS));
		break;
	case REFWALK_TUPLE:
		if ((int64_t)head[2] >= 0)
			err = ptrs_add(w, addr + CPY_TUPLE_ITEMS, head[2], idx, REFWALK_EDGE_ITEM, true);
		err = err == -EFAULT ? 0 : err;
		break;
	case REFWALK_DICT:
		err = keys_each(w, load64(h + o->dict_keys), load64(h + o->dict_values), entry_ref, &c);
		break;
	case REFWALK_SET:
	case REFWALK_FROZENSET:
		err = set_refs(w, load64(h + o->set_mask), load64(h + o->set_table), idx);
		break;
	case REFWALK_CELL:
		err = ref_add(w, load64(h + o->cell_ref), idx, REFWALK_EDGE_CELL, 0, 0);
		break;
	case REFWALK_FUNCTION:
		/* The closure's and the defaults' tuples are part of the function: not steps. */
		err = closure_refs(w, load64(h + o->func_closure), load64(h + o->func_code), idx);
		if (!err)
			err = tuple_refs(w, load64(h + o->func_defaults), idx, REFWALK_EDGE_DEFAULT);
		if (!err)
			err = dict_refs(w, load64(h + o->func_kwdefaults), idx, REFWALK_EDGE_DEFAULT, false);
		break;
	case REFWALK_METHOD:
		err = ref_add(w, load64(h + o->method_self), idx, REFWALK_EDGE_SELF, 0, 0);
		if (!err)
			err = ref_add(w, load64(h + o->method_func), idx, REFWALK_EDGE_FUNC, 0, 0);
		break;
	case REFWALK_MODULE:
		err = dict_refs(w, load64(h + o->module_dict), idx, REFWALK_EDGE_ATTRIBUTE, false);
		break;
	case REFWALK_TYPE:
		/* A class's own attributes are its dict. */
		return dict_refs(w, load64(h + o->tp_dict), idx, REFWALK_EDGE_ATTRIBUTE, false);
	case REFWALK_GENERATOR:
	case REFWALK_COROUTINE:
	case REFWALK_ASYNCGEN:
		err = gen_refs(w, addr, h, idx);
		break;
	case REFWALK_FRAME:
		err = frameobj_refs(w, addr, h, idx);
		break;
	case REFWALK_DEQUE:
		err = deque_refs(w, h, idx);
		break;
	default:
		break;
	}
	if (!err && ti.heap)
		err = attrs_refs(w, addr, type, idx, words);
	if (!err && ti.nslots)
		err = slots_refs(w, addr, &ti, idx);
	return err;
}

/* A thread's current frame. */
static uint64_t thread_frame(struct refwalk *w, uint64_t tstate)
{
	const struct cpython_offsets *o = w->l.o;
	uint64_t f = 0, cframe;

	if (o->tstate_cframe) {
		if (!rd64(w, tstate + o->tstate_cframe, &cframe) ||
		    !rd64(w, cframe + o->cframe_current_frame, &f))
			return 0;
	} else if (!rd64(w, tstate + o->tstate_frame, &f)) {
		return 0;
	}
	return f;
}

static int module_global(struct refwalk *w, void *ctx, uint64_t index, uint64_t key, uint64_t value)
{
	const uint64_t *modname = ctx;

	(void)index;
	return ref_add(w, value, NO_PARENT, REFWALK_EDGE_GLOBAL, key, *modname);
}

static int module_roots(struct refwalk *w, void *ctx, uint64_t index, uint64_t key, uint64_t module)
{
	uint64_t head[2], dict;

	(void)ctx;
	(void)index;
	if (!rd(w, module, head, sizeof(head)) || head[1] != w->l.types[REFWALK_MODULE] ||
	    !rd64(w, module + w->l.o->module_dict, &dict) || !dict)
		return 0;
	return dict_each(w, dict, module_global, &key);
}

/* Each thread's frames' locals, outermost frame first, then every module's globals. */
static int roots_add(struct refwalk *w)
{
	const struct cpython_offsets *o = w->l.o;
	uint64_t interp, tstate, modules, frames[FRAMES_MAX];
	int threads, n, err = 0;

	if (!rd64(w, w->l.runtime + o->runtime_interp_main, &interp) ||
	    !rd64(w, interp + o->interp_tstate_head, &tstate))
		return 0;
	for (threads = 0; tstate && threads < THREADS_MAX && !err; threads++) {
		uint64_t f = thread_frame(w, tstate);

		for (n = 0; f && n < FRAMES_MAX; n++) {
			frames[n] = f;
			if (!rd64(w, f + o->frame_back, &f))
				break;
		}
		while (n-- > 0 && !err)
			err = frame_locals(w, frames[n], NO_PARENT);
		if (!rd64(w, tstate + o->tstate_next, &tstate))
			break;
	}
	if (!err && rd64(w, interp + o->interp_modules, &modules) && modules)
		err = dict_each(w, modules, module_roots, NULL);
	return err ? err : pending_flush(w);
}

/* The GC state's address: in the runtime on 3.8, in the main interpreter on 3.9+. */
static bool gc_state_read(struct refwalk *w, uint64_t *state)
{
	const struct cpython_offsets *o = w->l.o;
	uint64_t interp;

	if (!o->interp_gc) {
		*state = w->l.runtime + o->runtime_gc;
		return o->runtime_gc != 0;
	}
	if (!rd64(w, w->l.runtime + o->runtime_interp_main, &interp) || !user_addr(interp, o->interp_gc))
		return false;
	*state = interp + o->interp_gc;
	return true;
}

static void gc_owner_add(struct gcscan *s, uint64_t addr, uint64_t type)
{
	uint32_t i;

	if (s->found % s->stride)
		return;
	if (s->n == DOM_SAMPLE_MAX) {
		for (i = 0; i < DOM_SAMPLE_MAX / 2; i++)
			s->owners[i] = s->owners[2 * i];
		s->n = DOM_SAMPLE_MAX / 2;
		s->stride *= 2;
		if (s->found % s->stride)
			return;
	}
	s->owners[s->n++] = (struct gc_owner){ addr, type };
}

/* Follows the GC lists from where the last call stopped, sampling the wanted objects on them
 * into w->gcs: 0 done, -EAGAIN to be continued, -ENOMEM. */
static int gc_owners_find(struct refwalk *w)
{
	const struct cpython_offsets *o = w->l.o;
	struct gcscan *s = &w->gcs;
	uint64_t words[4], head, next, steps = 0;
	const struct tinfo *ti;
	int32_t collecting;

	if (!s->started) {
		s->owners = malloc(DOM_SAMPLE_MAX * sizeof(*s->owners));
		if (!s->owners)
			return -ENOMEM;
		s->started = true;
		s->stride = 1;
		/* During a collection _gc_prev holds refcount copies: no list to follow. */
		if (!gc_state_read(w, &s->state) ||
		    !rd(w, s->state + o->gc_collecting, &collecting, sizeof(collecting)) || collecting)
			s->list = GC_LISTS;
	}
	for (; s->list < GC_LISTS; s->list++, s->node = 0) {
		head = s->state + (s->list < 3 ? o->gc_generations + s->list * o->gc_generation_size :
				   o->gc_permanent);
		if (!s->node) {
			if (!rd(w, head, words, 16))
				continue;
			s->prev = head;
			s->node = words[0] & GC_PTR_MASK;
			s->last = words[1] & GC_PTR_MASK;
		}
		while (s->node != head) {
			if ((++steps & 255) == 0 && over_budget(w))
				return -EAGAIN;
			/* The node, then its object's refcount and type. */
			if (s->followed++ >= GC_NODES_MAX || !rd(w, s->node, words, sizeof(words)) ||
			    census_gc_node_check(words, s->prev, &next))
				break;	/* unlinked under the walk, or not a list: what was seen */
			ti = words[2] >= 1 && words[2] <= REFCNT_MAX ? tinfo_get(w, words[3]) : NULL;
			if (ti && ti->wanted && tinfo_followed(ti)) {
				gc_owner_add(s, s->node + CPY_GC_HEAD_SIZE, words[3]);
				s->found++;
			}
			if (s->node == s->last)
				break;
			s->prev = s->node;
			s->node = next;
		}
	}
	w->st.owners_gc = s->found;
	return 0;
}

/* The owners: those found on the GC lists if any, else the wanted containers the walk
 * reached, DOM_SAMPLE_MAX at most, evenly spread. */
static int dom_start(struct refwalk *w)
{
	struct dom *d = &w->dom;
	uint64_t stride = (w->st.owners + DOM_SAMPLE_MAX - 1) / DOM_SAMPLE_MAX, seen = 0;
	uint32_t i;

	d->started = true;
	w->st.retained_covered = true;
	d->cap = 4096;
	d->n = 2;	/* DOM_OUTSIDE, DOM_OWNERS */
	d->v = calloc(d->cap, sizeof(*d->v));
	if (!d->v || u64map_new(sizeof(uint32_t), DOM_VERTICES_MAX, &d->of))
		return -ENOMEM;
	for (i = 0; i < w->gcs.n; i++)
		vertex_add(w, w->gcs.owners[i].addr, w->gcs.owners[i].type, true, true);
	for (i = 0; !w->gcs.n && i < w->n; i++)
		if (w->nodes[i].wanted && seen++ % stride == 0)
			vertex_add(w, w->nodes[i].addr, w->nodes[i].type, true, true);
	return 0;
}

/* Compressed adjacency: start[v]..start[v + 1] index adj. */
struct csr { uint32_t *start, *adj; };

static void csr_free(struct csr *c)
{
	free(c->start);
	free(c->adj);
}

/* The graph's edges, with those from outside (0 -> 1, 0 -> what is referenced more often than
 * from inside, 1 -> each owner), forward (reverse false) or backward. */
static int csr_build(const struct dom *d, bool reverse, struct csr *c)
{
	uint32_t v, k, extra = 1, *fill;

	for (v = 2; v < d->n; v++)
		extra++;
	c->start = calloc(d->n + 1, sizeof(*c->start));
	c->adj = malloc(((size_t)d->ne + extra) * sizeof(*c->adj));
	fill = calloc(d->n, sizeof(*fill));
	if (!c->start || !c->adj || !fill) {
		free(fill);
		return -ENOMEM;
	}
#define EACH_EDGE(from, to)							\
	for (k = 0; k <= d->ne + d->n; k++) {					\
		uint32_t from, to;						\
		if (k < d->ne) {						\
			from = d->e[k][0];					\
			to = d->e[k][1];					\
		} else if (k == d->ne) {					\
			from = DOM_OUTSIDE;					\
			to = DOM_OWNERS;					\
		} else if (k - d->ne - 1 >= 2 && k - d->ne - 1 < d->n) {	\
			to = k - d->ne - 1;					\
			from = d->v[to].owner ? DOM_OWNERS : DOM_OUTSIDE;	\
			if (!d->v[to].owner && d->v[to].refcnt && d->v[to].in >= d->v[to].refcnt) \
				continue;					\
		} else {							\
			continue;						\
		}
	EACH_EDGE(from, to)
		c->start[(reverse ? to : from) + 1]++;
	}
	for (v = 0; v < d->n; v++)
		c->start[v + 1] += c->start[v];
	EACH_EDGE(from, to)
		c->adj[c->start[reverse ? to : from] + fill[reverse ? to : from]++] = reverse ? from : to;
	}
#undef EACH_EDGE
	free(fill);
	return 0;
}

static uint32_t intersect(const uint32_t *idom, const uint32_t *po, uint32_t a, uint32_t b)
{
	while (a != b) {
		while (po[a] < po[b])
			a = idom[a];
		while (po[b] < po[a])
			b = idom[b];
	}
	return a;
}

/*
 * The dominators of the graph (Cooper, Harvey and Kennedy's iterative algorithm over the
 * reverse postorder), then what the owners dominate, by type: w->retained, and the totals.
 */
static int dom_solve(struct refwalk *w)
{
	struct dom *d = &w->dom;
	struct csr succ = { 0 }, pred = { 0 };
	uint32_t *po = NULL, *order = NULL, *idom = NULL, *stack = NULL, *next = NULL;
	uint32_t n = d->n, cnt = 0, sp = 0, v, k, b, p, nd, passes;
	bool *under = NULL, changed = true;
	int err = -ENOMEM;

	po = malloc(n * sizeof(*po));
	order = malloc(n * sizeof(*order));
	idom = malloc(n * sizeof(*idom));
	stack = malloc(n * sizeof(*stack));
	next = calloc(n, sizeof(*next));
	under = calloc(n, sizeof(*under));
	if (!po || !order || !idom || !stack || !next || !under || csr_build(d, false, &succ) ||
	    csr_build(d, true, &pred))
		goto cleanup;
	/* Postorder numbers from a depth-first walk from outside, without recursion. */
	for (v = 0; v < n; v++) {
		po[v] = UINT32_MAX;
		idom[v] = UINT32_MAX;
	}
	po[DOM_OUTSIDE] = 0;	/* seen; numbered when left */
	stack[sp++] = DOM_OUTSIDE;
	while (sp) {
		v = stack[sp - 1];
		if (succ.start[v] + next[v] < succ.start[v + 1]) {
			k = succ.adj[succ.start[v] + next[v]++];
			if (po[k] == UINT32_MAX) {
				po[k] = 0;
				stack[sp++] = k;
			}
			continue;
		}
		po[v] = cnt;
		order[cnt++] = v;
		sp--;
	}
	idom[DOM_OUTSIDE] = DOM_OUTSIDE;
	for (passes = 0; changed && passes < DOM_PASSES_MAX; passes++) {
		changed = false;
		for (k = cnt - 1; k-- > 0; ) {
			b = order[k];
			nd = UINT32_MAX;
			for (p = pred.start[b]; p < pred.start[b + 1]; p++) {
				uint32_t q = pred.adj[p];

				if (idom[q] == UINT32_MAX)
					continue;
				nd = nd == UINT32_MAX ? q : intersect(idom, po, q, nd);
			}
			if (idom[b] != nd) {
				idom[b] = nd;
				changed = true;
			}
		}
	}
	if (changed)
		w->st.retained_covered = false;
	/* Dominated by the owners: idom comes before in reverse postorder. */
	w->st.owners_sampled = 0;
	w->st.owner_bytes = 0;
	w->st.retained_bytes = 0;
	for (k = cnt; k-- > 0; ) {
		v = order[k];
		if (v < 2 || idom[v] == UINT32_MAX)
			continue;
		under[v] = idom[v] == DOM_OWNERS || under[idom[v]];
		if (!under[v])
			continue;
		w->st.retained_bytes += d->v[v].size;
		if (d->v[v].owner) {
			w->st.owners_sampled++;
			w->st.owner_bytes += d->v[v].size;
		} else {
			retained_add(w, d->v[v].type, d->v[v].size);
		}
	}
	w->st.retained_vertices = n - 2;
	err = 0;
cleanup:
	csr_free(&succ);
	csr_free(&pred);
	free(po);
	free(order);
	free(idom);
	free(stack);
	free(next);
	free(under);
	return err;
}

static void dom_free(struct dom *d)
{
	free(d->v);
	free(d->e);
	u64map_free(d->of);
	d->v = NULL;
	d->e = NULL;
	d->of = NULL;
}

/* The retained-size graph, below the owners, within the call's budget; then its dominators. */
static int dom_run(struct refwalk *w)
{
	struct dom *d = &w->dom;
	int err = 0, flush;

	if (!d->started)
		err = dom_start(w);
	while (!err && d->head < d->n) {
		if ((d->head & 63) == 0 && over_budget(w))
			return -EAGAIN;
		if (!d->v[d->head].container) {
			d->head++;
			continue;
		}
		d->cur = d->head;
		err = node_expand(w, d->v[d->head].addr, d->v[d->head].type, NO_PARENT);
		flush = pending_flush(w);
		if (!err) {
			d->head++;
			w->cursor = 0;
		}
		err = err ? err : flush;
	}
	if (!err) {
		if (w->st.cut)
			w->st.retained_covered = false;
		err = dom_solve(w);
		d->done = true;
		dom_free(d);
	}
	return err;
}

int refwalk_new(const struct refwalk_layout *l, const struct refwalk_limits *lim,
		const char *wanted, struct refwalk **out)
{
	struct refwalk *w = calloc(1, sizeof(*w));
	int err = -ENOMEM;

	*out = NULL;
	if (!w)
		return -ENOMEM;
	w->l = *l;
	w->lim = *lim;
	if (!w->lim.max_nodes || w->lim.max_nodes >= NO_PARENT)
		w->lim.max_nodes = REFWALK_NODES_DEFAULT;
	if (!w->lim.max_bytes)
		w->lim.max_bytes = REFWALK_BYTES_DEFAULT;
	if (w->lim.max_seconds <= 0)
		w->lim.max_seconds = REFWALK_SECONDS_DEFAULT;
	strncpy(w->wanted, wanted, sizeof(w->wanted) - 1);
	if (u64map_new(sizeof(uint32_t), w->lim.max_nodes, &w->visited) ||
	    u64map_new(sizeof(struct tinfo), TYPES_MAX, &w->types) ||
	    u64map_new(sizeof(struct group_val), GROUPS_MAX, &w->groups) ||
	    u64map_new(sizeof(struct retained_val), RETAINED_TYPES_MAX, &w->retained))
		goto cleanup;
	*out = w;
	return 0;
cleanup:
	refwalk_free(w);
	return err;
}

void refwalk_free(struct refwalk *w)
{
	if (!w)
		return;
	u64map_free(w->visited);
	u64map_free(w->types);
	u64map_free(w->groups);
	u64map_free(w->retained);
	dom_free(&w->dom);
	free(w->gcs.owners);
	free(w->slots);
	free(w->nodes);
	free(w);
}

void refwalk_expect(struct refwalk *w, uint64_t live)
{
	w->live = live;
}

const char *refwalk_wanted(const struct refwalk *w)
{
	return w->wanted;
}

const struct refwalk_layout *refwalk_layout(const struct refwalk *w)
{
	return &w->l;
}

int refwalk_run(struct refwalk *w, refwalk_readv_fn readv, void *arg, double max_seconds)
{
	int err = 0, flush;

	if (w->st.complete)
		return 0;
	w->readv = readv;
	w->arg = arg;
	w->call_bytes = 0;
	w->call_start = mono();
	w->call_seconds = max_seconds > 0 && max_seconds < w->lim.max_seconds ? max_seconds :
			  w->lim.max_seconds;
	w->memo_keys = 0;
	w->st.calls++;
	if (!w->roots_done) {
		err = roots_add(w);
		w->roots_done = true;
	}
	while (!err && w->head < w->n) {
		if ((w->head & 63) == 0 && over_budget(w)) {
			err = -EAGAIN;
			break;
		}
		err = node_expand(w, w->nodes[w->head].addr, w->nodes[w->head].type, w->head);
		flush = pending_flush(w);
		if (!err) {
			w->head++;
			w->cursor = 0;
		}
		err = err ? err : flush;
	}
	/* Most wanted objects reached from no root are kept by reference cycles alone: their
	 * owners are found on the GC lists. */
	if (!err && w->live > 2 * w->st.wanted)
		err = gc_owners_find(w);
	/* What the wanted containers retain, once the heap above them is known. */
	if (!err && (w->st.owners || w->st.owners_gc) && !w->dom.done)
		err = dom_run(w);
	w->st.seconds += mono() - w->call_start;
	w->st.memory = sizeof(*w) + (uint64_t)w->cap * sizeof(*w->nodes) +
		       (w->slots ? SLOTS_MAX * sizeof(*w->slots) : 0) + u64map_bytes(w->visited) +
		       u64map_bytes(w->types) + u64map_bytes(w->groups) + u64map_bytes(w->retained) +
		       (uint64_t)w->dom.cap * sizeof(*w->dom.v) + (uint64_t)w->dom.ecap * sizeof(*w->dom.e) +
		       (w->dom.of ? u64map_bytes(w->dom.of) : 0) +
		       (w->gcs.owners ? DOM_SAMPLE_MAX * sizeof(*w->gcs.owners) : 0);
	if (!err)
		w->st.complete = true;
	return err;
}

const struct refwalk_stats *refwalk_stats(const struct refwalk *w)
{
	return &w->st;
}

static int group_cmp(const void *a, const void *b)
{
	const struct refwalk_group *x = a, *y = b;

	return x->count < y->count ? 1 : x->count > y->count ? -1 : (x->node > y->node) - (x->node < y->node);
}

static void step_of(const struct node *n, struct refwalk_step *s)
{
	s->addr = n->addr;
	s->edge = n->edge;
	s->name = n->name;
	s->owner = n->parent == NO_PARENT ? n->aux : 0;
	s->index = n->parent == NO_PARENT ? 0 : (uint32_t)n->aux;
}

size_t refwalk_groups(const struct refwalk *w, struct refwalk_group *out, size_t n)
{
	size_t total = u64map_count(w->groups), got = 0, pos = 0, i;
	struct refwalk_group *all = calloc(total ? total : 1, sizeof(*all));
	struct group_val *g;
	uint64_t key;

	if (!all)
		return 0;
	while (got < total && u64map_next(w->groups, &pos, &key, (void **)&g)) {
		all[got].node = g->first.parent;
		all[got].count = g->count;
		step_of(&g->first, &all[got].first);
		all[got].first.addr = 0;
		got++;
	}
	qsort(all, got, sizeof(*all), group_cmp);
	for (i = 0; i < got && i < n; i++)
		out[i] = all[i];
	free(all);
	return got;
}

size_t refwalk_path(const struct refwalk *w, uint32_t node, struct refwalk_step *out, size_t n)
{
	size_t len = 0, i;
	uint32_t k;

	/* Parents come before their children in the array: the walk up ends. */
	for (k = node; k != NO_PARENT && k < w->n && len < w->n; k = w->nodes[k].parent)
		len++;
	if (k != NO_PARENT || len > n)
		return 0;
	for (i = len, k = node; i > 0; k = w->nodes[k].parent)
		step_of(&w->nodes[k], &out[--i]);
	return len;
}

static int retained_cmp(const void *a, const void *b)
{
	const struct refwalk_retained *x = a, *y = b;

	return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : (x->type > y->type) - (x->type < y->type);
}

size_t refwalk_retained(const struct refwalk *w, struct refwalk_retained *out, size_t n)
{
	size_t total = u64map_count(w->retained), got = 0, pos = 0;
	struct refwalk_retained *all = calloc(total ? total : 1, sizeof(*all));
	struct retained_val *v;
	uint64_t key;

	if (!all)
		return 0;
	while (got < total && u64map_next(w->retained, &pos, &key, (void **)&v))
		all[got++] = (struct refwalk_retained){ key, v->count, v->bytes };
	qsort(all, got, sizeof(*all), retained_cmp);
	memcpy(out, all, (got < n ? got : n) * sizeof(*out));
	free(all);
	return got;
}
