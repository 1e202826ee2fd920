// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <stdint.h>

#include "text.h"

/* Length of the well-formed sequence at p, or 0. */
static int utf8_seq_len(const unsigned char *p)
{
	uint32_t cp;
	int n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;	/* also stops at the NUL */
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

void text_utf8_fix(char *s)
{
	unsigned char *p = (unsigned char *)s;
	int n;

	while (*p) {
		n = utf8_seq_len(p);
		if (!n) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}
