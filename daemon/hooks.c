// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "census.h"
#include "cpython.h"
#include "hooks.h"
#include "log.h"
#include "procmem.h"
#include "pymalloc.h"
#include "pytype.h"

/* The walk of the GC lists that looks for the classes' deallocator: nodes, deallocators. */
#define CLASSES_WALK_MAX 8192
#define CLASSES_DEALLOCS 8
/* Classes seen, at least, the deallocator shared by most of them (more than half) */
#define CLASSES_MIN 8

/* The pool sampler spent its budget (pyleak.bpf.c): its traps cannot be thinned, it goes. */
static void pool_remove(struct target *t)
{
	int fd;

	if (!t->pool_func)
		return;
	if (probes_take_links(&t->probes, t->pool_func, PYLEAK_HOOK_POOL_NEW, &fd, 1))
		probes_close_links(&fd, 1);
	t->pool_func = 0;
	t->pool_removed = true;
	log_warn("pid %d: the pool sampler spent its budget (%.1f%% of a CPU): removed, recycled "
		 "pools are named by their pages' samples", t->pid, t->gov.budget * 100);
}

int hooks_on_event(void *ctx, const struct pyleak_event *ev)
{
	struct target *t = ctx;
	char what[96], name[64];
	int err;

	if (ev->kind == PYLEAK_EV_POOL_OVER) {
		pool_remove(t);
		return 0;
	}
	/* A type first born just before a fall back to sampled mode: no new probe for it. */
	if (ev->kind != PYLEAK_EV_NEW_TYPE || target_sampled(t))
		return 0;
	pytype_name(t->pid, ev->type, name, sizeof(name));
	snprintf(what, sizeof(what), "tp_dealloc of %s", name);
	err = probes_hook(&t->probes, ev->dealloc, python_func_size(&t->py, ev->dealloc),
			  PYLEAK_HOOK_DEATH, PYLEAK_REG_RDI, what);
	if (err < 0) {
		log_warn("pid %d: not counting type %s: %s", t->pid, name, strerror(-err));
		probes_ignore_type(&t->probes, ev->type);
	}
	return 0;
}

/* Watches a static type: its births count, and its tp_dealloc is hooked for deaths. */
static int type_watch(struct target *t, const char *sym)
{
	uint64_t type, dealloc;
	char what[96];
	int err;

	if (python_symbol_addr(&t->py, sym, &type))
		return 0;	/* not in this version */
	err = pytype_dealloc(t->pid, type, &dealloc);
	if (err) {
		log_error("attach pid %d: read %s: %s", t->pid, sym, strerror(-err));
		return err;
	}
	snprintf(what, sizeof(what), "tp_dealloc of %s", sym);
	err = probes_hook(&t->probes, dealloc, python_func_size(&t->py, dealloc), PYLEAK_HOOK_DEATH,
			  PYLEAK_REG_RDI, what);
	if (err)
		return err;
	return probes_watch_type(&t->probes, type);
}

int hooks_place_gc(struct target *t)
{
	const struct python_plan *plan = &t->plan;
	uint64_t addr, size;
	int i, err;

	if (plan->gc_usdt)
		return probes_usdt_gc(&t->probes, t->py.module_path);
	for (i = 0; i < plan->ngc_funcs; i++) {
		if (python_symbol_addr(&t->py, plan->gc_funcs[i], &addr))
			continue;
		size = python_func_size(&t->py, addr);
		err = probes_hook(&t->probes, addr, size, PYLEAK_HOOK_GC_START, plan->gc_gen_reg,
				  plan->gc_funcs[i]);
		if (!err)
			err = probes_hook(&t->probes, addr, size, PYLEAK_HOOK_GC_DONE, -1, plan->gc_funcs[i]);
		if (err)
			return err;
	}
	return 0;
}

int hooks_pool_find(const struct target *t, uint64_t *addr, uint64_t *size)
{
	uint64_t vaddr;

	/*
	 * 3.8 inlines it; stripped builds (Debian's) have it found by its code (pymalloc.c).  A
	 * pool is named after one object: in 3.9's 4 KiB pools that misnamed more survivors than
	 * it named (segmenter's splitlines share 1.15-1.18 without, 0.86-0.88 with).
	 */
	if (!t->sites || t->plan.pool_size < 16384 || !probes_sessions_supported() ||
	    pymalloc_pool_init_find(t->py.elf, &vaddr, size))
		return -ENOENT;
	*addr = vaddr + t->py.bias;
	return 0;
}

int hooks_place_pool(struct target *t, uint64_t addr, uint64_t size)
{
	return probes_hook(&t->probes, addr, size, PYLEAK_HOOK_POOL_NEW, -1,
			   "allocate_from_new_pool");
}

bool hooks_type_changed(struct target *t, uint64_t type, const struct pyleak_type_stats *st)
{
	uint64_t basicsize, itemsize, dealloc;

	if (!(st->flags & PYLEAK_TYPE_HEAP) || !st->dealloc)
		return false;
	return pytype_sizes(t->pid, type, &basicsize, &itemsize, &dealloc) ||
	       dealloc != st->dealloc || basicsize != st->basicsize || itemsize != st->itemsize;
}

struct dealloc_tally {
	uint64_t func[CLASSES_DEALLOCS];
	int n[CLASSES_DEALLOCS];
	int nfuncs, types;
};

static void tally_add(struct dealloc_tally *d, uint64_t func)
{
	int i;

	d->types++;
	for (i = 0; i < d->nfuncs && d->func[i] != func; i++)
		;
	if (i == d->nfuncs && d->nfuncs < CLASSES_DEALLOCS)
		d->func[d->nfuncs++] = func;
	if (i < d->nfuncs)
		d->n[i]++;
}

/* The heap types on one GC list (a generation, its head at head), at most *budget nodes. */
static void classes_tally(pid_t pid, uint64_t head, uint64_t type_type, int *budget,
			  struct dealloc_tally *d)
{
	uint64_t w[4], prev = head, node, flags, dealloc;

	if (procmem_read_u64(pid, head, &node))
		return;
	node &= ~7ull;
	/* a node: the GC links, then the object (refcount, type) */
	for (; node != head && *budget > 0; (*budget)--) {
		if (procmem_read(pid, node, w, sizeof(w)) || census_gc_node_check(w, prev, &w[0]))
			return;
		if (w[3] == type_type && !procmem_read_u64(pid, node + 16 + CPY_TP_FLAGS, &flags) &&
		    (flags & CPY_TPFLAGS_HEAPTYPE) && !pytype_dealloc(pid, node + 16, &dealloc) &&
		    dealloc)
			tally_add(d, dealloc);
		prev = node;
		node = w[0];
	}
}

int hooks_place_classes(struct target *t)
{
	const struct census_layout *l = &t->layout;
	struct dealloc_tally d = {};
	uint64_t gc = l->gc_state, type_type, addr;
	int i, best = 0, budget = CLASSES_WALK_MAX;

	if (target_sampled(t) || !python_symbol_addr(&t->py, "subtype_dealloc", &addr) ||
	    !l->gc_state || python_symbol_addr(&t->py, "PyType_Type", &type_type))
		return 0;
	if (l->gc_interp_ptr && procmem_read_u64(t->pid, l->gc_interp_ptr, &gc))
		return 0;
	if (l->gc_interp_ptr)
		gc += l->gc_state;
	for (i = 0; i < 3; i++)
		classes_tally(t->pid, gc + l->gc_generations + i * l->gc_generation_size, type_type,
			      &budget, &d);
	for (i = 1; i < d.nfuncs; i++)
		if (d.n[i] > d.n[best])
			best = i;
	if (!d.nfuncs || d.n[best] < CLASSES_MIN || d.n[best] * 2 <= d.types) {
		log_debug("pid %d: classes' deallocator not found (%d heap types seen): hooked at "
			  "the first class's birth", t->pid, d.types);
		return 0;
	}
	return probes_hook(&t->probes, d.func[best], python_func_size(&t->py, d.func[best]),
			   PYLEAK_HOOK_DEATH, PYLEAK_REG_RDI, "subtype_dealloc (most classes' tp_dealloc)");
}

int hooks_place_all(struct target *t)
{
	int i, err, births = 0, pass;
	uint64_t addr;

	err = hooks_place_gc(t);
	if (err)
		return err;
	/* Every class's deallocator, up front where its symbol is known (not in Debian's
	 * stripped build: there the first class born brings it, hooks_on_event()), so the first
	 * class's births count from the start. */
	if (!python_symbol_addr(&t->py, "subtype_dealloc", &addr)) {
		err = probes_hook(&t->probes, addr, python_func_size(&t->py, addr), PYLEAK_HOOK_DEATH,
				  PYLEAK_REG_RDI, "subtype_dealloc");
		if (err)
			return err;
	}
	for (i = 0; i < t->plan.nwatched; i++) {
		err = type_watch(t, t->plan.watched[i]);
		if (err)
			return err;
	}
	/* Deaths before births, so no object is seen born without its death being seen too. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < t->plan.nhooks; i++) {
			const struct python_hook_spec *h = &t->plan.hooks[i];
			bool death = h->kind == PYLEAK_HOOK_DEATH;

			if (death != (pass == 0) || python_symbol_addr(&t->py, h->symbol, &addr))
				continue;
			err = probes_hook(&t->probes, addr, python_func_size(&t->py, addr), h->kind,
					  PYLEAK_REG_RDI, h->symbol);
			if (err)
				return err;
			births += !death;
		}
	}
	if (!births) {
		log_error("attach pid %d: no allocation function to hook in %s", t->pid, t->py.module);
		return -EPROTONOSUPPORT;
	}
	return 0;
}
