/* SPDX-License-Identifier: MIT */
/*
 * Python stacks of a target: where BPF finds the current frame (one table of struct offsets per
 * CPython version), and turning a recorded frame (code object, bytecode offset) into a function,
 * file and line by reading the code object from outside.
 */
#ifndef PYLEAK_PYSTACK_H
#define PYLEAK_PYSTACK_H

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

/* Resolves one frame; 0 or a negative errno (-EFAULT: the code object is gone). */
int pystack_frame_resolve(struct pystack_cache *c, uint64_t code, uint32_t offset,
			  struct pystack_frame *out);

#endif
