// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Which instructions the kernel emulates, from arch/x86/kernel/uprobes.c as
 * of Linux 6.18 (read at gregkh/linux 663efc5aac21: it has the 6.18 nop5
 * optimisation and still the local insn_is_nop(), before 6.19 unified it):
 *
 *  - uprobe_init_insn() refuses any instruction with a cs/ds/es/ss or lock
 *    prefix: the probe is never installed and silently never fires.
 *  - branch_setup_xol_ops(): an exact x86_nops[1..8] sequence (NOP9..11
 *    carry a cs prefix, refused above); opcode 0x90 after any prefixes;
 *    jmp rel8/rel32, call rel32, jcc rel8/rel32, unless 0x66-prefixed
 *    (refused).
 *  - push_setup_xol_ops(): push %reg, one byte, or two with REX exactly 0x41.
 *
 * Everything else is single-stepped out of line.  Measured on 6.18 per hit:
 * push/nop/jmp/jcc/call 0.66-0.75 us, nop5 0.5 us (patched into a call to
 * the uprobe trampoline), mov/sub/test/endbr64/rex.W push/9-byte nopw 9.2-9.4 us.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <capstone/capstone.h>

#include "insn.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The kernel's 64-bit x86_nops[] (arch/x86/include/asm/nops.h), by length. */
static const uint8_t x86_nops[][8] = {
	[1] = { 0x90 },
	[2] = { 0x66, 0x90 },
	[3] = { 0x0f, 0x1f, 0x00 },
	[4] = { 0x0f, 0x1f, 0x40, 0x00 },
	[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 },
	[6] = { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 },
	[7] = { 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 },
	[8] = { 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
};

static const char *const reg_names[INSN_REG_COUNT] = {
	"rdi", "rsi", "rdx", "rcx", "r8", "r9", "rax", "rbx",
	"rbp", "r10", "r11", "r12", "r13", "r14", "r15",
};

const char *insn_reg_name(enum insn_reg reg)
{
	if (reg < 0 || reg >= INSN_REG_COUNT)
		return "?";
	return reg_names[reg];
}

bool insn_is_emulated(const uint8_t *code, size_t len)
{
	bool opsize = false;
	uint8_t rex = 0, op;
	size_t i, n;

	/* Each x86_nops[n] is a whole instruction, so a prefix match is exact. */
	for (n = 1; n < ARRAY_SIZE(x86_nops); n++)
		if (n <= len && !memcmp(code, x86_nops[n], n))
			return true;

	for (i = 0; i < len; i++) {
		switch (code[i]) {
		case 0x66:
			opsize = true;
			continue;
		case 0x64: case 0x65: case 0x67: case 0xf2: case 0xf3:
			continue;
		case 0x26: case 0x2e: case 0x36: case 0x3e: case 0xf0:
			return false;
		}
		break;
	}
	if (i < len && (code[i] & 0xf0) == 0x40)
		rex = code[i++];
	if (i >= len)
		return false;
	op = code[i];

	/* REX.B 0x90 is xchg with %r8: the kernel would wrongly skip it as a nop. */
	if (op == 0x90)
		return !(rex & 0x01);
	if (op >= 0x50 && op <= 0x57)
		return i == 0 || (i == 1 && rex == 0x41);
	if (opsize)
		return false;
	if (op == 0xe8 || op == 0xe9 || op == 0xeb || (op >= 0x70 && op <= 0x7f))
		return true;
	return op == 0x0f && i + 1 < len && code[i + 1] >= 0x80 && code[i + 1] <= 0x8f;
}

/* Sub-registers map to their full register: writing %edi or %dil clobbers %rdi. */
static enum insn_reg reg_from_cs(unsigned int r)
{
	switch (r) {
	case X86_REG_RDI: case X86_REG_EDI: case X86_REG_DI: case X86_REG_DIL:
		return INSN_REG_RDI;
	case X86_REG_RSI: case X86_REG_ESI: case X86_REG_SI: case X86_REG_SIL:
		return INSN_REG_RSI;
	case X86_REG_RDX: case X86_REG_EDX: case X86_REG_DX: case X86_REG_DL:
	case X86_REG_DH:
		return INSN_REG_RDX;
	case X86_REG_RCX: case X86_REG_ECX: case X86_REG_CX: case X86_REG_CL:
	case X86_REG_CH:
		return INSN_REG_RCX;
	case X86_REG_R8: case X86_REG_R8D: case X86_REG_R8W: case X86_REG_R8B:
		return INSN_REG_R8;
	case X86_REG_R9: case X86_REG_R9D: case X86_REG_R9W: case X86_REG_R9B:
		return INSN_REG_R9;
	case X86_REG_RAX: case X86_REG_EAX: case X86_REG_AX: case X86_REG_AL:
	case X86_REG_AH:
		return INSN_REG_RAX;
	case X86_REG_RBX: case X86_REG_EBX: case X86_REG_BX: case X86_REG_BL:
	case X86_REG_BH:
		return INSN_REG_RBX;
	case X86_REG_RBP: case X86_REG_EBP: case X86_REG_BP: case X86_REG_BPL:
		return INSN_REG_RBP;
	case X86_REG_R10: case X86_REG_R10D: case X86_REG_R10W: case X86_REG_R10B:
		return INSN_REG_R10;
	case X86_REG_R11: case X86_REG_R11D: case X86_REG_R11W: case X86_REG_R11B:
		return INSN_REG_R11;
	case X86_REG_R12: case X86_REG_R12D: case X86_REG_R12W: case X86_REG_R12B:
		return INSN_REG_R12;
	case X86_REG_R13: case X86_REG_R13D: case X86_REG_R13W: case X86_REG_R13B:
		return INSN_REG_R13;
	case X86_REG_R14: case X86_REG_R14D: case X86_REG_R14W: case X86_REG_R14B:
		return INSN_REG_R14;
	case X86_REG_R15: case X86_REG_R15D: case X86_REG_R15W: case X86_REG_R15B:
		return INSN_REG_R15;
	default:
		return INSN_REG_NONE;
	}
}

static uint32_t reg_bit(unsigned int cs_reg)
{
	enum insn_reg r = reg_from_cs(cs_reg);

	return r == INSN_REG_NONE ? 0 : 1u << r;
}

static bool insn_in_group(const cs_insn *insn, uint8_t group)
{
	const cs_detail *d = insn->detail;
	uint8_t i;

	for (i = 0; i < d->groups_count; i++)
		if (d->groups[i] == group)
			return true;
	return false;
}

/* The direct branch target of @insn as an offset into the function, or -1. */
static int64_t insn_target(const cs_insn *insn, uint64_t addr)
{
	const cs_x86 *x = &insn->detail->x86;

	if (!insn_in_group(insn, CS_GRP_JUMP) && !insn_in_group(insn, CS_GRP_CALL))
		return -1;
	if (x->op_count != 1 || x->operands[0].type != X86_OP_IMM)
		return -1;
	return (int64_t)(x->operands[0].imm - addr);
}

/*
 * The lowest offset > 0 that a direct jmp/jcc/call of the function itself
 * branches to: a probe there or later may fire more than once per call.
 */
static uint32_t func_first_reentry(csh cs, cs_insn *insn, const uint8_t *code,
				   size_t len, uint64_t addr)
{
	uint32_t first = len;
	size_t off = 0;

	while (off < len) {
		const uint8_t *p = code + off;
		size_t left = len - off;
		uint64_t pc = addr + off;
		int64_t t;

		/* Resynchronise one byte on in the unlikely case of undecodable bytes. */
		if (!cs_disasm_iter(cs, &p, &left, &pc, insn)) {
			off++;
			continue;
		}
		off += insn->size;
		t = insn_target(insn, addr);
		if (t > 0 && t < first)
			first = t;
	}
	return first;
}

/*
 * The entry block ends at the first control transfer.  A direct call is
 * emulated, so it is the spot if the argument is still live and never needs
 * its clobbers tracked.
 */
static bool insn_ends_block(const cs_insn *insn)
{
	return insn_in_group(insn, CS_GRP_JUMP) || insn_in_group(insn, CS_GRP_CALL) ||
	       insn_in_group(insn, CS_GRP_RET) || insn_in_group(insn, CS_GRP_IRET) ||
	       insn_in_group(insn, CS_GRP_INT);
}

/* The registers still holding the argument after @insn, given @live before it. */
static uint32_t insn_live_after(csh cs, const cs_insn *insn, uint32_t live)
{
	const cs_x86 *x = &insn->detail->x86;
	cs_regs rd, wr;
	uint8_t nrd, nwr, i;
	uint32_t out = live;

	/* Unknown effects: assume everything is clobbered. */
	if (cs_regs_access(cs, insn, rd, &nrd, wr, &nwr) != CS_ERR_OK)
		return 0;
	for (i = 0; i < nwr; i++)
		out &= ~reg_bit(wr[i]);
	/* Intel operand order: operands[0] is the destination. */
	if (insn->id == X86_INS_MOV && x->op_count == 2 &&
	    x->operands[0].type == X86_OP_REG && x->operands[1].type == X86_OP_REG &&
	    x->operands[0].size == 8 && (live & reg_bit(x->operands[1].reg)))
		out |= reg_bit(x->operands[0].reg);
	return out;
}

int insn_find_spot(const uint8_t *code, size_t len, uint64_t addr,
		   enum insn_reg arg, struct insn_spot *out)
{
	const uint8_t *p = code;
	size_t left = len;
	uint64_t pc = addr;
	uint32_t live, limit;
	cs_insn *insn;
	csh cs;
	int err = 0;

	if (!code || !out || arg < 0 || arg >= INSN_REG_COUNT || len > UINT32_MAX)
		return -EINVAL;
	*out = (struct insn_spot){ .offset = 0, .reg = arg, .emulated = false };
	snprintf(out->mnemonic, sizeof(out->mnemonic), "?");

	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	insn = cs_malloc(cs);
	if (!insn) {
		err = -ENOMEM;
		goto out_close;
	}

	limit = func_first_reentry(cs, insn, code, len, addr);
	live = 1u << arg;
	while (live && cs_disasm_iter(cs, &p, &left, &pc, insn)) {
		uint32_t off = insn->address - addr;

		if (off >= limit)
			break;
		if (off == 0)
			snprintf(out->mnemonic, sizeof(out->mnemonic), "%.15s", insn->mnemonic);
		if (insn_is_emulated(code + off, insn->size)) {
			out->offset = off;
			out->reg = __builtin_ctz(live);	/* lowest enum: rdi first */
			out->emulated = true;
			snprintf(out->mnemonic, sizeof(out->mnemonic), "%.15s", insn->mnemonic);
			break;
		}
		if (insn_ends_block(insn))
			break;
		live = insn_live_after(cs, insn, live);
	}
	cs_free(insn, 1);
out_close:
	cs_close(&cs);
	return err;
}
