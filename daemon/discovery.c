// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "container.h"
#include "discover.skel.h"
#include "discovery.h"
#include "log.h"
#include "procfs.h"
#include "u64map.h"

#define TICK_S 0.25
/* An exec is looked at this long after it happened: the dynamic loader has then mapped
 * libpython (pyenv's builds), which is how an interpreter is recognised. */
#define EXEC_DELAY_S 0.5
/* Bounded work per tick: what an exec storm costs the loop.  One attach (a BPF object loaded)
 * may alone take longer; then it is the only one of its tick. */
#define TICK_WORK_S 0.02
/* Execs and scanned processes wait in queues of their own: a scan never makes an exec a drop. */
#define QUEUE_MAX 1024		/* processes waiting to be looked at; more are drops */
#define SCAN_PER_TICK 256	/* /proc entries read per tick by a scan */
#define RESCAN_S 30.0
/* A process the budget refused is looked at again RETRY_S later, up to RETRY_TRIES times (then
 * by the next scan); RETRY_MAX of them at once. */
#define RETRY_MAX 256
#define RETRY_S 10.0
#define RETRY_TRIES 6
/* A process found not to be watched (or failing to attach) is not looked at again by scans for
 * REMEMBER_S to 2 * REMEMBER_S (two generations of maps, swapped), known by its pid and start
 * time (a reused pid is another process); an exec is always looked at. */
#define REMEMBER_S 120.0
#define REMEMBER_MAX 65536	/* per generation: 16 B each */
#define BUDGET_PERIOD_S 5.0
/* The daemon's CPU is smoothed (moving average over ~CPU_SMOOTH_S): an attach's BPF load, a
 * burst of execs, are not a trend.  Over max_cpu for this many periods in a row: no new
 * targets; slower censuses; detaching. */
#define CPU_SMOOTH_S 30.0
#define CPU_NO_NEW_AFTER 2
#define CPU_SLOW_AFTER 3
#define CPU_DETACH_AFTER 7
#define CENSUS_SLOWDOWN 4.0
#define BUDGET_LOG_S 60.0	/* at most one state change logged per this (detaching always) */
#define CMDLINE_MAX 4096
#define DETACHED_KEEP 16
#define RECENT_KEEP 64		/* the last verdicts, in `status` */
#define WHY_MAX 256

enum budget_state { BUDGET_OK, BUDGET_NO_NEW, BUDGET_SLOWER, BUDGET_DETACHING };
static const char *const budget_names[] = { "ok", "no_new_targets", "slower_census",
					    "detaching" };

struct pending {
	pid_t pid;
	unsigned int tries;	/* refusals by the budget */
	uint64_t start;		/* its start time; 0: not read yet */
	double due;		/* monotonic */
};

/* A FIFO of processes due in the order they were pushed (one delay per queue). */
struct queue {
	struct pending v[QUEUE_MAX];
	unsigned int head, len, max;
	uint64_t drops;
};

/* What a memo remembers of a process. */
struct memo_entry {
	uint64_t start;
	unsigned char verdict;
};

struct detached {
	pid_t pid;
	double at;
	char why[WHY_MAX];
};

static struct discovery_options dopt;
static struct target_options topt;
static struct discover_bpf *skel;
static struct ring_buffer *rb;
static struct watcher timer = { .fd = -1 };
static struct queue execq = { .max = QUEUE_MAX }, scanq = { .max = QUEUE_MAX },
		    retryq = { .max = RETRY_MAX };
static DIR *scan_dir;
static double scan_at;
static struct u64map *memo[2];		/* pid -> struct memo_entry: [0] newer, [1] older */
static double memo_at;

static struct {
	uint64_t scans, scanned, execs, evaluated, attached, by_rule[WATCH_RULES_MAX];
	uint64_t no_match, excluded, not_python, unsupported, already, gone, failures;
	uint64_t budget_refused, budget_detached, memo_full;
	int last_error;
	pid_t last_failed;
} st;

/* What discovery decided about a process, for `status` and `ps`. */
enum verdict { V_NONE, V_ATTACHED, V_NO_MATCH, V_EXCLUDED, V_NOT_PYTHON, V_UNSUPPORTED,
	       V_ALREADY, V_GONE, V_FAILED, V_BUDGET };
static const char *const verdict_names[] = { "", "attached", "no_match", "excluded",
					     "not_python", "unsupported", "already_tracked",
					     "gone", "failed", "budget_refused" };
static struct {
	pid_t pid;
	enum verdict v;
} recent[RECENT_KEEP];
static unsigned int nrecent;

static struct {
	enum budget_state state;
	uint64_t maps_bytes;
	uint64_t last_bytes;		/* the newest target's maps: what one more would add */
	uint64_t rss;			/* the daemon's resident memory */
	double cpu, cpu_s, at;		/* smoothed share of a core (the loop's thread); the
					 * CPU seconds and time of the last period's start */
	unsigned int cpu_over;		/* periods in a row over max_cpu */
	double logged_at;
	uint64_t changes;		/* state changes, logged or not */
	uint32_t targets;
	struct detached detached[DETACHED_KEEP];
	unsigned int ndetached;
} budget;

/* p, due delay_s from now; -ENOSPC (a drop) if q is full. */
static int queue_push(struct queue *q, struct pending p, double delay_s)
{
	if (q->len == q->max) {
		q->drops++;
		return -ENOSPC;
	}
	p.due = loop_mono() + delay_s;
	q->v[(q->head + q->len++) % QUEUE_MAX] = p;
	return 0;
}

/* The first process of q if it is due. */
static bool queue_pop(struct queue *q, struct pending *p)
{
	if (!q->len || q->v[q->head].due > loop_mono())
		return false;
	*p = q->v[q->head];
	q->head = (q->head + 1) % QUEUE_MAX;
	q->len--;
	return true;
}

static int on_exec(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size < sizeof(uint32_t))
		return 0;
	st.execs++;
	queue_push(&execq, (struct pending){ .pid = *(uint32_t *)data }, EXEC_DELAY_S);
	return 0;
}

/* What the memos remember of this very process (pid and start time), or NULL. */
static const struct memo_entry *memo_find(pid_t pid, uint64_t start)
{
	const struct memo_entry *e;
	int i;

	for (i = 0; i < 2; i++) {
		e = memo[i] ? u64map_lookup(memo[i], pid) : NULL;
		if (e)
			return e->start == start ? e : NULL;
	}
	return NULL;
}

static void memo_add(pid_t pid, uint64_t start, enum verdict verdict)
{
	struct memo_entry *e;
	int err;

	/* a process that is gone (no start time) is not remembered: its pid will be another's */
	if (!start || !memo[0])
		return;
	err = u64map_insert(memo[0], pid, (void **)&e);
	if (err < 0) {
		st.memo_full++;		/* forgotten: looked at again by scans */
		return;
	}
	*e = (struct memo_entry){ .start = start, .verdict = verdict };
}

static void decided(const struct pending *p, enum verdict v, bool remember)
{
	recent[nrecent % RECENT_KEEP].pid = p->pid;
	recent[nrecent % RECENT_KEEP].v = v;
	nrecent++;
	if (remember)
		memo_add(p->pid, p->start, v);
}

static void memo_age(void)
{
	if (loop_mono() - memo_at < REMEMBER_S)
		return;
	u64map_free(memo[1]);
	memo[1] = memo[0];
	memo[0] = NULL;
	if (u64map_new(sizeof(struct memo_entry), REMEMBER_MAX, &memo[0]))
		log_warn("discovery: no memory to remember processes: scans look at all of them");
	memo_at = loop_mono();
}

/* Reads a part of the /proc scan: every process not remembered is queued. */
static void scan_step(void)
{
	struct dirent *de;
	int n = 0;

	if (!scan_dir) {
		if (loop_mono() - scan_at < RESCAN_S && st.scans)
			return;
		scan_dir = opendir("/proc");
		if (!scan_dir) {
			log_warn("discovery: open /proc: %m");
			scan_at = loop_mono();
			return;
		}
		st.scans++;
	}
	while (n < SCAN_PER_TICK && scanq.len < scanq.max && (de = readdir(scan_dir))) {
		struct pending p = {};

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		p.pid = atoi(de->d_name);
		n++;
		if (p.pid <= 0 || p.pid == getpid() || procfs_start_time(p.pid, &p.start) ||
		    memo_find(p.pid, p.start))
			continue;
		st.scanned++;
		queue_push(&scanq, p, 0);
	}
	/* Queue full: the scan goes on at the next tick. */
	if (n < SCAN_PER_TICK && scanq.len < scanq.max) {
		closedir(scan_dir);
		scan_dir = NULL;
		scan_at = loop_mono();
	}
}

/* Its arguments joined by spaces (cut at CMDLINE_MAX). */
static int cmdline_read(pid_t pid, char *buf, size_t size)
{
	size_t n, i;
	int err;

	/* Zeroed: the arguments' end is the last non-NUL byte read. */
	memset(buf, 0, size);
	err = procfs_read(pid, "cmdline", buf, size);
	if (err)
		return err;
	for (n = size - 1; n > 0 && buf[n - 1] == '\0'; n--)
		;
	for (i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return 0;
}

/* A cheap test before python_inspect() parses ELF symbols: libpython is mapped, or the
 * executable is named python*.  A renamed static interpreter is not discovered. */
static bool looks_python(pid_t pid, const char *exe)
{
	const char *base = strrchr(exe, '/');
	struct procfs_maps *maps;
	struct procfs_map m;
	bool found = false;

	base = base ? base + 1 : exe;
	if (!strncmp(base, "python", 6))
		return true;
	if (procfs_maps_open(pid, &maps))
		return false;
	while (!found && procfs_maps_next(maps, &m) > 0) {
		const char *b = strrchr(m.path, '/');

		found = b && !strncmp(b + 1, "libpython3.", 11);
	}
	procfs_maps_close(maps);
	return found;
}

static uint32_t targets_tracking(void)
{
	const struct target *t;
	uint32_t n = 0;

	for (t = target_list(); t; t = t->next)
		n += t->state == TARGET_TRACKING;
	return n;
}

/* Degradation step 1: no new target while over a limit, or if one more would be.  The daemon's
 * RSS (row history grows with each target's types) stops new targets only: what ended targets
 * free is not always returned to the system, so detaching would not bring it down. */
static bool budget_allows(void)
{
	return budget.cpu_over < CPU_NO_NEW_AFTER && targets_tracking() < topt.max_targets &&
	       (!dopt.max_maps_bytes ||
		budget.maps_bytes + budget.last_bytes <= dopt.max_maps_bytes) &&
	       (!dopt.max_memory_bytes || budget.rss < dopt.max_memory_bytes);
}

/* Refused by the budget: looked at again later, when it may allow it. */
static void refused(const struct pending *p)
{
	struct pending again = *p;

	st.budget_refused++;
	decided(p, V_BUDGET, false);
	if (again.tries++ < RETRY_TRIES)
		queue_push(&retryq, again, RETRY_S);
}

static void attach(const struct pending *p, int rule)
{
	pid_t pid = p->pid;
	struct target *t;
	int err;

	err = target_attach(pid, &topt, &t);
	if (err == -EALREADY) {
		st.already++;
		decided(p, V_ALREADY, false);
		return;
	}
	if (err == -EUSERS) {
		refused(p);
		return;
	}
	if (err == -ESRCH) {
		st.gone++;
		decided(p, V_GONE, false);
	} else if (err == -ENOEXEC) {
		st.not_python++;
		decided(p, V_NOT_PYTHON, true);
	} else if (err == -EPROTONOSUPPORT) {
		st.unsupported++;
		decided(p, V_UNSUPPORTED, true);
	} else if (err) {
		st.failures++;
		st.last_error = err;
		st.last_failed = pid;
		log_warn("discovery: pid %d: attach: %s", pid, strerror(-err));
		decided(p, V_FAILED, true);
	}
	if (err)
		return;
	t->watch_rule = rule;
	decided(p, V_ATTACHED, false);
	st.attached++;
	st.by_rule[rule]++;
	budget.last_bytes = probes_maps_memory(&t->probes);
	budget.maps_bytes += budget.last_bytes;
	log_info("discovery: pid %d attached (rule %d%s%s)", pid, rule,
		 t->label.container[0] ? ", container " : "", t->label.container);
}

/* Looks at one process: its rules, whether it is a Python, then attaches it. */
static void evaluate(struct pending *p)
{
	static char cmdline[CMDLINE_MAX];
	struct container_label label;
	struct watch_proc proc = {};
	char exe[4096], link[32];
	pid_t pid = p->pid;
	struct target *t;
	ssize_t n;
	int rule;

	st.evaluated++;
	/* gone: 0, not remembered */
	if (!p->start && procfs_start_time(pid, &p->start))
		p->start = 0;
	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	if (n < 0) {
		/* a kernel thread has no executable */
		if (kill(pid, 0) && errno == ESRCH) {
			st.gone++;
			decided(p, V_GONE, false);
		} else {
			st.not_python++;
			decided(p, V_NOT_PYTHON, true);
		}
		return;
	}
	exe[n] = '\0';
	proc.exe = exe;
	if (!cmdline_read(pid, cmdline, sizeof(cmdline)))
		proc.cmdline = cmdline;
	if (!container_read(pid, &label)) {
		proc.unit = label.unit[0] ? label.unit : NULL;
		proc.container = label.container[0] ? label.container : NULL;
	}
	rule = watch_match(&dopt.rules, &proc);
	if (rule < 0) {
		if (rule == WATCH_EXCLUDED)
			st.excluded++;
		else
			st.no_match++;
		decided(p, rule == WATCH_EXCLUDED ? V_EXCLUDED : V_NO_MATCH, true);
		return;
	}
	/* A tracked process that exec'd ends here, and its new program is looked at. */
	t = target_find(pid);
	if (t && t->state == TARGET_TRACKING && !target_check(t)) {
		st.already++;
		decided(p, V_ALREADY, false);
		return;
	}
	if (!looks_python(pid, exe)) {
		st.not_python++;
		decided(p, V_NOT_PYTHON, true);
		return;
	}
	if (!budget_allows()) {
		refused(p);
		return;
	}
	attach(p, rule);
}

static uint64_t maps_bytes_sum(void)
{
	struct target *t;
	uint64_t sum = 0;

	for (t = target_list(); t; t = t->next)
		if (t->state == TARGET_TRACKING)
			sum += probes_maps_memory(&t->probes);
	return sum;
}

/* Degradation step 3: the newest target discovered goes (those attached on request stay). */
static void detach_newest(const char *why)
{
	struct target *t, *newest = NULL;
	struct detached *d;
	uint64_t start;

	for (t = target_list(); t; t = t->next)
		if (t->state == TARGET_TRACKING && t->watch_rule >= 0 &&
		    (!newest || t->attached_at > newest->attached_at))
			newest = t;
	if (!newest)
		return;
	d = &budget.detached[budget.ndetached++ % DETACHED_KEEP];
	d->pid = newest->pid;
	d->at = loop_now();
	snprintf(d->why, sizeof(d->why), "%s", why);
	log_warn("discovery: budget: %s: detaching pid %d, the newest discovered target", why,
		 newest->pid);
	st.budget_detached++;
	if (procfs_start_time(d->pid, &start))
		start = 0;
	target_detach(newest, NULL);
	memo_add(d->pid, start, V_BUDGET);
}

static void budget_update(void)
{
	/* the loop's thread only: a client of the metrics server does not detach targets */
	double now = loop_mono(), cpu = procfs_self_cpu_seconds(true), dt = now - budget.at;
	enum budget_state was = budget.state, want = BUDGET_OK;
	char why[WHY_MAX] = "";

	if (dt < BUDGET_PERIOD_S)
		return;
	if (budget.at)
		budget.cpu += (dt < CPU_SMOOTH_S ? dt / CPU_SMOOTH_S : 1) *
			      ((cpu - budget.cpu_s) / dt - budget.cpu);
	budget.cpu_s = cpu;
	budget.at = now;
	budget.maps_bytes = maps_bytes_sum();
	budget.rss = procfs_self_rss_bytes();
	budget.targets = targets_tracking();
	budget.cpu_over = dopt.max_cpu && budget.cpu > dopt.max_cpu ? budget.cpu_over + 1 : 0;
	if (budget.cpu_over >= CPU_NO_NEW_AFTER) {
		want = budget.cpu_over >= CPU_DETACH_AFTER ? BUDGET_DETACHING :
		       budget.cpu_over >= CPU_SLOW_AFTER ? BUDGET_SLOWER : BUDGET_NO_NEW;
		snprintf(why, sizeof(why), "daemon CPU %.1f%% over %.1f%% (%u s)", budget.cpu * 100,
			 dopt.max_cpu * 100, (unsigned int)(budget.cpu_over * BUDGET_PERIOD_S));
	}
	if (want == BUDGET_OK && !budget_allows()) {
		want = BUDGET_NO_NEW;
		snprintf(why, sizeof(why), "%u targets (max_targets %u), kernel map memory %llu KiB "
			 "(max_maps_memory %llu KiB), RSS %llu MiB (max_memory %llu MiB)",
			 budget.targets, topt.max_targets,
			 (unsigned long long)(budget.maps_bytes >> 10),
			 (unsigned long long)(dopt.max_maps_bytes >> 10),
			 (unsigned long long)(budget.rss >> 20),
			 (unsigned long long)(dopt.max_memory_bytes >> 20));
	}
	if (dopt.max_maps_bytes && budget.maps_bytes > dopt.max_maps_bytes) {
		want = BUDGET_DETACHING;
		snprintf(why, sizeof(why), "kernel map memory %llu MiB over %llu MiB",
			 (unsigned long long)(budget.maps_bytes >> 20),
			 (unsigned long long)(dopt.max_maps_bytes >> 20));
	}
	budget.state = want;
	budget.changes += want != was;
	if (want != was && (want == BUDGET_DETACHING || now - budget.logged_at >= BUDGET_LOG_S)) {
		log_warn("discovery: budget: %s%s%s", budget_names[want], *why ? ": " : "", why);
		budget.logged_at = now;
	}
	if (want == BUDGET_DETACHING)
		detach_newest(why);
}

static void on_tick(struct watcher *w, uint32_t events)
{
	double start = loop_mono();
	struct pending p;
	uint64_t ticks;

	(void)events;
	if (read(w->fd, &ticks, sizeof(ticks)) < 0)
		return;
	ring_buffer__consume(rb);
	memo_age();
	budget_update();
	scan_step();
	/* execs first: the scan is for what they missed */
	while (loop_mono() - start < TICK_WORK_S &&
	       (queue_pop(&execq, &p) || queue_pop(&retryq, &p) || queue_pop(&scanq, &p)))
		evaluate(&p);
}

void discovery_rule_format(int rule, char *buf, size_t size)
{
	if (rule >= 0 && rule < dopt.rules.nwatch)
		watch_rule_format(&dopt.rules.watch[rule], buf, size);
	else
		snprintf(buf, size, "%s", "");
}

double discovery_census_slowdown(void)
{
	return budget.state >= BUDGET_SLOWER ? CENSUS_SLOWDOWN : 1.0;
}

int discovery_start(const struct discovery_options *opt, const struct target_options *tgt)
{
	int err;

	dopt = *opt;
	topt = *tgt;
	if (!dopt.rules.nwatch)
		return 0;
	err = u64map_new(sizeof(struct memo_entry), REMEMBER_MAX, &memo[0]);
	if (err)
		goto cleanup;
	memo_at = loop_mono();
	skel = discover_bpf__open_and_load();
	if (!skel) {
		err = -errno;
		log_error("discovery: load the exec program: %s", strerror(-err));
		goto cleanup;
	}
	err = discover_bpf__attach(skel);
	if (err) {
		log_error("discovery: attach the exec program: %s", strerror(-err));
		goto cleanup;
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.execs), on_exec, NULL, NULL);
	if (!rb) {
		err = -errno;
		goto cleanup;
	}
	err = loop_timer_start(&timer, on_tick, TICK_S, TICK_S);
	if (err)
		goto cleanup;
	log_info("discovery: %d watch rule(s), %d exclude rule(s)", dopt.rules.nwatch,
		 dopt.rules.nexclude);
	return 0;
cleanup:
	discovery_stop();
	return err;
}

void discovery_stop(void)
{
	loop_timer_stop(&timer);
	ring_buffer__free(rb);
	rb = NULL;
	discover_bpf__destroy(skel);
	skel = NULL;
	if (scan_dir)
		closedir(scan_dir);
	scan_dir = NULL;
	u64map_free(memo[0]);
	u64map_free(memo[1]);
	memo[0] = memo[1] = NULL;
}

static json_t *rules_json(const struct watch_rule *rules, int n, const uint64_t *counts)
{
	json_t *a = json_array();
	char text[WATCH_GLOB_MAX + 16];
	int i;

	for (i = 0; a && i < n; i++) {
		watch_rule_format(&rules[i], text, sizeof(text));
		json_array_append_new(a, counts ? json_pack("{s:s, s:I}", "rule", text, "attached",
							   (json_int_t)counts[i]) :
						  json_string(text));
	}
	return a;
}

const char *discovery_verdict(pid_t pid)
{
	const struct memo_entry *e;
	uint64_t start;

	if (procfs_start_time(pid, &start))
		return NULL;
	e = memo_find(pid, start);
	return e && e->verdict < sizeof(verdict_names) / sizeof(verdict_names[0]) ?
	       verdict_names[e->verdict] : NULL;
}

static json_t *recent_json(void)
{
	unsigned int i, n = nrecent < RECENT_KEEP ? nrecent : RECENT_KEEP;
	json_t *a = json_array();

	for (i = 0; a && i < n; i++) {
		unsigned int k = (nrecent - 1 - i) % RECENT_KEEP;

		json_array_append_new(a, json_pack("{s:i, s:s}", "pid", recent[k].pid, "verdict",
						   verdict_names[recent[k].v]));
	}
	return a;
}

static json_t *detached_json(void)
{
	unsigned int i, n = budget.ndetached < DETACHED_KEEP ? budget.ndetached : DETACHED_KEEP;
	json_t *a = json_array();

	for (i = 0; a && i < n; i++) {
		const struct detached *d = &budget.detached[(budget.ndetached - 1 - i) % DETACHED_KEEP];

		json_array_append_new(a, json_pack("{s:i, s:f, s:s}", "pid", d->pid, "at", d->at,
						   "why", d->why));
	}
	return a;
}

json_t *discovery_status_json(void)
{
	json_t *o;

	if (!dopt.rules.nwatch)
		return json_pack("{s:b}", "enabled", 0);
	o = json_pack("{s:b, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "enabled", 1,
		"watch", rules_json(dopt.rules.watch, dopt.rules.nwatch, st.by_rule),
		"exclude", rules_json(dopt.rules.exclude, dopt.rules.nexclude, NULL),
		"scans", (json_int_t)st.scans, "scanned", (json_int_t)st.scanned,
		"execs", (json_int_t)st.execs, "evaluated", (json_int_t)st.evaluated,
		"attached", (json_int_t)st.attached,
		"pending", (json_int_t)(execq.len + scanq.len + retryq.len));
	if (!o)
		return NULL;
	json_object_set_new(o, "skipped", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
		"no_match", (json_int_t)st.no_match, "excluded", (json_int_t)st.excluded,
		"not_python", (json_int_t)st.not_python, "unsupported", (json_int_t)st.unsupported,
		"already_tracked", (json_int_t)st.already, "gone", (json_int_t)st.gone));
	json_object_set_new(o, "failures", json_pack("{s:I, s:i, s:s}",
		"count", (json_int_t)st.failures, "last_pid", st.last_failed,
		"last_error", st.last_error ? strerror(-st.last_error) : ""));
	/* queue: execs dropped (a scan never fills their queue); retry: refused ones not retried */
	json_object_set_new(o, "drops", json_pack("{s:I, s:I, s:I}",
		"ring", (json_int_t)(skel ? skel->bss->dropped : 0),
		"queue", (json_int_t)execq.drops, "retry", (json_int_t)retryq.drops));
	json_object_set_new(o, "recent", recent_json());
	json_object_set_new(o, "remembered", json_integer((json_int_t)(
		(memo[0] ? u64map_count(memo[0]) : 0) + (memo[1] ? u64map_count(memo[1]) : 0))));
	json_object_set_new(o, "remembered_max", json_integer(2 * REMEMBER_MAX));
	json_object_set_new(o, "remember_full", json_integer((json_int_t)st.memo_full));
	json_object_set_new(o, "retrying", json_integer(retryq.len));
	json_object_set_new(o, "budget", json_pack("{s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:o}",
		"state", budget_names[budget.state], "targets", (int)targets_tracking(),
		"max_targets", (int)topt.max_targets, "maps_bytes", (json_int_t)budget.maps_bytes,
		"max_maps_bytes", (json_int_t)dopt.max_maps_bytes,
		"rss_bytes", (json_int_t)budget.rss, "max_rss_bytes", (json_int_t)dopt.max_memory_bytes,
		"cpu", budget.cpu, "max_cpu", dopt.max_cpu, "refused", (json_int_t)st.budget_refused,
		"detached", (json_int_t)st.budget_detached, "state_changes", (json_int_t)budget.changes,
		"detached_targets", detached_json()));
	return o;
}
