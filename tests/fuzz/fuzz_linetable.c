// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: the line-table decoders of all three formats, over tables copied from a
 * target. The first byte picks the format, the next four the offset, four more firstlineno.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linetable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t offset;
	int32_t first;
	int line;

	if (size < 9)
		return 0;
	memcpy(&offset, data + 1, sizeof(offset));
	memcpy(&first, data + 5, sizeof(first));
	line = linetable_line((enum linetable_format)(data[0] % 3), data + 9, size - 9, first,
			      offset);
	if (line < -1)
		abort();
	return 0;
}
