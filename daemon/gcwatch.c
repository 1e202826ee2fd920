// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
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

static bool watched(const struct gcwatch *w, uint64_t type)
{
	int i;

	for (i = 0; i < w->ntypes; i++)
		if (w->types[i] == type)
			return true;
	return false;
}

static uint64_t census_count_of(const struct census *c, uint64_t type)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->counts[i].type == type)
			return c->counts[i].count;
	return 0;
}

/* A suspect is watched from now on if there is room. */
static void suspect_add(struct target *t, uint64_t type)
{
	struct gcwatch *w = &t->gcwatch;
	uint64_t dealloc;
	int err;

	w->pending = true;
	if (watched(w, type) || w->ntypes == PROBES_SAMPLED_TYPES)
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

	/* A census cut short counted part of the heap: its counts do not compare. */
	for (j = 0; j < w->nprev && !c->cut_short; j++) {
		uint64_t was = w->prev[j].count, now = census_count_of(c, w->prev[j].type);
		uint64_t swing = now > was ? now - was : was - now, top = now > was ? now : was;

		if (swing >= SWING_MIN && swing >= SWING_SHARE * top)
			suspect_add(t, w->prev[j].type);
	}
	w->nprev = 0;
	/* counts are sorted by count, largest first */
	for (i = 0; i < c->n && c->counts[i].count >= SWING_MIN && w->nprev < GCWATCH_PREV; i++)
		if (pytype_is_heap(t->pid, c->counts[i].type))
			w->prev[w->nprev++] = c->counts[i];
}

static void window_close(struct target *t)
{
	struct gcwatch *w = &t->gcwatch;
	uint64_t total;
	int i, err;

	for (i = 0; i < w->ntypes; i++) {
		/* Classes share their deallocator: the first unhook removes it for all. */
		err = probes_unhook_one(&t->probes, w->deallocs[i], PYLEAK_HOOK_DEATH);
		if (err && err != -ENOENT)
			log_warn("pid %d: remove the probe of %s's deaths: %s", t->pid, w->names[i],
				 strerror(-err));
	}
	/* The death program runs only in windows; its probes are gone here (links closed, their
	 * grace period waited), so this is the whole window's cost.  A lower total is a failed
	 * read: cumulative costs only grow. */
	total = probes_death_cost_ns(&t->probes, w->trap_ns);
	w->last_cost_ns = total > w->cost_ns ? total - w->cost_ns : 0;
	if (total > w->cost_ns)
		w->cost_ns = total;
	w->open_s += loop_mono() - w->opened_mono;
	w->cpu_at_close = t->gov.cpu_s;
	w->open = false;
	log_debug("pid %d: death window %lu closed: %.2f ms of the target's CPU", t->pid,
		  (unsigned long)w->windows, w->last_cost_ns / 1e6);
}

static int timer_arm(double seconds)
{
	struct itimerspec its = {};

	its.it_value.tv_sec = (time_t)seconds;
	its.it_value.tv_nsec = (long)((seconds - (time_t)seconds) * 1e9) + 1;
	return timerfd_settime(timer.fd, 0, &its, NULL) ? -errno : 0;
}

static void on_timer(struct watcher *tw, uint32_t events)
{
	double now = loop_mono(), next = 0;
	struct target *t;
	uint64_t ticks;

	(void)events;
	if (read(tw->fd, &ticks, sizeof(ticks)) < 0)
		return;
	for (t = target_list(); t; t = t->next) {
		double left = t->gcwatch.opened_mono + GCWATCH_WINDOW_S - now;

		if (!t->gcwatch.open || t->state != TARGET_TRACKING)
			continue;
		if (left <= 0)
			window_close(t);
		else if (!next || left < next)
			next = left;
	}
	if (next)
		timer_arm(next);
}

static int timer_start(void)
{
	int err;

	if (timer.fd >= 0)
		return timer_arm(GCWATCH_WINDOW_S);
	timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (timer.fd < 0)
		return -errno;
	timer.fn = on_timer;
	err = loop_add(&timer, EPOLLIN);
	if (!err)
		err = timer_arm(GCWATCH_WINDOW_S);
	if (err)
		gcwatch_stop();
	return err;
}

void gcwatch_stop(void)
{
	if (timer.fd < 0)
		return;
	loop_del(&timer);
	close(timer.fd);
	timer.fd = -1;
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
		if (pytype_dealloc(t->pid, w->types[i], &dealloc) || dealloc != w->deallocs[i])
			continue;
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
	w->windows++;
	err = timer_start();
	if (err) {
		log_warn("death window timer: %s", strerror(-err));
		window_close(t);
	}
}

void gcwatch_tick(struct target *t, uint64_t trap_ns)
{
	struct gcwatch *w = &t->gcwatch;

	/* Left open only if its timer was late. */
	if (w->open)
		window_close(t);
	if (!w->pending || t->gov.cpu_s <= 0)
		return;
	/* Paid for: the budget's share of the CPU time used since covers the last window. */
	if (t->gov.budget > 0 && (t->gov.cpu_s - w->cpu_at_close) * t->gov.budget * 1e9 <
				 (double)w->last_cost_ns)
		return;
	window_open(t, trap_ns);
}
