// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gcwatch.h"
#include "log.h"
#include "pytype.h"
#include "target.h"

/* A swing is at least this many objects and this share of the larger count: a steady
 * population's churn, or an instance or two in flight, is not one. */
#define SWING_MIN 16
#define SWING_SHARE 0.1

/* One timer closes every target's window: windows open at sample ticks, all at once. */
static struct watcher timer = { .fd = -1 };

/* The slot watching type, or -1. */
static int watched(const struct gcwatch *w, uint64_t type)
{
	int i;

	for (i = 0; i < w->ntypes; i++)
		if (w->types[i] == type)
			return i;
	return -1;
}

/* Frees slot i: its class's deaths are no longer counted (no window is open). */
static void slot_evict(struct target *t, int i, const char *why)
{
	struct gcwatch *w = &t->gcwatch;
	int err, last = w->ntypes - 1;

	log_info("pid %d: %s %s: its deaths are no longer probed", t->pid, w->names[i], why);
	err = probes_forget_type(&t->probes, w->types[i]);
	if (err && err != -ENOENT)
		log_warn("pid %d: forget type 0x%lx: %s", t->pid, w->types[i], strerror(-err));
	/* The last slot fills the hole: order does not matter. */
	w->types[i] = w->types[last];
	w->deallocs[i] = w->deallocs[last];
	w->swung_at[i] = w->swung_at[last];
	w->windows_at[i] = w->windows_at[last];
	w->measured_at[i] = w->measured_at[last];
	w->gc_runs_at[i] = w->gc_runs_at[last];
	memcpy(w->names[i], w->names[last], sizeof(w->names[0]));
	w->ntypes--;
}

static void stale_evict(struct target *t)
{
	struct gcwatch *w = &t->gcwatch;
	int i;

	for (i = w->ntypes - 1; i >= 0 && !w->open; i--)
		if (w->censuses - w->swung_at[i] >= GCWATCH_STALE_CENSUSES)
			slot_evict(t, i, "has not swung for a while");
}

static uint64_t census_count_of(const struct census *c, uint64_t type)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->counts[i].type == type)
			return c->counts[i].count;
	return 0;
}

static uint64_t gc_runs(struct target *t)
{
	struct pyleak_gc gc;
	uint64_t runs = 0;
	int g;

	probes_read_gc(&t->probes, &gc);
	for (g = 0; g < PYLEAK_GC_GENS; g++)
		runs += gc.gens[g].runs;
	return runs;
}

/* A suspect is watched from now on if there is room. */
static void suspect_add(struct target *t, uint64_t type)
{
	struct gcwatch *w = &t->gcwatch;
	int i = watched(w, type), err;
	uint64_t dealloc;

	w->pending = true;
	if (i >= 0)
		w->swung_at[i] = w->censuses;
	if (i >= 0 || w->ntypes == PROBES_SAMPLED_TYPES)
		return;
	if (pytype_dealloc(t->pid, type, &dealloc) || !dealloc)
		return;
	err = probes_watch_type(&t->probes, type);
	if (err) {
		log_warn("pid %d: watch type 0x%lx: %s", t->pid, type, strerror(-err));
		return;
	}
	/* Its row, before any death is counted: history must start before the first window. */
	rows_update_deaths(&t->rows, type, &(struct pyleak_type_stats){ 0 });
	w->types[w->ntypes] = type;
	w->deallocs[w->ntypes] = dealloc;
	w->swung_at[w->ntypes] = w->censuses;
	w->windows_at[w->ntypes] = w->windows;
	w->measured_at[w->ntypes] = w->measured;
	w->gc_runs_at[w->ntypes] = gc_runs(t);
	pytype_name(t->pid, type, w->names[w->ntypes], sizeof(w->names[0]));
	log_info("pid %d: %s swings between censuses: its deaths will be probed in windows",
		 t->pid, w->names[w->ntypes]);
	w->ntypes++;
}

void gcwatch_census(struct target *t, const struct census *c)
{
	struct gcwatch *w = &t->gcwatch;
	size_t i;
	int j;

	/* A census cut short counted part of the heap: its counts do not compare, with the last
	 * census or the next. */
	if (c->cut_short)
		return;
	w->censuses++;
	for (j = 0; j < w->nprev; j++) {
		uint64_t was = w->prev[j].count, now = census_count_of(c, w->prev[j].type);
		uint64_t swing = now > was ? now - was : was - now, top = now > was ? now : was;

		if (swing >= SWING_MIN && swing >= SWING_SHARE * top)
			suspect_add(t, w->prev[j].type);
	}
	stale_evict(t);
	w->nprev = 0;
	/* counts are sorted by count, largest first */
	for (i = 0; i < c->n && c->counts[i].count >= SWING_MIN && w->nprev < GCWATCH_PREV; i++)
		if (pytype_is_heap(t->pid, c->counts[i].type))
			w->prev[w->nprev++] = c->counts[i];
}

/* Takes the window's probes out of t: up to max link fds go to fds, to be closed. */
static int window_take(struct target *t, int *fds, int max)
{
	struct gcwatch *w = &t->gcwatch;
	int i, n = 0;

	/* Classes share their deallocator: the first take has its probe for all. */
	for (i = 0; i < w->ntypes && n < max; i++)
		n += probes_take_links(&t->probes, w->deallocs[i], PYLEAK_HOOK_DEATH, fds + n,
				       max - n);
	return n;
}

/* The window's books, once its probes are gone (or going, at the target's end). */
static void window_books(struct target *t)
{
	struct gcwatch *w = &t->gcwatch;
	uint64_t total;

	/* The death program runs only in windows; its links are closed here (their grace
	 * period waited), so this is the whole window's cost.  A lower total is a failed read:
	 * cumulative costs only grow. */
	total = probes_death_cost_ns(&t->probes, w->trap_ns);
	total = total > w->cost_base_ns ? total - w->cost_base_ns : 0;
	w->last_cost_ns = total > w->cost_ns ? total - w->cost_ns : 0;
	if (total > w->cost_ns)
		w->cost_ns = total;
	w->open_s += loop_mono() - w->opened_mono;
	if (gc_runs(t) != w->gc_runs_at_open)
		w->measured++;
	w->cpu_at_close = t->gov.cpu_s;
	w->open = false;
	log_debug("pid %d: death window %lu closed: %.2f ms of the target's CPU", t->pid,
		  (unsigned long)w->windows, w->last_cost_ns / 1e6);
}

static void window_close(struct target *t)
{
	int fds[PROBES_SAMPLED_TYPES];

	probes_close_links(fds, window_take(t, fds, PROBES_SAMPLED_TYPES));
	window_books(t);
}

bool gcwatch_measuring(const struct gcwatch *w, uint64_t type)
{
	int i;

	for (i = 0; i < w->ntypes; i++)
		if (w->types[i] == type)
			return w->measured == w->measured_at[i] &&
			       w->windows - w->windows_at[i] - (w->open ? 1U : 0U) <
				       (w->gc_runs_seen > w->gc_runs_at[i] ? GCWATCH_HOLD_WINDOWS :
									     GCWATCH_MEASURE_WINDOWS);
	return false;
}

void gcwatch_end(struct target *t)
{
	if (t->gcwatch.open && t->state == TARGET_TRACKING)
		window_books(t);
}

/* Due once GCWATCH_WINDOW_S has passed and a collection has run in it (or at
 * GCWATCH_WINDOW_MAX_S, longer for a target that collects less often); *left: until the next
 * check. */
static bool window_due(struct target *t, double now, double *left)
{
	const struct gcwatch *w = &t->gcwatch;
	double open_s = now - w->opened_mono;

	double max_s = GCWATCH_WINDOW_MAX_S;

	*left = GCWATCH_WINDOW_S - open_s;
	if (!w->open || t->state != TARGET_TRACKING || *left > 0)
		return false;
	if (1.5 * w->gc_interval_s > max_s)
		max_s = 1.5 * w->gc_interval_s < GCWATCH_WINDOW_LONG_S ? 1.5 * w->gc_interval_s :
									  GCWATCH_WINDOW_LONG_S;
	if (open_s >= max_s || gc_runs(t) != w->gc_runs_at_open)
		return true;
	*left = GCWATCH_WINDOW_S;	/* looked at again then */
	return false;
}

/* Closes every due window at once: one grace period for all, not one per target. */
static void windows_close_due(double now)
{
	int *fds = NULL, n = 0, cap = 0, *more;
	struct target *t;
	double left;

	for (t = target_list(); t; t = t->next) {
		if (!window_due(t, now, &left))
			continue;
		if (cap - n < PROBES_SAMPLED_TYPES) {
			more = realloc(fds, (cap + 64) * sizeof(*fds));
			if (!more) {
				window_close(t);	/* one at a time, then */
				continue;
			}
			fds = more;
			cap += 64;
		}
		n += window_take(t, fds + n, PROBES_SAMPLED_TYPES);
		t->gcwatch.closing = true;
	}
	probes_close_links(fds, n);
	free(fds);
	for (t = target_list(); t; t = t->next) {
		if (t->gcwatch.closing)
			window_books(t);
		t->gcwatch.closing = false;
	}
}

static void on_timer(struct watcher *tw, uint32_t events)
{
	double now = loop_mono(), next = 0, left;
	struct target *t;
	uint64_t ticks;

	(void)events;
	if (read(tw->fd, &ticks, sizeof(ticks)) < 0)
		return;
	windows_close_due(now);
	/* the windows still open: the next one due */
	for (t = target_list(); t; t = t->next) {
		if (!t->gcwatch.open || t->state != TARGET_TRACKING)
			continue;
		window_due(t, now, &left);
		if (!next || left < next)
			next = left;
	}
	if (next)
		loop_timer_set(&timer, next, 0);
}

static int timer_start(void)
{
	if (timer.fd >= 0)
		return loop_timer_set(&timer, GCWATCH_WINDOW_S, 0);
	return loop_timer_start(&timer, on_timer, GCWATCH_WINDOW_S, 0);
}

void gcwatch_stop(void)
{
	loop_timer_stop(&timer);
}

static void window_open(struct target *t, uint64_t trap_ns)
{
	struct gcwatch *w = &t->gcwatch;
	uint64_t dealloc;
	char what[96];
	int i, err, hooked = 0;

	w->pending = false;
	for (i = 0; i < w->ntypes; i++) {
		/* A class freed since (its memory reused) no longer has that deallocator. */
		if (pytype_dealloc(t->pid, w->types[i], &dealloc) || dealloc != w->deallocs[i]) {
			slot_evict(t, i--, "changed its deallocator (freed)");
			continue;
		}
		snprintf(what, sizeof(what), "tp_dealloc of %s", w->names[i]);
		err = probes_hook(&t->probes, dealloc, python_func_size(&t->py, dealloc),
				  PYLEAK_HOOK_DEATH, PYLEAK_REG_RDI, what);
		if (err)
			log_warn("pid %d: %s: %s", t->pid, what, strerror(-err));
		else
			hooked++;
	}
	if (!hooked)
		return;
	w->open = true;
	w->opened_at = loop_now();
	w->opened_mono = loop_mono();
	w->trap_ns = trap_ns;
	w->gc_runs_at_open = gc_runs(t);
	w->windows++;
	err = timer_start();
	if (err) {
		log_warn("death window timer: %s", strerror(-err));
		window_close(t);
	}
}

/* The interval between the target's collections, from the ticks that saw their count
 * change: windows that end before a collection measure nothing. */
static void gc_interval_note(struct target *t)
{
	struct gcwatch *w = &t->gcwatch;
	uint64_t runs = gc_runs(t);
	double now = loop_mono();

	if (runs > w->gc_runs_seen && w->gc_seen_mono > 0)
		w->gc_interval_s = (now - w->gc_seen_mono) / (double)(runs - w->gc_runs_seen);
	if (runs != w->gc_runs_seen || w->gc_seen_mono <= 0) {
		w->gc_runs_seen = runs;
		w->gc_seen_mono = now;
	} else if (w->gc_interval_s > 0 && now - w->gc_seen_mono > w->gc_interval_s) {
		/* none since: at least this long now (a target that never collected keeps 0) */
		w->gc_interval_s = now - w->gc_seen_mono;
	}
}

void gcwatch_tick(struct target *t, uint64_t trap_ns)
{
	struct gcwatch *w = &t->gcwatch;

	gc_interval_note(t);
	/* Left open only if its timer was late. */
	if (w->open)
		window_close(t);
	if (!w->ntypes || t->gov.cpu_s <= 0)
		return;
	if (!w->pending && loop_mono() - w->opened_mono < GCWATCH_REPEAT_S)
		return;
	/* Paid for: the budget's share of the CPU time used since covers the last window. */
	if (t->gov.budget > 0 && (t->gov.cpu_s - w->cpu_at_close) * t->gov.budget * 1e9 <
				 (double)w->last_cost_ns)
		return;
	window_open(t, trap_ns);
}
