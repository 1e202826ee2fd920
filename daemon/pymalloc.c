// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "insn.h"
#include "pymalloc.h"

/* The initialiser with new_arena() inlined is ~0.9-1.2 KiB on 3.10-3.13 (GCC -O3, LTO). */
#define POOL_INIT_MAX_SIZE 4096
#define ARENA_SIZE 0x100000u	/* 3.10+ on 64-bit: ARENA_BITS 20 */
#define POOL_SZIDX 0x24		/* offsetof(struct pool_header, szidx) */

/* `movl $0xffff, 0x24(reg)` (c7 /0, disp8, imm32), any base register but rsp, or r12 (SIB) */
static size_t szidx_store_len(const uint8_t *p, size_t left)
{
	static const uint8_t imm[4] = { 0xff, 0xff, 0x00, 0x00 };
	size_t rex = left && p[0] == 0x41;

	p += rex;
	left -= rex;
	if (left >= 7 && p[0] == 0xc7 && (p[1] & 0xf8) == 0x40 && p[1] != 0x44 &&
	    p[2] == POOL_SZIDX && !memcmp(p + 3, imm, sizeof(imm)))
		return rex + 7;
	if (rex && left >= 8 && p[0] == 0xc7 && p[1] == 0x44 && p[2] == 0x24 && p[3] == POOL_SZIDX &&
	    !memcmp(p + 4, imm, sizeof(imm)))
		return rex + 8;
	return 0;
}

static bool has_imm32(const uint8_t *code, size_t len, uint32_t v)
{
	size_t i;

	for (i = 0; i + sizeof(v) <= len; i++)
		if (!memcmp(code + i, &v, sizeof(v)))
			return true;
	return false;
}

int pymalloc_pool_init_shape(struct elf_file *ef, uint64_t *vaddr, uint64_t *size)
{
	uint64_t base, start, fsize, found = 0, found_size = 0;
	const uint8_t *text;
	size_t len, i, n;

	if (elf_file_section(ef, ".text", (const void **)&text, &len, &base))
		return -ENOENT;
	for (i = 0; i < len; i += n ? n : 1) {
		n = szidx_store_len(text + i, len - i);
		if (!n)
			continue;
		if (elf_file_func_bounds(ef, base + i, &start, &fsize))
			return -ENOENT;
		if (found && start != found)
			return -ENOENT;	/* two functions do it: not told apart here */
		found = start;
		found_size = fsize;
	}
	if (!found || found < base || found_size > POOL_INIT_MAX_SIZE ||
	    found - base > len || found_size > len - (found - base) ||
	    !has_imm32(text + (found - base), found_size, ARENA_SIZE))
		return -ENOENT;
	*vaddr = found;
	*size = found_size;
	return 0;
}

int pymalloc_pool_init_find(struct elf_file *ef, uint64_t *vaddr, uint64_t *size)
{
	uint64_t start, fsize, named, base;
	const uint8_t *text;
	size_t len;

	if (!elf_file_symbol(ef, "allocate_from_new_pool", vaddr, size))
		return 0;
	if (pymalloc_pool_init_shape(ef, &start, &fsize) ||
	    !elf_file_func_size_at(ef, start, &named) || elf_file_count_calls(ef, start) < 1 ||
	    elf_file_section(ef, ".text", (const void **)&text, &len, &base) ||
	    !insn_is_emulated(text + (start - base), fsize))
		return -ENOENT;
	*vaddr = start;
	*size = fsize;
	return 0;
}
