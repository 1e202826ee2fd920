/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* One target's BPF object: loading it, placing its uprobes, reading its maps. */
#ifndef PYLEAK_PROBES_H
#define PYLEAK_PROBES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyleak.h"

struct pyleak_bpf;
struct ring_buffer;
struct bpf_link;

struct probe_link {
	int fd;			/* its uprobe_multi link */
	uint64_t func;		/* runtime address of the hooked function */
	uint64_t addr;		/* runtime address of the probed instruction */
	int kind;		/* enum pyleak_hook_kind */
	bool emulated;		/* the probed instruction is emulated, not single-stepped */
};

struct fault_event {
	pid_t tid;
	int fd;			/* the perf event, owned by link */
	struct bpf_link *link;
};

typedef int (*probes_event_fn)(void *ctx, const struct pyleak_event *ev);

struct probes {
	pid_t pid;
	probes_event_fn event_fn;
	void *event_ctx;
	struct pyleak_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *exec_link;
	struct fault_event *faults;	/* its threads' page-fault events (sites only) */
	int nfaults, faults_cap;
	bool faults_on;		/* enabled: not paused (probes_faults_enable()) */
	struct bpf_link *usdt_links[2];
	struct probe_link links[PYLEAK_MAX_HOOKS];
	int nlinks;
};

/* Estimated cost of one uprobe trap (the BPF run time is measured; the trap is not). */
#define PROBES_TRAP_NS PYLEAK_TRAP_NS

/* Types whose deaths a target without per-object probes may count (see gcwatch.h). */
#define PROBES_SAMPLED_TYPES 8

struct probes_config {
	bool per_object;	/* births and deaths are counted per object (precise mode) */
	uint32_t max_objects;	/* entries of the object map (its memory grows with use) */
	struct pyleak_stack_layout stacks;	/* runtime 0: no allocation sites */
	uint32_t max_pages;	/* pages whose first-touch stack is kept (LRU) */
	uint32_t max_stacks;	/* distinct stacks kept */
	uint32_t birth_sample_every;	/* stack of 1 birth in N (per-object probes); 0: none */
	/* Native allocation sampling: PYLEAK_NATIVE_INTERVALS distances between samples, in
	 * bytes (nativealloc.h); NULL: off, its programs not even loaded. */
	const uint64_t *native_intervals;
	uint32_t native_max_blocks;	/* sampled blocks kept until freed */
	uint32_t pool_size;	/* pymalloc's pool size, to find the block a page fault made */
	bool pool_sampler;	/* recycled pools will be sampled (hooks_place_pool()): their map */
	uint32_t budget_ppm;	/* the samplers' budgets in BPF (pyleak.bpf.c); 0: unlimited */
};

/* The kernel runs uprobe sessions (6.12+): native allocation sampling needs them, births use
 * them to skip the return probe of the births not sampled. */
bool probes_sessions_supported(void);

int probes_open(struct probes *p, pid_t pid, const struct probes_config *cfg, probes_event_fn fn,
		void *ctx);
void probes_close(struct probes *p);
/* Removes the uprobes and the page-fault events now (~0.1 s): the target runs none of them
 * when it returns.  The USDT probes stay, for probes_close(). */
void probes_unhook(struct probes *p);
/* Enables or disables the target's page-fault events (probes_open() opens them enabled, with
 * sites), at once: 0 or a negative errno.  Off at a pause of the page sampler, and at the
 * end, before the teardown in the background. */
int probes_faults_enable(struct probes *p, bool on);
/* probes_close() in a background thread: a USDT probe's perf link takes ~0.12 s to tear down
 * in the kernel (one at a time, host-wide), the uprobes ~0.1 s, which must not stall the
 * daemon's loop.  Returns how long the USDT probes will stay in the target, in seconds (an
 * estimate; 0 if it has none). */
double probes_close_async(struct probes *p);
/* Waits for every background teardown (at exit: all probes are gone when it returns). */
void probes_reap_all(void);

/* Counts a static type (its births are then tracked). */
int probes_watch_type(struct probes *p, uint64_t type);
/* Stops tracking a type's births (its deaths cannot be seen). */
int probes_ignore_type(struct probes *p, uint64_t type);
/* Stops counting a type: its entry goes. */
int probes_forget_type(struct probes *p, uint64_t type);
/* Empties the object and type maps (after probes_unhook_objects(): what they counted stops). */
int probes_forget_objects(struct probes *p);
/* One counted type's counters. */
int probes_read_type(struct probes *p, uint64_t type, struct pyleak_type_stats *out);

/* Places a uprobe of kind at the function at runtime address func (size bytes long, 0 if
 * unknown) in the target, where the BPF program can still read the argument that arrived in
 * register arg (enum pyleak_reg; -1: none needed). A no-op if already hooked. */
int probes_hook(struct probes *p, uint64_t func, uint64_t size, int kind, int arg, const char *what);

/* Removes the per-object probes (births, deaths) and the native allocators' now (~0.1 s);
 * collections, the exec tracepoint and page sampling stay. */
void probes_unhook_objects(struct probes *p);

/* Takes the uprobes of kind at func (placed by probes_hook) out of p: up to max of their link
 * fds go to fds, for probes_close_links(); returns how many (0: none). */
int probes_take_links(struct probes *p, uint64_t func, int kind, int *fds, int max);
/*
 * Closes uprobe link fds, of any targets, all at once: each close removes its breakpoint,
 * then waits for a grace period that the others share (~50 ms each, one after the other).
 * The programs they ran no longer run when it returns.
 */
void probes_close_links(const int *fds, int n);

/* Attaches the GC USDT probes (python:gc__start, python:gc__done) of the binary at path. */
int probes_usdt_gc(struct probes *p, const char *path);

/* Sums the per-CPU counters. */
int probes_read_counters(struct probes *p, uint64_t out[PYLEAK_CNT_MAX]);

/* The collector's totals, read from the BPF object's .bss. */
void probes_read_gc(struct probes *p, struct pyleak_gc *out);

/* Map walks: fn gets each key and value; they return how many entries, or -errno. */
typedef void (*probes_entry_fn)(void *ctx, uint64_t key, const void *value);
/* Recorded pages: page number -> struct pyleak_page_site (its first toucher). */
long probes_for_each_page(struct probes *p, probes_entry_fn fn, void *ctx);
/* Recycled pools: pool address -> struct pyleak_page_site (who last initialised it). */
long probes_for_each_pool(struct probes *p, probes_entry_fn fn, void *ctx);
/* Counted types: type object address -> struct pyleak_type_stats. */
long probes_for_each_type(struct probes *p, probes_entry_fn fn, void *ctx);
/* Objects born since attach and alive: address -> struct pyleak_obj. */
long probes_for_each_obj(struct probes *p, probes_entry_fn fn, void *ctx);
/* Recorded stacks: id -> struct pyleak_stack. */
long probes_for_each_stack(struct probes *p, probes_entry_fn fn, void *ctx);
/* Sampled native blocks not yet freed: address -> struct pyleak_native_block. */
long probes_for_each_native(struct probes *p, probes_entry_fn fn, void *ctx);
int probes_read_stack(struct probes *p, uint64_t id, struct pyleak_stack *out);
/* The governor's page sampling: record the stack of 1 page in mask + 1 (mask = 2^k - 1). */
void probes_set_page_mask(struct probes *p, uint64_t mask);
/* The page sampling rate now: the governor's, or higher if the sampler's brake raised it. */
uint64_t probes_page_mask(struct probes *p);
/* Time the target has spent in this object's programs, in ns: BPF run time (when the kernel
 * keeps statistics, see main.c) plus trap_ns per uprobe hit. */
uint64_t probes_cost_ns(struct probes *p, uint64_t trap_ns);
/* The same, of the native allocation programs alone; *hits: how often they ran. */
uint64_t probes_native_cost_ns(struct probes *p, uint64_t trap_ns, uint64_t *hits);
/* The same, of the death program alone. */
/* The page-fault program's time in faults it did not sample (cumulative, ns). */
uint64_t probes_skip_ns(struct probes *p);
uint64_t probes_death_cost_ns(struct probes *p, uint64_t trap_ns);
/* Kernel memory the target's maps may use at most, in bytes (from their fdinfo). */
uint64_t probes_maps_memory(struct probes *p);

/* Probes placed (uprobes, USDT probes and the page-fault events, as one), and how many are
 * single-stepped (NULL: not wanted). */
int probes_count(const struct probes *p, int *single_stepped);

int probes_epoll_fd(struct probes *p);
int probes_consume(struct probes *p);

#endif
