// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Live-object accounting for one CPython process.
 *
 * Births are counted by type where an object is allocated (PyType_GenericAlloc's entry: its
 * type and item count are the arguments), deaths by type at the type's own tp_dealloc, older
 * objects' too: the population change since attach is born - died.  Only the births sampled
 * for their allocation site need the object's address (the constructor's return): those are
 * kept in `objs` (address -> type, size, stack) until they die.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>
#include "cpython.h"
#include "pyleak.h"

/* Adopt heap types (classes) on their first birth. */
const volatile bool adopt_heap_types = true;
/* The target's pid (tgid), for the exec tracepoint. */
const volatile __u32 target_tgid = 0;

/* Uprobe sessions (kernel 6.12+): programs that use them are loaded only where they exist;
 * weak, or libbpf fails the whole object's load on a kernel without them. */
extern bool bpf_session_is_return(void) __ksym __weak;
extern __u64 *bpf_session_cookie(void) __ksym __weak;

/* Read by the daemon through the skeleton's mmap of .bss. */
struct pyleak_gc gc_state = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 22);	/* set by the daemon (max_objects) */
	__type(key, __u64);
	__type(value, struct pyleak_obj);
} objs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PYLEAK_MAX_TYPES);
	__type(key, __u64);
	__type(value, struct pyleak_type_stats);
} types SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PYLEAK_MAX_HOOKS);
	__type(key, __u32);
	__type(value, struct pyleak_hook);
} hooks SEC(".maps");

/* The tp_dealloc functions hooked for deaths (key; the value is unused), filled by the daemon
 * once a death hook is in place: a type's births count only while its deaths are seen. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PYLEAK_MAX_HOOKS);
	__type(key, __u64);
	__type(value, __u8);
} hooked_deallocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PYLEAK_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PYLEAK_RINGBUF_SIZE);
} events SEC(".maps");

static __always_inline void count_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += n;
}

static __always_inline void count(__u32 idx)
{
	count_add(idx, 1);
}

/* An event for the daemon; false when the ring is full (counted lost). */
static __always_inline bool event_send(__u32 kind, __u64 type, __u64 dealloc)
{
	struct pyleak_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev) {
		count(PYLEAK_CNT_EVENTS_LOST);
		return false;
	}
	ev->kind = kind;
	ev->pad = 0;
	ev->type = type;
	ev->dealloc = dealloc;
	bpf_ringbuf_submit(ev, 0);
	return true;
}

/* pt_regs offsets in enum pyleak_reg order (a rodata global: clang 14 emits bad BTF for a
 * static const array in .rodata). */
const volatile __u16 reg_offsets[] = {
	offsetof(struct pt_regs, di), offsetof(struct pt_regs, si), offsetof(struct pt_regs, dx),
	offsetof(struct pt_regs, cx), offsetof(struct pt_regs, r8), offsetof(struct pt_regs, r9),
	offsetof(struct pt_regs, ax), offsetof(struct pt_regs, bx), offsetof(struct pt_regs, bp),
	offsetof(struct pt_regs, r10), offsetof(struct pt_regs, r11), offsetof(struct pt_regs, r12),
	offsetof(struct pt_regs, r13), offsetof(struct pt_regs, r14), offsetof(struct pt_regs, r15),
};
_Static_assert(sizeof(reg_offsets) / sizeof(reg_offsets[0]) == PYLEAK_REG_COUNT,
	       "one pt_regs offset per enum pyleak_reg");

/* The verifier forbids ctx loads at a variable offset: read the register with a helper. */
static __always_inline __u64 read_reg(struct pt_regs *ctx, __s32 reg)
{
	__u64 v = 0;

	if (reg < 0 || reg >= (__s32)(sizeof(reg_offsets) / sizeof(reg_offsets[0])))
		return 0;
	bpf_probe_read_kernel(&v, sizeof(v), (void *)ctx + reg_offsets[reg]);
	return v;
}

static __always_inline struct pyleak_hook *this_hook(struct pt_regs *ctx)
{
	__u32 idx = bpf_get_attach_cookie(ctx);

	return bpf_map_lookup_elem(&hooks, &idx);
}

static __always_inline __u64 read_user_u64(__u64 addr, int *err)
{
	__u64 v = 0;

	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		*err = 1;
	return v;
}

/*
 * Reads the type's tp_dealloc and sizes into ts once (the daemon resets an entry whose type
 * changed: daemon/sampler.c types_read()); 0, or -1 if they cannot be read or are out of range (a
 * hostile type could otherwise add gigabytes per birth).
 */
static __always_inline int type_cache(struct pyleak_type_stats *ts, __u64 type)
{
	__u64 dealloc, basic, item;
	int err = 0;

	if (ts->dealloc)
		return 0;
	dealloc = read_user_u64(type + CPY_TP_DEALLOC, &err);
	basic = read_user_u64(type + CPY_TP_BASICSIZE, &err);
	item = read_user_u64(type + CPY_TP_ITEMSIZE, &err);
	if (err || !dealloc || basic > PYLEAK_TYPE_SIZE_MAX || item > PYLEAK_TYPE_SIZE_MAX) {
		count(PYLEAK_CNT_READ_ERRORS);
		return -1;
	}
	ts->basicsize = basic;
	ts->itemsize = item;
	/* dealloc last, its readers take it as "sizes cached": a CPU racing this first use may
	 * still see it first and count a few bytes short (x86 keeps stores in order, the
	 * barrier keeps the compiler from reordering them). */
	asm volatile("" ::: "memory");
	ts->dealloc = dealloc;
	return 0;
}

/* A heap type seen for the first time: start counting it and ask the daemon to hook its dealloc. */
static __always_inline struct pyleak_type_stats *adopt_type(__u64 type)
{
	struct pyleak_type_stats zero = { .flags = PYLEAK_TYPE_HEAP };
	__u64 flags;
	int err = 0;

	if (!adopt_heap_types)
		return NULL;
	flags = read_user_u64(type + CPY_TP_FLAGS, &err);
	if (err) {
		count(PYLEAK_CNT_READ_ERRORS);
		return NULL;
	}
	if (type_cache(&zero, type))
		return NULL;
	if (!(flags & CPY_TPFLAGS_HEAPTYPE))
		return NULL;
	if (bpf_map_update_elem(&types, &type, &zero, BPF_NOEXIST)) {
		/* Lost a race with another CPU, or the map is full. */
		struct pyleak_type_stats *ts = bpf_map_lookup_elem(&types, &type);

		if (!ts)
			count(PYLEAK_CNT_TYPES_FULL);
		return ts;
	}
	event_send(PYLEAK_EV_NEW_TYPE, type, zero.dealloc);
	return bpf_map_lookup_elem(&types, &type);
}

/* Bytes of an object of a type (cached: type_cache()) with n items; n out of range (a
 * hostile caller) counts as 0 items. */
static __always_inline __u64 type_size(const struct pyleak_type_stats *ts, __s64 n)
{
	if (n < 0 || n > PYLEAK_ITEMS_MAX) {
		count(PYLEAK_CNT_READ_ERRORS);
		n = 0;
	}
	return ts->basicsize + ts->itemsize * n;
}

/* At the constructor's return, where ob_size still holds the item count asked for (3.12+'s
 * ints store their lv_tag there later). */
static __always_inline __u64 object_size(__u64 obj, const struct pyleak_type_stats *ts)
{
	__s64 n = 0;
	int err = 0;

	if (ts->itemsize)
		n = read_user_u64(obj + CPY_OB_SIZE, &err);
	return type_size(ts, err ? 0 : n);
}

/*
 * Allocation sites: the first touch of each page of the target's memory records the Python
 * stack of the faulting thread.  Heap growth is what a leak is made of, and it arrives in
 * fresh pages, so one stack per page samples the allocations that grow the heap at a cost
 * paid per 4 KiB, not per object; a census later finds the object each sample allocated.
 */
const volatile struct pyleak_stack_layout stack_layout = {};
/* Precise mode also records the stack of 1 birth in birth_sample_every (0: none). */
const volatile __u32 birth_sample_every = 0;

/* pymalloc's POOL_SIZE in the target (4096 on 3.8/3.9, 16384 on 3.10+); 0: no pymalloc. */
const volatile __u32 pool_size = 0;

/* Set by the daemon's governor (and raised by fault_brake()): a page is sampled when its hash
 * & page_sample_mask == 0. */
__u64 page_sample_mask = 0;

/*
 * The samplers' budgets, in the kernel.  The governor judges their cost once per sample
 * interval (seconds), but a heap growing at full speed faults 100,000+ pages a second, each
 * sampled one a stack walk (~2 us), and a size class whose one pool empties at each free
 * initialises a pool per allocation, each a trap (~2 us): 1.8x and 35x slower until the
 * governor caught up.  So, as perf throttles its own sampling (perf_cpu_time_max_percent),
 * each sampler keeps a bucket of time that fills at the budget's share of one CPU
 * (budget_ppm) up to PYLEAK_BURST_NS worth, and spends what it took: a burst (a load of
 * data) is sampled in full, a cost that lasts is cut within ~0.1 s.  Racy across CPUs by
 * design: a bucket may be off by a fault or a refill.
 */
const volatile __u32 budget_ppm = 0;	/* 0: unlimited */

struct pyleak_bucket fault_bucket = {}, pool_bucket = {};
__u64 fault_brake_at = 0;
bool pool_over = false;

/* Spends spent ns from b: false once it is empty (never, with an unlimited budget). */
static __always_inline bool bucket_spend(struct pyleak_bucket *b, __u64 now, __u64 spent)
{
	__s64 cap = PYLEAK_BURST_NS / 1000000 * budget_ppm, tokens;
	__u64 last = b->at;

	if (!budget_ppm)
		return true;
	b->at = now;
	tokens = !last ? cap : b->tokens + (__s64)((now - last) / 1000 * budget_ppm / 1000);
	tokens = (tokens > cap ? cap : tokens) - (__s64)spent;
	b->tokens = tokens;
	return tokens >= 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pyleak_stack);
} stack_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);	/* set by the daemon (max_stacks) */
	__type(key, __u64);
	__type(value, struct pyleak_stack);
} stacks SEC(".maps");

/* Page number -> its first toucher; the oldest pages are forgotten first when it is full. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 18);	/* set by the daemon (max_pages) */
	__type(key, __u64);
	__type(value, struct pyleak_page_site);
} pages SEC(".maps");

/* Pool address -> the stack that last (re)initialised it, when that pool was recycled: its pages
 * were resident, so no fault sampled who filled it.  Kept while it holds (LRU), replaced or
 * dropped at its next initialisation. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16);	/* set by the daemon (max_pages / 4) */
	__type(key, __u64);
	__type(value, struct pyleak_page_site);
} pools SEC(".maps");

/* Faults of the target seen by the page sampler: a pool initialised without one was recycled. */
__u64 fault_seq = 0;

/*
 * The governor's choice of the page at addr, shared by both samplers and keyed by its pool's
 * first page (3.10+'s 16 KiB pools span 4 pages): a pool's pages and its (re)initialisation
 * are sampled together or not at all.  Each object then has one chance in every = mask + 1
 * of a sample, which weighs every (sites.c, block_site()): an expected weight of 1.  Keyed by
 * page, a recycled pool's sample and its pages 2-4's own would be independent, and objects
 * there would weigh 1/every * every + (1 - 1/every) * 1/every * every = 2 - 1/every.  The
 * same if the rate changed since its pages were sampled (every then e, now every): hence a
 * recycled pool's initialisation drops its pages' samples (pyleak_pool_new()).  Other memory
 * is sampled in pool-sized runs of pages: the same rate, more variance.
 */
static __always_inline bool page_sampled(__u64 addr, __u64 mask)
{
	__u64 key = (pool_size ? addr & ~((__u64)pool_size - 1) : addr) >> PYLEAK_PAGE_SHIFT;

	return !(((key * 0x9E3779B97F4A7C15ULL) >> 32) & mask);
}

/* Follows a pointer chain: p = *(p + offs[0]), then *(p + offs[1]), ... */
static __always_inline __u64 chain_read(__u64 p, const volatile __u16 *offs, __u8 n, int *err)
{
	int i;

	for (i = 0; i < PYLEAK_CHAIN_MAX; i++) {
		if (i >= n || !p)
			break;
		p = read_user_u64(p + offs[i], err);
	}
	return p;
}

static __always_inline __u32 frame_offset(__u64 frame, __u64 code, int *err)
{
	__s32 lasti = 0;
	__u64 ip;

	switch (stack_layout.pos_kind) {
	case PYLEAK_POS_LASTI_BYTES:
	case PYLEAK_POS_LASTI_UNITS:
		if (bpf_probe_read_user(&lasti, sizeof(lasti), (void *)(frame + stack_layout.pos)))
			*err = 1;
		if (lasti < 0)
			return 0;	/* not started yet */
		return stack_layout.pos_kind == PYLEAK_POS_LASTI_UNITS ? lasti * 2 : lasti;
	case PYLEAK_POS_INSTR_PTR:
		ip = read_user_u64(frame + stack_layout.pos, err);
		code += stack_layout.code_adaptive;
		return ip >= code && ip - code < (1u << 30) ? ip - code : 0;
	}
	return 0;
}

/* Threads of the main interpreter looked at for the calling one's state. */
#define OWN_TSTATE_MAX 32

/* The calling thread's own state: its thread id is pthread_self(), which on x86-64 glibc is
 * its fsbase.  0 if not found (not a Python thread, or past OWN_TSTATE_MAX). */
static __always_inline __u64 own_tstate(int *err)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 fs = 0, ts;
	int i;

	if (!stack_layout.tstate_thread_id ||
	    bpf_probe_read_kernel(&fs, sizeof(fs), &task->thread.fsbase) || !fs)
		return 0;
	ts = read_user_u64(stack_layout.runtime + stack_layout.interp_main, err);
	if (ts)
		ts = read_user_u64(ts + stack_layout.tstate_head, err);
	for (i = 0; i < OWN_TSTATE_MAX && ts && !*err; i++) {
		if (read_user_u64(ts + stack_layout.tstate_thread_id, err) == fs)
			return ts;
		ts = read_user_u64(ts + stack_layout.tstate_next, err);
	}
	if (ts && !*err)
		count(PYLEAK_CNT_THREADS_PAST);	/* its page goes unattributed */
	return 0;
}

/* The current thread's Python stack, innermost frame first; returns its depth.  own: the
 * calling thread's, which may not hold the GIL; else the GIL holder's (a page fault's), or the
 * calling thread's while nobody holds it. */
static __always_inline int stack_read(struct pyleak_stack *st, bool own)
{
	__u64 frame, code;
	__u8 owner;
	int err = 0, i;

	st->depth = 0;
	st->truncated = 0;
	frame = own ? own_tstate(&err) :
		chain_read(stack_layout.runtime, stack_layout.tstate, stack_layout.ntstate, &err);
	/* No GIL holder (a C call released it: ctypes, I/O): the calling thread's own. */
	if (!frame && !own && !err)
		frame = own_tstate(&err);
	if (frame)
		frame = chain_read(frame, stack_layout.frame, stack_layout.nframe, &err);
	for (i = 0; i < 2 * PYLEAK_STACK_DEPTH && frame && !err; i++) {
		__u32 d = st->depth;

		if (d >= PYLEAK_STACK_DEPTH) {
			st->truncated = 1;
			break;
		}
		code = read_user_u64(frame + stack_layout.code, &err);
		owner = 0;
		if (stack_layout.owner_skip &&
		    bpf_probe_read_user(&owner, sizeof(owner), (void *)(frame + stack_layout.owner)))
			err = 1;
		/* Shim frames (3.12+) and frames whose code slot holds no code object are skipped. */
		if (code && (!stack_layout.owner_skip || owner != stack_layout.owner_skip) &&
		    read_user_u64(code + CPY_OB_TYPE, &err) == stack_layout.code_type) {
			st->frames[d & (PYLEAK_STACK_DEPTH - 1)].code = code;
			st->frames[d & (PYLEAK_STACK_DEPTH - 1)].offset = frame_offset(frame, code, &err);
			st->depth = d + 1;
		}
		frame = read_user_u64(frame + stack_layout.back, &err);
	}
	if (err)
		st->truncated = 1;
	return st->depth;
}

static __always_inline __u64 stack_hash(const struct pyleak_stack *st)
{
	__u64 h = 0xcbf29ce484222325ULL;
	int i;

	for (i = 0; i < PYLEAK_STACK_DEPTH; i++) {
		if (i >= st->depth)
			break;
		h = (h ^ st->frames[i].code) * 0x100000001b3ULL;
		h = (h ^ st->frames[i].offset) * 0x100000001b3ULL;
	}
	return h | 1;	/* 0 means "no site" to the daemon */
}

/* Interns the current Python stack (own: as for stack_read()); its id, or 0 if there is none
 * (or no room). */
static __always_inline __u64 stack_intern(bool own)
{
	struct pyleak_stack *st;
	__u32 zero = 0;
	__u64 id;

	st = bpf_map_lookup_elem(&stack_scratch, &zero);
	if (!st)
		return 0;
	if (stack_read(st, own) <= 0) {
		count(PYLEAK_CNT_NO_STACK);
		return 0;
	}
	id = stack_hash(st);
	if (bpf_map_update_elem(&stacks, &id, st, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&stacks, &id)) {
		count(PYLEAK_CNT_STACKS_FULL);
		return 0;
	}
	return id;
}

/* The stack of 1 birth in birth_sample_every (0: this birth is not sampled). */
static __always_inline __u64 birth_stack(void)
{
	if (!birth_sample_every || !stack_layout.runtime ||
	    bpf_get_prandom_u32() % birth_sample_every)
		return 0;
	return stack_intern(false);
}

/* The stats of a type counted (its sizes cached), or NULL.  Only while its tp_dealloc is
 * hooked: an object born before would die unseen, and born - died would stay too high for
 * good; one born unseen whose death is seen is an older object, and keeps it a lower bound. */
static __always_inline struct pyleak_type_stats *type_counted(__u64 type)
{
	struct pyleak_type_stats *ts = bpf_map_lookup_elem(&types, &type);

	if (!ts)
		ts = adopt_type(type);
	if (!ts || (ts->flags & PYLEAK_TYPE_IGNORED) || type_cache(ts, type) ||
	    !bpf_map_lookup_elem(&hooked_deallocs, &ts->dealloc))
		return NULL;
	return ts;
}

static __always_inline void birth_count(struct pyleak_type_stats *ts, __u64 size)
{
	count(PYLEAK_CNT_BIRTHS);
	__sync_fetch_and_add(&ts->born, 1);
	__sync_fetch_and_add(&ts->bytes_born, size);
}

/* A sampled birth's object, kept until its death for its site.  An address reborn without a
 * seen death (its type's dealloc was not hooked yet) is overwritten: counts do not depend on
 * this map. */
static __always_inline void birth_keep(__u64 obj, __u64 type, __u64 stack)
{
	struct pyleak_type_stats *ts = bpf_map_lookup_elem(&types, &type);
	struct pyleak_obj v = { .type = type, .stack = stack };
	__u64 size;

	if (!ts)
		return;
	size = object_size(obj, ts);
	v.size = size < 0xffffffffULL ? size : 0xffffffffULL;
	if (!bpf_map_update_elem(&objs, &obj, &v, BPF_ANY))
		return;
	count(PYLEAK_CNT_OBJS_FULL);
	__sync_fetch_and_add(&ts->dropped, 1);
}

/* A birth seen at the constructor's return (kernels without uprobe sessions). */
SEC("uretprobe")
int BPF_KRETPROBE(pyleak_birth_ret)
{
	struct pyleak_type_stats *ts;
	__u64 obj = PT_REGS_RC(ctx), type, stack;
	int err = 0;

	if (!obj)
		return 0;
	type = read_user_u64(obj + CPY_OB_TYPE, &err);
	if (err) {
		count(PYLEAK_CNT_READ_ERRORS);
		return 0;
	}
	ts = type_counted(type);
	if (!ts)
		return 0;
	birth_count(ts, object_size(obj, ts));
	stack = birth_stack();
	if (stack)
		birth_keep(obj, type, stack);
	return 0;
}

/*
 * PyType_GenericAlloc(type, nitems) as a uprobe session (kernel 6.12+): the entry counts the
 * birth and returns 0, which asks for the return (the object's address), only for a birth
 * sampled for its site; every other birth costs one trap, not two.  The cookie carries the
 * sampled stack to the return.
 */
SEC("uprobe")
int BPF_KPROBE(pyleak_birth, __u64 type, __s64 nitems)
{
	__u64 *cookie = bpf_session_cookie(), obj;
	struct pyleak_type_stats *ts;
	int err = 0;

	if (!cookie)
		return 1;
	if (bpf_session_is_return()) {
		obj = PT_REGS_RC(ctx);
		/* NULL: out of memory, its birth counted all the same (rare, and it raises) */
		if (obj) {
			type = read_user_u64(obj + CPY_OB_TYPE, &err);
			if (!err)
				birth_keep(obj, type, *cookie);
		}
		return 0;
	}
	ts = type_counted(type);
	if (!ts)
		return 1;
	birth_count(ts, type_size(ts, nitems));
	*cookie = birth_stack();
	return *cookie ? 0 : 1;
}

/*
 * A death at a hooked tp_dealloc, counted once per object: at its type's own dealloc (a
 * subclass's instance also passes through its base type's).  Objects older than the attach
 * count too: born - died is the population change since attach.
 */
SEC("uprobe")
int BPF_KPROBE(pyleak_death)
{
	struct pyleak_hook *h = this_hook(ctx);
	struct pyleak_type_stats *ts;
	__u64 obj, type;
	int err = 0;

	if (!h)
		return 0;
	/* rdi (a dealloc's argument) without a helper call: most deaths are at an entry */
	obj = h->reg == PYLEAK_REG_RDI ? PT_REGS_PARM1(ctx) : read_reg(ctx, h->reg);
	type = read_user_u64(obj + CPY_OB_TYPE, &err);
	if (err)
		return 0;
	ts = bpf_map_lookup_elem(&types, &type);
	if (!ts || type_cache(ts, type) || ts->dealloc != h->func)
		return 0;
	count(PYLEAK_CNT_DEATHS);
	__sync_fetch_and_add(&ts->died, 1);
	if (gc_state.in_gc)
		__sync_fetch_and_add(&ts->gc_died, 1);
	/* the end of a sampled birth's site entry (precise mode only; a lookup, lockless, before
	 * the delete: most deaths were not sampled) */
	if (birth_sample_every && bpf_map_lookup_elem(&objs, &obj))
		bpf_map_delete_elem(&objs, &obj);
	return 0;
}

/* The GIL serialises collections within one process: plain stores are enough. */
static __always_inline void gc_begin(__s64 gen)
{
	gc_state.gen = gen >= 0 && gen < PYLEAK_GC_GENS - 1 ? gen : PYLEAK_GC_GENS - 1;
	gc_state.start_ns = bpf_ktime_get_ns();
	gc_state.in_gc = 1;
}

static __always_inline void gc_end(__s64 collected)
{
	__u32 g = gc_state.gen;
	__u64 dt;

	if (!gc_state.in_gc || g >= PYLEAK_GC_GENS)
		return;
	dt = bpf_ktime_get_ns() - gc_state.start_ns;
	gc_state.gens[g].runs++;
	gc_state.gens[g].ns += dt;
	if (dt > gc_state.gens[g].max_ns)
		gc_state.gens[g].max_ns = dt;
	if (collected > 0)
		gc_state.gens[g].collected += collected;
	gc_state.in_gc = 0;
}

SEC("uprobe")
int BPF_KPROBE(pyleak_gc_start)
{
	struct pyleak_hook *h = this_hook(ctx);

	if (h)
		gc_begin(h->reg < 0 ? -1 : (__s32)read_reg(ctx, h->reg));
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(pyleak_gc_done)
{
	gc_end(PT_REGS_RC(ctx));
	return 0;
}

SEC("usdt")
int BPF_USDT(pyleak_gc_start_usdt, int gen)
{
	gc_begin(gen);
	return 0;
}

SEC("usdt")
int BPF_USDT(pyleak_gc_done_usdt, long collected)
{
	gc_end(collected);
	return 0;
}

/* An exec replaces the interpreter the probes were placed in; pidfds do not report it. */
/* A raw tracepoint: a classic one takes at most 64 programs host-wide (BPF_TRACE_MAX_PROGS),
 * one per tracked process, and the 65th attach fails with E2BIG. */
SEC("raw_tp/sched_process_exec")
int pyleak_exec(void *ctx)
{
	if (bpf_get_current_pid_tgid() >> 32 == target_tgid)
		count(PYLEAK_CNT_EXECS);
	return 0;
}

/* A user register of the faulting thread (the trap frame), by enum pyleak_reg. */
static __always_inline __u64 user_reg(struct pt_regs *regs, __u32 reg)
{
	__u64 v = 0;

	if (reg < PYLEAK_REG_COUNT)
		bpf_probe_read_kernel(&v, sizeof(v), (void *)regs + reg_offsets[reg]);
	return v;
}

#define FAULT_STACK_WORDS	8

/* What the registers (and the stack's top) at a fault say: bpf_loop()'s context. */
struct fault_regs {
	struct pt_regs *regs;
	__u64 pool, addr, block;
	__u64 request[PYLEAK_REQUEST_WORDS];
	__u64 words[FAULT_STACK_WORDS];
	__u32 size, conflict;
	bool ambiguous;
};

/* A small value: a request's candidate in its size class (a second one there: unknown). */
static __always_inline void request_note(struct fault_regs *c, __u64 v)
{
	__u32 cls = (v - 1) >> 4, shift = (cls & 15) * 4;
	__u64 *w = cls < 16 ? &c->request[0] : &c->request[1], old;

	if (!v || v >= CPY_SMALL_REQUEST_MAX || !(v & 15))
		return;	/* a class's own size is no request: pymalloc holds it */
	old = (*w >> shift) & 15;
	if (!old)
		*w |= (v & 15) << shift;
	else if (old != (v & 15))
		c->conflict |= 1u << cls;
}

/* One register: the block handed out (in the pool, below the carved block, on a block
 * boundary) at a carve, or a request's candidate. */
static long fault_reg(__u32 i, void *arg)
{
	struct fault_regs *c = arg;
	__u64 v = user_reg(c->regs, i);

	if (v < CPY_SMALL_REQUEST_MAX) {
		request_note(c, v);
	} else if (c->size && v >= c->pool + CPY_POOL_HEADER_SIZE && v < c->addr &&
		   !((v - c->pool - CPY_POOL_HEADER_SIZE) % c->size)) {
		c->ambiguous |= c->block && c->block != v;
		c->block = v;
	}
	return 0;
}

static long fault_word(__u32 i, void *arg)
{
	struct fault_regs *c = arg;

	if (i < FAULT_STACK_WORDS && c->words[i] < CPY_SMALL_REQUEST_MAX)
		request_note(c, c->words[i]);
	return 0;
}

/*
 * The pymalloc block whose allocation touched a fresh page at addr, in site->block (0:
 * unknown).  A fault at a pool's start is the pool's initialisation, for its first block; a
 * fault inside a block is that block's object being written; a fault at a block's start is
 * pymalloc carving it while it hands out another block, the last one of the free list: that
 * block is in a register (the carve, inlined into the allocator, returns it next).
 * The small values in the registers (and, at a pool's initialisation, in the allocator's
 * saved registers on the stack) are the request's candidates, in site->request: a
 * temporary's block is soon taken by another object of its class, whose size tells it apart
 * at the census.
 */
static __always_inline void fault_block(__u64 addr, struct pyleak_page_site *site)
{
	struct fault_regs c = { .pool = addr & ~((__u64)pool_size - 1), .addr = addr };
	__u64 off = addr - c.pool, sp;
	__u32 hdr[2];

	if (!pool_size)
		return;
	c.regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (!c.regs)
		return;
	if (off < CPY_POOL_HEADER_SIZE) {
		c.block = c.pool + CPY_POOL_HEADER_SIZE;
		if (!bpf_probe_read_kernel(&sp, sizeof(sp), &c.regs->sp) &&
		    !bpf_probe_read_user(c.words, sizeof(c.words), (void *)sp))
			bpf_loop(FAULT_STACK_WORDS, fault_word, &c, 0);
		goto done;
	}
	/* szidx, nextoffset, maxnextoffset: the header is on the pool's first page, touched */
	if (bpf_probe_read_user(&c.size, sizeof(c.size), (void *)(c.pool + CPY_POOL_SZIDX)) ||
	    bpf_probe_read_user(hdr, sizeof(hdr), (void *)(c.pool + CPY_POOL_NEXTOFFSET)))
		return;
	/* the size class first: a hostile szidx would wrap the size to 0, and off % 0 is UB */
	if (c.size >= CPY_SMALL_REQUEST_MAX / 16)
		return;
	c.size = (c.size + 1) * 16;
	if (hdr[1] != pool_size - c.size)
		return;
	off -= CPY_POOL_HEADER_SIZE;
	if (off % c.size) {
		site->block = addr - off % c.size;
		return;
	}
done:
	bpf_loop(PYLEAK_REG_COUNT, fault_reg, &c, 0);
	if (c.ambiguous)
		return;	/* two candidates: not sure which */
	site->block = c.block;
	site->request[0] = c.request[0];
	site->request[1] = c.request[1];
	site->unsure = c.conflict;
}

/* Whether the page was sampled (its stack walked: what the rate can thin). */
static __always_inline bool fault_sample(__u64 address)
{
	struct pyleak_page_site site = {};
	__u64 page, id, mask = page_sample_mask;

	count(PYLEAK_CNT_FAULTS);
	page = address >> PYLEAK_PAGE_SHIFT;
	if (!page_sampled(address, mask)) {
		/* A page faulting again (its memory unmapped and mapped anew) holds new objects:
		 * a sample of its earlier life, taken at a lower rate, would weigh them on top of
		 * this rate's own samples (2x the words of a segmenter whose rate the brake raised). */
		if (bpf_map_lookup_elem(&pages, &page))	/* lock-free: most pages are new */
			bpf_map_delete_elem(&pages, &page);
		count(PYLEAK_CNT_PAGES_SKIPPED);
		return false;
	}
	id = stack_intern(false);
	if (!id)
		return true;
	site.stack = id;
	site.addr = address;
	fault_block(address, &site);
	site.every = mask + 1;
	bpf_map_update_elem(&pages, &page, &site, BPF_ANY);
	count(PYLEAK_CNT_PAGES);
	return true;
}

/* The page sampler's bucket empty: it halves its rate (the governor takes that rate up, and
 * may double it back once well under budget).  The debt is forgiven: the next halving is
 * for the new rate's own cost, or a rate just over budget would be braked to the least. */
static __always_inline void fault_brake(__u64 now, __u64 spent)
{
	__u64 mask = page_sample_mask;

	if (bucket_spend(&fault_bucket, now, spent) ||
	    now - fault_brake_at < PYLEAK_FAULT_BRAKE_GAP_NS)
		return;
	fault_brake_at = now;
	fault_bucket.tokens = 0;
	if (mask < PYLEAK_PAGE_MASK_MAX) {
		page_sample_mask = mask * 2 + 1;
		count(PYLEAK_CNT_FAULT_BRAKES);
	}
}

/* On the target's threads' page-fault software events (probes.c, sample period 1); times
 * itself for its bucket and for the governor's pause (BPF statistics have the whole). */
SEC("perf_event")
int pyleak_fault(struct bpf_perf_event_data *ctx)
{
	__u64 t0 = bpf_ktime_get_ns(), t1;
	bool sampled;

	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	/* Any thread's: one in another thread's pool initialisation takes that pool for a fresh
	 * one, whose objects its pages' own (older) samples then name, as without pool samples. */
	__sync_fetch_and_add(&fault_seq, 1);
	sampled = fault_sample(ctx->addr);
	t1 = bpf_ktime_get_ns();
	/* what a lower rate saves: a fault not sampled costs ~0.2 us all the same */
	if (sampled)
		fault_brake(t1, t1 - t0);
	else
		count_add(PYLEAK_CNT_SKIP_NS, t1 - t0);
	return 0;
}

/*
 * Native allocations, sampled by bytes (precise mode only: see bench/native.py).  Here, next
 * to the page sampler, so that they share its stacks map and stack_intern(), and their cost
 * is in this object's run-time statistics, which the governor reads.  The allocators are
 * uprobe sessions: the entry decides, and only a sampled call returns 0, which asks for the
 * return probe (the block's address); every other call pays one trap, not two.
 */
/* Distances between sample points, in bytes: exponential quantiles (all 0: off). */
const volatile __u64 native_intervals[PYLEAK_NATIVE_INTERVALS] = {};


/* Bytes left to the next sample point, per CPU: a Poisson process over the bytes through one
 * CPU is as good as over all of them (its distances are memoryless). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} native_left SEC(".maps");

/* Sampled blocks not yet freed: address -> size and stack. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 16);	/* set by the daemon (native_max_blocks; 1 when off) */
	__type(key, __u64);
	__type(value, struct pyleak_native_block);
} native_blocks SEC(".maps");

static __always_inline __s64 native_interval(void)
{
	return native_intervals[bpf_get_prandom_u32() & (PYLEAK_NATIVE_INTERVALS - 1)];
}

/* True if a sample point falls in the next size bytes. */
static __always_inline bool native_sampled(__u64 size)
{
	__u32 zero = 0;
	__s64 *left = bpf_map_lookup_elem(&native_left, &zero);

	if (!left || !size || size > (1ULL << 40))
		return false;
	if (!*left)
		*left = native_interval();
	*left -= size;
	if (*left > 0)
		return false;
	/* Memoryless: the next point is an interval past this block's end. */
	*left = native_interval();
	return true;
}

static __always_inline void native_free(__u64 addr)
{
	if (addr && !bpf_map_delete_elem(&native_blocks, &addr))
		count(PYLEAK_CNT_NATIVE_FREED);
}

/* A session's entry (size asked for) or return (the block): 0 at entry wants the return. */
static __always_inline int native_session(struct pt_regs *ctx, __u64 size)
{
	struct pyleak_native_block b = {};
	__u64 *cookie = bpf_session_cookie();
	__u64 addr;

	if (!cookie)
		return 1;
	if (!bpf_session_is_return()) {
		if (!native_sampled(size))
			return 1;
		*cookie = size;
		return 0;
	}
	addr = PT_REGS_RC(ctx);
	if (!addr)
		return 0;
	b.size = *cookie;
	b.stack = stack_layout.runtime ? stack_intern(true) : 0;
	if (bpf_map_update_elem(&native_blocks, &addr, &b, BPF_ANY)) {
		count(PYLEAK_CNT_NATIVE_DROPPED);
		return 0;
	}
	count(PYLEAK_CNT_NATIVE_SAMPLES);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(pyleak_malloc, __u64 size)
{
	return native_session(ctx, size);
}

SEC("uprobe")
int BPF_KPROBE(pyleak_calloc, __u64 n, __u64 size)
{
	/* An overflowing product fails the call: it returns NULL and nothing is kept. */
	return native_session(ctx, n * size);
}

SEC("uprobe")
int BPF_KPROBE(pyleak_realloc, __u64 old, __u64 size)
{
	/* The old block is gone whether it moves or not (a failed realloc keeps it: rare, and
	 * then its bytes are under-counted, never over-counted). */
	if (!bpf_session_is_return())
		native_free(old);
	return native_session(ctx, size);
}

SEC("uprobe")
int BPF_KPROBE(pyleak_aligned_alloc, __u64 align, __u64 size)
{
	return native_session(ctx, size);
}

SEC("uprobe")
int BPF_KPROBE(pyleak_free)
{
	struct pyleak_hook *h = this_hook(ctx);

	if (h)
		native_free(read_reg(ctx, h->reg));
	return 0;
}

/*
 * A pool's (re)initialisation (allocate_from_new_pool(), both modes).  A fresh pool faults in
 * its pages and the page sampler sees who fills it; a recycled one (its blocks all freed, the
 * pool handed out again for any size class) faults nothing, and the survivors that fill it
 * would go unseen, or be named after whoever first touched its pages.  The session's entry
 * notes the faults so far; its return keeps the stack for a pool whose initialisation faulted
 * nothing, sampled as the page sampler samples its pages (whose older samples it drops).
 * Any other initialisation drops the pool's previous sample: the pool now holds other objects.
 */
static __always_inline void pool_sample(struct pt_regs *ctx, __u64 seq)
{
	struct pyleak_page_site site = {};
	struct fault_regs c = {};	/* size 0: small values only, the request's candidates */
	__u64 block, pool, page, mask = page_sample_mask;
	int i;

	block = PT_REGS_RC(ctx);
	pool = block & ~((__u64)pool_size - 1);
	if (!block || block != pool + CPY_POOL_HEADER_SIZE)
		return;
	/* Recycled: its pages' samples are of an earlier life, taken at the rate of then, which
	 * would weigh its objects again if that rate sampled them and this one does not. */
	for (i = 0; fault_seq == seq && i < 4 && ((__u64)i << PYLEAK_PAGE_SHIFT) < pool_size;
	     i++) {
		page = (pool >> PYLEAK_PAGE_SHIFT) + i;
		bpf_map_delete_elem(&pages, &page);
	}
	if (fault_seq != seq || !page_sampled(pool, mask)) {
		bpf_map_delete_elem(&pools, &pool);
		return;
	}
	site.stack = stack_intern(false);
	if (!site.stack) {
		bpf_map_delete_elem(&pools, &pool);
		return;
	}
	/* the caller's request is in a callee-saved register, restored by now: checkable, as
	 * the page sampler's pool initialisations are */
	c.regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (c.regs)
		bpf_loop(PYLEAK_REG_COUNT, fault_reg, &c, 0);
	site.addr = pool;
	site.block = block;
	site.request[0] = c.request[0];
	site.request[1] = c.request[1];
	site.unsure = c.conflict;
	site.every = mask + 1;
	bpf_map_update_elem(&pools, &pool, &site, BPF_ANY);
	count(PYLEAK_CNT_POOLS);
}

/* Its traps cannot be thinned: once they spent the budget, the daemon removes the probe. */
SEC("uprobe")
int BPF_KPROBE(pyleak_pool_new)
{
	__u64 *cookie = bpf_session_cookie(), t0, t1;

	if (!cookie || !pool_size)
		return 1;
	if (!bpf_session_is_return()) {
		*cookie = fault_seq;
		return 0;
	}
	t0 = bpf_ktime_get_ns();
	pool_sample(ctx, *cookie);
	t1 = bpf_ktime_get_ns();
	if (bucket_spend(&pool_bucket, t1, t1 - t0 + 2 * PYLEAK_TRAP_NS) || pool_over)
		return 0;
	/* lost, it is asked again at the next one */
	pool_over = event_send(PYLEAK_EV_POOL_OVER, 0, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
