/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Where to put a uprobe inside a function so that the kernel emulates the
 * probed instruction (push, nop, direct jmp/jcc/call: ~0.7 us per hit)
 * instead of single-stepping it out of line (~9 us per hit).
 */
#ifndef PYLEAK_INSN_H
#define PYLEAK_INSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyleak.h"

/* BPF's register numbers (bpf/pyleak.h): a spot's register is handed to BPF as is. */
enum insn_reg {
	INSN_REG_NONE = -1,
	INSN_REG_RDI = PYLEAK_REG_RDI,
	INSN_REG_RSI = PYLEAK_REG_RSI,
	INSN_REG_RDX = PYLEAK_REG_RDX,
	INSN_REG_RCX = PYLEAK_REG_RCX,
	INSN_REG_R8 = PYLEAK_REG_R8,
	INSN_REG_R9 = PYLEAK_REG_R9,
	INSN_REG_RAX = PYLEAK_REG_RAX,
	INSN_REG_RBX = PYLEAK_REG_RBX,
	INSN_REG_RBP = PYLEAK_REG_RBP,
	INSN_REG_R10 = PYLEAK_REG_R10,
	INSN_REG_R11 = PYLEAK_REG_R11,
	INSN_REG_R12 = PYLEAK_REG_R12,
	INSN_REG_R13 = PYLEAK_REG_R13,
	INSN_REG_R14 = PYLEAK_REG_R14,
	INSN_REG_R15 = PYLEAK_REG_R15,
	INSN_REG_COUNT = PYLEAK_REG_COUNT,
};

struct insn_spot {
	uint32_t offset;	/* byte offset from the function start */
	enum insn_reg reg;	/* where the tracked argument is at that offset */
	bool emulated;		/* false: no cheap spot found; offset 0, single-stepped */
	char mnemonic[16];	/* the probed instruction, for logs */
};

/*
 * Finds the first kernel-emulated instruction of the function's entry block
 * (the straight-line run from offset 0 up to and including the first
 * jmp/jcc/ret/indirect call) at which the argument that was in @arg on entry
 * is still in some register.  Falls back to offset 0, reg = @arg, emulated =
 * false.
 *
 * code: the function's bytes as in the file, len of them; pass the whole
 * function (st_size) so that loops branching back into the entry block are
 * seen: a spot at or after such a target would fire more than once per call.
 * addr: the function's address, to resolve branch targets.
 * Returns 0 or a negative errno.
 */
int insn_find_spot(const uint8_t *code, size_t len, uint64_t addr,
		   enum insn_reg arg, struct insn_spot *out);

/*
 * True if the kernel emulates the instruction at code[0] (for checking a
 * fixed offset such as a uretprobe's +0).  len: bytes available at code.
 */
bool insn_is_emulated(const uint8_t *code, size_t len);

/* "rdi", "r14", ... for logs; "?" for anything else. */
const char *insn_reg_name(enum insn_reg reg);

#endif
