/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Function bounds from a module's unwind tables (.eh_frame_hdr's sorted table, then the FDE
 * it points to): every function a compiler emitted has one, stripped or not.  The bytes are
 * the target owner's: every offset is checked, and only the encodings GNU toolchains emit are
 * read (anything else is -ENOEXEC, not a guess).
 */
#ifndef PYLEAK_EHFRAME_H
#define PYLEAK_EHFRAME_H

#include <stddef.h>
#include <stdint.h>

struct ehframe {
	const uint8_t *hdr;	/* .eh_frame_hdr */
	size_t hdr_size;
	uint64_t hdr_vaddr;
	const uint8_t *eh;	/* .eh_frame */
	size_t eh_size;
	uint64_t eh_vaddr;
};

/* The function (FDE) that holds pc: its start and size; 0, -ENOENT (no FDE covers pc) or
 * -ENOEXEC (tables malformed or in an encoding not read here). */
int ehframe_func_at(const struct ehframe *ef, uint64_t pc, uint64_t *start, uint64_t *size);

#endif
