// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: the census's type-object validator, over bytes copied from a target. What
 * it accepts must be in the ranges the census then computes with (census.h), whatever the bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "census.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct census_type t;
	const char *why;
	int ret = census_type_check(data, size, &t, &why);

	if (ret == -ERANGE && !why)
		abort();
	if (ret)
		return 0;
	if (t.basicsize < 16 || t.basicsize > CENSUS_TYPE_SIZE_MAX || t.itemsize < 0 ||
	    t.itemsize > CENSUS_TYPE_ITEMSIZE_MAX || t.dictoffset < -CENSUS_TYPE_SIZE_MAX ||
	    t.dictoffset + 8 > t.basicsize)
		abort();
	return 0;
}
