// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
#define QUEUE_MAX 1024		/* processes waiting to be looked at; more are drops */
#define SCAN_PER_TICK 256	/* /proc entries read per tick by a scan */
#define RESCAN_S 30.0
/* A process found not to be watched (or failing to attach) is not looked at again by scans for
 * REMEMBER_S to 2 * REMEMBER_S (two generations of maps, swapped); an exec is always looked at. */
#define REMEMBER_S 120.0
#define REMEMBER_MAX 16384
#define BUDGET_PERIOD_S 5.0
/* Over the CPU budget for this many periods: slower censuses; for this many more: detaching. */
#define CPU_SLOW_AFTER 2
#define CPU_DETACH_AFTER 6
#define CENSUS_SLOWDOWN 4.0
#define CMDLINE_MAX 4096
#define DETACHED_KEEP 16
#define RECENT_KEEP 64		/* the last verdicts, in `status` */

enum budget_state { BUDGET_OK, BUDGET_NO_NEW, BUDGET_SLOWER, BUDGET_DETACHING };
static const char *const budget_names[] = { "ok", "no_new_targets", "slower_census",
					    "detaching" };

struct pending {
	pid_t pid;
	double due;		/* monotonic */
};

struct detached {
	pid_t pid;
	double at;
	char why[160];
};

static struct discovery_options dopt;
static struct target_options topt;
static struct discover_bpf *skel;
static struct ring_buffer *rb;
static struct watcher timer = { .fd = -1 };
static struct pending queue[QUEUE_MAX];
static unsigned int queue_head, queue_len;
static DIR *scan_dir;
static double scan_at;
static struct u64map *memo[2];		/* pid -> nothing: [0] newer, [1] older */
static double memo_at;

static struct {
	uint64_t scans, scanned, execs, evaluated, attached, by_rule[WATCH_RULES_MAX];
	uint64_t no_match, excluded, not_python, unsupported, already, gone, failures;
	uint64_t queue_drops, budget_refused, budget_detached;
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
	double cpu, cpu_s, at;		/* share of a core over the last period; its start */
	unsigned int cpu_over;		/* periods in a row over max_cpu */
	uint32_t targets;
	struct detached detached[DETACHED_KEEP];
	unsigned int ndetached;
} budget;

static int queue_push(pid_t pid)
{
	if (queue_len == QUEUE_MAX) {
		st.queue_drops++;
		return -ENOSPC;
	}
	queue[(queue_head + queue_len++) % QUEUE_MAX] =
		(struct pending){ .pid = pid, .due = loop_mono() + EXEC_DELAY_S };
	return 0;
}

static int on_exec(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size < sizeof(uint32_t))
		return 0;
	st.execs++;
	queue_push(*(uint32_t *)data);
	return 0;
}

static bool memo_has(pid_t pid)
{
	return (memo[0] && u64map_lookup(memo[0], pid)) || (memo[1] && u64map_lookup(memo[1], pid));
}

static void memo_add(pid_t pid, enum verdict verdict)
{
	void *v;

	/* full: forgotten, looked at again */
	if (memo[0] && u64map_insert(memo[0], pid, &v) >= 0)
		*(unsigned char *)v = verdict;
}

static void decided(pid_t pid, enum verdict v, bool remember)
{
	recent[nrecent % RECENT_KEEP].pid = pid;
	recent[nrecent % RECENT_KEEP].v = v;
	nrecent++;
	if (remember)
		memo_add(pid, v);
}

static void memo_age(void)
{
	if (loop_mono() - memo_at < REMEMBER_S)
		return;
	u64map_free(memo[1]);
	memo[1] = memo[0];
	memo[0] = NULL;
	if (u64map_new(1, REMEMBER_MAX, &memo[0]))
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
	while (n < SCAN_PER_TICK && queue_len < QUEUE_MAX && (de = readdir(scan_dir))) {
		pid_t pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = atoi(de->d_name);
		n++;
		if (pid <= 0 || pid == getpid() || memo_has(pid))
			continue;
		st.scanned++;
		queue_push(pid);
	}
	/* Queue full: the scan goes on at the next tick. */
	if (n < SCAN_PER_TICK && queue_len < QUEUE_MAX) {
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

/* Degradation step 1: no new target while over a limit, or if one more would be. */
static bool budget_allows(void)
{
	return !budget.cpu_over && targets_tracking() < topt.max_targets &&
	       (!dopt.max_maps_bytes ||
		budget.maps_bytes + budget.last_bytes <= dopt.max_maps_bytes);
}

static void attach(pid_t pid, int rule)
{
	struct target *t;
	int err;

	err = target_attach(pid, &topt, &t);
	if (err == -EALREADY) {
		st.already++;
		decided(pid, V_ALREADY, false);
		return;
	}
	if (err == -EUSERS) {
		st.budget_refused++;
		decided(pid, V_BUDGET, false);
		return;
	}
	if (err == -ESRCH) {
		st.gone++;
		decided(pid, V_GONE, false);
	} else if (err == -ENOEXEC) {
		st.not_python++;
		decided(pid, V_NOT_PYTHON, true);
	} else if (err == -EPROTONOSUPPORT) {
		st.unsupported++;
		decided(pid, V_UNSUPPORTED, true);
	} else if (err) {
		st.failures++;
		st.last_error = err;
		st.last_failed = pid;
		log_warn("discovery: pid %d: attach: %s", pid, strerror(-err));
		decided(pid, V_FAILED, true);
	}
	if (err)
		return;
	t->watch_rule = rule;
	decided(pid, V_ATTACHED, false);
	st.attached++;
	st.by_rule[rule]++;
	budget.last_bytes = probes_maps_memory(&t->probes);
	budget.maps_bytes += budget.last_bytes;
	log_info("discovery: pid %d attached (rule %d%s%s)", pid, rule,
		 t->label.container[0] ? ", container " : "", t->label.container);
}

/* Looks at one process: its rules, whether it is a Python, then attaches it. */
static void evaluate(pid_t pid)
{
	static char cmdline[CMDLINE_MAX];
	struct container_label label;
	struct watch_proc proc = {};
	char exe[4096], link[32];
	struct target *t;
	ssize_t n;
	int rule;

	st.evaluated++;
	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	if (n < 0) {
		/* a kernel thread has no executable */
		if (kill(pid, 0) && errno == ESRCH) {
			st.gone++;
			decided(pid, V_GONE, false);
		} else {
			st.not_python++;
			decided(pid, V_NOT_PYTHON, true);
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
		decided(pid, rule == WATCH_EXCLUDED ? V_EXCLUDED : V_NO_MATCH, true);
		return;
	}
	/* A tracked process that exec'd ends here, and its new program is looked at. */
	t = target_find(pid);
	if (t && t->state == TARGET_TRACKING && !target_check(t)) {
		st.already++;
		decided(pid, V_ALREADY, false);
		return;
	}
	if (!looks_python(pid, exe)) {
		st.not_python++;
		decided(pid, V_NOT_PYTHON, true);
		return;
	}
	if (!budget_allows()) {
		/* Looked at again by the next scan, when the budget may allow it. */
		st.budget_refused++;
		decided(pid, V_BUDGET, false);
		return;
	}
	attach(pid, rule);
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

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Degradation step 3: the newest target discovered goes (those attached on request stay). */
static void detach_newest(const char *why)
{
	struct target *t, *newest = NULL;
	struct detached *d;

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
	target_detach(newest, NULL);
	memo_add(d->pid, V_BUDGET);
}

static void budget_update(void)
{
	double now = loop_mono(), cpu = cpu_seconds();
	enum budget_state was = budget.state, want = BUDGET_OK;
	char why[160] = "";

	if (now - budget.at < BUDGET_PERIOD_S)
		return;
	budget.cpu = budget.at ? (cpu - budget.cpu_s) / (now - budget.at) : 0;
	budget.cpu_s = cpu;
	budget.at = now;
	budget.maps_bytes = maps_bytes_sum();
	budget.targets = targets_tracking();
	budget.cpu_over = dopt.max_cpu && budget.cpu > dopt.max_cpu ? budget.cpu_over + 1 : 0;
	if (budget.cpu_over) {
		want = budget.cpu_over > CPU_DETACH_AFTER ? BUDGET_DETACHING :
		       budget.cpu_over > CPU_SLOW_AFTER ? BUDGET_SLOWER : BUDGET_NO_NEW;
		snprintf(why, sizeof(why), "daemon CPU %.1f%% over %.1f%%", budget.cpu * 100,
			 dopt.max_cpu * 100);
	}
	if (want == BUDGET_OK && !budget_allows()) {
		want = BUDGET_NO_NEW;
		snprintf(why, sizeof(why), "%u targets (max_targets %u), kernel map memory %llu KiB "
			 "(max_maps_memory %llu KiB)", budget.targets, topt.max_targets,
			 (unsigned long long)(budget.maps_bytes >> 10),
			 (unsigned long long)(dopt.max_maps_bytes >> 10));
	}
	if (dopt.max_maps_bytes && budget.maps_bytes > dopt.max_maps_bytes) {
		want = BUDGET_DETACHING;
		snprintf(why, sizeof(why), "kernel map memory %llu MiB over %llu MiB",
			 (unsigned long long)(budget.maps_bytes >> 20),
			 (unsigned long long)(dopt.max_maps_bytes >> 20));
	}
	budget.state = want;
	if (want != was)
		log_warn("discovery: budget: %s%s%s", budget_names[want], *why ? ": " : "", why);
	if (want == BUDGET_DETACHING)
		detach_newest(why);
}

static void on_tick(struct watcher *w, uint32_t events)
{
	double start = loop_mono();
	uint64_t ticks;

	(void)events;
	if (read(w->fd, &ticks, sizeof(ticks)) < 0)
		return;
	ring_buffer__consume(rb);
	memo_age();
	budget_update();
	scan_step();
	while (queue_len && queue[queue_head].due <= loop_mono() &&
	       loop_mono() - start < TICK_WORK_S) {
		pid_t pid = queue[queue_head].pid;

		queue_head = (queue_head + 1) % QUEUE_MAX;
		queue_len--;
		evaluate(pid);
	}
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
	err = u64map_new(1, REMEMBER_MAX, &memo[0]);
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
	const unsigned char *v = NULL;

	if (memo[0])
		v = u64map_lookup(memo[0], pid);
	if (!v && memo[1])
		v = u64map_lookup(memo[1], pid);
	return v && *v < sizeof(verdict_names) / sizeof(verdict_names[0]) ? verdict_names[*v] : NULL;
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
		"attached", (json_int_t)st.attached, "pending", (json_int_t)queue_len);
	if (!o)
		return NULL;
	json_object_set_new(o, "skipped", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
		"no_match", (json_int_t)st.no_match, "excluded", (json_int_t)st.excluded,
		"not_python", (json_int_t)st.not_python, "unsupported", (json_int_t)st.unsupported,
		"already_tracked", (json_int_t)st.already, "gone", (json_int_t)st.gone));
	json_object_set_new(o, "failures", json_pack("{s:I, s:i, s:s}",
		"count", (json_int_t)st.failures, "last_pid", st.last_failed,
		"last_error", st.last_error ? strerror(-st.last_error) : ""));
	json_object_set_new(o, "drops", json_pack("{s:I, s:I}",
		"ring", (json_int_t)(skel ? skel->bss->dropped : 0),
		"queue", (json_int_t)st.queue_drops));
	json_object_set_new(o, "recent", recent_json());
	json_object_set_new(o, "remembered", json_integer((json_int_t)(
		(memo[0] ? u64map_count(memo[0]) : 0) + (memo[1] ? u64map_count(memo[1]) : 0))));
	json_object_set_new(o, "budget", json_pack("{s:s, s:i, s:i, s:I, s:I, s:f, s:f, s:I, s:I, s:o}",
		"state", budget_names[budget.state], "targets", (int)targets_tracking(),
		"max_targets", (int)topt.max_targets, "maps_bytes", (json_int_t)budget.maps_bytes,
		"max_maps_bytes", (json_int_t)dopt.max_maps_bytes, "cpu", budget.cpu,
		"max_cpu", dopt.max_cpu, "refused", (json_int_t)st.budget_refused,
		"detached", (json_int_t)st.budget_detached, "detached_targets", detached_json()));
	return o;
}
