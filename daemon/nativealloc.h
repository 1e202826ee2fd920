/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Native allocations of one target, sampled by bytes (precise mode): the allocators it maps
 * (libc's, and a jemalloc, tcmalloc or mimalloc library's own malloc) are probed by
 * bpf/pyleak.bpf.c, which keeps each sampled block until it is freed; here the blocks still
 * outstanding become per-stack byte estimates.
 */
#ifndef PYLEAK_NATIVEALLOC_H
#define PYLEAK_NATIVEALLOC_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "native.h"
#include "probes.h"
#include "python.h"

struct nativealloc;

/* The distances between sample points for a mean of sample_bytes, for probes_config. */
void nativealloc_intervals(uint64_t sample_bytes, uint64_t out[PYLEAK_NATIVE_INTERVALS]);

/* The estimate a block of size bytes stands for when one byte in sample_bytes is sampled:
 * size / P(sampled), P = 1 - exp(-size / sample_bytes). */
double nativealloc_weight(uint64_t size, uint64_t sample_bytes);

/* Hooks the allocators pid maps (p loaded with native_intervals of sample_bytes); 0,
 * -ENOENT (none found) or -errno. */
int nativealloc_attach(struct probes *p, pid_t pid, uint64_t sample_bytes,
		       struct nativealloc **out);
/* Frees what attach took (the probes go with p). */
void nativealloc_detach(struct nativealloc *na);

/* The outstanding bytes per stack (stack 0: no Python frame), unbiased estimates from their
 * samples, as estimates of source NATIVE_SRC_MALLOC, largest first, in *rows (the caller frees
 * it); how many, or -errno. */
long nativealloc_rows(struct nativealloc *na, struct probes *p, struct native_estimate **rows);

/* `status`'s "native" object: allocators, counters, cost and the top n stacks, named through
 * py; trap_ns as for probes_cost_ns(). */
json_t *nativealloc_json(struct nativealloc *na, struct probes *p, const struct python_info *py,
			 uint64_t trap_ns, int n);

#endif
