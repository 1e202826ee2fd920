// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: the postmortem report parser, over a state directory file's bytes (anyone
 * who could write there is hostile). What it accepts must be what the index relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "postmortem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct postmortem_info info;

	memset(&info, 0xa5, sizeof(info));
	if (postmortem_parse((const char *)data, size, &info))
		return 0;
	if (info.pid <= 0 || !(info.ended_at >= 0) ||
	    strnlen(info.cause, sizeof(info.cause)) == sizeof(info.cause) ||
	    strnlen(info.exe, sizeof(info.exe)) == sizeof(info.exe))
		abort();
	return 0;
}
