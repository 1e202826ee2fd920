/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Reading another process's memory (process_vm_readv), the only way the daemon looks inside a target. */
#ifndef PYLEAK_PROCMEM_H
#define PYLEAK_PROCMEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads exactly len bytes at addr; returns 0 or a negative errno (-EFAULT on a short read). */
int procmem_read(pid_t pid, uint64_t addr, void *buf, size_t len);

/* Reads an 8-byte word. */
int procmem_read_u64(pid_t pid, uint64_t addr, uint64_t *out);

/* Reads a NUL-terminated string of at most size-1 bytes; always terminates buf. */
int procmem_read_str(pid_t pid, uint64_t addr, char *buf, size_t size);

#endif
