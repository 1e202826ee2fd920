/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Fixed-width structs shared by bpf/pyleak.bpf.c and the daemon. */
#ifndef PYLEAK_H
#define PYLEAK_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PYLEAK_MAX_HOOKS	64
#define PYLEAK_MAX_TYPES	4096
#define PYLEAK_RINGBUF_SIZE	(64 * 1024)

/* Where a hook finds the object pointer; daemon/insn.h's enum insn_reg takes these values. */
enum pyleak_reg {
	PYLEAK_REG_RDI,
	PYLEAK_REG_RSI,
	PYLEAK_REG_RDX,
	PYLEAK_REG_RCX,
	PYLEAK_REG_R8,
	PYLEAK_REG_R9,
	PYLEAK_REG_RAX,
	PYLEAK_REG_RBX,
	PYLEAK_REG_RBP,
	PYLEAK_REG_R10,
	PYLEAK_REG_R11,
	PYLEAK_REG_R12,
	PYLEAK_REG_R13,
	PYLEAK_REG_R14,
	PYLEAK_REG_R15,
	PYLEAK_REG_COUNT,
};

enum pyleak_hook_kind {
	PYLEAK_HOOK_BIRTH = 1,	/* PyType_GenericAlloc: a uprobe session (6.12+), else a uretprobe */
	PYLEAK_HOOK_DEATH,	/* a tp_dealloc (or a direct free path): object in a register */
	PYLEAK_HOOK_GC_START,	/* the cyclic collector's entry: generation in a register (or -1) */
	PYLEAK_HOOK_GC_DONE,	/* its return (uretprobe): objects collected */
	PYLEAK_HOOK_MALLOC,	/* native allocators (uprobe sessions): size in rdi */
	PYLEAK_HOOK_CALLOC,	/* count in rdi, size in rsi */
	PYLEAK_HOOK_REALLOC,	/* old block in rdi, size in rsi */
	PYLEAK_HOOK_ALIGNED,	/* aligned_alloc, memalign: size in rsi */
	PYLEAK_HOOK_FREE,	/* a uprobe: block in a register */
	PYLEAK_HOOK_POOL_NEW,	/* pymalloc's allocate_from_new_pool (a uprobe session): its first block */
};

/* Indexed by the attach cookie of each uprobe. */
struct pyleak_hook {
	__u64 func;		/* runtime address of the hooked function */
	__u32 kind;		/* enum pyleak_hook_kind */
	__s32 reg;		/* enum pyleak_reg */
};

/* One birth sampled for its site (1 in birth_sample_every), not yet seen to die. */
struct pyleak_obj {
	__u64 type;
	__u32 size;		/* bytes at birth; 0 = unknown */
	__u32 pad;
	__u64 stack;		/* allocation stack id if this birth was sampled, else 0 */
};

/* Largest tp_basicsize or tp_itemsize believed (CPython's largest builtin is under 1 KiB),
 * and item count of one birth: a hostile type's are not counted. */
#define PYLEAK_TYPE_SIZE_MAX	(1u << 24)
#define PYLEAK_ITEMS_MAX	(1ll << 32)

enum pyleak_type_flags {
	PYLEAK_TYPE_IGNORED = 1,	/* do not track births (no death hook could be placed) */
	PYLEAK_TYPE_HEAP = 2,		/* adopted by BPF when first seen */
};

struct pyleak_type_stats {
	__u64 born;		/* births seen since attach */
	__u64 died;		/* deaths since attach, at the type's own tp_dealloc, older objects' too */
	/* bytes of the births (the daemon's rows reckon the bytes alive from it: a death's
	 * size is not read, 3.12+'s ints keep their lv_tag in ob_size by then) */
	__u64 bytes_born;
	__u64 dropped;		/* sampled births not kept for their site: the object map was full */
	__u64 gc_died;		/* of the deaths, those inside a collection */
	__u32 flags;		/* enum pyleak_type_flags */
	/* The type's tp_dealloc and sizes, read by BPF once (dealloc 0: not yet): every birth
	 * and death would otherwise read them from the target again. */
	__u32 itemsize;
	__u64 dealloc;
	__u64 basicsize;
};

#define PYLEAK_GC_GENS 4	/* generations 0-2, and 3 for "not known" (3.8's cloned collector) */

struct pyleak_gc_gen {
	__u64 runs;
	__u64 ns;
	__u64 max_ns;
	__u64 collected;
};

/* The cyclic GC of one target: a collection in progress, and totals per generation. */
struct pyleak_gc {
	__u32 in_gc;
	__s32 gen;
	__u64 start_ns;
	struct pyleak_gc_gen gens[PYLEAK_GC_GENS];
};

enum pyleak_counter {
	PYLEAK_CNT_BIRTHS,
	PYLEAK_CNT_DEATHS,
	PYLEAK_CNT_OBJS_FULL,
	PYLEAK_CNT_TYPES_FULL,
	PYLEAK_CNT_READ_ERRORS,
	PYLEAK_CNT_EVENTS_LOST,
	PYLEAK_CNT_EXECS,	/* the target called exec: its probes now watch nothing */
	PYLEAK_CNT_FAULTS,	/* first touches of the target's pages (page faults) */
	PYLEAK_CNT_PAGES,	/* of those, pages whose Python stack was recorded */
	PYLEAK_CNT_PAGES_SKIPPED,	/* not sampled: the governor's page sampling rate */
	PYLEAK_CNT_NO_STACK,	/* no Python frame to record (thread outside Python) */
	PYLEAK_CNT_STACKS_FULL,	/* the stack map was full: page left unattributed */
	PYLEAK_CNT_SKIP_NS,	/* time in the faults not sampled: what no rate can thin */
	PYLEAK_CNT_NATIVE_SAMPLES,	/* native blocks sampled (kept until freed) */
	PYLEAK_CNT_NATIVE_FREED,	/* of those, freed (or reallocated) */
	PYLEAK_CNT_NATIVE_DROPPED,	/* sampled but not kept: the block map was full */
	PYLEAK_CNT_THREADS_PAST,	/* a thread's own state not looked for: past OWN_TSTATE_MAX */
	PYLEAK_CNT_POOLS,	/* recycled pymalloc pools whose (re)initialisation stack was recorded */
	PYLEAK_CNT_FAULT_BRAKES,	/* the page sampler halved its own rate (its budget spent) */
	PYLEAK_CNT_MAX,
};

enum pyleak_event_kind {
	PYLEAK_EV_NEW_TYPE = 1,	/* a heap type's first tracked birth: the daemon hooks its tp_dealloc */
	PYLEAK_EV_POOL_OVER,	/* the pool sampler spent its budget: the daemon removes its probe */
};

struct pyleak_event {
	__u32 kind;
	__u32 pad;
	__u64 type;
	__u64 dealloc;
};

/*
 * Allocation sites.  The first touch of a page of the target's heap (a page fault) records
 * the Python stack of the faulting thread and the faulting address: pymalloc touches a fresh
 * page when it carves the block after the one being allocated (or a new pool's header), so
 * a census can tell which object that allocation made: one sampled object per fresh page.  Frames are (code object, byte offset in its bytecode), innermost first;
 * names and lines are resolved in userspace.
 */
#define PYLEAK_STACK_DEPTH	16
#define PYLEAK_PAGE_SHIFT	12
/* The page sampling rate ranges from every page to 1 in PYLEAK_PAGE_MASK_MAX + 1. */
#define PYLEAK_PAGE_MASK_MAX	4095
/* The samplers' budgets in the kernel (pyleak.bpf.c): the burst they allow, in time at the
 * budget's rate (ns), and the least time between two halvings of the page rate (ns). */
#define PYLEAK_BURST_NS		10000000000ULL
#define PYLEAK_FAULT_BRAKE_GAP_NS	10000000ULL
/* What a uprobe's trap costs the target (ns): on an emulated instruction, measured here. */
#define PYLEAK_TRAP_NS		700

/* A sampler's budget: time it may still spend (ns), and when it was last filled. */
struct pyleak_bucket {
	__s64 tokens;
	__u64 at;
};

struct pyleak_frame {
	__u64 code;
	__u32 offset;		/* byte offset of the current instruction in the code's bytecode */
	__u32 pad;
};

struct pyleak_stack {
	__u32 depth;
	__u32 truncated;	/* deeper frames were not recorded */
	struct pyleak_frame frames[PYLEAK_STACK_DEPTH];
};

/* Value of the page map: the stack that first touched the page, where, and the sampling. */
#define PYLEAK_REQUEST_WORDS	2	/* 32 size classes of 4 bits */

struct pyleak_page_site {
	__u64 stack;
	__u64 addr;		/* faulting address */
	__u64 block;		/* pymalloc block being allocated by the stack; 0: unknown */
	/* The bytes it may have asked for, per size class c (4 bits each, c = (n - 1) / 16):
	 * n % 16; 0 unknown (or n a multiple of 16), as for the classes of bit c in `unsure`. */
	__u64 request[PYLEAK_REQUEST_WORDS];
	__u32 every;		/* 1 page in `every` was sampled then (the governor's rate) */
	__u32 unsure;
};

enum pyleak_pos_kind {
	PYLEAK_POS_NONE,
	PYLEAK_POS_LASTI_BYTES,	/* int f_lasti, in bytes (3.8, 3.9) */
	PYLEAK_POS_LASTI_UNITS,	/* int f_lasti, in 2-byte code units (3.10) */
	PYLEAK_POS_INSTR_PTR,	/* pointer into co_code_adaptive (3.11+) */
};

#define PYLEAK_CHAIN_MAX	4

/* Where the current Python stack is, for one interpreter version (see daemon/pystack.c). */
struct pyleak_stack_layout {
	__u64 runtime;		/* address of _PyRuntime in the target; 0: no stacks */
	__u64 code_type;	/* &PyCode_Type: frames holding anything else are skipped */
	__u16 tstate[PYLEAK_CHAIN_MAX];	/* thread state = *(...*(runtime + tstate[0]) + ...) */
	__u16 frame[PYLEAK_CHAIN_MAX];	/* current frame = *(...*(tstate + frame[0]) + ...) */
	__u8 ntstate;
	__u8 nframe;
	__u8 pos_kind;		/* enum pyleak_pos_kind */
	__u8 owner_skip;	/* frame owner value of shim frames to skip (3.12+), 0: none */
	__u16 back;		/* previous frame */
	__u16 code;		/* code object */
	__u16 pos;		/* position field */
	__u16 code_adaptive;	/* bytecode start in the code object (3.11+) */
	__u16 owner;		/* owner byte (3.12+) */
	/* The calling thread's own state, found by its thread id in the main interpreter's list
	 * (runtime + interp_main -> + tstate_head -> + tstate_next ...): native code runs without
	 * the GIL (ctypes releases it), so the GIL holder's is not its; 0: not known. */
	__u16 interp_main;
	__u16 tstate_head;
	__u16 tstate_next;
	__u16 tstate_thread_id;
	__u16 pad[2];
};

/*
 * Native allocations, sampled by bytes (precise mode): the allocator's calls are a stream of
 * bytes in which sample points fall at exponential distances (mean native_sample_bytes, drawn
 * from PYLEAK_NATIVE_INTERVALS quantiles), so a block of s bytes is sampled with probability
 * 1 - exp(-s / N), as in tcmalloc and Go's heap profiles; the daemon weighs it by the inverse
 * (daemon/nativealloc.c: N is one per target, so the weight follows from the size).  Sampled
 * blocks are kept by address until freed.
 */
#define PYLEAK_NATIVE_INTERVALS	1024

struct pyleak_native_block {
	__u64 size;		/* bytes asked for */
	__u64 stack;		/* Python stack id, 0 if none */
};

#endif
