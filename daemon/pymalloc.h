/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * pymalloc's pool initialiser, allocate_from_new_pool() (3.10+), in an interpreter's code:
 * by its symbol, or in a stripped build by what it does.
 */
#ifndef PYLEAK_PYMALLOC_H
#define PYLEAK_PYMALLOC_H

#include <stdint.h>

#include "elf.h"

/*
 * The function (unwind table bounds) that holds the only `movl $0xffff, 0x24(pool)` of .text
 * (pool->szidx = DUMMY_SIZE_IDX: a pool carved from a new arena) and passes ARENA_SIZE (1 MiB)
 * to the arena allocator; 0 or -ENOENT (none, or more than one function does).
 */
int pymalloc_pool_init_shape(struct elf_file *ef, uint64_t *vaddr, uint64_t *size);

/*
 * allocate_from_new_pool() by its symbol, else by its shape if that is a function of its own
 * (no symbol names another function there, direct calls reach it: the allocation fast path
 * branches to it, it was not inlined into that path) whose first instruction the kernel
 * emulates.  0 or -ENOENT.
 */
int pymalloc_pool_init_find(struct elf_file *ef, uint64_t *vaddr, uint64_t *size);

#endif
