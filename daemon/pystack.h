/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Python stacks of a target: where BPF finds the current frame (one table of struct offsets per
 * CPython version), and turning a recorded frame (code object, bytecode offset) into a function,
 * file and line by reading the code object from outside.
 */
#ifndef PYLEAK_PYSTACK_H
#define PYLEAK_PYSTACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyleak.h"
#include "python.h"

/* Fills the BPF stack layout for the interpreter; -EPROTONOSUPPORT for an unknown version. */
int pystack_layout(const struct python_info *py, struct pyleak_stack_layout *out);

struct pystack_frame {
	char function[128];
	char file[512];
	int line;		/* -1: unknown */
};

struct pystack_cache;

/* A per-query cache of resolved code objects (a code object's address may be reused later). */
struct pystack_cache *pystack_cache_new(const struct python_info *py);
void pystack_cache_free(struct pystack_cache *c);

/* Resolves one frame; 0 or a negative errno (-EFAULT: the code object is gone and the
 * process's memo, if any, does not know it). */
int pystack_frame_resolve(struct pystack_cache *c, uint64_t code, uint32_t offset,
			  struct pystack_frame *out);

/* Whether the instruction at offset is GET_ITER (what it allocates is the loop's iterator, a
 * temporary): 1, 0, or a negative errno. */
int pystack_frame_gets_iter(const struct pystack_cache *c, uint64_t code, uint32_t offset);

/*
 * A process's code objects as they were while it ran (name, file, line table), so that its
 * frames are still named once it is gone (the sites of its postmortem report): noted stack by
 * stack while it runs, the fallback of pystack_frame_resolve() where a code object cannot be
 * read (a cache of py, whose memo it is).  A code object is kept as first seen (one freed and
 * another made at its address names the first).  Bounded: PYSTACK_MEMO_BYTES of names and
 * tables, PYSTACK_MEMO_STACKS stacks; past that, later code objects are not kept.
 */
#define PYSTACK_MEMO_BYTES	(1u << 20)
#define PYSTACK_MEMO_STACKS	(1u << 14)

struct pystack_memo;

/* 0 or -ENOMEM. */
int pystack_memo_new(struct pystack_memo **out);
void pystack_memo_free(struct pystack_memo *m);

/* Keeps the code objects of stack id (st), read through c, once per id. */
void pystack_memo_note(struct pystack_cache *c, uint64_t id, const struct pyleak_stack *st);

/* The memory m holds, in bytes. */
size_t pystack_memo_bytes(const struct pystack_memo *m);

/* A compact str object of the target (a name: a variable, an attribute, a dict key) as UTF-8
 * in out; 0 or a negative errno (-EINVAL: not a compact str). */
int pystack_str_read(const struct pystack_cache *c, uint64_t obj, char *out, size_t size);

/* Copies of the parts of a code object read from the target, each from its start: the code
 * object, its co_name and co_filename str objects, its line table's bytes object. */
struct pystack_code_copy {
	const uint8_t *code, *name, *file, *table;
	size_t code_len, name_len, file_len, table_len;
};

/*
 * Names a frame of CPython major.minor from copies (what pystack_frame_resolve() reads, decoded
 * without reading): 0, -EPROTONOSUPPORT, or -EINVAL if a part cannot be what it should (a
 * pointer out of user space, a str that is not compact, a line table over 1 MiB, a copy too
 * short). Names are valid UTF-8 whatever the copies hold.
 */
int pystack_code_decode(int major, int minor, const struct pystack_code_copy *cc,
			uint32_t offset, struct pystack_frame *out);

#endif
