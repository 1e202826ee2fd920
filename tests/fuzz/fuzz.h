/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* What the fuzzers of text parsers share: the input's first byte picks the parser. */
#ifndef PYLEAK_FUZZ_H
#define PYLEAK_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The input but its first byte (in *pick) as a malloc'd string, NUL-terminated as the parsers
 * take it; NULL for an empty input or no memory. */
static inline char *fuzz_text(const uint8_t *data, size_t size, uint8_t *pick)
{
	char *text;

	if (!size)
		return NULL;
	text = malloc(size);
	if (!text)
		return NULL;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	*pick = data[0];
	return text;
}

#endif
