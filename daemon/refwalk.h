/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The reference walk: a target's object graph read from outside, breadth first from its roots
 * (each thread's frames' locals, outermost first, then the globals of every module in
 * sys.modules) over the referents of the builtin containers, read by layout per version: list,
 * tuple, dict (split, managed and inline values included), set and frozenset, cell, function
 * (closure cells named by their variable, defaults), bound method, module, type dict, the
 * __dict__ of class instances, deque (its blocks), generators and coroutines (a suspended
 * one's frame's locals) and frame objects (their locals).
 * Other C types are opaque: counted, not followed.  Each container reached keeps a link to the
 * one it was first reached from, so the shortest path from a root to the objects of one wanted
 * type can be rebuilt.  A walk is bounded (containers held, bytes and time per call) and goes
 * on where it stopped at the next call; the target keeps running, so a walk over several calls
 * sees a moving heap.  Nothing read is trusted: every length, pointer and type is checked.
 */
#ifndef PYLEAK_REFWALK_H
#define PYLEAK_REFWALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpython_offsets.h"

/* Reads n ranges of the target in order; returns how many were read whole (stops at the first
 * that was not). */
struct refwalk_iov { uint64_t addr; void *buf; size_t len; };
typedef size_t (*refwalk_readv_fn)(void *arg, const struct refwalk_iov *v, size_t n);

enum refwalk_kind {
	REFWALK_OPAQUE, REFWALK_LIST, REFWALK_TUPLE, REFWALK_DICT, REFWALK_SET,
	REFWALK_FROZENSET, REFWALK_CELL, REFWALK_FUNCTION, REFWALK_METHOD, REFWALK_MODULE,
	REFWALK_TYPE, REFWALK_CODE, REFWALK_OBJECT,
	/* Optional (0: not followed): their locals; a deque's blocks (its type is found by
	 * name, "collections.deque", where no symbol names it). */
	REFWALK_GENERATOR, REFWALK_COROUTINE, REFWALK_ASYNCGEN, REFWALK_FRAME, REFWALK_DEQUE,
	REFWALK_KINDS
};

/* What a step from a container to a referent is. */
enum refwalk_edge {
	REFWALK_EDGE_LOCAL, REFWALK_EDGE_GLOBAL,	/* roots */
	REFWALK_EDGE_ATTRIBUTE, REFWALK_EDGE_ITEM, REFWALK_EDGE_KEY, REFWALK_EDGE_VALUE,
	REFWALK_EDGE_CELL, REFWALK_EDGE_CLOSURE, REFWALK_EDGE_DEFAULT, REFWALK_EDGE_SELF,
	REFWALK_EDGE_FUNC,
	REFWALK_EDGE_SLOT,	/* a __slots__ attribute: its name is a C string, not a str */
	/* Beyond the roots, REFWALK_EDGE_LOCAL is a suspended generator's or a frame object's
	 * local; REFWALK_EDGE_CLOSURE's name, where known, is the free variable's. */
};

struct refwalk_layout {
	const struct cpython_offsets *o;
	uint64_t runtime;			/* &_PyRuntime */
	uint64_t types[REFWALK_KINDS];		/* &PyList_Type ...; [REFWALK_OBJECT]: &PyBaseObject_Type */
	uint64_t str_type;			/* &PyUnicode_Type: sized by its length */
	uint64_t bytearray_type;		/* &PyByteArray_Type: its buffer counted; 0: none */
};

struct refwalk_limits {
	uint32_t max_nodes;	/* containers held (~100 bytes each); 0: REFWALK_NODES_DEFAULT */
	uint64_t max_bytes;	/* read per call; 0: REFWALK_BYTES_DEFAULT */
	double max_seconds;	/* per call; 0: REFWALK_SECONDS_DEFAULT */
};

#define REFWALK_NODES_DEFAULT	(2u << 20)
#define REFWALK_BYTES_DEFAULT	(1ull << 30)
#define REFWALK_SECONDS_DEFAULT	0.5

/* One container on a path, or the wanted objects reached from it. */
struct refwalk_step {
	uint64_t addr;		/* the object (0 for a group of wanted objects) */
	enum refwalk_edge edge;	/* how it is reached from the step before */
	uint64_t name;		/* a str object naming the edge (key, attribute, variable), or 0 */
	uint64_t owner;		/* roots: the code object (local) or the module's name (global) */
	uint32_t index;		/* items, closures, defaults */
};

/* Wanted objects reached the same way (the same kinds, names and types on the path, indices
 * and dict keys aside): how many, and the first. */
struct refwalk_group {
	uint32_t node;		/* the container the first is reached from; UINT32_MAX: a root */
	uint64_t count;
	struct refwalk_step first;
};

struct refwalk_stats {
	uint64_t nodes;		/* containers reached */
	uint64_t objects;	/* references followed */
	uint64_t opaque;	/* references to objects of C types not followed */
	uint64_t bytes;		/* read, all calls */
	uint64_t corrupt;	/* data that cannot be a live heap's, skipped */
	uint64_t wanted;	/* references to the wanted type's objects */
	uint64_t owners;	/* wanted containers (class instances...), each once */
	uint64_t owners_gc;	/* found on the GC lists, when most were reached from no root */
	/* Once complete, from the dominators of the graph below a sample of the owners (those
	 * found on the GC lists if owners_gc): */
	uint64_t owners_sampled;	/* the owners in it (all, up to 4096) */
	uint64_t owner_bytes;	/* their size, their buffers included */
	uint64_t retained_bytes;	/* theirs and what they dominate */
	uint64_t retained_vertices;	/* objects in the graph below them */
	uint64_t retained_opaque;	/* GC objects of C types in it, whose referents are unknown */
	bool retained_covered;	/* every reference below them was followed, within bounds */
	uint64_t memory;	/* bytes the walk holds */
	double seconds;		/* spent, all calls */
	int calls;
	bool complete;		/* every root and container was followed */
	bool cut;		/* a bound (nodes, groups, lengths) left part of the graph out */
};

struct refwalk;

/* A walk of the objects whose type is named `wanted` (type(obj).__name__); 0, -ENOMEM. */
int refwalk_new(const struct refwalk_layout *l, const struct refwalk_limits *lim,
		const char *wanted, struct refwalk **out);
void refwalk_free(struct refwalk *w);
const char *refwalk_wanted(const struct refwalk *w);

/* The wanted type's live objects as counted elsewhere (census, probes), before the walk: if it
 * reaches fewer than half as many from the roots, the rest are kept by reference cycles alone,
 * and the owners of the retained-size graph are the wanted containers on the GC lists. */
void refwalk_expect(struct refwalk *w, uint64_t live);

/* The walk's layout, with the types it found by name (a deque's). */
const struct refwalk_layout *refwalk_layout(const struct refwalk *w);

/* Goes on with the walk within one call's budget (max_seconds if > 0 and smaller than the
 * limits'): 0 done, -EAGAIN to be continued, -ENOMEM. */
int refwalk_run(struct refwalk *w, refwalk_readv_fn readv, void *arg, double max_seconds);

const struct refwalk_stats *refwalk_stats(const struct refwalk *w);

/* The groups of wanted objects, most numerous first: up to n into out; how many there are. */
size_t refwalk_groups(const struct refwalk *w, struct refwalk_group *out, size_t n);

/* The path to container node, root first: up to n steps into out; its length (0: none). */
size_t refwalk_path(const struct refwalk *w, uint32_t node, struct refwalk_step *out, size_t n);

/* Objects of one type dominated by the sampled owners together (freeing these would free
 * them): what they retain, sized with their buffers. */
struct refwalk_retained { uint64_t type, count, bytes; };

/* Up to n types the wanted objects retain, most bytes first, into out; how many there are. */
size_t refwalk_retained(const struct refwalk *w, struct refwalk_retained *out, size_t n);

/* A dict's keys object as read (its first REFWALK_KEYS_LEN bytes, at keys): where its
 * entries are and how to read them. */
#define REFWALK_KEYS_LEN	48
#define REFWALK_ENTRIES_MAX	(1u << 26)

struct refwalk_keys {
	uint64_t entries;	/* address of the first entry */
	uint32_t n;		/* entries in use or deleted: at most REFWALK_ENTRIES_MAX */
	uint32_t entry_size;	/* 16 or 24 */
	uint32_t key_off, value_off;
	uint64_t bytes;		/* the keys object's size as allocated */
};

/* 0 and out, or -EINVAL if the copy cannot be a keys object of this version. */
int refwalk_keys_parse(const struct cpython_offsets *o, const uint8_t *raw, size_t len,
		       uint64_t keys, struct refwalk_keys *out);

#endif
