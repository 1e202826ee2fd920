/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * A target's memory made of bytes, for the reference walk (fuzz_refwalk.c and the unit test
 * over its seeds): the first byte picks the interpreter's row; the rest is the memory at BASE,
 * where _PyRuntime is, and the builtin types sit at TYPES + 512 * slot: the kinds up to
 * REFWALK_OBJECT, the wanted type (sized as a str), then the others and bytearray.  Reads
 * outside it fail as they would in a target.
 */
#ifndef PYLEAK_FAKE_HEAP_H
#define PYLEAK_FAKE_HEAP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "refwalk.h"

#define BASE	0x10000000ull
#define TYPES	(BASE + 0x8000)

struct fake_heap { const uint8_t *mem; size_t len; };

/* A refwalk_readv_fn over the heap arg. */
static inline size_t fake_heap_readv(void *arg, const struct refwalk_iov *v, size_t n)
{
	const struct fake_heap *f = arg;
	size_t i;

	for (i = 0; i < n; i++) {
		if (v[i].addr < BASE || v[i].addr - BASE > f->len || v[i].len > f->len - (v[i].addr - BASE))
			break;
		memcpy(v[i].buf, f->mem + (v[i].addr - BASE), v[i].len);
	}
	return i;
}

/* The heap of data (size >= 1) in *f and its interpreter row's layout in *l. */
static inline void fake_heap_init(const uint8_t *data, size_t size, struct fake_heap *f,
				  struct refwalk_layout *l)
{
	size_t rows = sizeof(cpython_offsets_table) / sizeof(cpython_offsets_table[0]);
	int k;

	f->mem = data + 1;
	f->len = size - 1;
	memset(l, 0, sizeof(*l));
	l->runtime = BASE;
	l->o = &cpython_offsets_table[data[0] % rows];
	for (k = REFWALK_LIST; k < REFWALK_KINDS; k++)
		l->types[k] = TYPES + 512ull * (k <= REFWALK_OBJECT ? k : k + 1);
	l->str_type = TYPES + 512ull * (REFWALK_OBJECT + 1);
	l->bytearray_type = TYPES + 512ull * (REFWALK_KINDS + 1);
}

#endif
