// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: the pool validator reads memory copied from a target process, which may be
 * torn, stale or hostile. Whatever the bytes, it must not read out of bounds, loop forever or
 * report offsets outside the pool. The first byte picks the pool size; the pool's address is
 * taken from its own freeblock field (aligned down), so that free lists stay inside it and the
 * fuzzer explores their walk rather than one address check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "census.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pool[16384] __attribute__((aligned(16)));
	static uint32_t offsets[16384 / 16];
	uint32_t pool_size, block_size = 0;
	uint64_t pool_addr = 0;
	int n, i;

	if (!size)
		return 0;
	pool_size = data[0] & 1 ? 4096 : 16384;
	data++;
	size--;
	memset(pool, 0, sizeof(pool));
	memcpy(pool, data, size < pool_size ? size : pool_size);
	memcpy(&pool_addr, pool + 8, sizeof(pool_addr));
	pool_addr &= ~(uint64_t)(pool_size - 1);
	n = census_pool_used_blocks(pool, pool_addr, pool_size, 512, &block_size, offsets);
	for (i = 0; i < n; i++)
		if (offsets[i] < 48 || offsets[i] + block_size > pool_size ||
		    (i && offsets[i] <= offsets[i - 1]))
			abort();
	return 0;
}
