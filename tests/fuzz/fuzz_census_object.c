// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: the census's reader of objects outside pymalloc (their size, and where a
 * list's or tuple's items are), over bytes copied from a target. The first 6 bytes of an input
 * pick the kind and the type's fields (in the ranges census_type_check() accepts), the rest is
 * the object. What it accepts must stay in range (census.h), whatever the bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "census.h"
#include "cpython.h"

#define ADDR 0x7f0000001000ull
#define PREHEADER_FLAGS ((1ull << 3) | (1ull << 4))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct census_type ty = { 0 };
	struct census_object obj;
	enum census_kind kind;
	uint16_t v;
	int ret;

	if (size < 6)
		return 0;
	kind = (enum census_kind)(data[0] % 4);
	memcpy(&v, data + 1, sizeof(v));
	ty.itemsize = v;
	memcpy(&v, data + 3, sizeof(v));
	ty.basicsize = 16 + v;
	ty.flags = (data[5] & 1 ? CPY_TPFLAGS_HAVE_GC : 0) | (data[5] & 2 ? 1ull << 4 : 0);
	ret = census_object_parse(data + 6, size - 6, ADDR, &ty, kind, PREHEADER_FLAGS, &obj);
	if (ret && ret != -EINVAL && ret != -ERANGE)
		abort();
	if (ret == -EINVAL)
		return 0;
	/* a fixed-size object has no size field to find out of range */
	if (kind == CENSUS_KIND_OTHER && !ty.itemsize &&
	    (ret || obj.bytes > (uint64_t)ty.basicsize + 32))
		abort();
	if (obj.bytes < (uint64_t)ty.basicsize || obj.nitems > CENSUS_ITEMS_MAX)
		abort();
	if (ret == 0 && kind == CENSUS_KIND_TUPLE && obj.items != ADDR + CPY_TUPLE_ITEMS)
		abort();
	if ((kind == CENSUS_KIND_OTHER || kind == CENSUS_KIND_STR) && (obj.items || obj.nitems))
		abort();
	return 0;
}
