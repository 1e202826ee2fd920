// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <string.h>

#include "ehframe.h"

/* DWARF pointer encodings (low nibble: format, high: application). */
#define PE_ABSPTR	0x00
#define PE_UDATA4	0x03
#define PE_UDATA8	0x04
#define PE_SDATA4	0x0b
#define PE_SDATA8	0x0c
#define PE_PCREL	0x10
#define PE_DATAREL	0x30
#define PE_OMIT		0xff

#define AUG_MAX		8	/* "zPLR" and friends: longer is not a GNU CIE */

/* A bounded reader over one section. */
struct cursor {
	const uint8_t *p;
	size_t size, pos;
	uint64_t vaddr;		/* of p[0], for pc-relative values */
};

static int get_bytes(struct cursor *c, void *out, size_t n)
{
	if (c->pos > c->size || n > c->size - c->pos)
		return -ENOEXEC;
	memcpy(out, c->p + c->pos, n);
	c->pos += n;
	return 0;
}

static int get_uleb(struct cursor *c, uint64_t *out)
{
	unsigned int shift;
	uint8_t b;

	*out = 0;
	for (shift = 0; shift < 64; shift += 7) {
		if (get_bytes(c, &b, 1))
			return -ENOEXEC;
		*out |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -ENOEXEC;
}

/* A pointer in encoding enc: absolute or pc-relative, 4 or 8 bytes. */
static int get_encoded(struct cursor *c, uint8_t enc, uint64_t *out)
{
	uint64_t at = c->vaddr + c->pos, u64;
	uint32_t u32;
	int32_t s32;

	switch (enc & 0x0f) {
	case PE_ABSPTR:
	case PE_UDATA8:
	case PE_SDATA8:
		if (get_bytes(c, &u64, sizeof(u64)))
			return -ENOEXEC;
		break;
	case PE_UDATA4:
		if (get_bytes(c, &u32, sizeof(u32)))
			return -ENOEXEC;
		u64 = u32;
		break;
	case PE_SDATA4:
		if (get_bytes(c, &s32, sizeof(s32)))
			return -ENOEXEC;
		u64 = (uint64_t)(int64_t)s32;
		break;
	default:
		return -ENOEXEC;
	}
	switch (enc & 0x70) {
	case 0:
		*out = u64;
		return 0;
	case PE_PCREL:
		*out = at + u64;
		return 0;
	default:
		return -ENOEXEC;
	}
}

/* A CIE's FDE pointer encoding ('R'); absptr if it has none. */
static int cie_encoding(const struct ehframe *ef, size_t off, uint8_t *enc)
{
	struct cursor c = { ef->eh, ef->eh_size, off, ef->eh_vaddr };
	char aug[AUG_MAX + 1];
	uint64_t skip, len;
	uint32_t len32, id;
	uint8_t version, b;
	size_t i, end;

	if (get_bytes(&c, &len32, 4) || len32 == 0xffffffff || len32 > c.size - c.pos ||
	    get_bytes(&c, &id, 4) || id || get_bytes(&c, &version, 1) ||
	    (version != 1 && version != 3))
		return -ENOEXEC;
	end = off + 4 + len32;
	for (i = 0; i <= AUG_MAX; i++) {
		if (get_bytes(&c, &aug[i], 1))
			return -ENOEXEC;
		if (!aug[i])
			break;
	}
	if (i > AUG_MAX || strstr(aug, "eh"))
		return -ENOEXEC;
	/* code alignment, data alignment (its sign does not matter to skip it), return column */
	if (get_uleb(&c, &skip) || get_uleb(&c, &skip) ||
	    (version == 1 ? get_bytes(&c, &b, 1) : get_uleb(&c, &skip)))
		return -ENOEXEC;
	*enc = PE_ABSPTR;
	if (aug[0] != 'z')
		return aug[0] ? -ENOEXEC : 0;
	if (get_uleb(&c, &len))
		return -ENOEXEC;
	for (i = 1; aug[i]; i++) {
		uint64_t personality;

		switch (aug[i]) {
		case 'R':
			if (get_bytes(&c, enc, 1))
				return -ENOEXEC;
			break;
		case 'L':
			if (get_bytes(&c, &b, 1))
				return -ENOEXEC;
			break;
		case 'P':
			if (get_bytes(&c, &b, 1) || get_encoded(&c, b & 0x7f, &personality))
				return -ENOEXEC;
			break;
		case 'S':
			break;
		default:
			return -ENOEXEC;
		}
	}
	return c.pos <= end ? 0 : -ENOEXEC;
}

/* The FDE at off in .eh_frame: the range it covers. */
static int fde_range(const struct ehframe *ef, size_t off, uint64_t *start, uint64_t *size)
{
	struct cursor c = { ef->eh, ef->eh_size, off, ef->eh_vaddr };
	uint32_t len32, cie;
	size_t end;
	uint8_t enc;
	int err;

	if (get_bytes(&c, &len32, 4) || len32 == 0xffffffff || len32 > c.size - c.pos ||
	    get_bytes(&c, &cie, 4) || !cie || cie > off + 4)
		return -ENOEXEC;
	end = off + 4 + len32;
	err = cie_encoding(ef, off + 4 - cie, &enc);
	if (err)
		return err;
	if (get_encoded(&c, enc, start) || get_encoded(&c, enc & 0x0f, size) || c.pos > end)
		return -ENOEXEC;
	return 0;
}

int ehframe_func_at(const struct ehframe *ef, uint64_t pc, uint64_t *start, uint64_t *size)
{
	struct cursor c = { ef->hdr, ef->hdr_size, 0, ef->hdr_vaddr };
	uint8_t head[4];
	uint64_t ptr, count, lo, hi;
	const uint8_t *table;
	int32_t entry[2];

	/* version 1, the eh_frame pointer, the count, then a table of (start, FDE) pairs relative
	 * to the header's start: what GNU ld and lld write. */
	if (get_bytes(&c, head, sizeof(head)) || head[0] != 1 || head[3] != (PE_DATAREL | PE_SDATA4) ||
	    head[1] == PE_OMIT || get_encoded(&c, head[1], &ptr) || get_encoded(&c, head[2], &count))
		return -ENOEXEC;
	if (count > (c.size - c.pos) / sizeof(entry))
		return -ENOEXEC;
	table = c.p + c.pos;
	/* the last entry starting at or before pc; an unsorted table only misses */
	lo = 0;
	hi = count;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		memcpy(entry, table + mid * sizeof(entry), sizeof(entry));
		if (ef->hdr_vaddr + (int64_t)entry[0] <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -ENOENT;
	memcpy(entry, table + (lo - 1) * sizeof(entry), sizeof(entry));
	ptr = ef->hdr_vaddr + (int64_t)entry[1];
	if (ptr < ef->eh_vaddr || ptr - ef->eh_vaddr >= ef->eh_size ||
	    fde_range(ef, ptr - ef->eh_vaddr, start, size))
		return -ENOEXEC;
	if (*start != ef->hdr_vaddr + (int64_t)entry[0])
		return -ENOEXEC;
	return pc >= *start && pc - *start < *size ? 0 : -ENOENT;
}
