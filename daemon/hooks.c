// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hooks.h"
#include "log.h"
#include "pytype.h"

int hooks_on_event(void *ctx, const struct pyleak_event *ev)
{
	struct target *t = ctx;
	char what[96], name[64];
	int err;

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

int hooks_pool_find(const struct target *t, uint64_t *addr)
{
	/*
	 * 3.8 inlines it, Debian's stripped build has no symbol: page faults alone there.  A
	 * pool is named after one object: in 3.9's 4 KiB pools that misnamed more survivors than
	 * it named (segmenter's splitlines share 1.15-1.18 without, 0.86-0.88 with).
	 */
	if (!t->sites || t->plan.pool_size < 16384 || !probes_sessions_supported() ||
	    python_symbol_addr(&t->py, "allocate_from_new_pool", addr))
		return -ENOENT;
	return 0;
}

int hooks_place_pool(struct target *t)
{
	uint64_t addr;

	if (hooks_pool_find(t, &addr))
		return 0;
	return probes_hook(&t->probes, addr, python_func_size(&t->py, addr), PYLEAK_HOOK_POOL_NEW,
			   -1, "allocate_from_new_pool");
}

int hooks_place_all(struct target *t)
{
	int i, err, births = 0, pass;
	uint64_t addr;

	err = hooks_place_gc(t);
	if (err)
		return err;
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
