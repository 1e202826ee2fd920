// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Native allocation sampling's arithmetic: the distances BPF draws between sample points, the
 * weight of a sampled block, and the two together on a made-up stream of allocations, replayed
 * as bpf/pyleak.bpf.c samples it (native_sampled()). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nativealloc.h"

#define N (512u << 10)

/* The quantiles' mean is the configured one (the midpoint rule loses 0.03%). */
static void test_intervals_mean_is_sample_bytes(void **state)
{
	uint64_t v[PYLEAK_NATIVE_INTERVALS];
	double sum = 0;
	int i;

	(void)state;
	nativealloc_intervals(N, v);
	for (i = 0; i < PYLEAK_NATIVE_INTERVALS; i++) {
		assert_true(v[i] >= 1);
		if (i)
			assert_true(v[i] <= v[i - 1]);
		sum += v[i];
	}
	assert_true(sum / PYLEAK_NATIVE_INTERVALS > N * 0.999);
	assert_true(sum / PYLEAK_NATIVE_INTERVALS < N * 1.001);
}

/* Small blocks stand for N bytes, big ones (always sampled) for themselves. */
static void test_weight_limits(void **state)
{
	(void)state;
	assert_true(nativealloc_weight(0, N) == 0);
	assert_true(nativealloc_weight(16, 0) == 0);
	assert_true(nativealloc_weight(16, N) > N * 0.999 && nativealloc_weight(16, N) < N * 1.001);
	assert_true(nativealloc_weight(64ull * N, N) > 64.0 * N * 0.999 &&
		    nativealloc_weight(64ull * N, N) < 64.0 * N * 1.001);
	/* In between: size / (1 - exp(-1)) at size = N. */
	assert_true(nativealloc_weight(N, N) > N * 1.581 && nativealloc_weight(N, N) < N * 1.583);
}

static uint64_t rng = 88172645463325252ull;

static uint32_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

/* The estimate of a stream of mixed sizes is unbiased: 2 GiB in blocks of 16 B to 2 MiB
 * (the 2 MiB ones always sampled, the others seldom), estimated within 3%. */
static void test_stream_estimate_is_unbiased(void **state)
{
	static const uint64_t sizes[] = { 16, 100, 4096, 40000, 300000, 2u << 20 };
	uint64_t v[PYLEAK_NATIVE_INTERVALS], total = 0;
	int64_t left = 0;
	double estimate = 0;
	int i = 0;

	(void)state;
	nativealloc_intervals(N, v);
	while (total < (2ull << 30)) {
		uint64_t size = sizes[i++ % 6];

		total += size;
		if (!left)
			left = v[xorshift() & (PYLEAK_NATIVE_INTERVALS - 1)];
		left -= size;
		if (left > 0)
			continue;
		left = v[xorshift() & (PYLEAK_NATIVE_INTERVALS - 1)];
		estimate += nativealloc_weight(size, N);
	}
	assert_true(estimate > total * 0.97);
	assert_true(estimate < total * 1.03);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intervals_mean_is_sample_bytes),
		cmocka_unit_test(test_weight_limits),
		cmocka_unit_test(test_stream_estimate_is_unbiased),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
