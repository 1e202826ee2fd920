/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* What to probe in a target, from its interpreter's plan (see python_plan()). */
#ifndef PYLEAK_HOOKS_H
#define PYLEAK_HOOKS_H

#include "pyleak.h"
#include "target.h"

/* Collections: their duration, and which deaths happen inside one (both modes). */
int hooks_place_gc(struct target *t);

/* pymalloc's pool initialisations, for the sites of objects in recycled pools (both modes,
 * where the symbol and uprobe sessions exist); 0 or -errno. */
int hooks_place_pool(struct target *t);
/* Where hooks_place_pool() would probe (0), or -ENOENT: it places nothing here. */
int hooks_pool_find(const struct target *t, uint64_t *addr);

/* Per-object probes (precise mode): births, deaths, static types, and collections. */
int hooks_place_all(struct target *t);

/* The probes' event callback (ctx: the target): a heap type's first birth gets its
 * tp_dealloc hooked, or the type stops being counted. */
int hooks_on_event(void *ctx, const struct pyleak_event *ev);

#endif
