// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "procmem.h"
#include "pystack.h"
#include "sites.h"
#include "target.h"

/* CPython type object fields (3.8-3.13, x86-64). */
#define TP_NAME_OFF 24
#define TP_DEALLOC_OFF 48
#define TP_FLAGS_OFF 168
/* Ended targets stay listed (for `status`) this long. */
#define ENDED_KEEP_S 600.0

static struct target *targets;
static struct watcher sampler = { .fd = -1 };
static double sample_interval = 2.0;
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
/* Estimated cost of one uprobe trap (the BPF run time is measured; the trap is not). */
#define UPROBE_TRAP_NS 700
/* Governor: the page sampling rate ranges from every page to 1 in 4096. */
#define PAGE_MASK_MAX 4095

const char *target_state_name(enum target_state s)
{
	switch (s) {
	case TARGET_TRACKING: return "tracking";
	case TARGET_EXITED: return "exited";
	case TARGET_EXECED: return "execed";
	case TARGET_FAILED: return "failed";
	}
	return "unknown";
}

struct target *target_list(void)
{
	return targets;
}

static void target_free(struct target *t)
{
	size_t i;

	python_release(&t->py);
	for (i = 0; i < t->nrows; i++)
		free(t->rows[i].hist);
	free(t->rows);
	census_free(&t->sites_cache);
	census_free(&t->births_cache);
	free(t);
}

/* Frees targets that ended long ago; their fds left the loop when they ended. */
static void targets_prune(void)
{
	struct target **pp = &targets, *t;
	double now = loop_now();

	while ((t = *pp)) {
		if (t->state != TARGET_TRACKING && now - t->ended_at > ENDED_KEEP_S) {
			*pp = t->next;
			target_free(t);
		} else {
			pp = &t->next;
		}
	}
}

struct target *target_find(pid_t pid)
{
	struct target *t;

	targets_prune();
	for (t = targets; t; t = t->next)
		if (t->pid == pid)
			return t;
	return NULL;
}

/* Stops tracking: the BPF object and its maps are freed, the record stays for `status`. */
static void target_end(struct target *t, enum target_state state)
{
	if (t->state != TARGET_TRACKING)
		return;
	loop_del(&t->pid_watch);
	loop_del(&t->rb_watch);
	probes_close_async(&t->probes);
	if (t->pidfd >= 0)
		close(t->pidfd);
	t->pidfd = -1;
	t->state = state;
	t->ended_at = loop_now();
	log_info("pid %d: %s, probes removed", t->pid, target_state_name(state));
}

static void target_unlink(struct target *t)
{
	struct target **pp;

	for (pp = &targets; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
}

void target_detach(struct target *t)
{
	target_end(t, TARGET_EXITED);
	target_unlink(t);
	target_free(t);
}

void target_detach_all(void)
{
	while (targets)
		target_detach(targets);
	probes_reap_all();
}

static int type_name_read(pid_t pid, uint64_t type, char *buf, size_t len)
{
	char name[256];
	const char *dot;
	uint64_t p;
	size_t n;
	int err;

	err = procmem_read_u64(pid, type + TP_NAME_OFF, &p);
	if (!err)
		err = procmem_read_str(pid, p, name, sizeof(name));
	if (err) {
		snprintf(buf, len, "<type 0x%lx>", type);
		return err;
	}
	/* type(obj).__name__ is the part after the module prefix. */
	dot = strrchr(name, '.');
	dot = dot ? dot + 1 : name;
	n = strnlen(dot, len - 1);
	memcpy(buf, dot, n);
	buf[n] = '\0';
	return 0;
}

static void on_pid_exit(struct watcher *w, uint32_t events)
{
	struct target *t = (struct target *)((char *)w - offsetof(struct target, pid_watch));

	(void)events;
	target_end(t, TARGET_EXITED);
}

static void on_ringbuf(struct watcher *w, uint32_t events)
{
	struct target *t = (struct target *)((char *)w - offsetof(struct target, rb_watch));

	(void)events;
	if (t->state == TARGET_TRACKING)
		probes_consume(&t->probes);
}

/* A heap type's first birth: hook its tp_dealloc, or stop counting it if we cannot. */
static int on_event(void *ctx, const struct pyleak_event *ev)
{
	struct target *t = ctx;
	char what[96], name[64];
	int err;

	if (ev->kind != PYLEAK_EV_NEW_TYPE)
		return 0;
	type_name_read(t->pid, ev->type, name, sizeof(name));
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

	err = python_symbol_addr(&t->py, sym, &type);
	if (err)
		return 0;	/* not in this version */
	err = procmem_read_u64(t->pid, type + TP_DEALLOC_OFF, &dealloc);
	if (err) {
		log_error("attach pid %d: read %s: %s", t->pid, sym, strerror(-err));
		return err;
	}
	snprintf(what, sizeof(what), "tp_dealloc of %s", sym);
	err = probes_hook(&t->probes, dealloc, python_func_size(&t->py, dealloc), PYLEAK_HOOK_DEATH,
			  PYLEAK_REG_RDI, what);
	if (err < 0)
		return err;
	return probes_watch_type(&t->probes, type);
}

/* Collections: their duration, and which deaths happen inside one. */
static int target_hook_gc(struct target *t)
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
		if (err >= 0)
			err = probes_hook(&t->probes, addr, size, PYLEAK_HOOK_GC_DONE, -1, plan->gc_funcs[i]);
		if (err < 0)
			return err;
	}
	return 0;
}

static int target_hook_all(struct target *t)
{
	int i, err, births = 0, pass;
	uint64_t addr;

	err = target_hook_gc(t);
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
			if (err < 0)
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

static void census_setup(struct target *t)
{
	int i;

	t->layout.pool_size = t->plan.pool_size;
	t->layout.max_block = 512;
	t->layout.preheader_flags = t->plan.preheader_flags;
	python_symbol_addr(&t->py, "PyList_Type", &t->layout.list_type);
	python_symbol_addr(&t->py, "PyDict_Type", &t->layout.dict_type);
	for (i = 0; i < t->plan.ncensus; i++)
		if (!python_symbol_addr(&t->py, t->plan.census[i], &t->census_types[t->ncensus]))
			t->ncensus++;
}

int target_attach(pid_t pid, const char *mode, const struct target_options *opt, struct target **out)
{
	/* Sampled mode tracks no object: an empty object map still costs its buckets
	 * (16 bytes per entry of max_objects, 64 MiB at the default). */
	struct probes_config cfg = { .max_objects = strcmp(mode, "sampled") ? opt->max_objects : 1,
				     .max_pages = opt->max_pages, .max_stacks = opt->max_stacks };
	struct target *t;
	int err;

	t = target_find(pid);
	if (t && t->state == TARGET_TRACKING) {
		*out = t;
		return 1;
	}
	if (t) {
		target_unlink(t);
		target_free(t);
	}
	if (strcmp(mode, "precise") && strcmp(mode, "sampled"))
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->opt = *opt;
	t->sampled = !strcmp(mode, "sampled");
	t->gov.budget = opt->budget;
	t->pid = pid;
	t->pidfd = -1;
	t->pid_watch.fd = -1;
	t->rb_watch.fd = -1;
	t->state = TARGET_FAILED;
	snprintf(t->mode, sizeof(t->mode), "%s", mode);
	err = python_inspect(pid, &t->py);
	if (err)
		goto cleanup;
	python_plan(&t->py, &t->plan);
	t->pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (t->pidfd < 0) {
		err = errno == ESRCH ? -ESRCH : -errno;
		goto cleanup;
	}
	python_symbol_addr(&t->py, t->plan.unsized, &t->unsized_type);
	cfg.unsized_type = t->unsized_type;
	if (pystack_layout(&t->py, &cfg.stacks))
		log_warn("pid %d: no Python stack layout for %s: no allocation sites", pid,
			 t->py.version);
	t->sites = cfg.stacks.runtime != 0;
	cfg.birth_sample_every = t->sampled ? 0 : opt->birth_sample_every;
	err = probes_open(&t->probes, pid, &cfg, on_event, t);
	if (err)
		goto cleanup;
	t->state = TARGET_TRACKING;
	/* Sampled mode: no per-object probe, only the rare ones (collections, page faults). */
	err = t->sampled ? target_hook_gc(t) : target_hook_all(t);
	if (err)
		goto cleanup;
	census_setup(t);
	t->pid_watch = (struct watcher){ .fd = t->pidfd, .fn = on_pid_exit };
	t->rb_watch = (struct watcher){ .fd = probes_epoll_fd(&t->probes), .fn = on_ringbuf };
	err = loop_add(&t->pid_watch, EPOLLIN);
	if (!err)
		err = loop_add(&t->rb_watch, EPOLLIN);
	if (err)
		goto cleanup;
	t->attached_at = loop_now();
	t->next = targets;
	targets = t;
	log_info("pid %d: attached %s (python %s, %s%s, %d probes%s)", pid, mode, t->py.version,
		 t->py.shared ? "libpython" : "static", t->py.inlined ? ", LTO-inlined" : "",
		 t->probes.nlinks, t->sites ? ", allocation sites" : "");
	*out = t;
	return 0;
cleanup:
	if (t->state == TARGET_TRACKING) {
		/* Only the loop watchers may be missing: target_end() tolerates that. */
		target_end(t, TARGET_FAILED);
	} else if (t->pidfd >= 0) {
		close(t->pidfd);
	}
	target_free(t);
	return err;
}

static bool type_is_heap(struct target *t, uint64_t type)
{
	uint64_t flags = 0;

	return !procmem_read_u64(t->pid, type + TP_FLAGS_OFF, &flags) && (flags & (1u << 9));
}

static struct type_row *row_find(struct target *t, uint64_t type)
{
	size_t i;

	for (i = 0; i < t->nrows; i++)
		if (t->rows[i].type == type)
			return &t->rows[i];
	return NULL;
}

static struct type_row *row_get(struct target *t, uint64_t type)
{
	struct type_row *r = row_find(t, type);

	if (r)
		return r;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;

		r = realloc(t->rows, cap * sizeof(*r));
		if (!r)
			return NULL;
		t->rows = r;
		t->cap = cap;
	}
	r = &t->rows[t->nrows++];
	memset(r, 0, sizeof(*r));
	r->type = type;
	type_name_read(t->pid, type, r->name, sizeof(r->name));
	return r;
}

static void row_set(struct type_row *r, int64_t live, int64_t net, int64_t bytes)
{
	if (r->seen) {
		r->prev_net = r->net;
		r->has_prev = true;
	}
	r->live = live;
	r->net = net;
	r->bytes = bytes;
	r->seen = true;
}

static void sample_type(void *ctx, uint64_t type, const struct pyleak_type_stats *st)
{
	struct target *t = ctx;
	struct type_row *r = row_get(t, type);
	int64_t live;

	if (!r)
		return;
	r->st = *st;
	live = (int64_t)(st->born - st->died - st->replaced);
	row_set(r, live, live - (int64_t)st->pre_died,
		type == t->unsized_type ? -1 : (int64_t)(st->bytes_born - st->bytes_died));
}

/*
 * A census row follows its objects minus the instance __dict__s among them: those live and die
 * with their owners (whose growth, and deaths in collections, are judged on the owner's row),
 * so a churn of cyclic-garbage instances does not read as dict growth on 3.8-3.10.
 */
static void census_row_set(struct type_row *r, const struct census_count *cc)
{
	row_set(r, cc->count, cc->count - cc->instance_dicts, cc->bytes);
	r->instance_dicts = cc->instance_dicts;
}

/* Sampled mode: every type the census found is a census row; a type seen before and now
 * absent has none left. */
static void census_rows_all(struct target *t, const struct census *c)
{
	struct type_row *r;
	size_t i;

	for (i = 0; i < t->nrows; i++)
		t->rows[i].seen = false;
	for (i = 0; i < c->n; i++) {
		r = row_find(t, c->counts[i].type);
		if (!r && c->counts[i].count < SAMPLED_ROW_MIN)
			continue;
		r = r ? r : row_get(t, c->counts[i].type);
		if (!r)
			continue;
		r->census = true;
		r->st.flags = type_is_heap(t, r->type) ? PYLEAK_TYPE_HEAP : 0;
		census_row_set(r, &c->counts[i]);
	}
	for (i = 0; i < t->nrows; i++)
		if (!t->rows[i].seen && t->rows[i].has_prev)
			row_set(&t->rows[i], 0, 0, 0);
}

static int sample_census(struct target *t)
{
	struct census c = {};
	size_t i;
	int j, err;

	struct list_snapshot *snap;

	err = census_run(t->pid, &t->layout, &c);
	t->census_at = loop_mono();
	if (err) {
		/* Back off: a census failure repeats (an allocator pyleak cannot walk). */
		t->census_seconds = 1;
		log_warn("census of pid %d: %s", t->pid, strerror(-err));
		return t->ncensus || t->sampled ? err : 0;
	}
	t->census_seconds = c.seconds;
	/* Growth beyond noise (0.1% and 256 objects). */
	t->census_grew = t->census_objects && c.objects > t->census_objects + t->census_objects / 1000 + 256;
	t->census_objects = c.objects;
	snap = &t->snaps[t->snap_head];
	t->snap_head = (t->snap_head + 1) % LIST_SNAPSHOTS;
	if (t->nsnaps < LIST_SNAPSHOTS)
		t->nsnaps++;
	snap->t = t->census_at;
	snap->n = c.nlists;
	memcpy(snap->lists, c.lists, sizeof(c.lists));
	if (t->sampled)
		census_rows_all(t, &c);
	for (j = 0; j < t->ncensus; j++) {
		struct type_row *r = row_get(t, t->census_types[j]);
		struct census_count none = { .type = t->census_types[j] };

		if (!r)
			continue;
		for (i = 0; i < c.n && c.counts[i].type != t->census_types[j]; i++)
			;
		r->census = true;
		census_row_set(r, i < c.n ? &c.counts[i] : &none);
	}
	census_free(&c);
	return 0;
}

int target_check(struct target *t)
{
	uint64_t cnt[PYLEAK_CNT_MAX];

	if (t->state != TARGET_TRACKING)
		return -ESRCH;
	/* Exit arrives through the pidfd; exec only through the BPF tracepoint's counter. */
	if (!probes_read_counters(&t->probes, cnt) && cnt[PYLEAK_CNT_EXECS]) {
		target_end(t, TARGET_EXECED);
		return -ESRCH;
	}
	return 0;
}

/*
 * Seconds between two censuses of t.  Precise targets: CENSUS_DUTY of the daemon each.
 * Sampled targets share one budget: each is counted once per round, and a round lasts as
 * long as all their censuses take divided by the budget (small heaps: every sample interval),
 * but at most CENSUS_PERIOD_MAX, or CENSUS_PERIOD_GROWING for a growing heap: many big or
 * growing heaps then cost more than the budget (a growing heap is what pyleak is for).
 */
static double census_period(const struct target *t)
{
	const struct target *o;
	double total = 0;

	if (!t->sampled)
		return t->census_seconds / CENSUS_DUTY;
	for (o = targets; o; o = o->next)
		if (o->sampled && o->state == TARGET_TRACKING)
			total += o->census_seconds;
	total /= CENSUS_BUDGET_SAMPLED;
	if (t->census_grew && total > CENSUS_PERIOD_GROWING)
		return CENSUS_PERIOD_GROWING;
	return total < CENSUS_PERIOD_MAX ? total : CENSUS_PERIOD_MAX;
}

/* The target's own CPU time (utime + stime), in seconds; -1 if unreadable. */
static double target_cpu_seconds(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the command name may hold spaces and parentheses */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

/*
 * The overhead governor: compares what the probes cost the target (BPF run time plus the
 * uprobe traps) with the target's own CPU time over the last interval, and halves the page
 * sampling rate while over budget (doubling it back while well under), in sampled mode.
 * Per-object probes (precise, on-demand mode) cannot be thinned: their cost is reported.
 */
static void governor_tick(struct target *t)
{
	struct governor *g = &t->gov;
	double cpu = target_cpu_seconds(t->pid), dcpu;
	uint64_t mask = g->page_mask;

	g->prev_cost_ns = g->cost_ns;
	g->cost_ns = probes_cost_ns(&t->probes, UPROBE_TRAP_NS);
	if (cpu < 0)
		return;
	g->prev_cpu_s = g->cpu_s ? g->cpu_s : cpu;
	g->cpu_s = cpu;
	dcpu = g->cpu_s - g->prev_cpu_s;
	if (dcpu <= 0)
		return;
	g->ratio = (g->cost_ns - g->prev_cost_ns) / 1e9 / dcpu;
	if (!g->budget || !t->sites || !t->sampled)
		return;
	if (g->ratio > g->budget && mask < PAGE_MASK_MAX) {
		mask = mask * 2 + 1;
		g->throttles++;
	} else if (g->ratio < g->budget / 4 && mask) {
		mask >>= 1;
	}
	if (mask != g->page_mask) {
		g->page_mask = mask;
		probes_set_page_mask(&t->probes, mask);
		log_debug("pid %d: governor: probes cost %.2f%% of its CPU (budget %.2f%%): "
			  "stack of 1 page in %lu", t->pid, g->ratio * 100, g->budget * 100, mask + 1);
	}
}

int target_sample(struct target *t, bool force_census)
{
	int err;

	err = target_check(t);
	if (err)
		return err;
	if (!t->sampled)
		err = probes_for_each_type(&t->probes, sample_type, t);
	/* Every build gets a census now and then: it finds the containers that hold a leak. */
	if (!err && ((force_census && (t->ncensus || t->sampled)) ||
		     loop_mono() - t->census_at >= census_period(t)))
		err = sample_census(t);
	governor_tick(t);
	t->samples++;
	return err;
}

static void history_record(struct target *t)
{
	struct history_sample hs = { .t = loop_mono() };
	size_t i;

	for (i = 0; i < t->nrows; i++) {
		struct type_row *r = &t->rows[i];

		if (!r->seen)
			continue;
		if (!r->hist) {
			r->hist = calloc(1, sizeof(*r->hist));
			if (!r->hist)
				continue;
		}
		hs.live = r->net;
		hs.deaths = r->st.died + r->st.pre_died;
		hs.gc_deaths = r->st.gc_died;
		history_push(r->hist, &hs);
	}
}

static void on_sample_tick(struct watcher *w, uint32_t events)
{
	struct target *t;
	uint64_t ticks;

	(void)events;
	if (read(w->fd, &ticks, sizeof(ticks)) < 0)
		return;
	for (t = targets; t; t = t->next)
		if (t->state == TARGET_TRACKING && !target_sample(t, false))
			history_record(t);
}

int target_sampler_start(const struct target_options *opt)
{
	struct itimerspec its = {};
	int err;

	sample_interval = opt->sample_interval;
	sampler.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (sampler.fd < 0)
		return -errno;
	sampler.fn = on_sample_tick;
	its.it_value.tv_sec = its.it_interval.tv_sec = (time_t)sample_interval;
	its.it_value.tv_nsec = its.it_interval.tv_nsec =
		(long)((sample_interval - (time_t)sample_interval) * 1e9);
	if (timerfd_settime(sampler.fd, 0, &its, NULL)) {
		err = -errno;
		goto cleanup;
	}
	err = loop_add(&sampler, EPOLLIN);
	if (!err)
		return 0;
cleanup:
	close(sampler.fd);
	sampler.fd = -1;
	return err;
}

void target_sampler_stop(void)
{
	if (sampler.fd < 0)
		return;
	loop_del(&sampler);
	close(sampler.fd);
	sampler.fd = -1;
}

static int row_cmp_live(const void *a, const void *b)
{
	const struct type_row *x = *(const struct type_row *const *)a, *y = *(const struct type_row *const *)b;

	return (y->live > x->live) - (y->live < x->live);
}

static int row_cmp_bytes(const void *a, const void *b)
{
	const struct type_row *x = *(const struct type_row *const *)a, *y = *(const struct type_row *const *)b;

	return (y->bytes > x->bytes) - (y->bytes < x->bytes);
}

/* Change over the last `span` seconds, from the history (the previous sample without one). */
static int64_t row_delta(const struct type_row *r, double span)
{
	const struct history_sample *s = r->hist ? history_at(r->hist, loop_mono() - span) : NULL;

	if (s)
		return r->net - s->live;
	return r->has_prev ? r->net - r->prev_net : r->net;
}

static double delta_span;	/* the span of the `top` being answered */

static int row_cmp_growth(const void *a, const void *b)
{
	const struct type_row *x = *(const struct type_row *const *)a, *y = *(const struct type_row *const *)b;
	int64_t dx = row_delta(x, delta_span), dy = row_delta(y, delta_span);

	return (dy > dx) - (dy < dx);
}

static json_t *row_json(const struct type_row *r)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:s}", "type", r->name, "live", (json_int_t)r->live,
			      "delta", (json_int_t)row_delta(r, delta_span),
			      "source", r->census ? "census" : "probes");

	if (!o)
		return NULL;
	json_object_set_new(o, "bytes", r->bytes >= 0 ? json_integer(r->bytes) : json_null());
	if (r->instance_dicts)
		json_object_set_new(o, "instance_dicts", json_integer(r->instance_dicts));
	if (!r->census) {
		json_object_set_new(o, "net", json_integer(r->net));
		json_object_set_new(o, "born", json_integer(r->st.born));
		json_object_set_new(o, "died", json_integer(r->st.died));
		json_object_set_new(o, "died_unseen", json_integer(r->st.replaced));
		json_object_set_new(o, "older_died", json_integer(r->st.pre_died));
		if (r->st.dropped)
			json_object_set_new(o, "dropped", json_integer(r->st.dropped));
	}
	return o;
}

static json_t *notes_json(struct target *t)
{
	json_t *notes = json_array();
	uint64_t cnt[PYLEAK_CNT_MAX];
	char buf[512];
	int i, n = 0;

	if (!notes)
		return NULL;
	json_array_append_new(notes, json_string(
		"probes rows count objects born since attach and still alive; census rows count every live object"));
	if (t->ncensus) {
		for (i = 0; i < t->plan.ncensus && n < (int)sizeof(buf); i++)
			n += snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? ", " : "", t->plan.census[i]);
		snprintf(buf + n, sizeof(buf) - n > 0 ? sizeof(buf) - n : 0,
			 ": %s, so they are counted by heap census (pymalloc blocks; objects over "
			 "512 bytes are not seen)", t->plan.census_why);
		json_array_append_new(notes, json_string(buf));
	}
	if (!probes_read_counters(&t->probes, cnt) && cnt[PYLEAK_CNT_OBJS_FULL]) {
		snprintf(buf, sizeof(buf), "%lu births not tracked: object map full (max_objects)",
			 cnt[PYLEAK_CNT_OBJS_FULL]);
		json_array_append_new(notes, json_string(buf));
	}
	return notes;
}

/* Collections per generation since attach (generation "unknown" on 3.8, see python_plan). */
static json_t *gc_json(struct target *t)
{
	static const char *const names[PYLEAK_GC_GENS] = { "0", "1", "2", "unknown" };
	struct pyleak_gc gc;
	json_t *o = json_object();
	int g;

	if (!o || t->state != TARGET_TRACKING)
		return o;
	probes_read_gc(&t->probes, &gc);
	for (g = 0; g < PYLEAK_GC_GENS; g++) {
		if (g == PYLEAK_GC_GENS - 1 && !gc.gens[g].runs)
			continue;
		json_object_set_new(o, names[g], json_pack("{s:I, s:f, s:f, s:I}",
			"runs", (json_int_t)gc.gens[g].runs, "total_ms", gc.gens[g].ns / 1e6,
			"max_ms", gc.gens[g].max_ns / 1e6, "collected", (json_int_t)gc.gens[g].collected));
	}
	return o;
}

/* By score, then classes before builtins (what a user can act on), then by growth rate. */
static int suspect_cmp(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	double sx = json_real_value(json_object_get(x, "score"));
	double sy = json_real_value(json_object_get(y, "score"));
	int cx = json_is_true(json_object_get(x, "class")), cy = json_is_true(json_object_get(y, "class"));
	double gx = json_real_value(json_object_get(x, "growth_per_min"));
	double gy = json_real_value(json_object_get(y, "growth_per_min"));

	if (sx != sy)
		return (sy > sx) - (sy < sx);
	if (cx != cy)
		return cy - cx;
	return (gy > gx) - (gy < gx);
}

/* `sites` names the list holding a type's growth over leaks' default window. */
#define SITES_HOLDER_WINDOW 60.0
/* PyListObject: ob_item and allocated follow the PyVarObject header. */
#define LIST_ITEMS_OFF 24

/* The list that grew the most in the window, if it holds at least half of growth. */
static json_t *holder_json(struct target *t, double since, int64_t growth, char *evidence, size_t len)
{
	const struct list_snapshot *old = NULL, *new = NULL;
	const struct census_container *best = NULL;
	uint64_t items[2];	/* ob_item, allocated */
	int64_t best_grew = 0;
	json_t *holder;
	char addr[32];
	int i, j;

	for (i = 0; i < t->nsnaps; i++) {
		const struct list_snapshot *s = &t->snaps[(t->snap_head + LIST_SNAPSHOTS - t->nsnaps + i) %
							  LIST_SNAPSHOTS];

		if (s->t < since)
			continue;
		if (!old)
			old = s;
		new = s;
	}
	if (!old || old == new)
		return NULL;
	for (i = 0; i < new->n; i++) {
		for (j = 0; j < old->n; j++) {
			int64_t grew = new->lists[i].len - old->lists[j].len;

			if (new->lists[i].addr == old->lists[j].addr && grew > best_grew) {
				best = &new->lists[i];
				best_grew = grew;
			}
		}
	}
	if (!best || best_grew * 2 < growth)
		return NULL;
	i = strlen(evidence);
	snprintf(evidence + i, len - i, "; held by one list at 0x%lx that grew by %ld to %ld items in %.0f s",
		 best->addr, best_grew, best->len, new->t - old->t);
	snprintf(addr, sizeof(addr), "0x%lx", best->addr);
	holder = json_pack("{s:s, s:s, s:I, s:I}", "container", "list", "address", addr,
			   "length", (json_int_t)best->len, "growth", (json_int_t)best_grew);
	/* Where it grows: the code whose stores first touched the pages of its item array (an
	 * append), which is the line to fix, as the items' own sites are where they were made. */
	if (holder && t->sites && !procmem_read(t->pid, best->addr + LIST_ITEMS_OFF, items, sizeof(items))) {
		json_t *site = sites_range_json(t, items[0], items[0] + items[1] * 8);

		if (site) {
			i = strlen(evidence);
			snprintf(evidence + i, len - i, ", grown by %s() at line %" JSON_INTEGER_FORMAT,
				 json_string_value(json_object_get(site, "function")),
				 json_integer_value(json_object_get(site, "line")));
			json_object_set_new(holder, "grown_at", site);
		}
	}
	return holder;
}

/*
 * `leaks` may be polled: sites (a census with page sites, or a walk of the object map that
 * may hold millions of entries) are reused for a census period, at least 10 s, so that
 * polling does not stall the daemon's loop.
 */
static int sites_cache_refresh(struct target *t, bool births)
{
	struct census *c = births ? &t->births_cache : &t->sites_cache;
	double *at = births ? &t->births_cache_at : &t->sites_cache_at;
	double now = loop_mono(), period = census_period(t);
	int err;

	if (*at && now - *at < (period > 10 ? period : 10))
		return 0;
	census_free(c);
	*at = 0;
	err = births ? sites_births(t, c) : sites_census(t, c);
	if (!err)
		*at = now;
	return err;
}

json_t *target_leaks_json(struct target *t, double window_s, int n)
{
	json_t **list, *suspects = json_array(), *notes = json_array(), *doc;
	/* Sites: from sampled births for probe-counted types, from heap pages for the others;
	 * each computed once, for the first suspect that needs it (1: not yet). */
	int pages_err = t->sites ? 1 : -EOPNOTSUPP, births_err = pages_err;
	double now = loop_mono();
	size_t i, m = 0;
	int ready = 0;

	list = calloc(t->nrows ? t->nrows : 1, sizeof(*list));
	if (!list || !suspects || !notes)
		goto fail;
	for (i = 0; i < t->nrows; i++) {
		struct type_row *r = &t->rows[i];
		struct leak_score sc;
		json_t *holder;

		if (!r->hist || history_score(r->hist, now, window_s, &sc))
			continue;
		ready++;
		if (sc.score < 0.1 && sc.gc_fraction < 0.5)
			continue;
		holder = sc.growth_score >= 0.5 ?
			 holder_json(t, now - window_s, sc.growth, sc.evidence, sizeof(sc.evidence)) : NULL;
		list[m] = json_pack("{s:s, s:I, s:f, s:f, s:f, s:s, s:I, s:i, s:f, s:s, s:b, s:[]}",
			"type", r->name, "live", (json_int_t)r->live, "growth_per_min", sc.growth_per_min,
			"score", sc.score, "freed_by_gc_fraction", sc.gc_fraction < 0 ? 0.0 : sc.gc_fraction,
			"evidence", sc.evidence, "growth", (json_int_t)sc.growth, "samples", sc.samples,
			"span_s", sc.span_s, "source", r->census ? "census" : "probes",
			"class", (r->st.flags & PYLEAK_TYPE_HEAP) != 0, "sites");
		if (list[m] && sc.growth_score >= 0.5) {
			bool births = !r->census && t->opt.birth_sample_every && !t->sampled;
			int *err = births ? &births_err : &pages_err;
			struct census *c = births ? &t->births_cache : &t->sites_cache;

			if (*err == 1)
				*err = sites_cache_refresh(t, births);
			if (!*err)
				json_object_set_new(list[m], "sites", sites_json(t, c, r->type, 3));
		}
		if (list[m] && holder)
			json_object_set_new(list[m], "held_by", holder);
		else
			json_decref(holder);
		m++;
	}
	qsort(list, m, sizeof(*list), suspect_cmp);
	for (i = 0; i < m; i++) {
		if (n > 0 && (int)i >= n)
			json_decref(list[i]);
		else
			json_array_append_new(suspects, list[i]);
	}
	if (!ready)
		json_array_append_new(notes, json_string(
			"collecting history: a type needs 3 samples in the window to be judged"));
	if (t->ncensus || t->sampled)
		json_array_append_new(notes, json_string(
			"census types have no death counts: freed_by_gc_fraction is 0 for them"));
	if (!t->sites)
		json_array_append_new(notes, json_string(
			"no allocation sites: this interpreter's stacks cannot be read"));
	free(list);
	doc = json_pack("{s:i, s:s, s:f, s:f, s:o, s:o, s:o}", "pid", t->pid, "python", t->py.version,
			"window_s", window_s, "sample_interval_s", sample_interval, "suspects", suspects,
			"gc", gc_json(t), "notes", notes);
	return doc;
fail:
	free(list);
	json_decref(suspects);
	json_decref(notes);
	return NULL;
}

json_t *target_top_json(struct target *t, int n, const char *sort, double span)
{
	int (*cmp)(const void *, const void *) = row_cmp_live;
	const struct type_row **sorted;
	json_t *doc, *types;
	size_t i, m = 0;

	delta_span = span > 0 ? span : sample_interval;
	if (!strcmp(sort, "bytes"))
		cmp = row_cmp_bytes;
	else if (!strcmp(sort, "growth"))
		cmp = row_cmp_growth;
	sorted = calloc(t->nrows ? t->nrows : 1, sizeof(*sorted));
	if (!sorted)
		return NULL;
	for (i = 0; i < t->nrows; i++)
		if (t->rows[i].seen && (t->rows[i].live || row_delta(&t->rows[i], delta_span) ||
					t->rows[i].census))
			sorted[m++] = &t->rows[i];
	qsort(sorted, m, sizeof(*sorted), cmp);
	types = json_array();
	for (i = 0; types && i < m && (n <= 0 || (int)i < n); i++)
		json_array_append_new(types, row_json(sorted[i]));
	free(sorted);
	doc = json_pack("{s:i, s:s, s:s, s:f, s:f, s:o, s:o}", "pid", t->pid, "python", t->py.version,
			"mode", t->mode, "time", loop_now(), "since", t->attached_at, "types", types,
			"notes", notes_json(t));
	if (doc && t->ncensus)
		json_object_set_new(doc, "census_s", json_real(t->census_seconds));
	if (doc)
		json_object_set_new(doc, "gc", gc_json(t));
	return doc;
}

json_t *target_status_json(struct target *t)
{
	uint64_t cnt[PYLEAK_CNT_MAX] = {};
	int i, stepped = 0;
	json_t *o;

	if (t->state == TARGET_TRACKING)
		probes_read_counters(&t->probes, cnt);
	for (i = 0; i < t->probes.nlinks; i++)
		stepped += !t->probes.links[i].emulated;
	o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:b, s:f, s:i, s:i, s:I, s:I}",
		      "pid", t->pid, "python", t->py.version, "mode", t->mode,
		      "state", target_state_name(t->state), "exe", t->py.exe, "module", t->py.module,
		      "lto_inlined", t->py.inlined,
		      "attached_s", (t->state == TARGET_TRACKING ? loop_now() : t->ended_at) - t->attached_at,
		      "probes", t->probes.nlinks + (t->probes.usdt_links[0] != NULL) +
				(t->probes.usdt_links[1] != NULL) + (t->probes.fault_slot != 0),
		      "probes_single_stepped", stepped,
		      "events", (json_int_t)(cnt[PYLEAK_CNT_BIRTHS] + cnt[PYLEAK_CNT_DEATHS]),
		      "drops", (json_int_t)(cnt[PYLEAK_CNT_OBJS_FULL] + cnt[PYLEAK_CNT_TYPES_FULL] +
					    cnt[PYLEAK_CNT_EVENTS_LOST]));
	if (!o)
		return NULL;
	json_object_set_new(o, "gc", gc_json(t));
	json_object_set_new(o, "counters", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
		"births", (json_int_t)cnt[PYLEAK_CNT_BIRTHS], "deaths", (json_int_t)cnt[PYLEAK_CNT_DEATHS],
		"objects_map_full", (json_int_t)cnt[PYLEAK_CNT_OBJS_FULL],
		"types_map_full", (json_int_t)cnt[PYLEAK_CNT_TYPES_FULL],
		"read_errors", (json_int_t)cnt[PYLEAK_CNT_READ_ERRORS],
		"events_lost", (json_int_t)cnt[PYLEAK_CNT_EVENTS_LOST]));
	json_object_set_new(o, "sites", json_pack("{s:b, s:I, s:I, s:I, s:I, s:I}",
		"enabled", t->sites, "page_faults", (json_int_t)cnt[PYLEAK_CNT_FAULTS],
		"pages_sampled", (json_int_t)cnt[PYLEAK_CNT_PAGES],
		"pages_skipped", (json_int_t)cnt[PYLEAK_CNT_PAGES_SKIPPED],
		"no_python_stack", (json_int_t)cnt[PYLEAK_CNT_NO_STACK],
		"stacks_map_full", (json_int_t)cnt[PYLEAK_CNT_STACKS_FULL]));
	json_object_set_new(o, "governor", json_pack("{s:f, s:f, s:f, s:I, s:I, s:f}",
		"budget", t->gov.budget, "spent_ratio", t->gov.ratio, "spent_s", t->gov.cost_ns / 1e9,
		"page_sample_every", (json_int_t)(t->gov.page_mask + 1),
		"throttles", (json_int_t)t->gov.throttles, "target_cpu_s", t->gov.cpu_s));
	if (t->state == TARGET_TRACKING)
		json_object_set_new(o, "maps_bytes", json_integer(probes_maps_memory(&t->probes)));
	json_object_set_new(o, "census_s", json_real(t->census_seconds));
	json_object_set_new(o, "census_period_s", json_real(census_period(t)));
	return o;
}

/* The `sites` reply: what was sampled (note), the type's live count and the part of it the
 * sampled sites stand for. */
static json_t *sites_doc(const struct target *t, const char *type_name, const char *note,
			 int64_t live, double attributed, uint64_t samples, json_t *sites)
{
	return json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "pid", t->pid,
			 "type", type_name, "mode", t->mode, "sampled", note, "live", (json_int_t)live,
			 "attributed", (json_int_t)(attributed + 0.5), "samples", (json_int_t)samples,
			 "sites", sites);
}

/* Sites of a type counted by per-object probes: from the births whose stack was sampled. */
static json_t *births_sites_json(struct target *t, const struct type_row *r, int n, int *err)
{
	uint64_t live = 0, samples = 0;
	double attributed = 0;
	struct census c;
	char note[512];
	json_t *doc;

	*err = sites_births(t, &c);
	if (*err)
		return NULL;
	sites_totals(&c, r->type, &live, &attributed, &samples);
	snprintf(note, sizeof(note),
		 "sampled: 1 birth in %u has its Python stack recorded; a site's live is its %lu "
		 "sampled %s objects still alive times %u, %.0f in all of the %ld live %s objects born "
		 "since attach", t->opt.birth_sample_every, samples, r->name,
		 t->opt.birth_sample_every, attributed, (long)r->live, r->name);
	doc = sites_doc(t, r->name, note, r->live, attributed, samples, sites_json(t, &c, r->type, n));
	census_free(&c);
	if (!doc)
		*err = -ENOMEM;
	return doc;
}

/* A `sites` reply for a type that is growing gains the list holding the growth, if any, and
 * where that list grows (leaks' judgement over its default window). */
static json_t *sites_holder_add(struct target *t, const char *type_name, json_t *doc)
{
	double now = loop_mono();
	struct leak_score sc;
	json_t *holder;
	size_t i;

	for (i = 0; doc && i < t->nrows; i++) {
		struct type_row *r = &t->rows[i];

		if (strcmp(r->name, type_name) || !r->hist ||
		    history_score(r->hist, now, SITES_HOLDER_WINDOW, &sc) || sc.growth_score < 0.5)
			continue;
		holder = holder_json(t, now - SITES_HOLDER_WINDOW, sc.growth, sc.evidence,
				     sizeof(sc.evidence));
		if (holder)
			json_object_set_new(doc, "held_by", holder);
		break;
	}
	return doc;
}

json_t *target_sites_json(struct target *t, const char *type_name, int n, int *err)
{
	uint64_t live = 0, samples = 0, type = 0, forgotten, cnt[PYLEAK_CNT_MAX] = {};
	double attributed = 0;
	struct census c = {};
	json_t *doc = NULL;
	char name[64], note[640];
	size_t i;

	const struct type_row *r = NULL;

	if (!t->sites) {
		*err = -EOPNOTSUPP;
		return NULL;
	}
	for (i = 0; i < t->nrows && !r; i++)
		if (!t->rows[i].census && !strcmp(t->rows[i].name, type_name))
			r = &t->rows[i];
	if (r && t->opt.birth_sample_every && !t->sampled)
		return sites_holder_add(t, type_name, births_sites_json(t, r, n, err));
	*err = sites_census(t, &c);
	if (*err)
		return NULL;
	/* Counts are sorted: the most numerous type of that name (names need not be unique). */
	for (i = 0; i < c.n && !type; i++)
		if (!type_name_read(t->pid, c.counts[i].type, name, sizeof(name)) &&
		    !strcmp(name, type_name))
			type = c.counts[i].type;
	if (type)
		sites_totals(&c, type, &live, &attributed, &samples);
	probes_read_counters(&t->probes, cnt);
	forgotten = cnt[PYLEAK_CNT_PAGES] > t->opt.max_pages ? cnt[PYLEAK_CNT_PAGES] - t->opt.max_pages : 0;
	snprintf(note, sizeof(note),
		 "sampled: one allocation per fresh 4 KiB heap page (1 page in %lu now) has its "
		 "Python stack recorded; a site's live is its %lu sampled %s objects still alive, "
		 "each standing for the objects of one page, %.0f in all of the %lu live %s objects "
		 "in pymalloc pools (the rest are older than the attach, or not sampled%s)",
		 t->gov.page_mask + 1, samples, type_name, attributed, live, type_name,
		 forgotten ? ", or on the oldest sampled pages, forgotten: see pages_forgotten" : "");
	doc = sites_doc(t, type_name, note, live, attributed, samples,
			type ? sites_json(t, &c, type, n) : json_array());
	if (doc) {
		json_object_set_new(doc, "pages_sampled", json_integer(cnt[PYLEAK_CNT_PAGES]));
		json_object_set_new(doc, "pages_forgotten", json_integer(forgotten));
	}
	census_free(&c);
	if (!doc)
		*err = -ENOMEM;
	return sites_holder_add(t, type_name, doc);
}
