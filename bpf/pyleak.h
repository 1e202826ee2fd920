/* SPDX-License-Identifier: MIT */
/* Fixed-width structs shared by bpf/pyleak.bpf.c and the daemon. */
#ifndef PYLEAK_H
#define PYLEAK_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PYLEAK_MAX_HOOKS	64
#define PYLEAK_MAX_TYPES	4096
#define PYLEAK_RINGBUF_SIZE	(64 * 1024)

/* Where a hook finds the object pointer; the order matches enum insn_reg. */
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
};

enum pyleak_hook_kind {
	PYLEAK_HOOK_BIRTH = 1,	/* object in a register: it has its type and refcount 1 */
	PYLEAK_HOOK_BIRTH_RET,	/* constructor's return value (uretprobe) */
	PYLEAK_HOOK_DEATH,	/* a tp_dealloc (or a direct free path): object in a register */
	PYLEAK_HOOK_GC_START,	/* the cyclic collector's entry: generation in a register (or -1) */
	PYLEAK_HOOK_GC_DONE,	/* its return (uretprobe): objects collected */
};

/* Indexed by the attach cookie of each uprobe. */
struct pyleak_hook {
	__u64 func;		/* runtime address of the hooked function */
	__u32 kind;		/* enum pyleak_hook_kind */
	__s32 reg;		/* enum pyleak_reg */
};

/* One object born since attach and not yet seen to die. */
struct pyleak_obj {
	__u64 type;
	__u32 size;		/* bytes at birth; 0 = unknown */
	__u32 pad;
};

enum pyleak_type_flags {
	PYLEAK_TYPE_IGNORED = 1,	/* do not track births (no death hook could be placed) */
	PYLEAK_TYPE_HEAP = 2,		/* adopted by BPF when first seen */
};

struct pyleak_type_stats {
	__u64 born;		/* births seen since attach */
	__u64 died;		/* deaths of objects seen born */
	__u64 replaced;		/* seen-born objects whose address was reborn: their death was missed */
	__u64 pre_died;		/* deaths, at the type's own tp_dealloc, of objects not seen born */
	__u64 bytes_born;
	__u64 bytes_died;
	__u64 dropped;		/* births not tracked because the object map was full */
	__u64 gc_died;		/* deaths (seen born, or at the type's own dealloc) inside a collection */
	__u32 flags;		/* enum pyleak_type_flags */
	__u32 pad;
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
	PYLEAK_CNT_MAX,
};

enum pyleak_event_kind {
	PYLEAK_EV_NEW_TYPE = 1,	/* a heap type's first tracked birth: the daemon hooks its tp_dealloc */
};

struct pyleak_event {
	__u32 kind;
	__u32 pad;
	__u64 type;
	__u64 dealloc;
};

#endif
