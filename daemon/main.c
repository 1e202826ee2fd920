// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* pyleakd: options, config, signals, the event loop. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "discovery.h"
#include "ended.h"
#include "lastwords.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "postmortem.h"
#include "sampler.h"
#include "server.h"
#include "view.h"
#include "watchdog.h"

#define DEFAULT_SOCKET "/run/pyleakd/pyleakd.sock"
#define DEFAULT_STATE_DIR "/var/lib/pyleak"
/* ~40 fds each, 2 more per thread with sites: the fd limit is raised to match */
#define DEFAULT_MAX_TARGETS 256
/* The object map holds only the births sampled for their site (1 in DEFAULT_BIRTH_SAMPLE),
 * 16 B up front each: 4 MiB, for 16M objects born since attach and alive. */
#define DEFAULT_MAX_OBJECTS (1u << 18)
#define DEFAULT_MAX_PAGES (1u << 15)
#define DEFAULT_MAX_STACKS (1u << 14)
#define DEFAULT_BUDGET 0.01
/* The host-wide budget of discovery: see README "Discovery". */
/* Both together stay under the unit's MemoryMax=1G (maps are charged to its cgroup too). */
#define DEFAULT_MAX_MAPS_MEMORY (384ULL << 20)
#define DEFAULT_MAX_MEMORY (512ULL << 20)
#define DEFAULT_MAX_CPU 0.10
/* Precise mode: 1 birth in 64 gets its stack (~1.5 us each: ~25 ns per birth on average). */
#define DEFAULT_BIRTH_SAMPLE 64
/* Precise mode: one native allocation sample per 512 KiB malloc'd (bench/native.py). */
#define DEFAULT_NATIVE_SAMPLE_BYTES (512u << 10)
#define DEFAULT_NATIVE_MAX_BLOCKS (1u << 16)

static volatile sig_atomic_t stop;

static const char usage[] =
"Usage: pyleakd [OPTIONS]\n"
"Watches Python processes from outside (eBPF) and counts their live objects by type.\n"
"\n"
"Options:\n"
"  -s, --socket PATH      Unix socket to serve (default " DEFAULT_SOCKET ",\n"
"                         or $PYLEAKD_SOCKET)\n"
"  -c, --config FILE      read KEY=VALUE settings: socket, group, mode, budget,\n"
"                         max_targets, max_objects, max_pages, sample_interval,\n"
"                         log_level, watch, exclude, max_maps_memory, max_memory,\n"
"                         max_cpu, metrics_listen, metrics_top_types, state_dir,\n"
"                         native_sample_bytes, native_max_blocks\n"
"  -g, --group GROUP      members of GROUP may use the socket (default: root only)\n"
"      --max-objects N    precise mode's births sampled for their site kept per process\n"
"                         (default 262144); past it their sites are lost, not counts\n"
"      --sample-interval SEC  history sample period for `leaks` (default 2)\n"
"      --mode MODE        how attach/top/leaks/sites attach without --mode: sampled\n"
"                         (default; always-on: heap census + page-sampled sites) or\n"
"                         precise (births and deaths of classes and sets since attach)\n"
"      --budget FRACTION  CPU share of each target its probes may cost; the\n"
"                         governor thins allocation-site sampling to stay under it,\n"
"                         and a precise target over it falls back to sampled unless\n"
"                         attached with --force (default 0.01; 0: unlimited)\n"
"      --max-pages N      sampled heap pages whose allocation site is kept per\n"
"                         process (default 32768, ~2.5 MiB of kernel memory; the\n"
"                         oldest are forgotten first)\n"
"      --metrics-listen HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics\n"
"                         (IPv4:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9464; default: off)\n"
"      --state-dir DIR    where the postmortem reports of processes that died are\n"
"                         kept (default " DEFAULT_STATE_DIR ", created 0700)\n"
"  -f, --foreground       stay in the foreground (the default; for systemd units)\n"
"  -l, --log-level LEVEL  error, warn, info (default) or debug\n"
"  -h, --help             show this help\n"
"  -V, --version          show the version\n"
"\n"
"Discovery (config only): watch = all | exe:GLOB | cmdline:GLOB | unit:GLOB |\n"
"container:GLOB, repeatable, attaches the matching Python processes as they start\n"
"(exclude = the same forms, wins), within max_targets, max_maps_memory (default\n"
"384M), max_memory (the daemon's RSS, default 512M) and max_cpu (the daemon's\n"
"share of a core, default 0.1); see pyleakd.conf(5).\n"
"\n"
"EXAMPLES\n"
"  pyleakd                                  serve " DEFAULT_SOCKET "\n"
"  PYLEAKD_SOCKET=/tmp/p.sock pyleakd -l debug  a private daemon, verbose\n"
"  pyleakd --group adm                      let group adm run pyleakctl\n"
"  pyleakd --budget 0.005                   always-on: at most 0.5% of each target\n"
"  pyleakd --metrics-listen 127.0.0.1:9464  Prometheus scrapes http://127.0.0.1:9464/metrics\n";

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *buf, *line, *save = NULL;

	if (level == LIBBPF_DEBUG && log_threshold < LOG_LEVEL_DEBUG)
		return 0;
	/* Verifier logs are long and many lines: no fixed buffer, one message a line. */
	if (vasprintf(&buf, fmt, ap) < 0)
		return 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		log_msg(level == LIBBPF_WARN ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, "%s", line);
	free(buf);
	return 0;
}

/* Each target holds its BPF maps, programs and links open: the soft fd limit (often 1024)
 * is raised to the hard one. */
static void fds_raise(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			log_warn("raise the fd limit to %lu: %m", (unsigned long)rl.rlim_max);
	}
}

/* Uprobes are uprobe_multi links (probes.c), which Linux has since 6.6: an older kernel would
 * fail every attach with a bare EINVAL, so it is refused at start, by name. */
static int kernel_check(void)
{
	struct utsname u;
	unsigned int major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return 0;	/* unknown: let the first attach say */
	if (major > 6 || (major == 6 && minor >= 6))
		return 0;
	log_error("Linux %s lacks uprobe_multi links: pyleakd needs 6.6 or later", u.release);
	return -ENOTSUP;
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "group", required_argument, NULL, 'g' },
		{ "max-objects", required_argument, NULL, 'm' },
		{ "sample-interval", required_argument, NULL, 'i' },
		{ "mode", required_argument, NULL, 'M' },
		{ "budget", required_argument, NULL, 'b' },
		{ "max-pages", required_argument, NULL, 'p' },
		{ "metrics-listen", required_argument, NULL, 'P' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	struct server_options o = { .target.max_objects = DEFAULT_MAX_OBJECTS,
				    .target.max_pages = DEFAULT_MAX_PAGES,
				    .target.max_targets = DEFAULT_MAX_TARGETS,
				    .target.max_stacks = DEFAULT_MAX_STACKS,
				    .target.birth_sample_every = DEFAULT_BIRTH_SAMPLE,
				    .target.native_sample_bytes = DEFAULT_NATIVE_SAMPLE_BYTES,
				    .target.native_max_blocks = DEFAULT_NATIVE_MAX_BLOCKS,
				    .target.budget = DEFAULT_BUDGET,
				    .target.mode = TARGET_SAMPLED,
				    .target.sample_interval = 2.0,
				    .discovery.max_maps_bytes = DEFAULT_MAX_MAPS_MEMORY,
				    .discovery.max_memory_bytes = DEFAULT_MAX_MEMORY,
				    .discovery.max_cpu = DEFAULT_MAX_CPU,
				    .state_dir = DEFAULT_STATE_DIR };
	int stats_fd;
	char max_objects[32];
	struct sigaction sa = { .sa_handler = on_signal };
	const char *env = getenv("PYLEAKD_SOCKET");
	int c, err;

	o.path = env && *env ? env : DEFAULT_SOCKET;
	while ((c = getopt_long(argc, argv, "s:c:g:fl:hV", long_opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.path = optarg;
			break;
		case 'c':
			if (config_read(optarg, &o))
				return 2;
			break;
		case 'g':
			if (config_set(&o, "group", optarg))
				return 2;
			break;
		case 'm':
			snprintf(max_objects, sizeof(max_objects), "%s", optarg);
			if (config_set(&o, "max_objects", max_objects))
				return 2;
			break;
		case 'i':
			if (config_set(&o, "sample_interval", optarg))
				return 2;
			break;
		case 'M':
			if (config_set(&o, "mode", optarg))
				return 2;
			break;
		case 'b':
			if (config_set(&o, "budget", optarg))
				return 2;
			break;
		case 'p':
			if (config_set(&o, "max_pages", optarg))
				return 2;
			break;
		case 'P':
			if (config_set(&o, "metrics_listen", optarg))
		case 'S':
			if (config_set(&o, "state_dir", optarg))
				return 2;
			break;
		case 'f':
			break;
		case 'l':
			if (config_set(&o, "log_level", optarg))
				return 2;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			printf("pyleakd %s\n", PYLEAK_VERSION);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument %s", argv[optind]);
		return 2;
	}
	if (kernel_check())
		return 1;
	libbpf_set_print(libbpf_log);
	/* BPF run-time statistics while the daemon runs: the governor measures probe cost. */
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0)
		log_warn("BPF run-time statistics unavailable (%s): probe cost is not measured",
			 strerror(errno));
	fds_raise();
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* The default socket lives in /run/pyleakd, which systemd's RuntimeDirectory= also makes. */
	if (!strcmp(o.path, DEFAULT_SOCKET))
		mkdir("/run/pyleakd", 0755);
	/* Without them, what ended is kept in memory only, and exits have no code: warned. */
	err = lastwords_start();
	if (err)
		log_warn("the exit tracepoints cannot be used (%s): causes of end are \"exit\", code unknown",
			 strerror(-err));
	postmortem_start(o.state_dir);
	err = loop_init();
	/* before the socket: a daemon that cannot serve its metrics never looks ready */
	if (!err)
		err = metrics_start(&o.metrics);
	if (!err)
		err = server_start(&o);
	if (!err)
		err = sampler_start(&o.target);
	if (!err)
		err = discovery_start(&o.discovery, &o.target);
	if (!err)
		err = watchdog_start();
	if (err) {
		log_error("cannot start: %s", strerror(-err));
		return 1;
	}
	log_info("listening on %s", o.path);
	sd_notify(0, "READY=1");
	err = loop_run(&stop);
	sd_notify(0, "STOPPING=1");
	watchdog_stop();
	discovery_stop();
	metrics_stop();
	sampler_stop();
	target_detach_all();
	view_paths_free();
	ended_free_all();
	postmortem_stop();
	lastwords_stop();
	server_stop();
	loop_fini();
	if (stats_fd >= 0)
		close(stats_fd);
	log_info("stopped");
	return err ? 1 : 0;
}
