/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Type objects of a target, read from outside: name, flags, deallocator. */
#ifndef PYLEAK_PYTYPE_H
#define PYLEAK_PYTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* type(obj).__name__ (tp_name after its module prefix) into buf; on failure buf says
 * "<type 0x...>" and a negative errno is returned. */
int pytype_name(pid_t pid, uint64_t type, char *buf, size_t len);

/* True if the type is a heap type (a class defined in Python, as a user can act on). */
bool pytype_is_heap(pid_t pid, uint64_t type);

/* The type's tp_dealloc. */
int pytype_dealloc(pid_t pid, uint64_t type, uint64_t *out);

/* Its tp_basicsize, tp_itemsize and tp_dealloc, in one read. */
int pytype_sizes(pid_t pid, uint64_t type, uint64_t *basicsize, uint64_t *itemsize,
		 uint64_t *dealloc);

#endif
