// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: the unwind table reader (daemon/ehframe.c) takes .eh_frame_hdr and
 * .eh_frame from files the target's owner wrote.  Whatever the bytes, a lookup reads only
 * inside the two sections and answers with a range that holds the address asked about.
 * Input: hdr vaddr, eh vaddr, pc (8 bytes each), hdr length (4), hdr bytes, eh bytes
 * (tests/fuzz/corpus/ehframe: the tables of the elf seeds).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ehframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t pc, start, fsize;
	struct ehframe ef;
	uint8_t *hdr, *eh;
	uint32_t hdr_len;
	size_t i;

	if (size < 28)
		return 0;
	memcpy(&ef.hdr_vaddr, data, 8);
	memcpy(&ef.eh_vaddr, data + 8, 8);
	memcpy(&pc, data + 16, 8);
	memcpy(&hdr_len, data + 24, 4);
	data += 28;
	size -= 28;
	if (hdr_len > size)
		hdr_len = size;
	/* copies of their own size: ASan reports a read past either */
	hdr = malloc(hdr_len ? hdr_len : 1);
	eh = malloc(size - hdr_len ? size - hdr_len : 1);
	if (!hdr || !eh)
		abort();
	memcpy(hdr, data, hdr_len);
	memcpy(eh, data + hdr_len, size - hdr_len);
	ef.hdr = hdr;
	ef.hdr_size = hdr_len;
	ef.eh = eh;
	ef.eh_size = size - hdr_len;
	for (i = 0; i < 4; i++) {
		if (!ehframe_func_at(&ef, pc, &start, &fsize) && (pc < start || pc - start >= fsize))
			abort();
		pc += 0x11;
	}
	free(hdr);
	free(eh);
	return 0;
}
