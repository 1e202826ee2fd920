// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * `path`: the retention paths of a type's objects, from the reference walk (refwalk.h), named
 * as a user would write them.  The last walk is kept (one, the daemon's memory bound) and goes
 * on at the next request while it is incomplete; a complete one is reused for a while.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cpython.h"
#include "discovery.h"
#include "loop.h"
#include "procfs.h"
#include "procmem.h"
#include "pystack.h"
#include "pytype.h"
#include "refwalk.h"
#include "sampler.h"
#include "text.h"
#include "view.h"

#define PATHS_MAX		5
#define STEPS_MAX		64
#define WALK_REUSE_S		10.0
/* What a `leaks` reply may spend on the walk: the daemon's loop waits meanwhile. */
#define LEAKS_SLICE_S		0.05
#define RANGES_MAX		65536u
#define NAME_LEN		128

/* The address ranges objects are read from: anonymous memory, and the files the target runs
 * code from (its interpreter, extension modules).  Others, a FUSE file the target maps among
 * them, could block process_vm_readv and the daemon's loop with it. */
struct range { uint64_t start, end; };

struct target_mem {
	pid_t pid;
	struct range *r;
	size_t n;
};

static int mem_load(struct target_mem *m)
{
	struct procfs_maps *maps;
	struct procfs_map pm;
	uint64_t code_inodes[256];
	size_t ncode = 0, room = 0, i;
	struct range *all = NULL;
	int ret, pass;

	/* Two passes over maps: the files with code, then the ranges. */
	for (pass = 0; pass < 2; pass++) {
		ret = procfs_maps_open(m->pid, &maps);
		if (ret)
			goto cleanup;
		while ((ret = procfs_maps_next(maps, &pm)) > 0) {
			bool ok = !pm.inode;

			if (pass == 0) {
				if (pm.inode && pm.perms[2] == 'x' && ncode < 256)
					code_inodes[ncode++] = pm.inode;
				continue;
			}
			for (i = 0; !ok && i < ncode; i++)
				ok = code_inodes[i] == pm.inode;
			if (pm.perms[0] != 'r' || !ok)
				continue;
			if (m->n && m->r[m->n - 1].end == pm.start) {
				m->r[m->n - 1].end = pm.end;
				continue;
			}
			if (m->n == RANGES_MAX)
				break;
			if (m->n == room) {
				room = room ? room * 2 : 256;
				all = realloc(m->r, room * sizeof(*all));
				if (!all) {
					ret = -ENOMEM;
					break;
				}
				m->r = all;
			}
			m->r[m->n++] = (struct range){ pm.start, pm.end };
		}
		procfs_maps_close(maps);
		if (ret < 0)
			goto cleanup;
	}
	ret = 0;
cleanup:
	return ret;
}

static bool mem_allowed(const struct target_mem *m, uint64_t addr, uint64_t len)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->r[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && m->r[lo].start <= addr && len <= m->r[lo].end - addr;
}

/* refwalk_readv_fn: one process_vm_readv for the allowed ranges up to the first that is not. */
static size_t mem_readv(void *arg, const struct refwalk_iov *v, size_t n)
{
	const struct target_mem *m = arg;
	struct iovec local[1024], remote[1024];
	size_t i, k, whole = 0;
	ssize_t got;

	for (i = 0; i < n && i < 1024 && mem_allowed(m, v[i].addr, v[i].len); i++) {
		local[i] = (struct iovec){ v[i].buf, v[i].len };
		remote[i] = (struct iovec){ (void *)(uintptr_t)v[i].addr, v[i].len };
	}
	if (!i)
		return 0;
	got = process_vm_readv(m->pid, local, i, remote, i, 0);
	for (k = 0; k < i && got >= (ssize_t)v[k].len; k++) {
		got -= v[k].len;
		whole++;
	}
	return whole;
}

/*
 * One kept walk per target, advanced by the sampler's ticks (view_paths_tick()) in slices of
 * TICK_SLICE_S (TICK_TOTAL_S for all targets per tick), so that `leaks` and `path` usually
 * answer from a complete recent walk; `path` walks on request while its type's is not
 * complete.  The walks' memory together is capped: over WALKS_MEMORY_MAX no walk is started
 * by a tick, and complete ones of other targets are dropped, least recently used first; if
 * that is not enough, an incomplete walk is dropped before its next slice would grow it.
 */
#define WALKS_MAX		64
#define WALKS_MEMORY_MAX	(512ull << 20)
#define TICK_SLICE_S		0.02
#define TICK_TOTAL_S		0.05
/* A complete walk answers `leaks` for LEAKS_REUSE_S; a tick starts the next one after
 * TICK_REFRESH_S. */
#define LEAKS_REUSE_S		180.0
#define TICK_REFRESH_S		60.0
/* `leaks` judges the leader to walk over this window, as by default. */
#define TICK_WINDOW_S		60.0

struct kept {
	pid_t pid;
	double attached_at;	/* the target's: a new target of the same pid is another walk */
	double done_at;		/* monotonic; 0: not complete */
	double used_at;		/* monotonic: its last slice asked by a request */
	struct refwalk *w;
};

static struct kept kept[WALKS_MAX];
static uint64_t tick_slices;
static uint64_t memory_drops;	/* incomplete walks dropped over WALKS_MEMORY_MAX */
static double tick_seconds;
static unsigned tick_next;	/* the target first served at the next tick, round robin */

static int layout_get(struct target *t, struct refwalk_layout *l)
{
	static const char *const names[REFWALK_KINDS] = {
		[REFWALK_LIST] = "PyList_Type", [REFWALK_TUPLE] = "PyTuple_Type",
		[REFWALK_DICT] = "PyDict_Type", [REFWALK_SET] = "PySet_Type",
		[REFWALK_FROZENSET] = "PyFrozenSet_Type", [REFWALK_CELL] = "PyCell_Type",
		[REFWALK_FUNCTION] = "PyFunction_Type", [REFWALK_METHOD] = "PyMethod_Type",
		[REFWALK_MODULE] = "PyModule_Type", [REFWALK_TYPE] = "PyType_Type",
		[REFWALK_CODE] = "PyCode_Type", [REFWALK_OBJECT] = "PyBaseObject_Type",
		[REFWALK_GENERATOR] = "PyGen_Type", [REFWALK_COROUTINE] = "PyCoro_Type",
		[REFWALK_ASYNCGEN] = "PyAsyncGen_Type", [REFWALK_FRAME] = "PyFrame_Type",
		[REFWALK_DEQUE] = "deque_type",
	};
	int k;

	memset(l, 0, sizeof(*l));
	l->o = cpython_offsets_find(t->py.major, t->py.minor);
	l->runtime = t->py.runtime;
	if (!l->o || !l->runtime)
		return -EOPNOTSUPP;
	for (k = REFWALK_LIST; k < REFWALK_KINDS; k++)
		if (python_symbol_addr(&t->py, names[k], &l->types[k])) {
			if (k <= REFWALK_OBJECT)
				return -EOPNOTSUPP;
			l->types[k] = 0;	/* not followed (a deque: found by its name) */
		}
	if (python_symbol_addr(&t->py, "PyByteArray_Type", &l->bytearray_type))
		l->bytearray_type = 0;
	return python_symbol_addr(&t->py, "PyUnicode_Type", &l->str_type) ? -EOPNOTSUPP : 0;
}

static bool kept_of(const struct kept *k, const struct target *t)
{
	return k->w && k->pid == t->pid && k->attached_at == t->attached_at;
}

static void kept_drop(struct kept *k)
{
	refwalk_free(k->w);
	memset(k, 0, sizeof(*k));
}

static uint64_t kept_memory(void)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < WALKS_MAX; i++)
		if (kept[i].w)
			total += refwalk_stats(kept[i].w)->memory;
	return total;
}

/* t's own slot, or NULL. */
static struct kept *kept_find(const struct target *t)
{
	size_t i;

	for (i = 0; i < WALKS_MAX; i++)
		if (kept_of(&kept[i], t))
			return &kept[i];
	return NULL;
}

/* t's slot: its own, a free one, or the least recently used one of another target. */
static struct kept *kept_slot(const struct target *t)
{
	struct kept *k = kept_find(t);
	size_t i;

	if (k)
		return k;
	for (i = 0; i < WALKS_MAX; i++)
		if (!kept[i].w)
			return &kept[i];
	for (i = 0; i < WALKS_MAX; i++)
		if (!k || kept[i].used_at < k->used_at)
			k = &kept[i];
	kept_drop(k);
	return k;
}

/* Live objects of the type named type, as the latest sample counted them. */
static int64_t live_of(struct target *t, const char *type)
{
	int64_t live = 0;
	size_t i;

	for (i = 0; i < t->rows.n; i++)
		if (!strcmp(t->rows.v[i].name, type) && t->rows.v[i].live > 0)
			live += t->rows.v[i].live;
	return live;
}

/* The walk for (t, type): t's kept one if it is of type and younger than max_age once
 * complete, else a new one. */
static int walk_get(struct target *t, const char *type, double max_age, struct kept **out)
{
	struct refwalk_limits lim = { 0 };
	struct refwalk_layout l;
	struct kept *k = kept_slot(t);
	int err;

	*out = k;
	if (k->w && !strcmp(refwalk_wanted(k->w), type) &&
	    (!k->done_at || loop_mono() - k->done_at < max_age))
		return 0;
	kept_drop(k);
	err = layout_get(t, &l);
	if (!err)
		err = refwalk_new(&l, &lim, type, &k->w);
	if (err)
		return err;
	refwalk_expect(k->w, live_of(t, type));
	k->pid = t->pid;
	k->attached_at = t->attached_at;
	return 0;
}

struct namer {
	struct target *t;
	struct pystack_cache *code;
	const struct refwalk_layout *l;
};

static void str_name(const struct namer *nm, uint64_t obj, char *buf, size_t len)
{
	if (!obj || pystack_str_read(nm->code, obj, buf, len))
		snprintf(buf, len, "?");
}

/* "wordsegment_leak.main() local seg", "json.decoder.scanner": where a root is. */
static void root_name(const struct namer *nm, const struct refwalk_step *s, char *buf, size_t len)
{
	char var[NAME_LEN], owner[NAME_LEN];
	struct pystack_frame fr;

	str_name(nm, s->name, var, sizeof(var));
	if (s->edge == REFWALK_EDGE_GLOBAL) {
		str_name(nm, s->owner, owner, sizeof(owner));
		snprintf(buf, len, "%s.%s", owner, var);
		return;
	}
	if (pystack_frame_resolve(nm->code, s->owner, 0, &fr)) {
		snprintf(buf, len, "?() local %s", var);
		return;
	}
	/* The module as its file names it: __main__ is the script the user knows. */
	char *base = strrchr(fr.file, '/'), *dot;

	base = base ? base + 1 : fr.file;
	dot = strrchr(base, '.');
	if (dot && !strcmp(dot, ".py"))
		*dot = '\0';
	snprintf(buf, len, "%s.%s() local %s", base, fr.function, var);
}

static const char *const edge_kinds[] = {
	[REFWALK_EDGE_LOCAL] = "local", [REFWALK_EDGE_GLOBAL] = "global",
	[REFWALK_EDGE_ATTRIBUTE] = "attribute", [REFWALK_EDGE_ITEM] = "item",
	[REFWALK_EDGE_KEY] = "key", [REFWALK_EDGE_VALUE] = "value", [REFWALK_EDGE_CELL] = "cell",
	[REFWALK_EDGE_CLOSURE] = "closure", [REFWALK_EDGE_DEFAULT] = "default",
	[REFWALK_EDGE_SELF] = "self", [REFWALK_EDGE_FUNC] = "func",
	[REFWALK_EDGE_SLOT] = "attribute",
};

/* A step's name (JSON) and how the text writes it after the object before. */
static void edge_name(const struct namer *nm, const struct refwalk_step *s, char *name,
		      size_t nlen, char *text, size_t tlen)
{
	char key[NAME_LEN - 8];

	switch (s->edge) {
	case REFWALK_EDGE_ATTRIBUTE:
		str_name(nm, s->name, name, nlen);
		snprintf(text, tlen, ".%s", name);
		break;
	case REFWALK_EDGE_SLOT:
		if (procmem_read_str(nm->t->pid, s->name, name, nlen))
			snprintf(name, nlen, "?");
		snprintf(text, tlen, ".%s", name);
		break;
	case REFWALK_EDGE_VALUE:
		if (pystack_str_read(nm->code, s->name, key, sizeof(key)))
			snprintf(name, nlen, "[%u]", s->index);
		else
			snprintf(name, nlen, "['%s']", key);
		snprintf(text, tlen, "%s", name);
		break;
	case REFWALK_EDGE_ITEM:
	case REFWALK_EDGE_KEY:
		/* The text stands for every object of the group: any item, any key. */
		snprintf(name, nlen, "[%u]", s->index);
		snprintf(text, tlen, "%s", s->edge == REFWALK_EDGE_KEY ? "key" : "[...]");
		break;
	case REFWALK_EDGE_CELL:
		snprintf(name, nlen, "cell_contents");
		snprintf(text, tlen, ".cell_contents");
		break;
	case REFWALK_EDGE_CLOSURE:
		/* The cell of a free variable: "closure var req" */
		if (!s->name || pystack_str_read(nm->code, s->name, key, sizeof(key))) {
			snprintf(name, nlen, "__closure__[%u]", s->index);
			snprintf(text, tlen, ".%s", name);
		} else {
			snprintf(name, nlen, "%s", key);
			snprintf(text, tlen, "closure var %s", key);
		}
		break;
	case REFWALK_EDGE_LOCAL:
		/* beyond the roots: a suspended generator's or a frame object's local */
		str_name(nm, s->name, name, nlen);
		snprintf(text, tlen, "local %s", name);
		break;
	case REFWALK_EDGE_DEFAULT:
		snprintf(name, nlen, "__defaults__[%u]", s->index);
		snprintf(text, tlen, ".%s", name);
		break;
	case REFWALK_EDGE_SELF:
	case REFWALK_EDGE_FUNC:
		snprintf(name, nlen, s->edge == REFWALK_EDGE_SELF ? "__self__" : "__func__");
		snprintf(text, tlen, ".%s", name);
		break;
	default:
		str_name(nm, s->name, name, nlen);
		snprintf(text, tlen, "%s", name);
	}
	text_utf8_fix(name);
	text_utf8_fix(text);
}

/* An object's type name and, for a container, its length (-1: none). */
static void object_describe(const struct namer *nm, uint64_t addr, char *type, size_t len,
			    int64_t *length)
{
	const struct cpython_offsets *o = nm->l->o;
	uint64_t head[2], n;
	int k;

	*length = -1;
	if (procmem_read(nm->t->pid, addr, head, sizeof(head))) {
		snprintf(type, len, "?");
		return;
	}
	pytype_name(nm->t->pid, head[1], type, len);
	for (k = REFWALK_LIST; k < REFWALK_KINDS && nm->l->types[k] != head[1]; k++)
		;
	if ((k == REFWALK_LIST || k == REFWALK_TUPLE || k == REFWALK_DEQUE) &&
	    !procmem_read_u64(nm->t->pid, addr + CPY_OB_SIZE, &n))
		*length = n;
	else if (k == REFWALK_DICT && !procmem_read_u64(nm->t->pid, addr + o->dict_used, &n))
		*length = n;
	else if ((k == REFWALK_SET || k == REFWALK_FROZENSET) &&
		 !procmem_read_u64(nm->t->pid, addr + o->set_used, &n))
		*length = n;
}

/* n with thousands separators, whatever the locale. */
static const char *count_text(int64_t n, char *buf, size_t len)
{
	char digits[32];
	size_t nd, i, o = 0;

	nd = snprintf(digits, sizeof(digits), "%" PRId64, n);
	for (i = 0; i < nd && o + 2 < len; i++) {
		if (i && digits[i - 1] != '-' && (nd - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

/* " → .words (list, 1,072,548 items)", or with no edge text, the root's " (list, ...)". */
static size_t container_text(char *buf, size_t len, const char *etext, const char *type,
			     int64_t length)
{
	char num[32];
	int n;

	if (length >= 0)
		n = snprintf(buf, len, "%s%s (%s, %s items)", *etext ? " → " : "", etext, type,
			     count_text(length, num, sizeof(num)));
	else
		n = snprintf(buf, len, "%s%s (%s)", *etext ? " → " : "", etext, type);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* One path: the root, the containers on the way, then the group's objects. */
static json_t *path_json(const struct namer *nm, struct refwalk *w, const struct refwalk_group *g,
			 const char *type)
{
	struct refwalk_step steps[STEPS_MAX + 1];
	char root[1024], rtype[NAME_LEN], name[NAME_LEN], etext[NAME_LEN + 16], otype[NAME_LEN];
	char text[4096];
	json_t *arr = json_array(), *p;
	size_t n = 0, i, tl;
	int64_t length, root_length;
	bool merged = false;	/* the step before was a named closure cell */

	if (g->node != UINT32_MAX) {
		n = refwalk_path(w, g->node, steps, STEPS_MAX);
		if (!n) {
			json_decref(arr);
			return NULL;
		}
	}
	steps[n++] = g->first;	/* the group's first object, reached from the last container */
	root_name(nm, &steps[0], root, sizeof(root));
	text_utf8_fix(root);
	tl = snprintf(text, sizeof(text), "%s", root);
	snprintf(rtype, sizeof(rtype), "%s", type);	/* the root is one of the objects */
	root_length = -1;
	if (n > 1) {
		object_describe(nm, steps[0].addr, rtype, sizeof(rtype), &root_length);
		tl += container_text(text + tl, sizeof(text) - tl, "", rtype, root_length);
	}
	for (i = 1; i < n && tl < sizeof(text); i++) {
		bool last_step = i == n - 1;
		/* A named closure cell is written as the variable, its contents' type after it:
		 * "→ closure var req (Request)". */
		bool var_cell = merged;
		bool cell_next = steps[i].edge == REFWALK_EDGE_CLOSURE && steps[i].name && !last_step &&
				 steps[i + 1].edge == REFWALK_EDGE_CELL;

		edge_name(nm, &steps[i], name, sizeof(name), etext, sizeof(etext));
		length = -1;
		if (last_step)
			snprintf(otype, sizeof(otype), "%s", type);
		else
			object_describe(nm, steps[i].addr, otype, sizeof(otype), &length);
		p = json_pack("{s:s, s:s, s:s}", "kind", edge_kinds[steps[i].edge], "name", name,
			      "type", otype);
		if (p && length >= 0)
			json_object_set_new(p, "length", json_integer(length));
		json_array_append_new(arr, p);
		/* The objects themselves: "→ str" for a container's items, "→ .name (str)". */
		if (last_step && steps[i].edge == REFWALK_EDGE_ITEM)
			tl += snprintf(text + tl, sizeof(text) - tl, " → %s", otype);
		else if ((merged = cell_next && !strncmp(etext, "closure var ", 12)))
			tl += snprintf(text + tl, sizeof(text) - tl, " → %s", etext);
		else
			tl += container_text(text + tl, sizeof(text) - tl, var_cell ? "" : etext, otype,
					     length);
	}
	p = json_pack("{s:I, s:s, s:s, s:s, s:o, s:s}", "objects", (json_int_t)g->count, "root", root,
		      "root_kind", edge_kinds[steps[0].edge], "root_type", rtype, "steps", arr,
		      "text", text);
	if (p && root_length >= 0)
		json_object_set_new(p, "root_length", json_integer(root_length));
	return p;
}

#define RETAINS_MAX	8

/* What the wanted objects dominate, per type and per owner ("retains"), and the total bytes
 * with theirs ("retained_bytes"), into doc; whether the walk covered the graph below them;
 * nothing if no wanted object is a container. */
static void retains_add(struct target *t, struct refwalk *w, json_t *doc)
{
	const struct refwalk_stats *st = refwalk_stats(w);
	/* Found on the GC lists when cycles alone keep them, else reached from the roots. */
	uint64_t owners = st->owners_gc ? st->owners_gc : st->owners;
	struct refwalk_retained r[RETAINS_MAX];
	json_t *arr;
	char name[NAME_LEN];
	size_t n, i;

	if (!st->owners_sampled || !(arr = json_array()))
		return;
	n = refwalk_retained(w, r, RETAINS_MAX);
	for (i = 0; i < n && i < RETAINS_MAX; i++) {
		pytype_name(t->pid, r[i].type, name, sizeof(name));
		json_array_append_new(arr, json_pack("{s:s, s:f, s:f}", "type", name, "per_owner",
						     (double)r[i].count / st->owners_sampled, "bytes_per_owner",
						     (double)r[i].bytes / st->owners_sampled));
	}
	json_object_set_new(doc, "retains", arr);
	/* The sample's, scaled to every owner reached. */
	json_object_set_new(doc, "retained_bytes", json_integer((json_int_t)((double)st->retained_bytes *
		(owners > st->owners_sampled ? (double)owners / st->owners_sampled : 1))));
	json_object_set_new(doc, "owners", json_integer(owners));
	json_object_set_new(doc, "retained_covered", json_boolean(st->retained_covered &&
								  !st->retained_opaque));
	json_object_set_new(doc, "retained_graph", json_pack("{s:I, s:I, s:I}", "owners",
		(json_int_t)st->owners_sampled, "objects", (json_int_t)st->retained_vertices,
		"opaque", (json_int_t)st->retained_opaque));
}

/* Over the memory cap: the complete walks of targets other than t, least recently used first,
 * until under it; whether it is. */
static bool memory_make_room(const struct target *t)
{
	struct kept *k;
	size_t i;

	while (kept_memory() >= WALKS_MEMORY_MAX) {
		k = NULL;
		for (i = 0; i < WALKS_MAX; i++)
			if (kept[i].w && !kept_of(&kept[i], t) && kept[i].done_at &&
			    (!k || kept[i].used_at < k->used_at))
				k = &kept[i];
		if (!k)
			return false;
		kept_drop(k);
	}
	return true;
}

/* One slice of the kept walk k of t within its budget (seconds, 0: the walk's), if
 * incomplete: 0, or a negative errno.  Over the memory cap once room is made, the slice would
 * grow the walks further past it: k is dropped instead, -EBUSY. */
static int kept_run(const struct target *t, struct kept *k, double seconds)
{
	struct target_mem mem = { .pid = k->pid };
	int err;

	if (refwalk_stats(k->w)->complete)
		return 0;
	if (!memory_make_room(t)) {
		kept_drop(k);
		memory_drops++;
		return -EBUSY;
	}
	err = mem_load(&mem);
	if (!err) {
		err = refwalk_run(k->w, mem_readv, &mem, seconds);
		if (err == -EAGAIN)
			err = 0;
		else if (!err)
			k->done_at = loop_mono();
	}
	free(mem.r);
	return err;
}

/* One slice of the walk of (t, type) for a request, complete ones reused up to max_age. */
static int walk_slice(struct target *t, const char *type, double seconds, double max_age,
		      struct refwalk **out)
{
	struct kept *k;
	int err;

	err = walk_get(t, type, max_age, &k);
	if (!err) {
		k->used_at = loop_mono();
		/* The latest count: the one at its start may predate the first sample. */
		refwalk_expect(k->w, live_of(t, type));
		err = kept_run(t, k, seconds);
	}
	*out = k->w;
	return err;
}

/* Up to max paths of the walk's groups into paths; 0 or -ENOMEM. */
static int paths_add(struct target *t, struct refwalk *w,
		     const char *type, size_t max, json_t *paths)
{
	struct refwalk_group groups[PATHS_MAX];
	struct namer nm = { .t = t, .l = refwalk_layout(w) };
	size_t ng, i;

	nm.code = pystack_cache_new(&t->py);
	if (!nm.code)
		return -ENOMEM;
	ng = refwalk_groups(w, groups, max < PATHS_MAX ? max : PATHS_MAX);
	for (i = 0; i < ng && i < max && i < PATHS_MAX; i++) {
		json_t *p = path_json(&nm, w, &groups[i], type);

		if (p)
			json_array_append_new(paths, p);
	}
	pystack_cache_free(nm.code);
	return 0;
}

int view_paths_json(struct target *t, const char *type, json_t **out)
{
	const struct refwalk_stats *st;
	json_t *paths = NULL, *doc;
	struct refwalk *w;
	int64_t live = 0, expected, unreachable;
	struct kept *k;
	int err, tries;

	*out = NULL;
	/* A count of the type's live objects to judge the walk by (precise mode: none before the
	 * first sample after attach). */
	sampler_sample(t, false);
	for (tries = 0; tries < 2; tries++) {
		expected = live_of(t, type);
		err = walk_slice(t, type, 0, WALK_REUSE_S, &w);
		if (err)
			return err;
		st = refwalk_stats(w);
		/* Complete, and most live objects not reached from any root: only cycles keep them
		 * (the few reached may be the ones being made, in a frame's locals). */
		if (st->complete && !sampler_sample(t, true))
			live = live_of(t, type);
		/* A walk judged by a count that said otherwise (precise mode's first births since
		 * attach) did not look for the cycles' owners: walked again with this one. */
		if (tries || !st->complete || st->owners_gc || (int64_t)st->wanted * 2 >= live ||
		    (int64_t)st->wanted * 2 < expected || !(k = kept_find(t)))
			break;
		kept_drop(k);
	}
	paths = json_array();
	if (!paths || paths_add(t, w, type, PATHS_MAX, paths)) {
		json_decref(paths);
		return -ENOMEM;
	}
	unreachable = live > 0 && (int64_t)st->wanted * 2 < live ? live - (int64_t)st->wanted : 0;
	doc = json_pack("{s:i, s:s, s:o, s:b, s:{s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:i}}",
			"pid", t->pid, "type", type, "paths", paths, "unreachable", unreachable > 0,
			"walk", "complete", st->complete, "cut", st->cut,
			"containers", (json_int_t)st->nodes, "references", (json_int_t)st->objects,
			"wanted", (json_int_t)st->wanted, "opaque", (json_int_t)st->opaque,
			"bytes_read", (json_int_t)st->bytes, "corrupt", (json_int_t)st->corrupt,
			"seconds", st->seconds, "calls", st->calls);
	if (doc && unreachable > 0)
		json_object_set_new(doc, "unreachable_objects", json_integer(unreachable));
	if (doc && st->complete)
		retains_add(t, w, doc);
	*out = doc;
	return doc ? 0 : -ENOMEM;
}

json_t *view_path_first_json(struct target *t, const char *type)
{
	struct kept *k = kept_find(t);
	json_t *paths, *first = NULL;
	struct refwalk *w;

	/* t's kept walk of another type is not taken over while a `path` may still be asking
	 * for it. */
	if (k && strcmp(refwalk_wanted(k->w), type) && loop_mono() - k->used_at < WALK_REUSE_S)
		return NULL;
	if (walk_slice(t, type, LEAKS_SLICE_S, LEAKS_REUSE_S, &w) ||
	    !refwalk_stats(w)->complete)
		return NULL;
	/* Owners found on the GC lists (most objects reached from no root) are kept by reference
	 * cycles alone: a path reaches only the few being made, in a frame's locals. */
	if (refwalk_stats(w)->owners_gc) {
		first = json_pack("{s:b, s:I, s:s}", "unreachable", true, "objects",
				  (json_int_t)refwalk_stats(w)->owners_gc, "text",
				  "reference cycles alone (reached from no root: waiting for the collector)");
	} else {
		paths = json_array();
		if (paths && !paths_add(t, w, type, 1, paths))
			first = json_incref(json_array_get(paths, 0));
		json_decref(paths);
	}
	if (first)
		retains_add(t, w, first);
	return first;
}

/* A complete walk whose owners hold nothing alone (a ctypes buffer: cycles keep its owner)
 * cannot lead one leak per root: another class may. */
static bool walk_retains(const struct refwalk *w)
{
	const struct refwalk_stats *st = refwalk_stats(w);
	struct refwalk_retained r[RETAINS_MAX];
	size_t n, i;

	if (!st->complete)
		return true;
	n = refwalk_retained(w, r, RETAINS_MAX);
	for (i = 0; i < n && i < RETAINS_MAX; i++)
		if (st->owners_sampled && r[i].count * 2 >= st->owners_sampled)
			return true;
	return false;
}

const char *view_path_walked(const struct target *t)
{
	size_t i;

	for (i = 0; i < WALKS_MAX; i++)
		if (kept_of(&kept[i], t))
			return walk_retains(kept[i].w) ? refwalk_wanted(kept[i].w) : NULL;
	return NULL;
}

json_t *view_path_holder_json(json_t *path)
{
	json_t *steps = json_object_get(path, "steps"), *last, *type, *length, *h;
	size_t n = json_array_size(steps);
	const char *kind, *container;

	if (!n)
		return NULL;
	last = json_array_get(steps, n - 1);
	/* The container before the objects: the step before, or the root. */
	type = n > 1 ? json_object_get(json_array_get(steps, n - 2), "type") :
		       json_object_get(path, "root_type");
	length = n > 1 ? json_object_get(json_array_get(steps, n - 2), "length") :
			 json_object_get(path, "root_length");
	kind = json_string_value(json_object_get(last, "kind"));
	if (!kind || !json_is_string(type))
		return NULL;
	container = !strcmp(kind, "item") ? json_string_value(type) :
		    !strcmp(kind, "value") ? "dict value" : !strcmp(kind, "key") ? "dict key" : kind;
	h = json_pack("{s:s, s:O}", "container", container, "type", type);
	if (h && length)
		json_object_set(h, "length", length);
	return h;
}

json_t *view_paths_status_json(void)
{
	json_t *walks = json_array();
	double now = loop_mono();
	size_t i;

	for (i = 0; i < WALKS_MAX && walks; i++) {
		const struct refwalk_stats *st;

		if (!kept[i].w)
			continue;
		st = refwalk_stats(kept[i].w);
		json_array_append_new(walks, json_pack("{s:i, s:s, s:b, s:I, s:I, s:f, s:f}", "pid",
			kept[i].pid, "type", refwalk_wanted(kept[i].w), "complete", st->complete,
			"containers", (json_int_t)st->nodes, "memory_bytes", (json_int_t)st->memory,
			"seconds", st->seconds, "age_s", kept[i].done_at ? now - kept[i].done_at : 0.0));
	}
	return json_pack("{s:o, s:I, s:I, s:I, s:i, s:f, s:f, s:I, s:f}", "walks", walks,
			 "memory_bytes", (json_int_t)kept_memory(), "memory_max",
			 (json_int_t)WALKS_MEMORY_MAX, "memory_drops", (json_int_t)memory_drops,
			 "walks_max", WALKS_MAX, "tick_slice_s", TICK_SLICE_S, "tick_total_s",
			 TICK_TOTAL_S, "tick_slices", (json_int_t)tick_slices, "tick_seconds",
			 tick_seconds);
}

/* Walks of targets no longer tracked are dropped. */
static void kept_sweep(void)
{
	const struct target *t;
	size_t i;

	for (i = 0; i < WALKS_MAX; i++) {
		for (t = target_list(); kept[i].w && t; t = t->next)
			if (t->state == TARGET_TRACKING && kept_of(&kept[i], t))
				break;
		if (kept[i].w && !t)
			kept_drop(&kept[i]);
	}
}

/* One target's slice: its walk goes on, or (none, or complete and old) the next one starts,
 * of the type `leaks` would walk. */
static void target_tick(struct target *t, double seconds)
{
	struct kept *k = kept_find(t);
	const char *leader;

	if (!k || (k->done_at && loop_mono() - k->done_at >= TICK_REFRESH_S &&
		   loop_mono() - k->used_at >= WALK_REUSE_S)) {
		leader = view_leaks_leader(t, TICK_WINDOW_S);
		if (!leader || !memory_make_room(t) || walk_get(t, leader, TICK_REFRESH_S, &k))
			return;
	}
	if (refwalk_stats(k->w)->complete)
		return;
	tick_slices++;
	if (kept_run(t, k, seconds))
		kept_drop(k);
}

void view_paths_tick(void)
{
	struct target *t;
	double start = loop_mono(), now;
	unsigned n = 0, first = tick_next;

	kept_sweep();
	/* Step 2 of the host-wide budget's degradation: no walking in the background. */
	if (discovery_census_slowdown() > 1)
		return;
	for (t = target_list(); t; t = t->next, n++) {
		if (n < first || t->state != TARGET_TRACKING)
			continue;
		now = loop_mono();
		if (now - start >= TICK_TOTAL_S)
			break;
		target_tick(t, TICK_SLICE_S);
		tick_next = n + 1;
	}
	if (!t)
		tick_next = 0;
	tick_seconds += loop_mono() - start;
}

void view_paths_free(void)
{
	size_t i;

	for (i = 0; i < WALKS_MAX; i++)
		kept_drop(&kept[i]);
}
