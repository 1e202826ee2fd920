// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: the reference walk (refwalk.c) over a heap made of the input.  The first
 * byte picks the interpreter's row; the rest is the target's memory at BASE, where _PyRuntime
 * is, and the builtin types sit at TYPES + 512 * slot: the kinds up to REFWALK_OBJECT, the
 * wanted type, then the others and bytearray (make_refwalk_seeds.py builds a frame whose local
 * is a list holding a wanted object, itself, a deque, a suspended generator and a function
 * whose closure holds the list).  Reads outside the input fail as
 * they would in a target.  Whatever the bytes (cycles, garbage pointers, lengths), the walk
 * must end, within its bounds, and its paths must lead from a root.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "refwalk.h"

#define BASE	0x10000000ull
#define TYPES	(BASE + 0x8000)

struct fake { const uint8_t *mem; size_t len; };

static size_t fake_readv(void *arg, const struct refwalk_iov *v, size_t n)
{
	const struct fake *f = arg;
	size_t i;

	for (i = 0; i < n; i++) {
		if (v[i].addr < BASE || v[i].addr - BASE > f->len || v[i].len > f->len - (v[i].addr - BASE))
			break;
		memcpy(v[i].buf, f->mem + (v[i].addr - BASE), v[i].len);
	}
	return i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t rows = sizeof(cpython_offsets_table) / sizeof(cpython_offsets_table[0]), ng, i, n;
	struct refwalk_limits lim = { .max_nodes = 4096, .max_bytes = 1 << 22, .max_seconds = 1 };
	struct refwalk_layout l = { .runtime = BASE };
	struct refwalk_group groups[8];
	struct refwalk_retained retained[8];
	struct refwalk_step steps[64];
	struct fake f = { data + 1, size - 1 };
	struct refwalk *w;
	int k, ret, calls = 0;

	if (size < 1)
		return 0;
	l.o = &cpython_offsets_table[data[0] % rows];
	for (k = REFWALK_LIST; k < REFWALK_KINDS; k++)
		l.types[k] = TYPES + 512ull * (k <= REFWALK_OBJECT ? k : k + 1);
	l.str_type = TYPES + 512ull * (REFWALK_OBJECT + 1);	/* the wanted type: sized as a str */
	l.bytearray_type = TYPES + 512ull * (REFWALK_KINDS + 1);
	if (refwalk_new(&l, &lim, "Wanted", &w))
		abort();
	/* Half the inputs: the wanted objects counted elsewhere are many, so the owners are
	 * looked for on the GC lists. */
	refwalk_expect(w, data[0] & 0x80 ? 1u << 20 : 0);
	while ((ret = refwalk_run(w, fake_readv, &f, 0)) == -EAGAIN && ++calls < 100)
		;
	if (ret && ret != -EAGAIN)
		abort();
	if (refwalk_stats(w)->nodes > lim.max_nodes)
		abort();
	if (refwalk_retained(w, retained, 8) > 4096)
		abort();
	if (refwalk_stats(w)->complete && refwalk_stats(w)->owners_sampled >
	    (refwalk_stats(w)->owners_gc ? refwalk_stats(w)->owners_gc : refwalk_stats(w)->owners))
		abort();
	if (refwalk_stats(w)->owners_sampled > 4096)
		abort();
	ng = refwalk_groups(w, groups, 8);
	for (i = 0; i < ng && i < 8; i++) {
		if (!groups[i].count)
			abort();
		if (groups[i].node == UINT32_MAX)
			continue;
		n = refwalk_path(w, groups[i].node, steps, 64);
		if (n && steps[0].edge != REFWALK_EDGE_LOCAL && steps[0].edge != REFWALK_EDGE_GLOBAL)
			abort();
	}
	refwalk_free(w);
	return 0;
}
