// SPDX-License-Identifier: MIT
/*
 * Python stacks: the struct offsets BPF follows to the current frame, per CPython version, and
 * the userspace half that names a recorded frame.  Offsets are x86-64, from each version's
 * headers (checked against DWARF of the pyenv builds and Debian's 3.11.2 headers).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "linetable.h"
#include "procmem.h"
#include "pystack.h"

struct version_layout {
	int minor;
	struct pyleak_stack_layout bpf;	/* runtime and code_type are filled per process */
	uint16_t co_firstlineno;	/* int */
	uint16_t co_filename;
	uint16_t co_name;
	uint16_t co_linetable;		/* co_lnotab before 3.10 */
	enum linetable_format lines;
	uint16_t str_ascii;		/* data of a compact ASCII str */
	uint16_t str_compact;		/* data of a compact non-ASCII str */
};

/*
 * Thread state: <=3.11 the GIL holder's, from _PyRuntime.gilstate.tstate_current; 3.12/3.13
 * the GIL's last holder (main interpreter -> ceval.gil -> last_holder): a thread allocating
 * Python objects holds the GIL.  Frames: <=3.10 PyFrameObject (f_back, f_code, f_lasti);
 * 3.11+ _PyInterpreterFrame, whose position is a pointer into the code's bytecode.
 */
static const struct version_layout layouts[] = {
	{ 8, { .tstate = { 1368 }, .ntstate = 1, .frame = { 24 }, .nframe = 1, .back = 24,
	       .code = 32, .pos_kind = PYLEAK_POS_LASTI_BYTES, .pos = 104 },
	  40, 104, 112, 120, LINETABLE_LNOTAB, 48, 72 },
	{ 9, { .tstate = { 568 }, .ntstate = 1, .frame = { 24 }, .nframe = 1, .back = 24,
	       .code = 32, .pos_kind = PYLEAK_POS_LASTI_BYTES, .pos = 104 },
	  40, 104, 112, 120, LINETABLE_LNOTAB, 48, 72 },
	{ 10, { .tstate = { 568 }, .ntstate = 1, .frame = { 24 }, .nframe = 1, .back = 24,
	        .code = 32, .pos_kind = PYLEAK_POS_LASTI_UNITS, .pos = 96 },
	  40, 104, 112, 120, LINETABLE_310, 48, 72 },
	{ 11, { .tstate = { 576 }, .ntstate = 1, .frame = { 56, 8 }, .nframe = 2, .back = 48,
	        .code = 32, .pos_kind = PYLEAK_POS_INSTR_PTR, .pos = 56, .code_adaptive = 184 },
	  72, 112, 120, 136, LINETABLE_LOCATIONS, 48, 72 },
	{ 12, { .tstate = { 48, 384, 8 }, .ntstate = 3, .frame = { 56, 0 }, .nframe = 2,
	        .back = 8, .code = 0, .pos_kind = PYLEAK_POS_INSTR_PTR, .pos = 56,
	        .code_adaptive = 192, .owner = 70, .owner_skip = 3 },
	  68, 112, 120, 136, LINETABLE_LOCATIONS, 40, 56 },
	{ 13, { .tstate = { 640, 16, 8 }, .ntstate = 3, .frame = { 72 }, .nframe = 1,
	        .back = 8, .code = 0, .pos_kind = PYLEAK_POS_INSTR_PTR, .pos = 56,
	        .code_adaptive = 200, .owner = 70, .owner_skip = 3 },
	  68, 112, 120, 136, LINETABLE_LOCATIONS, 40, 56 },
};

#define STR_STATE	32
#define BYTES_SIZE	16
#define BYTES_DATA	32
#define LINETABLE_MAX	(1u << 20)
#define CACHE_SLOTS	1024u

static const struct version_layout *layout_find(int major, int minor)
{
	size_t i;

	if (major != 3)
		return NULL;
	for (i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].minor == minor)
			return &layouts[i];
	return NULL;
}

int pystack_layout(const struct python_info *py, struct pyleak_stack_layout *out)
{
	const struct version_layout *l = layout_find(py->major, py->minor);
	uint64_t code_type;

	memset(out, 0, sizeof(*out));
	if (!l || !py->runtime || python_symbol_addr(py, "PyCode_Type", &code_type))
		return -EPROTONOSUPPORT;
	*out = l->bpf;
	out->runtime = py->runtime;
	out->code_type = code_type;
	return 0;
}

struct code_entry {
	uint64_t code;		/* 0: empty */
	struct pystack_frame base;	/* function and file; line unused */
	int firstlineno;
	uint8_t *table;
	size_t table_len;
};

struct pystack_cache {
	pid_t pid;
	const struct version_layout *l;
	struct code_entry slots[CACHE_SLOTS];
};

struct pystack_cache *pystack_cache_new(const struct python_info *py)
{
	const struct version_layout *l = layout_find(py->major, py->minor);
	struct pystack_cache *c;

	if (!l)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c) {
		c->pid = py->pid;
		c->l = l;
	}
	return c;
}

void pystack_cache_free(struct pystack_cache *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < CACHE_SLOTS; i++)
		free(c->slots[i].table);
	free(c);
}

static size_t utf8_put(char *out, size_t room, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = 0xc0 | cp >> 6;
		b[1] = 0x80 | (cp & 0x3f);
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = 0xe0 | cp >> 12;
		b[1] = 0x80 | ((cp >> 6) & 0x3f);
		b[2] = 0x80 | (cp & 0x3f);
		n = 3;
	} else {
		b[0] = 0xf0 | ((cp >> 18) & 0x07);
		b[1] = 0x80 | ((cp >> 12) & 0x3f);
		b[2] = 0x80 | ((cp >> 6) & 0x3f);
		b[3] = 0x80 | (cp & 0x3f);
		n = 4;
	}
	if (n >= room)
		return 0;
	memcpy(out, b, n);
	return n;
}

/* A compact str object of the target as UTF-8 (truncated to fit). */
static int str_read(const struct pystack_cache *c, uint64_t obj, char *out, size_t size)
{
	uint8_t raw[512 * 4];
	uint64_t len;
	uint32_t state, kind, i;
	size_t used = 0, n;
	int err;

	out[0] = '\0';
	err = procmem_read_u64(c->pid, obj + 16, &len);
	if (!err)
		err = procmem_read(c->pid, obj + STR_STATE, &state, sizeof(state));
	if (err)
		return err;
	if (!(state & (1u << 5)))
		return -EINVAL;		/* not compact: never the case for names and file names */
	kind = (state >> 2) & 7;
	if (kind != 1 && kind != 2 && kind != 4)
		return -EINVAL;
	if (len > sizeof(raw) / kind)
		len = sizeof(raw) / kind;
	err = procmem_read(c->pid, obj + (state & (1u << 6) ? c->l->str_ascii : c->l->str_compact),
			   raw, len * kind);
	if (err)
		return err;
	for (i = 0; i < len; i++) {
		uint32_t cp = kind == 1 ? raw[i] : kind == 2 ? ((uint16_t *)raw)[i] : ((uint32_t *)raw)[i];

		n = utf8_put(out + used, size - used, cp);
		if (!n)
			break;
		used += n;
	}
	out[used] = '\0';
	return 0;
}

static int code_load(const struct pystack_cache *c, uint64_t code, struct code_entry *e)
{
	const struct version_layout *l = c->l;
	uint64_t name, file, table, len;
	int32_t first;
	int err;

	err = procmem_read_u64(c->pid, code + l->co_name, &name);
	if (!err)
		err = procmem_read_u64(c->pid, code + l->co_filename, &file);
	if (!err)
		err = procmem_read_u64(c->pid, code + l->co_linetable, &table);
	if (!err)
		err = procmem_read(c->pid, code + l->co_firstlineno, &first, sizeof(first));
	if (!err)
		err = str_read(c, name, e->base.function, sizeof(e->base.function));
	if (!err)
		err = str_read(c, file, e->base.file, sizeof(e->base.file));
	if (!err)
		err = procmem_read_u64(c->pid, table + BYTES_SIZE, &len);
	if (err)
		return err;
	if (len > LINETABLE_MAX)
		return -EINVAL;
	free(e->table);
	e->table = malloc(len ? len : 1);
	if (!e->table)
		return -ENOMEM;
	err = procmem_read(c->pid, table + BYTES_DATA, e->table, len);
	if (err) {
		free(e->table);
		e->table = NULL;
		return err;
	}
	e->table_len = len;
	e->firstlineno = first;
	e->code = code;
	return 0;
}

int pystack_frame_resolve(struct pystack_cache *c, uint64_t code, uint32_t offset,
			  struct pystack_frame *out)
{
	struct code_entry *e = &c->slots[(code >> 4) * 0x9E3779B97F4A7C15ull >> 54];
	int err;

	if (e->code != code) {
		e->code = 0;
		err = code_load(c, code, e);
		if (err)
			return err;
	}
	*out = e->base;
	out->line = linetable_line(c->l->lines, e->table, e->table_len, e->firstlineno, offset);
	return 0;
}
