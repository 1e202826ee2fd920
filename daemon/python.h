/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Finding the CPython interpreter of a PID, and what to hook in it (one table per build). */
#ifndef PYLEAK_PYTHON_H
#define PYLEAK_PYTHON_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "elf.h"

#define PYTHON_MAX_HOOKS 24

struct python_info {
	pid_t pid;
	int major, minor, micro;
	char version[16];
	char exe[PATH_MAX];		/* the executable, as the target sees it */
	char module[PATH_MAX];		/* the file holding the interpreter: exe or libpython */
	char module_path[32];		/* the same inode, as the daemon names it: /proc/self/fd/N */
	struct elf_file *elf;
	uint64_t map_start, map_pgoff;	/* the module's first mapping: address, file offset */
	bool shared;			/* interpreter in libpython, not the executable */
	bool inlined;			/* LTO build: _Py_NewReference is inlined into its callers */
	long newref_calls;		/* direct calls to _Py_NewReference found in the code */
	uint64_t bias;			/* load bias of the module: runtime = vaddr + bias */
	uint64_t runtime;		/* address of _PyRuntime in the target */
	struct pystack_memo *memo;	/* a tracked target's (its owner frees it), or NULL */
};

/* The census layout and hook plan for one interpreter; see python_plan(). */
struct python_hook_spec {
	const char *symbol;
	int kind;			/* enum pyleak_hook_kind */
};

struct python_plan {
	struct python_hook_spec hooks[PYTHON_MAX_HOOKS];	/* births and fixed deaths */
	int nhooks;
	const char *watched[12];	/* static type objects counted by probes */
	int nwatched;
	const char *census[12];		/* static type objects probes cannot count: counted by census */
	int ncensus;
	const char *census_why;		/* why, for `top` notes */
	bool gc_usdt;			/* the build has python:gc__start/gc__done */
	const char *gc_funcs[2];	/* else the collector function(s) to hook, entry and return */
	int ngc_funcs;
	int gc_gen_reg;			/* register holding the generation at entry, -1 unknown */
	uint32_t pool_size;		/* pymalloc pool size */
	uint64_t preheader_flags;	/* tp_flags bits that add 2 words before the GC header */
	uint16_t str_ascii_data, str_compact_data;	/* where a compact str's data starts */
};

/*
 * Inspects PID: 0, -ESRCH (no such process), -EACCES, -ENOEXEC (not Python),
 * -EPROTONOSUPPORT (a CPython we do not support).
 */
int python_inspect(pid_t pid, struct python_info *py);
void python_release(struct python_info *py);

/* Runtime address of a symbol of the interpreter module. */
int python_symbol_addr(const struct python_info *py, const char *name, uint64_t *addr);

/* Bytes from addr to the end of its function in the interpreter module; 0 if unknown. */
uint64_t python_func_size(const struct python_info *py, uint64_t addr);

/* Opens the file mapped at addr in pid (the inode mapped: procfs_map_file_open()) and gives addr's
 * offset in it; the caller closes fd. -ENOENT if no file maps addr. */
int python_file_of_addr(pid_t pid, uint64_t addr, int *fd, uint64_t *offset);

void python_plan(const struct python_info *py, struct python_plan *plan);

#endif
