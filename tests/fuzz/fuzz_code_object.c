// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: naming a frame from copies of a code object, its name and file name str
 * objects and its line table (pystack_code_decode). Input: minor version (8-13), the offset
 * (4 bytes), then four parts, each a 2-byte length and its bytes. Names must come out valid,
 * terminated UTF-8.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pystack.h"

/* Strict UTF-8 (no surrogates, nothing past U+10FFFF, no overlong forms). */
static int utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		uint32_t cp;
		int n, i;

		if (*p < 0x80) {
			p++;
			continue;
		}
		n = (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0)
			return 0;
		cp = *p & (0x3f >> n);
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp < 0xe000) || cp > 0x10ffff)
			return 0;
		p += n + 1;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *part[4];
	size_t len[4], i;
	struct pystack_frame f;
	struct pystack_code_copy cc;
	uint32_t offset;
	int minor;

	if (size < 5)
		return 0;
	minor = 8 + data[0] % 6;
	memcpy(&offset, data + 1, sizeof(offset));
	data += 5;
	size -= 5;
	for (i = 0; i < 4; i++) {
		size_t n = size >= 2 ? (size_t)(data[0] | data[1] << 8) : 0;

		data += size >= 2 ? 2 : size;
		size -= size >= 2 ? 2 : size;
		n = n < size ? n : size;
		part[i] = data;
		len[i] = n;
		data += n;
		size -= n;
	}
	cc = (struct pystack_code_copy){ part[0], part[1], part[2], part[3],
					 len[0], len[1], len[2], len[3] };
	memset(&f, 0xa5, sizeof(f));
	if (pystack_code_decode(3, minor, &cc, offset, &f))
		return 0;
	if (!memchr(f.function, 0, sizeof(f.function)) || !memchr(f.file, 0, sizeof(f.file)) ||
	    !utf8_valid(f.function) || !utf8_valid(f.file) || f.line < -1)
		abort();
	return 0;
}
