// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: the reference walk (refwalk.c) over a heap made of the input, laid out as
 * fake_heap.h says (make_refwalk_seeds.py builds a frame whose local is a list holding a
 * wanted object, itself, a deque, a suspended generator and a function whose closure holds
 * the list).  Whatever the bytes (cycles, garbage pointers, lengths), the walk must end,
 * within its bounds, and its paths must lead from a root.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fake_heap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t ng, i, n;
	struct refwalk_limits lim = { .max_nodes = 4096, .max_bytes = 1 << 22, .max_seconds = 1 };
	struct refwalk_layout l;
	struct refwalk_group groups[8];
	struct refwalk_retained retained[8];
	struct refwalk_step steps[64];
	struct fake_heap f;
	struct refwalk *w;
	int ret, calls = 0;

	if (size < 1)
		return 0;
	fake_heap_init(data, size, &f, &l);
	if (refwalk_new(&l, &lim, "Wanted", &w))
		abort();
	/* Half the inputs: the wanted objects counted elsewhere are many, so the owners are
	 * looked for on the GC lists. */
	refwalk_expect(w, data[0] & 0x80 ? 1u << 20 : 0);
	while ((ret = refwalk_run(w, fake_heap_readv, &f, 0)) == -EAGAIN && ++calls < 100)
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
