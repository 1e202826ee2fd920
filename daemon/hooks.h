/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* What to probe in a target, from its interpreter's plan (see python_plan()). */
#ifndef PYLEAK_HOOKS_H
#define PYLEAK_HOOKS_H

#include "pyleak.h"
#include "target.h"

/* Collections: their duration, and which deaths happen inside one (both modes). */
int hooks_place_gc(struct target *t);

/* Where pymalloc initialises pools (its runtime address and size: 0), or -ENOENT where the
 * pool sampler is not placed (no such function found, 4 KiB pools, no uprobe sessions). */
int hooks_pool_find(const struct target *t, uint64_t *addr, uint64_t *size);
/* The pool sampler at what hooks_pool_find() found, for the sites of objects in recycled
 * pools (both modes); 0 or -errno. */
int hooks_place_pool(struct target *t, uint64_t addr, uint64_t size);

/* Per-object probes (precise mode): births, deaths, static types, and collections. */
int hooks_place_all(struct target *t);

/* A counted heap type whose tp_dealloc or sizes differ from what BPF cached: the class was
 * freed and another type took its address (or its memory cannot be read); its entry must go. */
bool hooks_type_changed(struct target *t, uint64_t type, const struct pyleak_type_stats *st);

/* Precise mode, a build without the symbol subtype_dealloc (Debian's): the tp_dealloc most
 * classes on the GC lists share is hooked now, not at the first class's birth, whose births
 * would go uncounted meanwhile (census_setup() first: the GC's layout); 0 or -errno (the
 * first class's birth still hooks it then). */
int hooks_place_classes(struct target *t);

/* The probes' event callback (ctx: the target): a heap type's first birth gets its
 * tp_dealloc hooked, or the type stops being counted. */
int hooks_on_event(void *ctx, const struct pyleak_event *ev);

#endif
