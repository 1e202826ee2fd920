// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Python stacks: the struct offsets BPF follows to the current frame, per CPython version, and
 * the userspace half that names a recorded frame.  Offsets come from daemon/cpython_offsets.h
 * (generated from each interpreter's DWARF); on 3.13+ the target's own _Py_DebugOffsets
 * overrides the fields it describes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpython_offsets.h"
#include "linetable.h"
#include "log.h"
#include "procmem.h"
#include "pystack.h"
#include "u64map.h"

struct version_layout {
	struct pyleak_stack_layout bpf;	/* runtime and code_type are filled per process */
	uint16_t co_firstlineno;	/* int */
	uint16_t co_filename;
	uint16_t co_name;
	uint16_t co_linetable;		/* co_lnotab before 3.10 */
	enum linetable_format lines;
	uint16_t str_length;
	uint16_t str_state;
	uint16_t str_ascii;		/* data of a compact ASCII str */
	uint16_t str_compact;		/* data of a compact non-ASCII str */
	uint16_t bytes_size;
	uint16_t bytes_data;
	uint16_t co_code;		/* a bytes object (<=3.10; 3.11+: bpf.code_adaptive) */
	uint8_t op_get_iter;
};

#define LINETABLE_MAX	(1u << 20)
#define CACHE_SLOTS	1024u
/* Line tables a cache holds in all (a real one is a few KiB: slots * LINETABLE_MAX is not). */
#define CACHE_BYTES_MAX	(16u << 20)
/* Pointers of x86-64 user space. */
#define USER_ADDR_MIN	4096ull
#define USER_ADDR_MAX	(1ull << 47)
/* Names: at most this many characters are read; a str's header is at most STR_HEAD_MAX. */
#define STR_CHARS_MAX	512u
#define STR_HEAD_MAX	128u
#define STR_COPY_MAX	(STR_HEAD_MAX + STR_CHARS_MAX * 4)
/* The fields of a code object read, and a bytes object's header, fit in this. */
#define CODE_HEAD_MAX	1024u

/*
 * Thread state: <=3.11 the GIL holder's, from _PyRuntime.gilstate.tstate_current; 3.12/3.13
 * the GIL's last holder (main interpreter -> ceval.gil -> last_holder): a thread allocating
 * Python objects holds the GIL.  Frames: <=3.10 PyFrameObject (f_back, f_code, f_lasti);
 * 3.11+ _PyInterpreterFrame, whose position is a pointer into the code's bytecode.  Positions
 * are counted in bytes up to 3.9, in 2-byte code units on 3.10.
 */
static int layout_from_table(int major, int minor, struct version_layout *l)
{
	const struct cpython_offsets *o = cpython_offsets_find(major, minor);
	struct pyleak_stack_layout *b = &l->bpf;

	memset(l, 0, sizeof(*l));
	if (!o)
		return -EPROTONOSUPPORT;
	if (o->runtime_tstate_current) {
		b->tstate[b->ntstate++] = o->runtime_tstate_current;
	} else {
		b->tstate[b->ntstate++] = o->runtime_interp_main;
		b->tstate[b->ntstate++] = o->interp_ceval_gil;
		b->tstate[b->ntstate++] = o->gil_last_holder;
	}
	if (o->tstate_cframe) {
		b->frame[b->nframe++] = o->tstate_cframe;
		b->frame[b->nframe++] = o->cframe_current_frame;
	} else {
		b->frame[b->nframe++] = o->tstate_frame;
	}
	b->interp_main = o->runtime_interp_main;
	b->tstate_head = o->interp_tstate_head;
	b->tstate_next = o->tstate_next;
	b->tstate_thread_id = o->tstate_thread_id;
	b->back = o->frame_back;
	b->code = o->frame_code;
	b->pos = o->frame_pos;
	b->pos_kind = o->co_code_adaptive ? PYLEAK_POS_INSTR_PTR :
		      minor >= 10 ? PYLEAK_POS_LASTI_UNITS : PYLEAK_POS_LASTI_BYTES;
	b->code_adaptive = o->co_code_adaptive;
	if (o->frame_owner_cstack) {
		b->owner = o->frame_owner;
		b->owner_skip = o->frame_owner_cstack;
	}
	l->co_firstlineno = o->co_firstlineno;
	l->co_filename = o->co_filename;
	l->co_name = o->co_name;
	l->co_linetable = o->co_linetable;
	l->lines = o->co_code_adaptive ? LINETABLE_LOCATIONS :
		   minor >= 10 ? LINETABLE_310 : LINETABLE_LNOTAB;
	l->str_length = CPY_STR_LENGTH;
	l->str_state = CPY_STR_STATE;
	l->str_ascii = o->str_ascii_data;
	l->str_compact = o->str_compact_data;
	l->bytes_size = CPY_BYTES_SIZE;
	l->bytes_data = CPY_BYTES_DATA;
	l->co_code = o->co_code;
	l->op_get_iter = o->op_get_iter;
	return 0;
}

/* Largest struct size accepted from _Py_DebugOffsets (3.13's PyInterpreterState: 190 KiB). */
#define DEBUG_STRUCT_MAX	(1u << 20)
#define DEBUG_READ_MAX		4096u

#define DBG(f)		offsetof(struct cpython_offsets, f)
#define LAYOUT(f)	offsetof(struct version_layout, f)

/* A field the layout takes from _Py_DebugOffsets: where its offset and its struct's size are
 * (fields of struct cpython_offsets holding positions in _Py_DebugOffsets), how many bytes are
 * read there (0: only its address is used), and which offset of the layout it sets. */
struct debug_field {
	const char *name;
	size_t pos, size_pos;
	uint8_t width;
	size_t dst;
};

/* The chains of 3.13+: main interpreter -> ceval.gil -> last_holder, and current_frame. */
static const struct debug_field debug_fields[] = {
	{ "interpreter_state.ceval_gil", DBG(dbg_interp_ceval_gil), DBG(dbg_interp_size), 8,
	  LAYOUT(bpf.tstate[1]) },
	{ "thread_state.current_frame", DBG(dbg_tstate_current_frame), DBG(dbg_tstate_size), 8,
	  LAYOUT(bpf.frame[0]) },
	{ "interpreter_frame.previous", DBG(dbg_frame_previous), DBG(dbg_frame_size), 8,
	  LAYOUT(bpf.back) },
	{ "interpreter_frame.executable", DBG(dbg_frame_executable), DBG(dbg_frame_size), 8,
	  LAYOUT(bpf.code) },
	{ "interpreter_frame.instr_ptr", DBG(dbg_frame_instr_ptr), DBG(dbg_frame_size), 8,
	  LAYOUT(bpf.pos) },
	{ "interpreter_frame.owner", DBG(dbg_frame_owner), DBG(dbg_frame_size), 1,
	  LAYOUT(bpf.owner) },
	{ "code_object.co_code_adaptive", DBG(dbg_code_adaptive), DBG(dbg_code_size), 0,
	  LAYOUT(bpf.code_adaptive) },
	{ "code_object.firstlineno", DBG(dbg_code_firstlineno), DBG(dbg_code_size), 4,
	  LAYOUT(co_firstlineno) },
	{ "code_object.filename", DBG(dbg_code_filename), DBG(dbg_code_size), 8,
	  LAYOUT(co_filename) },
	{ "code_object.name", DBG(dbg_code_name), DBG(dbg_code_size), 8, LAYOUT(co_name) },
	{ "code_object.linetable", DBG(dbg_code_linetable), DBG(dbg_code_size), 8,
	  LAYOUT(co_linetable) },
	{ "unicode_object.length", DBG(dbg_str_length), DBG(dbg_str_size), 8, LAYOUT(str_length) },
	{ "unicode_object.state", DBG(dbg_str_state), DBG(dbg_str_size), 4, LAYOUT(str_state) },
	{ "unicode_object.asciiobject_size", DBG(dbg_str_ascii_size), DBG(dbg_str_size), 0,
	  LAYOUT(str_ascii) },
	{ "bytes_object.ob_size", DBG(dbg_bytes_ob_size), DBG(dbg_bytes_size), 8,
	  LAYOUT(bytes_size) },
	{ "bytes_object.ob_sval", DBG(dbg_bytes_ob_sval), DBG(dbg_bytes_size), 0,
	  LAYOUT(bytes_data) },
};

/* Offsets BPF and the census hold as constants (bpf/cpython.h): checked, not taken. */
static const struct debug_constant {
	const char *name;
	size_t pos, size_pos;
	uint64_t value;
} debug_constants[] = {
	{ "type_object.tp_name", DBG(dbg_type_name), DBG(dbg_type_size), CPY_TP_NAME },
	{ "type_object.tp_flags", DBG(dbg_type_flags), DBG(dbg_type_size), CPY_TP_FLAGS },
};

static uint16_t row_u16(const struct cpython_offsets *o, size_t pos)
{
	uint16_t v;

	memcpy(&v, (const char *)o + pos, sizeof(v));
	return v;
}

/* The word at position pos of the copy of _Py_DebugOffsets (positions come from the table). */
static uint64_t debug_u64(const uint8_t *raw, size_t len, uint16_t pos)
{
	uint64_t v = 0;

	if ((size_t)pos + sizeof(v) <= len)
		memcpy(&v, raw + pos, sizeof(v));
	return v;
}

/* A field's offset, if it lies inside its struct and the struct's size is sane; else -1. */
static int64_t debug_offset(const uint8_t *raw, size_t len, const struct cpython_offsets *o,
			    size_t pos, size_t size_pos, unsigned int width)
{
	uint64_t size = debug_u64(raw, len, row_u16(o, size_pos));
	uint64_t off = debug_u64(raw, len, row_u16(o, pos));

	if (!size || size > DEBUG_STRUCT_MAX || off > UINT16_MAX || off + width > size)
		return -1;
	return off;
}

/*
 * 3.13+: _PyRuntime begins with _Py_DebugOffsets, the offsets of this very build.  It is target
 * memory: the cookie, the version and every offset are checked, and any doubt keeps the whole
 * table.  Fields that differ from the table are logged (verbose) and taken from the target.
 */
static int layout_from_debug_offsets(const struct python_info *py, struct version_layout *l,
				     bool verbose)
{
	const struct cpython_offsets *o = cpython_offsets_find(py->major, py->minor);
	int64_t off[sizeof(debug_fields) / sizeof(debug_fields[0])], gil, holder;
	uint8_t raw[DEBUG_READ_MAX];
	uint64_t version;
	size_t i, len;
	int err, differ = 0;

	if (!o || !o->dbg_size)
		return -ENOENT;
	len = o->dbg_size < sizeof(raw) ? o->dbg_size : sizeof(raw);
	if (l->bpf.ntstate != 3 || l->bpf.nframe != 1)
		return -EPROTO;		/* debug_fields follow 3.13's chains */
	err = procmem_read(py->pid, py->runtime, raw, len);
	if (err)
		return err;
	version = debug_u64(raw, len, o->dbg_version);
	if (memcmp(raw, CPY_DEBUG_COOKIE, CPY_DEBUG_COOKIE_LEN) || version >> 24 != 3 ||
	    ((version >> 16) & 0xff) != (uint64_t)py->minor ||
	    debug_u64(raw, len, o->dbg_free_threaded))
		return -EPROTO;
	for (i = 0; i < sizeof(debug_fields) / sizeof(debug_fields[0]); i++) {
		off[i] = debug_offset(raw, len, o, debug_fields[i].pos, debug_fields[i].size_pos,
				      debug_fields[i].width);
		if (off[i] < 0)
			return -ERANGE;
	}
	/* last_holder inside the GIL state: both offsets are from the interpreter state. */
	gil = (int64_t)debug_u64(raw, len, o->dbg_interp_gil);
	holder = (int64_t)debug_u64(raw, len, o->dbg_interp_gil_holder);
	if (gil < 0 || holder < gil || holder - gil > UINT16_MAX ||
	    (uint64_t)holder + 8 > debug_u64(raw, len, o->dbg_interp_size))
		return -ERANGE;
	for (i = 0; i < sizeof(debug_fields) / sizeof(debug_fields[0]); i++) {
		uint16_t *dst = (uint16_t *)((char *)l + debug_fields[i].dst);

		if (*dst != off[i]) {
			if (verbose)
				log_warn("pid %d: _Py_DebugOffsets %s = %lld, generated table %u: "
					 "using _Py_DebugOffsets", (int)py->pid, debug_fields[i].name,
					 (long long)off[i], *dst);
			differ++;
		}
		*dst = off[i];
	}
	if (l->bpf.tstate[2] != holder - gil) {
		if (verbose)
			log_warn("pid %d: _Py_DebugOffsets gil last_holder = %lld, generated table "
				 "%u: using _Py_DebugOffsets", (int)py->pid,
				 (long long)(holder - gil), l->bpf.tstate[2]);
		differ++;
	}
	l->bpf.tstate[2] = holder - gil;
	for (i = 0; verbose && i < sizeof(debug_constants) / sizeof(debug_constants[0]); i++) {
		const struct debug_constant *k = &debug_constants[i];
		int64_t v = debug_offset(raw, len, o, k->pos, k->size_pos, 8);

		if (v != (int64_t)k->value)
			log_warn("pid %d: _Py_DebugOffsets %s = %lld, but pyleak assumes %llu",
				 (int)py->pid, k->name, (long long)v, (unsigned long long)k->value);
	}
	if (verbose)
		log_debug("pid %d: stack offsets from _Py_DebugOffsets (version %#llx): %zu fields, "
			  "%d differ from the generated table", (int)py->pid,
			  (unsigned long long)version, sizeof(debug_fields) / sizeof(debug_fields[0]) + 1,
			  differ);
	return 0;
}

/* The layout of the target's interpreter: the generated table, then _Py_DebugOffsets. */
static int layout_resolve(const struct python_info *py, struct version_layout *l, bool verbose)
{
	int err = layout_from_table(py->major, py->minor, l);

	if (err)
		return err;
	err = layout_from_debug_offsets(py, l, verbose);
	if (err && err != -ENOENT && verbose)
		log_warn("pid %d: _Py_DebugOffsets unusable (%s): offsets from the generated table",
			 (int)py->pid, strerror(-err));
	return 0;
}

int pystack_layout(const struct python_info *py, struct pyleak_stack_layout *out)
{
	struct version_layout l;
	uint64_t code_type;

	memset(out, 0, sizeof(*out));
	if (!py->runtime || python_symbol_addr(py, "PyCode_Type", &code_type) ||
	    layout_resolve(py, &l, true))
		return -EPROTONOSUPPORT;
	*out = l.bpf;
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
	struct version_layout l;
	size_t bytes;		/* of the line tables held */
	struct pystack_memo *memo;	/* the process's, or NULL */
	struct code_entry slots[CACHE_SLOTS];
};

/* A code object kept in a memo: its names and line table, malloc'd. */
struct memo_code {
	char *function, *file;
	int firstlineno;
	uint8_t *table;
	size_t table_len;
};

struct pystack_memo {
	struct u64map *codes;	/* code object address -> struct memo_code */
	struct u64map *stacks;	/* ids of the stacks noted (no value) */
	size_t bytes;		/* of the names and tables held */
};

struct pystack_cache *pystack_cache_new(const struct python_info *py)
{
	struct pystack_cache *c = calloc(1, sizeof(*c));

	if (c && layout_resolve(py, &c->l, false)) {
		free(c);
		return NULL;
	}
	if (c) {
		c->pid = py->pid;
		c->memo = py->memo;
	}
	return c;
}

static void entry_clear(struct pystack_cache *c, struct code_entry *e)
{
	c->bytes -= e->table_len;
	free(e->table);
	e->table = NULL;
	e->table_len = 0;
	e->code = 0;
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

static inline bool user_addr(uint64_t addr)
{
	return addr >= USER_ADDR_MIN && addr < USER_ADDR_MAX;
}

/* How many bytes of a str object hold its length and state. */
static size_t str_head_len(const struct version_layout *l)
{
	size_t a = (size_t)l->str_length + 8, b = (size_t)l->str_state + 4;

	return a > b ? a : b;
}

/* Where the characters of a str copy (len bytes from its start) are: their offset, size (1, 2
 * or 4) and how many of them to take (at most STR_CHARS_MAX); -EINVAL: not a compact str. */
static int str_extent(const struct version_layout *l, const uint8_t *raw, size_t len,
		      size_t *data, uint32_t *kind, size_t *n)
{
	uint64_t length;
	uint32_t state;

	if (len < str_head_len(l))
		return -EINVAL;
	memcpy(&length, raw + l->str_length, sizeof(length));
	memcpy(&state, raw + l->str_state, sizeof(state));
	if (!(state & CPY_STR_COMPACT))
		return -EINVAL;		/* not compact: never the case for names and file names */
	*kind = (state >> CPY_STR_KIND_SHIFT) & CPY_STR_KIND_MASK;
	if (*kind != 1 && *kind != 2 && *kind != 4)
		return -EINVAL;
	*data = state & CPY_STR_ASCII ? l->str_ascii : l->str_compact;
	if (*data > STR_HEAD_MAX)
		return -EINVAL;
	*n = length < STR_CHARS_MAX ? length : STR_CHARS_MAX;
	return 0;
}

/* A str copy as UTF-8 (truncated to fit): code points UTF-8 cannot hold (lone surrogates,
 * beyond U+10FFFF) become U+FFFD, so that the result is always valid. */
static int str_decode(const struct version_layout *l, const uint8_t *raw, size_t len, char *out,
		      size_t size)
{
	size_t data, n, i, used = 0;
	uint32_t kind;
	int err;

	out[0] = '\0';
	err = str_extent(l, raw, len, &data, &kind, &n);
	if (err)
		return err;
	if (data > len || n > (len - data) / kind)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		const uint8_t *p = raw + data + i * kind;
		uint32_t cp = p[0];
		size_t k;

		if (kind == 2)
			cp |= (uint32_t)p[1] << 8;
		else if (kind == 4)
			cp |= (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		if ((cp >= 0xd800 && cp < 0xe000) || cp > 0x10ffff)
			cp = 0xfffd;
		k = utf8_put(out + used, size - used, cp);
		if (!k)
			break;
		used += k;
	}
	out[used] = '\0';
	return 0;
}

/* A compact str object of the target as UTF-8: its header, then its characters. */
static int str_read(const struct pystack_cache *c, uint64_t obj, char *out, size_t size)
{
	uint8_t raw[STR_COPY_MAX];
	size_t data, n, head = str_head_len(&c->l);
	uint32_t kind;
	int err;

	out[0] = '\0';
	if (!user_addr(obj) || head > STR_HEAD_MAX)
		return -EINVAL;
	err = procmem_read(c->pid, obj, raw, head);
	if (!err)
		err = str_extent(&c->l, raw, head, &data, &kind, &n);
	if (!err)
		err = procmem_read(c->pid, obj + data, raw + data, n * kind);
	if (!err)
		err = str_decode(&c->l, raw, data + n * kind, out, size);
	return err;
}

int pystack_str_read(const struct pystack_cache *c, uint64_t obj, char *out, size_t size)
{
	return str_read(c, obj, out, size);
}

/* The fields of a code object (a copy of its first len bytes) the frame is named from. */
struct code_refs {
	uint64_t name, file, table;
	int32_t firstlineno;
};

static size_t code_head_len(const struct version_layout *l)
{
	size_t n = (size_t)l->co_firstlineno + 4;

	if ((size_t)l->co_filename + 8 > n)
		n = (size_t)l->co_filename + 8;
	if ((size_t)l->co_name + 8 > n)
		n = (size_t)l->co_name + 8;
	if ((size_t)l->co_linetable + 8 > n)
		n = (size_t)l->co_linetable + 8;
	return n;
}

static int code_refs_get(const struct version_layout *l, const uint8_t *raw, size_t len,
			 struct code_refs *r)
{
	if (len < code_head_len(l))
		return -EINVAL;
	memcpy(&r->name, raw + l->co_name, sizeof(r->name));
	memcpy(&r->file, raw + l->co_filename, sizeof(r->file));
	memcpy(&r->table, raw + l->co_linetable, sizeof(r->table));
	memcpy(&r->firstlineno, raw + l->co_firstlineno, sizeof(r->firstlineno));
	return user_addr(r->name) && user_addr(r->file) && user_addr(r->table) ? 0 : -EINVAL;
}

/* The length of a line table, from a copy of its bytes object's header: at most
 * LINETABLE_MAX (a longer one is no real code object's). */
static int table_len_get(const struct version_layout *l, const uint8_t *raw, size_t len,
			 size_t *out)
{
	uint64_t n;

	if (len < (size_t)l->bytes_size + 8)
		return -EINVAL;
	memcpy(&n, raw + l->bytes_size, sizeof(n));
	if (n > LINETABLE_MAX)
		return -EINVAL;
	*out = n;
	return 0;
}

int pystack_code_decode(int major, int minor, const struct pystack_code_copy *cc,
			uint32_t offset, struct pystack_frame *out)
{
	struct version_layout l;
	struct code_refs r;
	size_t n;
	int err;

	err = layout_from_table(major, minor, &l);
	if (!err)
		err = code_refs_get(&l, cc->code, cc->code_len, &r);
	if (!err)
		err = str_decode(&l, cc->name, cc->name_len, out->function, sizeof(out->function));
	if (!err)
		err = str_decode(&l, cc->file, cc->file_len, out->file, sizeof(out->file));
	if (!err)
		err = table_len_get(&l, cc->table, cc->table_len, &n);
	if (err)
		return err;
	if (cc->table_len < (size_t)l.bytes_data + n)
		return -EINVAL;
	out->line = linetable_line(l.lines, cc->table + l.bytes_data, n, r.firstlineno, offset);
	return 0;
}

static int code_load(struct pystack_cache *c, uint64_t code, struct code_entry *e)
{
	const struct version_layout *l = &c->l;
	uint8_t raw[CODE_HEAD_MAX];
	struct code_refs r;
	size_t head = code_head_len(l), len;
	int err;

	if (!user_addr(code) || head > sizeof(raw) || (size_t)l->bytes_data > sizeof(raw))
		return -EINVAL;
	err = procmem_read(c->pid, code, raw, head);
	if (!err)
		err = code_refs_get(l, raw, head, &r);
	if (!err)
		err = str_read(c, r.name, e->base.function, sizeof(e->base.function));
	if (!err)
		err = str_read(c, r.file, e->base.file, sizeof(e->base.file));
	if (!err)
		err = procmem_read(c->pid, r.table, raw, l->bytes_data);
	if (!err)
		err = table_len_get(l, raw, l->bytes_data, &len);
	if (err)
		return err;
	/* The tables held are bounded in all: past the bound, the cache starts over. */
	if (c->bytes + len > CACHE_BYTES_MAX)
		for (size_t i = 0; i < CACHE_SLOTS; i++)
			entry_clear(c, &c->slots[i]);
	e->table = malloc(len ? len : 1);
	if (!e->table)
		return -ENOMEM;
	err = procmem_read(c->pid, r.table + l->bytes_data, e->table, len);
	if (err) {
		free(e->table);
		e->table = NULL;
		return err;
	}
	e->table_len = len;
	c->bytes += len;
	e->firstlineno = r.firstlineno;
	e->code = code;
	return 0;
}

static struct code_entry *slot_of(struct pystack_cache *c, uint64_t code)
{
	return &c->slots[(code >> 4) * 0x9E3779B97F4A7C15ull >> 54];
}

/* The frame as the memo knows its code object: 0 or -EFAULT. */
static int memo_resolve(const struct pystack_cache *c, uint64_t code, uint32_t offset,
			struct pystack_frame *out)
{
	const struct memo_code *mc = c->memo ? u64map_lookup(c->memo->codes, code) : NULL;

	if (!mc)
		return -EFAULT;
	snprintf(out->function, sizeof(out->function), "%s", mc->function);
	snprintf(out->file, sizeof(out->file), "%s", mc->file);
	out->line = linetable_line(c->l.lines, mc->table, mc->table_len, mc->firstlineno, offset);
	return 0;
}

int pystack_frame_gets_iter(const struct pystack_cache *c, uint64_t code, uint32_t offset)
{
	const struct version_layout *l = &c->l;
	uint64_t bytecode, len;
	uint8_t op;
	int err;

	if (!l->op_get_iter || code < USER_ADDR_MIN || code >= USER_ADDR_MAX ||
	    offset >= LINETABLE_MAX)
		return -EINVAL;
	if (l->bpf.code_adaptive) {
		/* inline, as long as the code object: BPF kept the offset inside it */
		bytecode = code + l->bpf.code_adaptive;
	} else {
		err = procmem_read_u64(c->pid, code + l->co_code, &bytecode);
		if (!err && (bytecode < USER_ADDR_MIN || bytecode >= USER_ADDR_MAX))
			err = -EINVAL;
		if (!err)
			err = procmem_read_u64(c->pid, bytecode + l->bytes_size, &len);
		if (!err && offset >= len)
			err = -EINVAL;
		if (err)
			return err;
		bytecode += l->bytes_data;
	}
	err = procmem_read(c->pid, bytecode + offset, &op, 1);
	return err ? err : op == l->op_get_iter;
}

int pystack_frame_resolve(struct pystack_cache *c, uint64_t code, uint32_t offset,
			  struct pystack_frame *out)
{
	struct code_entry *e = slot_of(c, code);
	int err;

	if (e->code != code) {
		entry_clear(c, e);
		err = code_load(c, code, e);
		if (err)
			return memo_resolve(c, code, offset, out) ? err : 0;
	}
	*out = e->base;
	out->line = linetable_line(c->l.lines, e->table, e->table_len, e->firstlineno, offset);
	return 0;
}

int pystack_memo_new(struct pystack_memo **out)
{
	struct pystack_memo *m = calloc(1, sizeof(*m));
	/* Each code object costs a name, a file and a table: a few hundred bytes. */
	int err = m ? u64map_new(sizeof(struct memo_code), PYSTACK_MEMO_BYTES / 256, &m->codes) :
		      -ENOMEM;

	if (!err)
		err = u64map_new(0, PYSTACK_MEMO_STACKS, &m->stacks);
	if (err) {
		pystack_memo_free(m);
		return err;
	}
	*out = m;
	return 0;
}

void pystack_memo_free(struct pystack_memo *m)
{
	struct memo_code *mc;
	size_t pos = 0;
	uint64_t code;
	void *v;

	if (!m)
		return;
	while (m->codes && u64map_next(m->codes, &pos, &code, &v)) {
		mc = v;
		free(mc->function);
		free(mc->file);
		free(mc->table);
	}
	u64map_free(m->codes);
	u64map_free(m->stacks);
	free(m);
}

/* Keeps code (loaded through c) in c's memo, if it has room. */
static void memo_keep(struct pystack_cache *c, uint64_t code)
{
	struct pystack_memo *m = c->memo;
	struct memo_code mc = {};
	struct pystack_frame f;
	struct code_entry *e;
	size_t len;
	void *v;

	if (u64map_lookup(m->codes, code) || pystack_frame_resolve(c, code, 0, &f))
		return;
	e = slot_of(c, code);
	len = strlen(e->base.function) + strlen(e->base.file) + 2 + e->table_len;
	if (m->bytes + len > PYSTACK_MEMO_BYTES)
		return;
	mc.function = strdup(e->base.function);
	mc.file = strdup(e->base.file);
	mc.table = malloc(e->table_len ? e->table_len : 1);
	mc.firstlineno = e->firstlineno;
	mc.table_len = e->table_len;
	if (!mc.function || !mc.file || !mc.table || u64map_insert(m->codes, code, &v) != 1) {
		free(mc.function);
		free(mc.file);
		free(mc.table);
		return;
	}
	memcpy(mc.table, e->table, e->table_len);
	memcpy(v, &mc, sizeof(mc));
	m->bytes += len;
}

void pystack_memo_note(struct pystack_cache *c, uint64_t id, const struct pyleak_stack *st)
{
	void *v;
	uint32_t i;

	if (!c->memo || u64map_insert(c->memo->stacks, id, &v) != 1)
		return;
	for (i = 0; i < st->depth && i < PYLEAK_STACK_DEPTH; i++)
		memo_keep(c, st->frames[i].code);
}

size_t pystack_memo_bytes(const struct pystack_memo *m)
{
	return m ? sizeof(*m) + m->bytes + u64map_bytes(m->codes) + u64map_bytes(m->stacks) : 0;
}
