// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "discovery.h"
#include "hooks.h"
#include "log.h"
#include "metrics.h"
#include "procfs.h"
#include "pystack.h"
#include "sampler.h"
#include "view.h"

/* A census may use this share of the daemon's time (it costs the daemon, not the target);
 * in sampled mode (always-on, many targets) all of them share much less: 0.6% of a core,
 * the rest of 1% being the sample ticks. */
#define CENSUS_DUTY 0.05
#define CENSUS_BUDGET_SAMPLED 0.006
/* ...but every sampled target is counted at least this often, or leaks would go unjudged,
 * and one whose heap grew at its last census this often (history needs fresh values). */
#define CENSUS_PERIOD_MAX 15.0
#define CENSUS_PERIOD_GROWING 4.0
/* Sampled mode keeps history for types with at least this many objects (memory bound). */
#define SAMPLED_ROW_MIN 256

static struct watcher timer = { .fd = -1 };
static double interval = 2.0;

/* What the page governor is fed: the probes' cumulative cost but, in sampled mode, the death
 * program's (gcwatch.c pays for its windows from the budget already). */
static uint64_t governed_cost_ns(struct target *t)
{
	uint64_t total = probes_cost_ns(&t->probes, PROBES_TRAP_NS), death;

	if (!target_sampled(t))
		return total;
	death = probes_death_cost_ns(&t->probes, PROBES_TRAP_NS);
	return total > death ? total - death : 0;
}

double sampler_interval(void)
{
	return interval;
}

/*
 * Precise targets: CENSUS_DUTY of the daemon each.  Sampled targets share one budget: each
 * is counted once per round, and a round lasts as long as all their censuses take divided by
 * the budget (small heaps: every sample interval), but at most CENSUS_PERIOD_MAX, or
 * CENSUS_PERIOD_GROWING for a growing heap: many big or growing heaps then cost more than the
 * budget (a growing heap is what pyleak is for).
 */
double sampler_census_period(const struct target *t)
{
	const struct target *o;
	double total = 0;

	/* Step 2 of the host-wide budget's degradation (discovery.h). */
	double slowdown = discovery_census_slowdown();

	if (!target_sampled(t))
		return t->census_seconds / CENSUS_DUTY * slowdown;
	for (o = target_list(); o; o = o->next)
		if (target_sampled(o) && o->state == TARGET_TRACKING)
			total += o->census_seconds;
	total /= CENSUS_BUDGET_SAMPLED;
	if (t->census_grew && total > CENSUS_PERIOD_GROWING)
		return CENSUS_PERIOD_GROWING * slowdown;
	return (total < CENSUS_PERIOD_MAX ? total : CENSUS_PERIOD_MAX) * slowdown;
}

static void stack_note(void *ctx, uint64_t id, const void *value)
{
	pystack_memo_note(ctx, id, value);
}

/* Each census, the code objects of the stacks recorded since are kept while they can be read:
 * the report of a process that dies still names its sites (pystack.h). */
static void stacks_note(struct target *t)
{
	struct pystack_cache *c;

	if (!t->sites || (!t->py.memo && pystack_memo_new(&t->py.memo)))
		return;
	c = pystack_cache_new(&t->py);
	if (c)
		probes_for_each_stack(&t->probes, stack_note, c);
	pystack_cache_free(c);
}

static int census_take(struct target *t)
{
	struct census c = {};
	int err;

	err = census_run(t->pid, &t->layout, &c);
	t->census_at = loop_mono();
	if (err) {
		/* Back off: a census failure repeats (an allocator pyleak cannot walk). */
		t->census_seconds = 1;
		log_warn("census of pid %d: %s", t->pid, strerror(-err));
		return t->ncensus || target_sampled(t) ? err : 0;
	}
	t->census_seconds = c.seconds;
	t->census_cut_short += c.cut_short;
	if (c.corrupt) {
		/* logged when what is wrong changes, not at every census */
		if (strcmp(t->corrupt_last, c.corrupt_last))
			log_warn("pid %d: %s (%llu times in this census)", t->pid, c.corrupt_last,
				 (unsigned long long)c.corrupt);
		t->corrupt_events += c.corrupt;
		snprintf(t->corrupt_last, sizeof(t->corrupt_last), "%s", c.corrupt_last);
	}
	/* Growth beyond noise (0.1% and 256 objects). */
	t->census_grew = t->census_objects &&
			 c.objects > t->census_objects + t->census_objects / 1000 + 256;
	t->census_objects = c.objects;
	t->census_bytes = 0;
	for (size_t i = 0; i < c.n; i++)
		t->census_bytes += c.counts[i].bytes;
	holders_record(&t->holders, t->census_at, &c);
	if (target_sampled(t)) {
		gcwatch_census(t, &c);
		rows_update_census_all(&t->rows, &c, SAMPLED_ROW_MIN);
	}
	rows_update_census(&t->rows, &c, t->census_types, t->ncensus);
	/* after the plan's census types: their rows are judged, the others only listed */
	if (!target_sampled(t))
		rows_update_census_unprobed(&t->rows, &c, t->probed_types, t->nprobed,
					    SAMPLED_ROW_MIN);
	census_free(&c);
	stacks_note(t);
	return 0;
}

/* The costs so far are precise mode's: sampled mode's governor and death windows measure
 * from them, or their first interval would be charged all of precise mode. */
static void fall_back(struct target *t)
{
	target_fall_back(t);
	t->gov.cost_ns = governed_cost_ns(t);
	t->gcwatch.cost_base_ns = probes_death_cost_ns(&t->probes, PROBES_TRAP_NS);
}

uint64_t sampler_page_mask(struct target *t)
{
	uint64_t braked = t->state == TARGET_TRACKING ? probes_page_mask(&t->probes) : 0;

	return braked > t->gov.page_mask && braked <= GOVERNOR_PAGE_MASK_MAX ? braked :
	       t->gov.page_mask;
}

/*
 * Every fault of a sampled target runs the page sampler, sampled or not (~0.35 us of BPF run
 * time a fault, and the perf event's own): a target that faults fresh pages faster than any
 * rate pays for (a loop of 64 MiB buffers: 10-16% of its CPU) has its page-fault
 * events disabled for a while, twice as long at each pause: once the faults it does not
 * sample cost over budget alone for GOVERNOR_OVER_STREAK intervals (no rate can help), or
 * the least rate is over budget as long.  Its new pages go unsampled meanwhile, and a page
 * mapped anew then keeps the sample of its earlier life (what fault_sample() drops).
 */
#define PAGES_PAUSE_S 30.0
#define PAGES_PAUSE_DOUBLINGS 5	/* at most 16 min */

/* Whether the faults not sampled cost over budget alone, for long enough. */
static bool pages_floor_over(struct target *t)
{
	struct governor *g = &t->gov;
	uint64_t skip = probes_skip_ns(&t->probes);
	double dcpu = g->cpu_s - t->floor_cpu_s, floor;

	if (dcpu < GOVERNOR_MIN_CPU_S || skip < t->floor_skip_ns)
		return false;	/* no new interval (the governor's), or a failed read */
	floor = (skip - t->floor_skip_ns) / 1e9 / dcpu;
	t->floor_skip_ns = skip;
	t->floor_cpu_s = g->cpu_s;
	t->floor_streak = g->budget && floor > g->budget ? t->floor_streak + 1 : 0;
	return t->floor_streak >= GOVERNOR_OVER_STREAK;
}

static void pages_pause_tick(struct target *t)
{
	struct governor *g = &t->gov;
	double now = loop_mono(), pause;
	bool floor_over;
	int err;

	if (t->pages_paused_until > 0) {
		if (now < t->pages_paused_until)
			return;
		err = probes_faults_enable(&t->probes, true);
		if (err) {
			log_warn("pid %d: page sampler: resume: %s", t->pid, strerror(-err));
			return;
		}
		t->pages_paused_until = 0;
		g->over_streak = 0;
		g->sustained = false;
		t->floor_streak = 0;
		log_info("pid %d: page sampler resumed (pause %u)", t->pid, t->page_pauses);
		return;
	}
	if (!target_sampled(t) || !t->probes.faults_on)
		return;
	floor_over = pages_floor_over(t);
	if (!floor_over && !(g->sustained && g->page_mask >= GOVERNOR_PAGE_MASK_MAX))
		return;
	pause = PAGES_PAUSE_S * (1u << (t->page_pauses < PAGES_PAUSE_DOUBLINGS ?
					t->page_pauses : PAGES_PAUSE_DOUBLINGS));
	probes_faults_enable(&t->probes, false);
	t->page_pauses++;
	t->pages_paused_until = now + pause;
	log_warn("pid %d: page sampler paused for %.0f s: its faults cost %.1f%% of the target's "
		 "CPU at 1 page in %lu, %s (budget %.1f%%)", t->pid, pause, g->ratio * 100,
		 (unsigned long)g->page_mask + 1,
		 floor_over ? "over budget in those not sampled alone" : "the least rate",
		 g->budget * 100);
}

/* Per-object probes (precise mode) cannot be thinned: over budget for several intervals,
 * they go (unless forced). */
static void governor_tick(struct target *t)
{
	struct governor *g = &t->gov;
	bool changed;
	double cpu;

	if (procfs_cpu_seconds(t->pid, &cpu))
		cpu = -1;
	/* the sampler's brake may have lowered the rate since: the governor goes on from there */
	g->page_mask = sampler_page_mask(t);
	/* paused, the rate stays at its least for the resumption */
	changed = governor_update(g, governed_cost_ns(t), cpu,
				  t->sites && target_sampled(t) && !t->pages_paused_until);
	if (g->sustained && !target_sampled(t) && !t->opt.force)
		fall_back(t);
	pages_pause_tick(t);
	if (!changed)
		return;
	probes_set_page_mask(&t->probes, g->page_mask);
	log_debug("pid %d: governor: probes cost %.2f%% of its CPU (budget %.2f%%): "
		  "stack of 1 page in %lu", t->pid, g->ratio * 100, g->budget * 100, g->page_mask + 1);
}

/* Types reset per sample: at most this many classes freed and their address reused since. */
#define TYPES_RESET_MAX 64

#define TYPES_CHECK_EVERY 8

struct types_walk {
	struct target *t;
	uint64_t reset[TYPES_RESET_MAX];
	int nreset;
};

/* BPF reads a type's deallocator and sizes once: re-checked here (one read a type), as
 * gcwatch.c does, so a type at a reused address is counted afresh, its dealloc hooked; an
 * eighth of the types a sample (each every 8 samples), so a target with thousands of classes
 * costs the loop a few hundred reads a sample, not thousands. */
static void type_stats_read(void *ctx, uint64_t type, const void *st)
{
	struct types_walk *w = ctx;

	if (w->nreset < TYPES_RESET_MAX && (type >> 4) % TYPES_CHECK_EVERY ==
	    w->t->samples % TYPES_CHECK_EVERY && hooks_type_changed(w->t, type, st)) {
		w->reset[w->nreset++] = type;
		return;
	}
	rows_update_probed(&w->t->rows, type, st);
}

/* Precise mode: every counted type's counters into its row. */
static int types_read(struct target *t)
{
	struct types_walk w = { .t = t };
	long n = probes_for_each_type(&t->probes, type_stats_read, &w);
	int i;

	for (i = 0; i < w.nreset; i++) {
		log_debug("pid %d: type at 0x%lx changed (freed, address reused): counted afresh",
			  t->pid, w.reset[i]);
		probes_forget_type(&t->probes, w.reset[i]);
		rows_forget_probed(&t->rows, w.reset[i]);
	}
	return n < 0 ? (int)n : 0;
}

/* Sampled mode: the watched suspects' deaths, in their death windows (gcwatch.h). */
static int deaths_read(struct target *t)
{
	struct pyleak_type_stats st;
	int i, err;

	for (i = 0; i < t->gcwatch.ntypes; i++) {
		err = probes_read_type(&t->probes, t->gcwatch.types[i], &st);
		if (err)
			return err;
		rows_update_deaths(&t->rows, t->gcwatch.types[i], &st);
	}
	return 0;
}

/*
 * Native scans of all targets share NATIVE_BUDGET of a core: each target is scanned once per
 * round, a round lasting as long as all their scans take divided by the budget, at least a
 * sample interval.  Growth is judged within leaks' window, so a round should not pass
 * NATIVE_PERIOD_MAX; when the scans need more, the budget wins and status says so.
 */
double sampler_native_period(void)
{
	const struct target *o;
	double total = 0;

	for (o = target_list(); o; o = o->next)
		if (o->native && o->state == TARGET_TRACKING)
			total += o->native->seconds;
	total /= NATIVE_BUDGET;
	return total < interval ? interval : total;
}

/* Precise mode's sampled malloc blocks, as the scan's second source of estimates. */
static void native_malloc_take(struct target *t)
{
	struct native_estimate *rows = NULL;
	long k;

	k = nativealloc_rows(t->nalloc, &t->probes, &rows);
	if (k < 0)
		return;
	/* the largest (they come first) */
	native_estimates_set(t->native, NATIVE_SRC_MALLOC, rows,
			     k < NATIVE_ESTIMATES_MAX ? k : NATIVE_ESTIMATES_MAX);
	free(rows);
}

/* Native memory by Python stack, when its period has come (native.h); a failure is counted
 * there and does not stop the sample. */
static void native_take(struct target *t)
{
	if (!t->native && native_new(&t->native))
		return;
	if (!native_due(t->native, loop_mono(), sampler_native_period()))
		return;
	native_scan(t->native, &t->probes, t->pid, &t->layout, t->opt.max_pages);
	if (t->nalloc)
		native_malloc_take(t);
}

int sampler_sample(struct target *t, bool force_census)
{
	int err;

	err = target_check(t);
	if (err)
		return err;
	/* First: a precise target over budget falls back, and this sample is a sampled one. */
	governor_tick(t);
	if (target_sampled(t))
		err = deaths_read(t);
	else
		err = types_read(t);
	/* Every build gets a census now and then: it finds the containers that hold a leak. */
	if (!err && ((force_census && (t->ncensus || target_sampled(t))) ||
		     loop_mono() - t->census_at >= sampler_census_period(t)))
		err = census_take(t);
	if (!err && t->sites)
		native_take(t);
	t->samples++;
	return err;
}

static void on_tick(struct watcher *w, uint32_t events)
{
	struct target *t;
	uint64_t ticks;

	(void)events;
	if (read(w->fd, &ticks, sizeof(ticks)) < 0)
		return;
	for (t = target_list(); t; t = t->next)
		if (t->state == TARGET_TRACKING && !sampler_sample(t, false)) {
			if (target_sampled(t))
				gcwatch_tick(t, PROBES_TRAP_NS);
			rows_history_record(&t->rows, loop_mono());
			if (t->native)
				native_history_record(t->native, loop_mono());
		}
	view_paths_tick();
	metrics_update();
}

int sampler_start(const struct target_options *opt)
{
	interval = opt->sample_interval;
	return loop_timer_start(&timer, on_tick, interval, interval);
}

void sampler_stop(void)
{
	gcwatch_stop();
	loop_timer_stop(&timer);
}
