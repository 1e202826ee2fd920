// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * daemon/insn.c on real CPython code: the arrays are the first bytes of
 * functions in /usr/bin/python3.11 (Debian 3.11.2, non-PIE) and the pyenv
 * builds' libpython3.X.so.1.0, extracted with objdump at the given address.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "insn.h"

/* Debian python3.11 PyType_GenericAlloc at 0x5081c0, first 11 of 823 bytes */
static const uint8_t deb_generic_alloc[] = {
	0x41, 0x56,                                     /* +0   push %r14 */
	0x49, 0x89, 0xfe,                               /* +2   mov %rdi,%r14 */
	0x41, 0x55,                                     /* +5   push %r13 */
	0x41, 0x54,                                     /* +7   push %r12 */
	0x55,                                           /* +9   push %rbp */
	0x53,                                           /* +10  push %rbx */
};

/* Debian python3.11 _PyObject_GC_New at 0x4fb0a0, first 12 of 683 bytes */
static const uint8_t deb_gc_new[] = {
	0x48, 0xba, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, /* +0   movabs $0x7fffffffffffffff,%rdx */
	0x41, 0x55,                                     /* +10  push %r13 */
};

/* Debian python3.11 PyObject_GC_Del at 0x50a210, first 48 of 738 bytes */
static const uint8_t deb_gc_del[] = {
	0x48, 0x8b, 0x47, 0x08,                         /* +0   mov 0x8(%rdi),%rax */
	0x48, 0x8b, 0x90, 0xa8, 0x00, 0x00, 0x00,       /* +4   mov 0xa8(%rax),%rdx */
	0x48, 0x89, 0xd0,                               /* +11  mov %rdx,%rax */
	0x48, 0xc1, 0xea, 0x03,                         /* +14  shr $0x3,%rdx */
	0x48, 0xc1, 0xe8, 0x0d,                         /* +18  shr $0xd,%rax */
	0x83, 0xe2, 0x02,                               /* +22  and $0x2,%edx */
	0x83, 0xe0, 0x02,                               /* +25  and $0x2,%eax */
	0x48, 0x01, 0xd0,                               /* +28  add %rdx,%rax */
	0x48, 0x8b, 0x57, 0xf0,                         /* +31  mov -0x10(%rdi),%rdx */
	0x48, 0xc1, 0xe0, 0x03,                         /* +35  shl $0x3,%rax */
	0x48, 0x85, 0xd2,                               /* +39  test %rdx,%rdx */
	0x0f, 0x85, 0x6a, 0xe2, 0xf1, 0xff,             /* +42  jne 4284aa */
};

/* Debian python3.11 _Py_Dealloc at 0x500940, all 7 bytes */
static const uint8_t deb_py_dealloc[] = {
	0x48, 0x8b, 0x47, 0x08,                         /* +0   mov 0x8(%rdi),%rax */
	0xff, 0x60, 0x30,                               /* +4   jmp *0x30(%rax) */
};

/* Debian python3.11 _Py_NewReference at 0x4fb8a0, first 10 of 49 bytes */
static const uint8_t deb_new_reference[] = {
	0x8b, 0x05, 0x9e, 0xe6, 0x53, 0x00,             /* +0   mov 0x53e69e(%rip),%eax */
	0x85, 0xc0,                                     /* +6   test %eax,%eax */
	0x75, 0x08,                                     /* +8   jne 4fb8b2 */
};

/* pyenv 3.8.18 PyObject_Free at 0xe1ba0, all 16 bytes */
static const uint8_t py38_object_free[] = {
	0x48, 0x89, 0xfe,                               /* +0   mov %rdi,%rsi */
	0x48, 0x8b, 0x3d, 0x56, 0x0c, 0x25, 0x00,       /* +3   mov 0x250c56(%rip),%rdi */
	0xff, 0x25, 0x70, 0x0c, 0x25, 0x00,             /* +10  jmp *0x250c70(%rip) */
};

/* pyenv 3.11.7 _Py_NewReference at 0x1aa020, first 11 of 46 bytes */
static const uint8_t py311_new_reference[] = {
	0x48, 0x8b, 0x05, 0x01, 0x99, 0x29, 0x00,       /* +0   mov 0x299901(%rip),%rax */
	0x53,                                           /* +7   push %rbx */
	0x48, 0x89, 0xfb,                               /* +8   mov %rdi,%rbx */
};

/* pyenv 3.13.0 _Py_NewReference at 0x14e4e0, first 26 of 41 bytes */
static const uint8_t py313_new_reference[] = {
	0x48, 0x8b, 0x15, 0xc9, 0xc7, 0x39, 0x00,       /* +0   mov 0x39c7c9(%rip),%rdx */
	0x48, 0xc7, 0x07, 0x01, 0x00, 0x00, 0x00,       /* +7   movq $0x1,(%rdi) */
	0x48, 0x8b, 0x82, 0x48, 0x28, 0x00, 0x00,       /* +14  mov 0x2848(%rdx),%rax */
	0x48, 0x85, 0xc0,                               /* +21  test %rax,%rax */
	0x74, 0x0e,                                     /* +24  je 14e508 */
};

/* pyenv 3.11.7 float_dealloc at 0x176330, first 13 of 93 bytes */
static const uint8_t py311_float_dealloc[] = {
	0x48, 0x8b, 0x47, 0x08,                         /* +0   mov 0x8(%rdi),%rax */
	0x48, 0x3b, 0x05, 0x25, 0xd8, 0x2c, 0x00,       /* +4   cmp 0x2cd825(%rip),%rax */
	0x74, 0x0b,                                     /* +11  je 176348 */
};

/* pyenv 3.12.1 long_dealloc at 0x1a1260, first 9 of 97 bytes */
static const uint8_t py312_long_dealloc[] = {
	0x48, 0x85, 0xff,                               /* +0   test %rdi,%rdi */
	0x74, 0x46,                                     /* +3   je 1a12ab */
	0x48, 0x8b, 0x47, 0x10,                         /* +5   mov 0x10(%rdi),%rax */
};

/* pyenv 3.12.1 subtype_dealloc at 0x1e4790, first 6 of 1414 bytes */
static const uint8_t py312_subtype_dealloc[] = {
	0x41, 0x57,                                     /* +0   push %r15 */
	0x41, 0x56,                                     /* +2   push %r14 */
	0x41, 0x55,                                     /* +4   push %r13 */
};

/* pyenv 3.11.7 PyErr_Restore at 0x26bb60, all 31 bytes */
static const uint8_t py311_err_restore[] = {
	0x48, 0x8b, 0x05, 0xc9, 0x81, 0x1d, 0x00,       /* +0   mov 0x1d81c9(%rip),%rax */
	0x48, 0x89, 0xd1,                               /* +7   mov %rdx,%rcx */
	0x48, 0x89, 0xf2,                               /* +10  mov %rsi,%rdx */
	0x48, 0x89, 0xfe,                               /* +13  mov %rdi,%rsi */
	0x48, 0x8b, 0x80, 0x40, 0x02, 0x00, 0x00,       /* +16  mov 0x240(%rax),%rax */
	0x48, 0x89, 0xc7,                               /* +23  mov %rax,%rdi */
	0xe9, 0x01, 0xb9, 0xe8, 0xff,                   /* +26  jmp f7480 */
};

/* pyenv 3.11.7 _PyTime_AsTimeval at 0x29c2d0, first 47 of 565 bytes */
static const uint8_t py311_time_as_timeval[] = {
	0x48, 0xb8, 0xcf, 0xf7, 0x53, 0xe3, 0xa5, 0x9b, 0xc4, 0x20, /* +0   movabs $0x20c49ba5e353f7cf,%rax */
	0x48, 0x89, 0xf9,                               /* +10  mov %rdi,%rcx */
	0x48, 0x89, 0xf7,                               /* +13  mov %rsi,%rdi */
	0x89, 0xd6,                                     /* +16  mov %edx,%esi */
	0x48, 0xf7, 0xe9,                               /* +18  imul %rcx */
	0x49, 0x89, 0xc9,                               /* +21  mov %rcx,%r9 */
	0x49, 0xc1, 0xf9, 0x3f,                         /* +24  sar $0x3f,%r9 */
	0x48, 0xc1, 0xfa, 0x07,                         /* +28  sar $0x7,%rdx */
	0x4c, 0x29, 0xca,                               /* +32  sub %r9,%rdx */
	0x49, 0x89, 0xd0,                               /* +35  mov %rdx,%r8 */
	0x83, 0xfe, 0x02,                               /* +38  cmp $0x2,%esi */
	0x0f, 0x84, 0x39, 0x01, 0x00, 0x00,             /* +41  je 29c438 */
};

/* pyenv 3.11.7 PyUnicodeDecodeError_GetEnd at 0x16c390, first 20 of 177 bytes */
static const uint8_t py311_decode_get_end[] = {
	0x48, 0x83, 0xec, 0x08,                         /* +0   sub $0x8,%rsp */
	0x48, 0x89, 0xf8,                               /* +4   mov %rdi,%rax */
	0x48, 0x8b, 0x7f, 0x50,                         /* +7   mov 0x50(%rdi),%rdi */
	0x48, 0x85, 0xff,                               /* +11  test %rdi,%rdi */
	0x0f, 0x84, 0x7c, 0x00, 0x00, 0x00,             /* +14  je 16c420 */
};

/* pyenv 3.12.1 asciilib_default_rfind.constprop.0 at 0x1fbaf0, first 11 of 245 bytes */
static const uint8_t py312_rfind[] = {
	0x49, 0x89, 0xf9,                               /* +0   mov %rdi,%r9 */
	0x48, 0x89, 0xd7,                               /* +3   mov %rdx,%rdi */
	0x48, 0x89, 0xf2,                               /* +6   mov %rsi,%rdx */
	0x41, 0x54,                                     /* +9   push %r12 */
};

/* pyenv 3.13.0 PyMutex_Unlock at 0x280bd0, all 59 bytes */
static const uint8_t py313_mutex_unlock[] = {
	0x0f, 0xb6, 0x07,                               /* +0   movzbl (%rdi),%eax */
	0xa8, 0x01,                                     /* +3   test $0x1,%al */
	0x74, 0x20,                                     /* +5   je 280bf7 */
	0x89, 0xc2,                                     /* +7   mov %eax,%edx */
	0x83, 0xe2, 0x02,                               /* +9   and $0x2,%edx */
	0x75, 0x0a,                                     /* +12  jne 280be8 */
	0xf0, 0x0f, 0xb0, 0x17,                         /* +14  lock cmpxchg %dl,(%rdi) */
	0x75, 0xef,                                     /* +18  jne 280bd3 */
	0xc3,                                           /* +20  ret */
	0x0f, 0x1f, 0x00,                               /* +21  nopl (%rax) */
	0x48, 0x89, 0xfa,                               /* +24  mov %rdi,%rdx */
	0x48, 0x8d, 0x35, 0x8e, 0xf7, 0xff, 0xff,       /* +27  lea -0x872(%rip),%rsi */
	0xe9, 0x99, 0x84, 0xe0, 0xff,                   /* +34  jmp 89090 */
	0x50,                                           /* +39  push %rax */
	0x48, 0x8d, 0x35, 0xb9, 0x8d, 0x11, 0x00,       /* +40  lea 0x118db9(%rip),%rsi */
	0x48, 0x8d, 0x3d, 0x5a, 0x8e, 0x11, 0x00,       /* +47  lea 0x118e5a(%rip),%rdi */
	0xe8, 0x45, 0x6a, 0xe0, 0xff,                   /* +54  call 87650 */
};

struct spot_case {
	const char *name;
	const uint8_t *code;
	size_t len;
	uint64_t addr;
	enum insn_reg arg;
	uint32_t offset;
	enum insn_reg reg;
	bool emulated;
	const char *mnemonic;
};

#define SPOT(n, c, a, in, off, out, emu, mn) \
	{ n, c, sizeof(c), a, INSN_REG_##in, off, INSN_REG_##out, emu, mn }

static const struct spot_case spot_cases[] = {
	/* push %r14 first: the entry itself is emulated. */
	SPOT("deb PyType_GenericAlloc", deb_generic_alloc, 0x5081c0, RDI, 0, RDI, true, "push"),
	/* movabs is single-stepped; rdi is untouched by it. */
	SPOT("deb _PyObject_GC_New", deb_gc_new, 0x4fb0a0, RDI, 10, RDI, true, "push"),
	/* Ten loads and ALU ops, then the jne that ends the entry block. */
	SPOT("deb PyObject_GC_Del", deb_gc_del, 0x50a210, RDI, 42, RDI, true, "jne"),
	/* An indirect jmp is single-stepped: nothing cheap. */
	SPOT("deb _Py_Dealloc", deb_py_dealloc, 0x500940, RDI, 0, RDI, false, "mov"),
	SPOT("deb _Py_NewReference", deb_new_reference, 0x4fb8a0, RDI, 8, RDI, true, "jne"),
	/* rdi moves to rsi, then rdi is reloaded; the tail is an indirect jmp. */
	SPOT("3.8 PyObject_Free", py38_object_free, 0xe1ba0, RDI, 0, RDI, false, "mov"),
	SPOT("3.11 _Py_NewReference", py311_new_reference, 0x1aa020, RDI, 7, RDI, true, "push"),
	/* A store through rdi does not clobber rdi. */
	SPOT("3.13 _Py_NewReference", py313_new_reference, 0x14e4e0, RDI, 24, RDI, true, "je"),
	SPOT("3.11 float_dealloc", py311_float_dealloc, 0x176330, RDI, 11, RDI, true, "je"),
	SPOT("3.12 long_dealloc", py312_long_dealloc, 0x1a1260, RDI, 3, RDI, true, "je"),
	SPOT("3.12 subtype_dealloc", py312_subtype_dealloc, 0x1e4790, RDI, 0, RDI, true, "push"),
	/* rdi -> rsi, rdi reloaded: the tail jmp with the argument in rsi. */
	SPOT("3.11 PyErr_Restore", py311_err_restore, 0x26bb60, RDI, 26, RSI, true, "jmp"),
	/* Tracking another argument: rsi -> rdx, then rsi is overwritten. */
	SPOT("3.11 PyErr_Restore rsi", py311_err_restore, 0x26bb60, RSI, 26, RDX, true, "jmp"),
	SPOT("3.11 PyErr_Restore rdx", py311_err_restore, 0x26bb60, RDX, 26, RCX, true, "jmp"),
	/* rdi -> rcx; imul's implicit rdx:rax writes and the r9 copy's sar. */
	SPOT("3.11 _PyTime_AsTimeval", py311_time_as_timeval, 0x29c2d0, RDI, 41, RCX, true, "je"),
	SPOT("3.11 PyUnicodeDecodeError_GetEnd", py311_decode_get_end, 0x16c390, RDI, 14, RAX, true, "je"),
	/* mov %rdi,%r9; mov %rdx,%rdi (clobber); push %r12. */
	SPOT("3.12 asciilib_default_rfind", py312_rfind, 0x1fbaf0, RDI, 9, R9, true, "push"),
	/* The jne at +18 loops back to +3, so the je at +5 would fire per retry. */
	SPOT("3.13 PyMutex_Unlock", py313_mutex_unlock, 0x280bd0, RDI, 0, RDI, false, "movzx"),
};

static void test_spot(void **state)
{
	const struct spot_case *c = *state;
	struct insn_spot s;

	assert_int_equal(insn_find_spot(c->code, c->len, c->addr, c->arg, &s), 0);
	assert_int_equal(s.offset, c->offset);
	assert_int_equal(s.reg, c->reg);
	assert_int_equal(s.emulated, c->emulated);
	assert_string_equal(s.mnemonic, c->mnemonic);
	assert_int_equal(insn_is_emulated(c->code + s.offset, c->len - s.offset), c->emulated);
}

/* Without the back-edge in view, the je at +5 is the spot. */
static void test_spot_reentry_needs_whole_function(void **state)
{
	struct insn_spot s;

	(void)state;
	assert_int_equal(insn_find_spot(py313_mutex_unlock, 7, 0x280bd0, INSN_REG_RDI, &s), 0);
	assert_int_equal(s.offset, 5);
	assert_true(s.emulated);
}

static void test_spot_subregister_clobber(void **state)
{
	/* mov %rdi,%rbx; xor %edi,%edi; push %rbp */
	static const uint8_t moved[] = { 0x48, 0x89, 0xfb, 0x31, 0xff, 0x55 };
	/* mov %edi,%ebx (a 32-bit copy is not the pointer); xor %edi,%edi; push %rbp */
	static const uint8_t truncated[] = { 0x89, 0xfb, 0x31, 0xff, 0x55 };
	/* mov %rdi,%rbx; xor %edi,%edi; mov $1,%bl; push %rbp */
	static const uint8_t partial[] = { 0x48, 0x89, 0xfb, 0x31, 0xff, 0xb3, 0x01, 0x55 };
	struct insn_spot s;

	(void)state;
	assert_int_equal(insn_find_spot(moved, sizeof(moved), 0x1000, INSN_REG_RDI, &s), 0);
	assert_int_equal(s.offset, 5);
	assert_int_equal(s.reg, INSN_REG_RBX);
	assert_true(s.emulated);

	assert_int_equal(insn_find_spot(truncated, sizeof(truncated), 0x1000, INSN_REG_RDI, &s), 0);
	assert_int_equal(s.offset, 0);
	assert_int_equal(s.reg, INSN_REG_RDI);
	assert_false(s.emulated);

	assert_int_equal(insn_find_spot(partial, sizeof(partial), 0x1000, INSN_REG_RDI, &s), 0);
	assert_false(s.emulated);
}

static void test_spot_einval(void **state)
{
	struct insn_spot s;

	(void)state;
	assert_int_equal(insn_find_spot(deb_gc_new, sizeof(deb_gc_new), 0, INSN_REG_NONE, &s), -EINVAL);
	assert_int_equal(insn_find_spot(deb_gc_new, sizeof(deb_gc_new), 0, INSN_REG_COUNT, &s), -EINVAL);
	assert_int_equal(insn_find_spot(NULL, 0, 0, INSN_REG_RDI, &s), -EINVAL);
	assert_int_equal(insn_find_spot(deb_gc_new, sizeof(deb_gc_new), 0, INSN_REG_RDI, NULL), -EINVAL);
}

struct emu_case {
	const char *what;
	uint8_t bytes[11];
	size_t len;
	bool emulated;
};

/* "measured" marks the ones timed on 6.18: ~0.7 us emulated, ~9.3 us not. */
static const struct emu_case emu_cases[] = {
	{ "push %rbx (measured)", { 0x53 }, 1, true },
	{ "push %r12 (measured)", { 0x41, 0x54 }, 2, true },
	{ "rex.W push %rbx (measured)", { 0x48, 0x53 }, 2, false },
	{ "pushw %bx", { 0x66, 0x53 }, 2, false },
	{ "nop (measured)", { 0x90 }, 1, true },
	{ "xchg %ax,%ax", { 0x66, 0x90 }, 2, true },
	{ "pause (measured)", { 0xf3, 0x90 }, 2, true },
	{ "xchg %eax,%r8d", { 0x41, 0x90 }, 2, false },
	{ "nopl (%rax)", { 0x0f, 0x1f, 0x00 }, 3, true },
	{ "nopl 0x0(%rax) (measured)", { 0x0f, 0x1f, 0x40, 0x00 }, 4, true },
	{ "nop5 (measured)", { 0x0f, 0x1f, 0x44, 0x00, 0x00 }, 5, true },
	{ "nopw 6 bytes (measured)", { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 }, 6, true },
	{ "nopl 7 bytes", { 0x0f, 0x1f, 0x80, 0, 0, 0, 0 }, 7, true },
	{ "nopl 8 bytes", { 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, 8, true },
	{ "nopw 9 bytes (measured)", { 0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, 9, false },
	{ "cs nopw (measured: never fires)", { 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, 10, false },
	{ "call rel32 (measured)", { 0xe8, 0, 0, 0, 0 }, 5, true },
	{ "callw rel16", { 0x66, 0xe8, 0, 0 }, 4, false },
	{ "jmp rel32", { 0xe9, 0, 0, 0, 0 }, 5, true },
	{ "jmp rel8 (measured)", { 0xeb, 0x00 }, 2, true },
	{ "je rel8 (measured)", { 0x74, 0x00 }, 2, true },
	{ "je rel32 (measured)", { 0x0f, 0x84, 0, 0, 0, 0 }, 6, true },
	{ "bnd jmp rel32", { 0xf2, 0xe9, 0, 0, 0, 0 }, 6, true },
	{ "jmp *%rax", { 0xff, 0xe0 }, 2, false },
	{ "notrack jmp *%rax", { 0x3e, 0xff, 0xe0 }, 3, false },
	{ "ret", { 0xc3 }, 1, false },
	{ "endbr64 (measured)", { 0xf3, 0x0f, 0x1e, 0xfa }, 4, false },
	{ "mov %rdi,%rax (measured)", { 0x48, 0x89, 0xf8 }, 3, false },
	{ "sub $8,%rsp (measured)", { 0x48, 0x83, 0xec, 0x08 }, 4, false },
	{ "lock incl (%rdi)", { 0xf0, 0xff, 0x07 }, 3, false },
	{ "jcxz (not a jcc to the kernel)", { 0xe3, 0x00 }, 2, false },
	{ "nothing", { 0 }, 0, false },
};

static void test_is_emulated(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(emu_cases) / sizeof(emu_cases[0]); i++) {
		const struct emu_case *c = &emu_cases[i];

		if (insn_is_emulated(c->bytes, c->len) != c->emulated)
			fail_msg("%s: expected %s", c->what, c->emulated ? "emulated" : "single-stepped");
	}
}

static void test_reg_name(void **state)
{
	(void)state;
	assert_string_equal(insn_reg_name(INSN_REG_RDI), "rdi");
	assert_string_equal(insn_reg_name(INSN_REG_R15), "r15");
	assert_string_equal(insn_reg_name(INSN_REG_NONE), "?");
	assert_string_equal(insn_reg_name(INSN_REG_COUNT), "?");
}

#define NSPOTS (sizeof(spot_cases) / sizeof(spot_cases[0]))

int main(void)
{
	struct CMUnitTest tests[NSPOTS + 5] = {
		cmocka_unit_test(test_spot_reentry_needs_whole_function),
		cmocka_unit_test(test_spot_subregister_clobber),
		cmocka_unit_test(test_spot_einval),
		cmocka_unit_test(test_is_emulated),
		cmocka_unit_test(test_reg_name),
	};
	size_t i;

	/* One named test per real function. */
	for (i = 0; i < NSPOTS; i++)
		tests[5 + i] = (struct CMUnitTest){
			.name = spot_cases[i].name,
			.test_func = test_spot,
			.initial_state = (void *)&spot_cases[i],
		};
	return _cmocka_run_group_tests("insn", tests, NSPOTS + 5, NULL, NULL);
}
