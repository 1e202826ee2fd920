// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The registry of tracked processes and their lifecycle: attach (inspect the interpreter,
 * load the BPF object, place the probes the mode needs), end (exit, exec, detach: probes
 * torn down in the background); what is kept of an ended one is in ended.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cpython.h"
#include "cpython_offsets.h"
#include "ended.h"
#include "hooks.h"
#include "lastwords.h"
#include "log.h"
#include "pystack.h"
#include "target.h"

static struct target *targets;

static const char *const mode_names[] = { [TARGET_PRECISE] = "precise", [TARGET_SAMPLED] = "sampled" };

int target_mode_parse(const char *s, enum target_mode *out)
{
	size_t i;

	for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (!strcmp(s, mode_names[i])) {
			*out = (enum target_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *target_mode_name(enum target_mode mode)
{
	return mode_names[mode];
}

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
	python_release(&t->py);
	pystack_memo_free(t->py.memo);
	nativealloc_detach(t->nalloc);
	rows_free(&t->rows);
	census_free(&t->sites_cache);
	census_free(&t->births_cache);
	native_free(t->native);
	free(t);
}

/* Frees the targets that ended: what is kept of them is in ended.h.  Not at once when they
 * end: whoever ended one (a request, a tick) may still look at it. */
static void targets_prune(void)
{
	struct target **pp = &targets, *t;

	while ((t = *pp)) {
		if (t->state != TARGET_TRACKING) {
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

/* Stops tracking: everything t holds is freed (the BPF object and its maps in the
 * background) but the struct, until targets_prune(); a process that ended by itself leaves its
 * summary (ended.h).  Returns probes_close_async()'s estimate. */
static double target_end(struct target *t, enum target_state state, const struct end_cause *cause)
{
	double pending;

	if (t->state != TARGET_TRACKING)
		return 0;
	loop_del(&t->pid_watch);
	loop_del(&t->rb_watch);
	gcwatch_end(t);
	t->ended_at = loop_now();
	if (cause->kind != END_DETACHED && cause->kind != END_FAILED)
		ended_record(t, target_state_name(state), cause);
	if (cause->kind != END_EXIT && cause->kind != END_SIGNAL && cause->kind != END_OOM_KILL)
		lastwords_forget(t->pid);
	probes_faults_enable(&t->probes, false);
	pending = probes_close_async(&t->probes);
	nativealloc_detach(t->nalloc);
	t->nalloc = NULL;
	/* Their estimates are no longer measured: left, they would stay stacks' larger rows. */
	if (t->native)
		native_estimates_set(t->native, NATIVE_SRC_MALLOC, NULL, 0);
	python_release(&t->py);
	pystack_memo_free(t->py.memo);
	t->py.memo = NULL;
	rows_free(&t->rows);
	census_free(&t->sites_cache);
	census_free(&t->births_cache);
	native_free(t->native);
	t->native = NULL;
	if (t->pidfd >= 0)
		close(t->pidfd);
	t->pidfd = -1;
	t->state = state;
	log_info("pid %d: %s (%s), probes removed", t->pid, target_state_name(state),
		 end_kind_name(cause->kind));
	return pending;
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

double target_detach(struct target *t, double *pending_s)
{
	struct end_cause cause = { END_DETACHED, -1 };
	double t0 = loop_mono(), pending;

	/* Now, not in the background: the process goes on running. */
	if (t->state == TARGET_TRACKING)
		probes_unhook(&t->probes);
	pending = target_end(t, TARGET_EXITED, &cause);
	if (pending_s)
		*pending_s = pending;
	target_unlink(t);
	target_free(t);
	return loop_mono() - t0;
}

void target_fall_back(struct target *t)
{
	int err;

	log_warn("pid %d: precise mode costs it %.1f%% of its CPU (budget %.1f%%): sampled mode now",
		 t->pid, t->gov.ratio * 100, t->gov.budget * 100);
	t->fell_back_ratio = t->gov.ratio;
	t->opt.mode = TARGET_SAMPLED;
	/* What the probes counted stops at once; a census counts every type from now on. */
	rows_drop_probed(&t->rows);
	t->census_at = 0;
	/* ...with the native allocation probes: they are precise mode's too. */
	probes_unhook_objects(&t->probes);
	nativealloc_detach(t->nalloc);
	t->nalloc = NULL;
	/* Their estimates are no longer measured: left, they would stay stacks' larger rows. */
	if (t->native)
		native_estimates_set(t->native, NATIVE_SRC_MALLOC, NULL, 0);
	/* Sampled mode's death windows count their suspects from zero in the same type map. */
	err = probes_forget_objects(&t->probes);
	if (err)
		log_warn("pid %d: empty the object and type maps: %s", t->pid, strerror(-err));
}

void target_detach_all(void)
{
	while (targets)
		target_detach(targets, NULL);
	probes_reap_all();
}

int target_check(struct target *t)
{
	uint64_t cnt[PYLEAK_CNT_MAX];

	if (t->state != TARGET_TRACKING)
		return -ESRCH;
	/* Exit arrives through the pidfd; exec only through the BPF tracepoint's counter. */
	if (!probes_read_counters(&t->probes, cnt) && cnt[PYLEAK_CNT_EXECS]) {
		struct end_cause cause = { END_EXEC, -1 };

		target_end(t, TARGET_EXECED, &cause);
		return -ESRCH;
	}
	return 0;
}

static void on_pid_exit(struct watcher *w, uint32_t events)
{
	struct target *t = (struct target *)((char *)w - offsetof(struct target, pid_watch));
	struct end_cause cause;

	(void)events;
	lastwords_take(t->pid, &cause);
	target_end(t, TARGET_EXITED, &cause);
}

static void on_ringbuf(struct watcher *w, uint32_t events)
{
	struct target *t = (struct target *)((char *)w - offsetof(struct target, rb_watch));

	(void)events;
	if (t->state == TARGET_TRACKING)
		probes_consume(&t->probes);
}

/* The process's effective owner: its /proc directory's (see peer_may_access()). */
static int owner_read(pid_t pid, uid_t *uid, gid_t *gid)
{
	char path[32];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (stat(path, &st))
		return errno == ENOENT ? -ESRCH : -errno;
	*uid = st.st_uid;
	*gid = st.st_gid;
	return 0;
}

/* Where the GC generations are: in the runtime on 3.8, in the main interpreter on 3.9+. */
static void census_gc_setup(struct target *t)
{
	const struct cpython_offsets *o = cpython_offsets_find(t->py.major, t->py.minor);
	struct census_layout *l = &t->layout;

	if (!o || !t->py.runtime)
		return;
	l->gc_interp_ptr = o->interp_gc ? t->py.runtime + o->runtime_interp_main : 0;
	l->gc_state = o->interp_gc ? o->interp_gc : t->py.runtime + o->runtime_gc;
	l->gc_generations = o->gc_generations;
	l->gc_generation_size = o->gc_generation_size;
	l->gc_permanent = o->gc_permanent;
	l->gc_collecting = o->gc_collecting;
}

static void census_setup(struct target *t)
{
	int i;

	t->layout.pool_size = t->plan.pool_size;
	t->layout.max_block = CPY_SMALL_REQUEST_MAX;
	t->layout.preheader_flags = t->plan.preheader_flags;
	t->layout.str_ascii_data = t->plan.str_ascii_data;
	t->layout.str_compact_data = t->plan.str_compact_data;
	python_symbol_addr(&t->py, "PyList_Type", &t->layout.list_type);
	python_symbol_addr(&t->py, "PyDict_Type", &t->layout.dict_type);
	python_symbol_addr(&t->py, "PyTuple_Type", &t->layout.tuple_type);
	python_symbol_addr(&t->py, "PyUnicode_Type", &t->layout.str_type);
	census_gc_setup(t);
	for (i = 0; i < t->plan.ncensus; i++)
		if (!python_symbol_addr(&t->py, t->plan.census[i], &t->census_types[t->ncensus]))
			t->ncensus++;
	for (i = 0; i < t->plan.nwatched; i++)
		if (!python_symbol_addr(&t->py, t->plan.watched[i], &t->probed_types[t->nprobed]))
			t->nprobed++;
}

int target_attach(pid_t pid, const struct target_options *opt, struct target **out)
{
	bool sampled = opt->mode == TARGET_SAMPLED;
	/* Sampled mode tracks no object (per_object false): its object map is not sized to
	 * max_objects, an empty one still costing 16 bytes per entry. */
	struct probes_config cfg = { .per_object = !sampled, .max_objects = opt->max_objects,
				     .max_pages = opt->max_pages, .max_stacks = opt->max_stacks,
				     .birth_sample_every = sampled ? 0 : opt->birth_sample_every };
	uint64_t *intervals = NULL, pool_func, pool_func_size;
	struct target *t, *o;
	uint32_t tracking = 0;
	int err;

	t = target_find(pid);
	if (t) {
		*out = t;
		return -EALREADY;
	}
	for (o = targets; o; o = o->next)
		tracking += o->state == TARGET_TRACKING;
	if (tracking >= opt->max_targets)
		return -EUSERS;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->opt = *opt;
	t->gov.budget = opt->budget;
	t->pid = pid;
	t->rows.pid = pid;
	t->pidfd = -1;
	t->watch_rule = -1;
	t->pid_watch.fd = -1;
	t->rb_watch.fd = -1;
	t->state = TARGET_FAILED;
	err = python_inspect(pid, &t->py);
	if (err)
		goto cleanup;
	python_plan(&t->py, &t->plan);
	t->pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (t->pidfd < 0) {
		err = -errno;
		goto cleanup;
	}
	/* Before anything can fail or take long: an exit from now on is seen with its cause. */
	lastwords_track(pid);
	err = owner_read(pid, &t->uid, &t->gid);
	if (err)
		goto cleanup;
	/* Labels only: a process whose cgroup cannot be read is attached all the same. */
	container_read(pid, &t->label);
	if (pystack_layout(&t->py, &cfg.stacks))
		log_warn("pid %d: no Python stack layout for %s: no allocation sites", pid,
			 t->py.version);
	t->sites = cfg.stacks.runtime != 0;
	if (!sampled)
		t->nalloc_off = !opt->native_sample_bytes ? "native_sample_bytes = 0" :
				!probes_sessions_supported() ? "the kernel has no uprobe sessions (6.12+)" :
				NULL;
	if (!sampled && !t->nalloc_off) {
		intervals = malloc(PYLEAK_NATIVE_INTERVALS * sizeof(*intervals));
		if (!intervals) {
			err = -ENOMEM;
			goto cleanup;
		}
		nativealloc_intervals(opt->native_sample_bytes, intervals);
		cfg.native_intervals = intervals;
		cfg.native_max_blocks = opt->native_max_blocks;
	}
	cfg.pool_size = t->plan.pool_size;
	cfg.pool_sampler = !hooks_pool_find(t, &pool_func, &pool_func_size);
	cfg.budget_ppm = (uint32_t)(opt->budget * 1e6);
	err = probes_open(&t->probes, pid, &cfg, hooks_on_event, t);
	if (err)
		goto cleanup;
	t->state = TARGET_TRACKING;
	/* Sampled mode: no per-object probe, only the rare ones (collections, page faults). */
	err = sampled ? hooks_place_gc(t) : hooks_place_all(t);
	if (err)
		goto cleanup;
	if (cfg.pool_sampler && hooks_place_pool(t, pool_func, pool_func_size))
		log_warn("pid %d: recycled pools' sites not probed: page faults only", pid);
	else if (cfg.pool_sampler)
		t->pool_func = pool_func;
	if (cfg.native_intervals && nativealloc_attach(&t->probes, pid, opt->native_sample_bytes,
						       &t->nalloc)) {
		log_warn("pid %d: no allocator (libc's malloc and free) could be probed", pid);
		t->nalloc_off = "no allocator could be probed";
	}
	census_setup(t);
	if (hooks_place_classes(t))
		log_warn("pid %d: classes' deallocator not hooked: at the first class's birth", pid);
	t->pid_watch = (struct watcher){ .fd = t->pidfd, .fn = on_pid_exit };
	t->rb_watch = (struct watcher){ .fd = probes_epoll_fd(&t->probes), .fn = on_ringbuf };
	err = loop_add(&t->pid_watch, EPOLLIN);
	if (!err)
		err = loop_add(&t->rb_watch, EPOLLIN);
	if (err)
		goto cleanup;
	t->attached_at = loop_now();
	ended_forget(pid);
	t->next = targets;
	targets = t;
	log_info("pid %d: attached %s (python %s, %s%s, %d probes%s)", pid,
		 target_mode_name(opt->mode), t->py.version, t->py.shared ? "libpython" : "static",
		 t->py.inlined ? ", LTO-inlined" : "", probes_count(&t->probes, NULL),
		 t->sites ? ", allocation sites" : "");
	*out = t;
	free(intervals);
	return 0;
cleanup:
	free(intervals);
	if (t->state == TARGET_TRACKING) {
		struct end_cause cause = { END_FAILED, -1 };

		/* Only the loop watchers may be missing: target_end() tolerates that. */
		target_end(t, TARGET_FAILED, &cause);
	} else if (t->pidfd >= 0) {
		lastwords_forget(pid);
		close(t->pidfd);
	}
	target_free(t);
	return err;
}
