// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "insn.h"
#include "log.h"
#include "loop.h"
#include "probes.h"
#include "procfs.h"
#include "pyleak.skel.h"
#include "python.h"

/*
 * Uprobes are uprobe_multi links (kernel 6.6+), one per probe: closing one removes its
 * breakpoint and waits one RCU grace period, where a perf-event uprobe link (libbpf 1.1's only
 * kind) waits ~0.12 s under a host-wide mutex.  libbpf 1.1 and Debian 12's 6.1 uapi headers
 * predate them: the attach type, flag and BPF_LINK_CREATE attributes of
 * include/uapi/linux/bpf.h.
 */
#define TRACE_UPROBE_MULTI 48
#define F_UPROBE_MULTI_RETURN 1U
/* Kernel 6.12+: one program at entry and, if the entry returned 0, at return. */
#define TRACE_UPROBE_SESSION 57

enum uprobe_mode { UPROBE_ENTRY, UPROBE_RETURN, UPROBE_SESSION };

struct uprobe_multi_attr {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;
	__aligned_u64 path;
	__aligned_u64 offsets;
	__aligned_u64 ref_ctr_offsets;
	__aligned_u64 cookies;
	__u32 cnt;
	__u32 multi_flags;
	__u32 pid;
};

/* A uprobe of prog (entry, return or session) at offset in the file at path, in pid only;
 * the link's fd or -errno. */
static int uprobe_multi_attach(struct bpf_program *prog, pid_t pid, const char *path,
			       uint64_t offset, uint64_t cookie, enum uprobe_mode mode)
{
	union {
		struct uprobe_multi_attr a;
		union bpf_attr size;	/* the tail the kernel checks is zero */
	} attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.a.prog_fd = bpf_program__fd(prog);
	attr.a.attach_type = mode == UPROBE_SESSION ? TRACE_UPROBE_SESSION : TRACE_UPROBE_MULTI;
	attr.a.path = (uintptr_t)path;
	attr.a.offsets = (uintptr_t)&offset;
	attr.a.cookies = (uintptr_t)&cookie;
	attr.a.cnt = 1;
	attr.a.multi_flags = mode == UPROBE_RETURN ? F_UPROBE_MULTI_RETURN : 0;
	attr.a.pid = pid;
	fd = syscall(SYS_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	return fd < 0 ? -errno : fd;
}

/* What a USDT probe's perf link took to close last, in ns (atomic: the reaper writes it). */
static uint64_t usdt_close_ns = 120000000;

static int rb_sample(void *ctx, void *data, size_t size)
{
	struct probes *p = ctx;

	if (size < sizeof(struct pyleak_event))
		return 0;
	return p->event_fn(p->event_ctx, data);
}

/*
 * The target's page faults, as the kernel's software event: one perf event per thread at
 * attach, which the threads they start inherit (inherit_thread: not child processes), each
 * running the page-fault program.  A tracepoint runs a program on every fault of every
 * process on the host (a lookup of the faulting process, ~0.1 us of BPF, more in the
 * tracepoint): a fault-bound process not even tracked (64 MiB buffers, 380k faults a second)
 * ran 1.10-1.11x slower while any other was, 1.01-1.02x now.  The software event runs nothing outside the
 * target, and a pause (sampler.c) disables it.
 */
#define FAULT_THREADS_MAX 1024

static int fault_event_add(struct probes *p, pid_t tid)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_PAGE_FAULTS,
		.sample_period = 1,
		.inherit = 1,
		.inherit_thread = 1,
		.remove_on_exec = 1,
		.exclude_kernel = 1,	/* the faults of user code, as the tracepoint had them */
		.exclude_hv = 1,
		.disabled = 1,
	};
	struct fault_event *more;
	struct bpf_link *link;
	int fd, err;

	if (p->nfaults == p->faults_cap) {
		if (p->nfaults == FAULT_THREADS_MAX)
			return -E2BIG;
		more = realloc(p->faults, (p->faults_cap + 16) * sizeof(*more));
		if (!more)
			return -ENOMEM;
		p->faults = more;
		p->faults_cap += 16;
	}
	fd = syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* enables the event too */
	link = bpf_program__attach_perf_event(p->skel->progs.pyleak_fault, fd);
	if (!link) {
		err = -errno;
		close(fd);
		return err;
	}
	p->faults[p->nfaults++] = (struct fault_event){ tid, fd, link };
	return 0;
}

static bool fault_event_has(const struct probes *p, pid_t tid)
{
	int i;

	for (i = 0; i < p->nfaults; i++)
		if (p->faults[i].tid == tid)
			return true;
	return false;
}

/* Every thread's, twice: a thread started by one not yet covered during the first pass is
 * found by the second (its start inherits from one covered then). */
static int fault_events_open(struct probes *p)
{
	char path[64];
	struct dirent *d;
	int pass, err = 0, added = 0;
	DIR *dir;
	long tid;

	snprintf(path, sizeof(path), "/proc/%d/task", p->pid);
	for (pass = 0; pass < 2 && !err; pass++) {
		dir = opendir(path);
		if (!dir)
			return -errno;
		while (!err && (d = readdir(dir))) {
			char *end;

			tid = strtol(d->d_name, &end, 10);
			if (*end || tid <= 0 || tid > INT32_MAX || fault_event_has(p, (pid_t)tid))
				continue;
			err = fault_event_add(p, (pid_t)tid);
			if (err == -ESRCH)	/* it ended meanwhile */
				err = 0;
			else if (!err)
				added++;
		}
		closedir(dir);
	}
	if (err == -E2BIG) {
		log_warn("pid %d: page faults of its first %d threads only", p->pid,
			 FAULT_THREADS_MAX);
		err = 0;
	}
	if (err) {
		log_error("pid %d: page-fault events: %s", p->pid, strerror(-err));
		return err;
	}
	p->faults_on = added > 0;
	return added ? 0 : -ESRCH;
}

static void fault_events_close(struct probes *p)
{
	int i;

	/* the link closes its perf event */
	for (i = 0; i < p->nfaults; i++)
		bpf_link__destroy(p->faults[i].link);
	free(p->faults);
	p->faults = NULL;
	p->nfaults = p->faults_cap = 0;
	p->faults_on = false;
}

/* Each event's ioctl covers the events inherited from it (perf_event_for_each_child()). */
static int fault_events_set(struct probes *p, bool on)
{
	int i, err = 0;

	for (i = 0; i < p->nfaults; i++)
		if (ioctl(p->faults[i].fd, on ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE, 0) &&
		    !err)
			err = -errno;
	if (!err)
		p->faults_on = on;
	return err;
}

int probes_faults_enable(struct probes *p, bool on)
{
	int err;

	if (p->faults_on == on || !p->nfaults)
		return 0;
	err = fault_events_set(p, on);
	if (err)
		log_error("pid %d: %s its page-fault events: %s", p->pid, on ? "enable" : "disable",
			  strerror(-err));
	return err;
}

/* The native allocators' session programs, in enum pyleak_hook_kind order from
 * PYLEAK_HOOK_MALLOC, then free's uprobe. */
#define NATIVE_PROGS(skel) { (skel)->progs.pyleak_malloc, (skel)->progs.pyleak_calloc, \
	(skel)->progs.pyleak_realloc, (skel)->progs.pyleak_aligned_alloc, (skel)->progs.pyleak_free }
#define NATIVE_NPROGS 5

bool probes_sessions_supported(void)
{
	static int supported = -1;
	struct btf *btf;

	/* PYLEAKD_NO_SESSIONS=1: the fallback of kernels before 6.12, for tests */
	if (supported < 0 && getenv("PYLEAKD_NO_SESSIONS")) {
		log_warn("PYLEAKD_NO_SESSIONS set: uprobe sessions not used");
		supported = 0;
	}
	if (supported < 0) {
		btf = btf__load_vmlinux_btf();
		supported = btf && btf__find_by_name_kind(btf, "bpf_session_cookie", BTF_KIND_FUNC) > 0;
		btf__free(btf);
	}
	return supported;
}

/* The uprobe programs are attached by uprobe_multi links only (probes_hook()); the session
 * ones (their kfuncs need a 6.12 kernel) are loaded only where wanted: births' where the
 * kernel has sessions (else births' uretprobe), the native ones if asked for. */
static int progs_set_multi(struct pyleak_bpf *skel, bool native)
{
	struct bpf_program *progs[] = { skel->progs.pyleak_birth_ret,
					skel->progs.pyleak_death, skel->progs.pyleak_gc_start,
					skel->progs.pyleak_gc_done, skel->progs.pyleak_free };
	struct bpf_program *sessions[] = NATIVE_PROGS(skel);
	bool births_session = probes_sessions_supported();
	size_t i;
	int err = 0;

	for (i = 0; !err && i < sizeof(progs) / sizeof(progs[0]); i++)
		err = bpf_program__set_expected_attach_type(progs[i],
							    (enum bpf_attach_type)TRACE_UPROBE_MULTI);
	/* the pool sampler needs sessions too, not native sampling */
	if (!err)
		err = bpf_program__set_expected_attach_type(skel->progs.pyleak_pool_new,
						(enum bpf_attach_type)TRACE_UPROBE_SESSION);
	if (!err)
		err = bpf_program__set_autoload(skel->progs.pyleak_pool_new, births_session);
	for (i = 0; !err && i < NATIVE_NPROGS; i++) {
		if (sessions[i] != skel->progs.pyleak_free)
			err = bpf_program__set_expected_attach_type(sessions[i],
						(enum bpf_attach_type)TRACE_UPROBE_SESSION);
		if (!err)
			err = bpf_program__set_autoload(sessions[i], native);
	}
	if (!err)
		err = bpf_program__set_expected_attach_type(skel->progs.pyleak_birth,
						(enum bpf_attach_type)TRACE_UPROBE_SESSION);
	if (!err)
		err = bpf_program__set_autoload(skel->progs.pyleak_birth, births_session);
	if (!err)
		err = bpf_program__set_autoload(skel->progs.pyleak_birth_ret, !births_session);
	return err;
}

int probes_open(struct probes *p, pid_t pid, const struct probes_config *cfg, probes_event_fn fn,
		void *ctx)
{
	int err;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->event_fn = fn;
	p->event_ctx = ctx;
	p->skel = pyleak_bpf__open();
	if (!p->skel) {
		err = -errno;
		log_error("open BPF object for pid %d: %s", pid, strerror(-err));
		return err;
	}
	p->skel->rodata->target_tgid = pid;
	p->skel->rodata->stack_layout = cfg->stacks;
	p->skel->rodata->birth_sample_every = cfg->birth_sample_every;
	if (cfg->native_intervals)
		memcpy((void *)p->skel->rodata->native_intervals, cfg->native_intervals,
		       sizeof(p->skel->rodata->native_intervals));
	p->skel->rodata->pool_size = cfg->pool_size;
	p->skel->rodata->budget_ppm = cfg->budget_ppm;
	/* No per-object probe (sampled mode): no object is counted in BPF, and an empty map still
	 * costs its buckets; only the few types of gcwatch.c's death windows. */
	err = bpf_map__set_max_entries(p->skel->maps.objs, cfg->per_object ? cfg->max_objects : 1);
	if (!err)
		err = bpf_map__set_max_entries(p->skel->maps.pages, cfg->max_pages);
	if (!err)	/* a pool is 4 pages (16 KiB pools: the sampler's only) */
		err = bpf_map__set_max_entries(p->skel->maps.pools,
					       cfg->pool_sampler && cfg->max_pages >= 4 ?
					       cfg->max_pages / 4 : 1);
	if (!err)
		err = bpf_map__set_max_entries(p->skel->maps.stacks, cfg->max_stacks);
	if (!err && !cfg->per_object)
		err = bpf_map__set_max_entries(p->skel->maps.types, PROBES_SAMPLED_TYPES);
	if (!err)
		err = bpf_map__set_max_entries(p->skel->maps.native_blocks,
					       cfg->native_intervals ? cfg->native_max_blocks : 1);
	if (!err)
		err = progs_set_multi(p->skel, cfg->native_intervals != NULL);
	if (err)
		goto cleanup;
	err = pyleak_bpf__load(p->skel);
	if (err) {
		log_error("load BPF object for pid %d: %s", pid, strerror(-err));
		goto cleanup;
	}
	p->exec_link = bpf_program__attach(p->skel->progs.pyleak_exec);
	if (!p->exec_link) {
		err = -errno;
		log_error("attach exec tracepoint for pid %d: %s", pid, strerror(-err));
		goto cleanup;
	}
	if (cfg->stacks.runtime) {
		err = fault_events_open(p);
		if (err)
			goto cleanup;
	}
	p->rb = ring_buffer__new(bpf_map__fd(p->skel->maps.events), rb_sample, p, NULL);
	if (!p->rb) {
		err = -errno;
		goto cleanup;
	}
	return 0;
cleanup:
	probes_close(p);
	return err;
}

static void *link_close(void *fd)
{
	close((int)(intptr_t)fd);
	return NULL;
}

/* Takes the uprobe links whose kind is in kinds (a mask of 1 << enum pyleak_hook_kind) and,
 * if func, that hook func out of p: up to max fds go to fds, for probes_close_links().  A
 * taken slot stays used (fd -1): its index is the hooks map key of the links after it. */
static int links_take(struct probes *p, uint32_t kinds, uint64_t func, int *fds, int max)
{
	int i, n = 0;

	for (i = 0; i < p->nlinks && n < max; i++) {
		struct probe_link *pl = &p->links[i];

		if (pl->fd < 0 || !(kinds & (1U << pl->kind)) || (func && pl->func != func))
			continue;
		/* births of its types stop counting first: no death of theirs goes unseen */
		if (pl->kind == PYLEAK_HOOK_DEATH)
			bpf_map_delete_elem(bpf_map__fd(p->skel->maps.hooked_deallocs), &pl->func);
		fds[n++] = pl->fd;
		pl->fd = -1;
	}
	return n;
}

void probes_close_links(const int *fds, int n)
{
	struct closer { pthread_t tid; bool started; } *c;
	int i;

	/* One alone, or no memory for threads: closed inline. */
	c = n > 1 ? calloc(n, sizeof(*c)) : NULL;
	for (i = 0; i < n; i++) {
		if (c)
			c[i].started = !pthread_create(&c[i].tid, NULL, link_close,
						       (void *)(intptr_t)fds[i]);
		if (!c || !c[i].started)
			close(fds[i]);
	}
	for (i = 0; c && i < n; i++)
		if (c[i].started)
			pthread_join(c[i].tid, NULL);
	free(c);
}

static void links_close(struct probes *p, uint32_t kinds, uint64_t func)
{
	int fds[PYLEAK_MAX_HOOKS];

	probes_close_links(fds, links_take(p, kinds, func, fds, PYLEAK_MAX_HOOKS));
}

void probes_unhook(struct probes *p)
{
	fault_events_close(p);
	links_close(p, ~0U, 0);
	p->nlinks = 0;
}

#define NATIVE_HOOK_KINDS (1U << PYLEAK_HOOK_MALLOC | 1U << PYLEAK_HOOK_CALLOC | \
		      1U << PYLEAK_HOOK_REALLOC | 1U << PYLEAK_HOOK_ALIGNED | 1U << PYLEAK_HOOK_FREE)

void probes_unhook_objects(struct probes *p)
{
	links_close(p, 1U << PYLEAK_HOOK_BIRTH | 1U << PYLEAK_HOOK_DEATH | NATIVE_HOOK_KINDS, 0);
}

static unsigned int usdt_count(const struct probes *p)
{
	return (p->usdt_links[0] != NULL) + (p->usdt_links[1] != NULL);
}

/* Destroys p's USDT links, timing each (usdt_close_ns: the latest, taken alone). */
static void usdt_close(struct probes *p)
{
	double t0;
	int i;

	for (i = 0; i < 2; i++) {
		if (!p->usdt_links[i])
			continue;
		t0 = loop_mono();
		bpf_link__destroy(p->usdt_links[i]);
		p->usdt_links[i] = NULL;
		__atomic_store_n(&usdt_close_ns, (uint64_t)((loop_mono() - t0) * 1e9), __ATOMIC_RELAXED);
	}
}

void probes_close(struct probes *p)
{
	probes_unhook(p);
	usdt_close(p);
	bpf_link__destroy(p->exec_link);
	p->exec_link = NULL;
	ring_buffer__free(p->rb);
	p->rb = NULL;
	pyleak_bpf__destroy(p->skel);
	p->skel = NULL;
}

struct reap {
	struct reap *next;
	struct probes p;
};

static pthread_mutex_t reap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reap_cond = PTHREAD_COND_INITIALIZER;
static struct reap *reap_queue;
static bool reaper_running;
static unsigned int reap_usdt_left;	/* USDT links of the batch taken, not closed yet */

/* Targets closed at once: each close of a USDT probe's perf link waits for the kernel's
 * grace periods (~0.1 s); one at a time, the reaper could not keep up with processes ending
 * at 10/s, and their fds would pile up.  Their USDT links, though, go one after the other in
 * queue order: measured here (6.18), 11 targets' 22 perf links closed in threads took no less
 * than one at a time, in a random order that no pending_s could foretell. */
#define REAP_BATCH 16

static void *reap_close(void *arg)
{
	probes_close(&((struct reap *)arg)->p);
	return NULL;
}

/* Closes the batch, each in a thread of its own (inline if none can start), and frees it. */
static void reap_batch(struct reap **batch, int n)
{
	pthread_t tids[REAP_BATCH];
	bool started[REAP_BATCH];
	int i;

	for (i = 0; i < n; i++) {
		unsigned int links = usdt_count(&batch[i]->p);

		usdt_close(&batch[i]->p);
		pthread_mutex_lock(&reap_lock);
		reap_usdt_left -= links;
		pthread_mutex_unlock(&reap_lock);
	}
	for (i = 0; i < n; i++) {
		started[i] = !pthread_create(&tids[i], NULL, reap_close, batch[i]);
		if (!started[i])
			reap_close(batch[i]);
	}
	for (i = 0; i < n; i++) {
		if (started[i])
			pthread_join(tids[i], NULL);
		free(batch[i]);
	}
}

static void *reaper(void *arg)
{
	struct reap *batch[REAP_BATCH];
	int n;

	(void)arg;
	pthread_mutex_lock(&reap_lock);
	while (reap_queue) {
		for (n = 0; n < REAP_BATCH && reap_queue; n++) {
			batch[n] = reap_queue;
			reap_queue = reap_queue->next;
			reap_usdt_left += usdt_count(&batch[n]->p);
		}
		pthread_mutex_unlock(&reap_lock);
		reap_batch(batch, n);
		pthread_mutex_lock(&reap_lock);
		if (!reap_queue) {
			/* What the loads took (BTF, ELF copies) stays in malloc's heap otherwise:
			 * the daemon's RSS would stay where its busiest moment left it. */
			pthread_mutex_unlock(&reap_lock);
			malloc_trim(0);
			pthread_mutex_lock(&reap_lock);
		}
	}
	reaper_running = false;
	pthread_cond_broadcast(&reap_cond);
	pthread_mutex_unlock(&reap_lock);
	return NULL;
}

static void reap_wait(void);

double probes_close_async(struct probes *p)
{
	struct reap *r, **pp;
	pthread_attr_t attr;
	unsigned int ahead;
	double pending = 0;
	pthread_t tid;
	int err = 0;

	r = calloc(1, sizeof(*r));
	if (!r) {
		probes_close(p);
		return 0;
	}
	r->p = *p;
	memset(p, 0, sizeof(*p));
	pthread_mutex_lock(&reap_lock);
	/* Appended: the reaper takes batches from the head, and closes their USDT links one
	 * after the other (reap_batch()): those of the batch under way and those queued before
	 * go first. */
	ahead = reap_usdt_left;
	for (pp = &reap_queue; *pp; pp = &(*pp)->next)
		ahead += usdt_count(&(*pp)->p);
	*pp = r;
	if (usdt_count(&r->p))
		pending = (ahead + usdt_count(&r->p)) *
			  __atomic_load_n(&usdt_close_ns, __ATOMIC_RELAXED) / 1e9;
	if (!reaper_running) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		err = -pthread_create(&tid, &attr, reaper, NULL);
		pthread_attr_destroy(&attr);
		reaper_running = !err;
	}
	pthread_mutex_unlock(&reap_lock);
	if (err) {
		reap_wait();
		return 0;
	}
	return pending;
}

static void reap_wait(void)
{
	struct reap *r;

	pthread_mutex_lock(&reap_lock);
	while (reaper_running)
		pthread_cond_wait(&reap_cond, &reap_lock);
	/* Left over only if the thread could not start. */
	while ((r = reap_queue)) {
		reap_queue = r->next;
		probes_close(&r->p);
		free(r);
	}
	pthread_mutex_unlock(&reap_lock);
}

void probes_reap_all(void)
{
	reap_wait();
}

int probes_watch_type(struct probes *p, uint64_t type)
{
	struct pyleak_type_stats zero = {};

	if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.types), &type, &zero, BPF_NOEXIST) &&
	    errno != EEXIST)
		return -errno;
	return 0;
}

int probes_ignore_type(struct probes *p, uint64_t type)
{
	int fd = bpf_map__fd(p->skel->maps.types);
	struct pyleak_type_stats st;

	if (bpf_map_lookup_elem(fd, &type, &st))
		return -errno;
	st.flags |= PYLEAK_TYPE_IGNORED;
	return bpf_map_update_elem(fd, &type, &st, BPF_EXIST) ? -errno : 0;
}

/* Reads the first bytes of the function from the file that maps it (memory may hold our int3s). */
static int code_read(int fd, uint64_t offset, uint8_t *buf, size_t len, size_t *got)
{
	ssize_t n = pread(fd, buf, len, offset);

	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	*got = n;
	return 0;
}

/* Without a symbol size, a short window: bytes past the function's end could hold jumps
 * that look like loops into its entry block. */
#define CODE_UNKNOWN_SIZE 128
#define CODE_MAX_SIZE 16384

int probes_hook(struct probes *p, uint64_t func, uint64_t size, int kind, int arg, const char *what)
{
	struct pyleak_hook hook = { .func = func, .kind = kind, .reg = arg };
	bool session = (kind >= PYLEAK_HOOK_MALLOC && kind <= PYLEAK_HOOK_ALIGNED) ||
		       kind == PYLEAK_HOOK_POOL_NEW ||
		       (kind == PYLEAK_HOOK_BIRTH && probes_sessions_supported());
	bool ret = !session && (kind == PYLEAK_HOOK_BIRTH || kind == PYLEAK_HOOK_GC_DONE);
	struct bpf_program *native[] = NATIVE_PROGS(p->skel);
	struct probe_link *pl;
	struct insn_spot spot = { .offset = 0, .reg = INSN_REG_RDI };
	struct bpf_program *prog;
	char path[32];
	uint64_t offset;
	uint8_t *code = NULL;
	size_t got = 0;
	__u32 idx;
	int i, fd, err = 0;

	for (i = 0; i < p->nlinks; i++)
		if (p->links[i].fd >= 0 && p->links[i].func == func && p->links[i].kind == kind)
			return 0;
	/* A slot links_close() emptied is reused: its cookie indexes the hooks map. */
	for (idx = 0; idx < (__u32)p->nlinks && p->links[idx].fd >= 0; idx++)
		;
	if (idx >= PYLEAK_MAX_HOOKS)
		return -ENOSPC;
	err = python_file_of_addr(p->pid, func, &fd, &offset);
	if (err) {
		log_error("attach %s in pid %d: open the file mapped at 0x%lx: %s", what, p->pid, func,
			  strerror(-err));
		return err;
	}
	/* The uprobe goes in the inode read here, whatever its path names by then. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	size = size ? (size < CODE_MAX_SIZE ? size : CODE_MAX_SIZE) : CODE_UNKNOWN_SIZE;
	code = malloc(size);
	if (!code) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = code_read(fd, offset, code, size, &got);
	if (err) {
		log_error("attach %s in pid %d: read the code at 0x%lx: %s", what, p->pid, func,
			  strerror(-err));
		goto cleanup;
	}
	/* A uretprobe (or session) must sit at the entry (it swaps the return address on the
	 * stack). */
	if (ret || session) {
		spot.emulated = insn_is_emulated(code, got);
	} else {
		if (insn_find_spot(code, got, func, arg < 0 ? INSN_REG_RDI : (enum insn_reg)arg, &spot))
			spot = (struct insn_spot){ .offset = 0, .reg = (enum insn_reg)arg };
		hook.reg = arg < 0 ? -1 : spot.reg;
	}
	if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.hooks), &idx, &hook, BPF_ANY)) {
		err = -errno;
		goto cleanup;
	}
	switch (kind) {
	case PYLEAK_HOOK_BIRTH:
		prog = session ? p->skel->progs.pyleak_birth : p->skel->progs.pyleak_birth_ret;
		break;
	case PYLEAK_HOOK_GC_START: prog = p->skel->progs.pyleak_gc_start; break;
	case PYLEAK_HOOK_GC_DONE: prog = p->skel->progs.pyleak_gc_done; break;
	case PYLEAK_HOOK_MALLOC ... PYLEAK_HOOK_FREE: prog = native[kind - PYLEAK_HOOK_MALLOC]; break;
	case PYLEAK_HOOK_POOL_NEW: prog = p->skel->progs.pyleak_pool_new; break;
	default: prog = p->skel->progs.pyleak_death; break;
	}
	pl = &p->links[idx];
	pl->fd = uprobe_multi_attach(prog, p->pid, path, offset + spot.offset, idx,
				     session ? UPROBE_SESSION : ret ? UPROBE_RETURN : UPROBE_ENTRY);
	if (pl->fd < 0) {
		err = pl->fd;
		log_error("attach %s in pid %d: %s", what, p->pid, strerror(-err));
		goto cleanup;
	}
	pl->func = func;
	pl->addr = func + spot.offset;
	pl->kind = kind;
	pl->emulated = spot.emulated;
	if (idx == (__u32)p->nlinks)
		p->nlinks++;
	/* after the attach: a type's births count only once its deaths are seen */
	if (kind == PYLEAK_HOOK_DEATH &&
	    bpf_map_update_elem(bpf_map__fd(p->skel->maps.hooked_deallocs), &func, &(__u8){ 1 },
				BPF_ANY)) {
		err = -errno;
		log_error("attach %s in pid %d: note it hooked: %s", what, p->pid, strerror(-err));
		/* closed: a later call for func must not take it as placed */
		close(pl->fd);
		pl->fd = -1;
		goto cleanup;
	}
	log_debug("pid %d: %s at 0x%lx, file offset 0x%lx (+%u, %s %s, object in %s)", p->pid, what,
		  func, offset, spot.offset, spot.emulated ? "emulated" : "single-stepped", spot.mnemonic,
		  hook.reg < 0 ? "-" : insn_reg_name((enum insn_reg)hook.reg));
cleanup:
	free(code);
	close(fd);
	return err;
}

int probes_take_links(struct probes *p, uint64_t func, int kind, int *fds, int max)
{
	return links_take(p, 1U << kind, func, fds, max);
}

int probes_usdt_gc(struct probes *p, const char *path)
{
	static const char *const names[] = { "gc__start", "gc__done" };
	struct bpf_program *progs[] = { p->skel->progs.pyleak_gc_start_usdt,
					p->skel->progs.pyleak_gc_done_usdt };
	int i, err;

	for (i = 0; i < 2; i++) {
		p->usdt_links[i] = bpf_program__attach_usdt(progs[i], p->pid, path, "python", names[i], NULL);
		if (!p->usdt_links[i]) {
			err = -errno;
			log_error("attach USDT python:%s in pid %d: %s", names[i], p->pid, strerror(-err));
			return err;
		}
	}
	return 0;
}

int probes_read_counters(struct probes *p, uint64_t out[PYLEAK_CNT_MAX])
{
	int fd = bpf_map__fd(p->skel->maps.counters), ncpu = libbpf_num_possible_cpus();
	__u32 i;
	int c;

	if (ncpu <= 0)
		return ncpu;
	{
		__u64 vals[ncpu];

		for (i = 0; i < PYLEAK_CNT_MAX; i++) {
			out[i] = 0;
			if (bpf_map_lookup_elem(fd, &i, vals))
				return -errno;
			for (c = 0; c < ncpu; c++)
				out[i] += vals[c];
		}
	}
	return 0;
}

void probes_read_gc(struct probes *p, struct pyleak_gc *out)
{
	*out = p->skel->bss->gc_state;
}

/* Reads a hash map with u64 keys in batches, calling fn(ctx, key, value) for each entry. */
static long map_for_each(int fd, size_t vsize, probes_entry_fn fn, void *ctx)
{
	enum { BATCH = 2048 };
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u64 keys[BATCH], in = 0, out = 0;
	bool first = true, done = false;
	long total = 0;
	uint8_t *vals;
	__u32 n, i;
	int err;

	vals = malloc(BATCH * vsize);
	if (!vals)
		return -ENOMEM;
	while (!done) {
		n = BATCH;
		err = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, vals, &n, &opts);
		if (err && errno != ENOENT) {
			total = -errno;
			break;
		}
		done = err != 0;
		for (i = 0; i < n; i++)
			fn(ctx, keys[i], vals + i * vsize);
		total += n;
		in = out;
		first = false;
	}
	free(vals);
	return total;
}

/* Empties a hash map with u64 keys, in batches (a per-key delete would be one syscall per
 * object of a big object map). */
static int map_clear(int fd, size_t vsize)
{
	enum { BATCH = 2048 };
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u64 keys[BATCH], in = 0, out = 0;
	bool first = true;
	uint8_t *vals;
	__u32 n;
	int err;

	vals = malloc(BATCH * vsize);
	if (!vals)
		return -ENOMEM;
	for (;;) {
		n = BATCH;
		err = bpf_map_lookup_and_delete_batch(fd, first ? NULL : &in, &out, keys, vals, &n,
						      &opts);
		if (err) {
			err = errno == ENOENT ? 0 : -errno;
			break;
		}
		in = out;
		first = false;
	}
	free(vals);
	return err;
}

int probes_forget_objects(struct probes *p)
{
	int err = map_clear(bpf_map__fd(p->skel->maps.objs), sizeof(struct pyleak_obj));

	if (!err)
		err = map_clear(bpf_map__fd(p->skel->maps.types), sizeof(struct pyleak_type_stats));
	return err;
}

int probes_read_type(struct probes *p, uint64_t type, struct pyleak_type_stats *out)
{
	return bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.types), &type, out) ? -errno : 0;
}

int probes_forget_type(struct probes *p, uint64_t type)
{
	return bpf_map_delete_elem(bpf_map__fd(p->skel->maps.types), &type) ? -errno : 0;
}

long probes_for_each_page(struct probes *p, probes_entry_fn fn, void *ctx)
{
	return map_for_each(bpf_map__fd(p->skel->maps.pages), sizeof(struct pyleak_page_site),
			    fn, ctx);
}

long probes_for_each_pool(struct probes *p, probes_entry_fn fn, void *ctx)
{
	return map_for_each(bpf_map__fd(p->skel->maps.pools), sizeof(struct pyleak_page_site),
			    fn, ctx);
}

long probes_for_each_type(struct probes *p, probes_entry_fn fn, void *ctx)
{
	return map_for_each(bpf_map__fd(p->skel->maps.types), sizeof(struct pyleak_type_stats),
			    fn, ctx);
}

long probes_for_each_native(struct probes *p, probes_entry_fn fn, void *ctx)
{
	return map_for_each(bpf_map__fd(p->skel->maps.native_blocks),
			    sizeof(struct pyleak_native_block), fn, ctx);
}

long probes_for_each_obj(struct probes *p, probes_entry_fn fn, void *ctx)
{
	return map_for_each(bpf_map__fd(p->skel->maps.objs), sizeof(struct pyleak_obj), fn, ctx);
}

long probes_for_each_stack(struct probes *p, probes_entry_fn fn, void *ctx)
{
	return map_for_each(bpf_map__fd(p->skel->maps.stacks), sizeof(struct pyleak_stack), fn,
			    ctx);
}

int probes_read_stack(struct probes *p, uint64_t id, struct pyleak_stack *out)
{
	return bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.stacks), &id, out) ? -errno : 0;
}

void probes_set_page_mask(struct probes *p, uint64_t mask)
{
	p->skel->bss->page_sample_mask = mask;
}

uint64_t probes_page_mask(struct probes *p)
{
	return p->skel->bss->page_sample_mask;
}

/* A program's run time, plus trap_ns per run of a uprobe; its runs added to *runs. */
static uint64_t prog_cost_ns(struct bpf_program *prog, uint64_t trap_ns, uint64_t *runs)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_program__fd(prog) < 0 || bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return 0;
	*runs += info.run_cnt;
	if (bpf_program__type(prog) == BPF_PROG_TYPE_KPROBE)
		return info.run_time_ns + info.run_cnt * trap_ns;
	return info.run_time_ns;
}

uint64_t probes_native_cost_ns(struct probes *p, uint64_t trap_ns, uint64_t *hits)
{
	struct bpf_program *progs[] = NATIVE_PROGS(p->skel);
	uint64_t total = 0;
	int i;

	*hits = 0;
	for (i = 0; i < NATIVE_NPROGS; i++)
		total += prog_cost_ns(progs[i], trap_ns, hits);
	return total;
}

uint64_t probes_death_cost_ns(struct probes *p, uint64_t trap_ns)
{
	uint64_t runs = 0;

	return prog_cost_ns(p->skel->progs.pyleak_death, trap_ns, &runs);
}

uint64_t probes_cost_ns(struct probes *p, uint64_t trap_ns)
{
	uint64_t total = 0, runs = 0;
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, p->skel->obj)
		total += prog_cost_ns(prog, trap_ns, &runs);
	return total;
}

uint64_t probes_skip_ns(struct probes *p)
{
	uint64_t cnt[PYLEAK_CNT_MAX];

	return probes_read_counters(p, cnt) ? 0 : cnt[PYLEAK_CNT_SKIP_NS];
}

static uint64_t map_memlock(int fd)
{
	uint64_t v;

	return procfs_fdinfo_u64(fd, "memlock", &v) ? 0 : v;
}

uint64_t probes_maps_memory(struct probes *p)
{
	struct bpf_map *m;
	uint64_t total = 0;

	bpf_object__for_each_map(m, p->skel->obj)
		total += map_memlock(bpf_map__fd(m));
	return total;
}

int probes_count(const struct probes *p, int *single_stepped)
{
	int i, stepped = 0, n = 0;

	for (i = 0; i < p->nlinks; i++) {
		n += p->links[i].fd >= 0;
		stepped += p->links[i].fd >= 0 && !p->links[i].emulated;
	}
	if (single_stepped)
		*single_stepped = stepped;
	return n + (p->usdt_links[0] != NULL) + (p->usdt_links[1] != NULL) +
	       p->faults_on;
}

int probes_epoll_fd(struct probes *p)
{
	return ring_buffer__epoll_fd(p->rb);
}

int probes_consume(struct probes *p)
{
	return ring_buffer__consume(p->rb);
}
