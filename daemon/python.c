// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpython_offsets.h"
#include "log.h"
#include "procfs.h"
#include "pyleak.h"
#include "python.h"
#include "text.h"

/* Fewer direct calls than this: the build inlined _Py_NewReference (Debian's LTO+PGO 3.11). */
#define NEWREF_MIN_CALLS 50

static bool is_libpython(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libpython3.", 11) && strstr(base, ".so");
}

/* Minor version from a name such as python3.11, libpython3.11.so.1.0; -1 if none. */
static int minor_from_name(const char *path)
{
	const char *base = strrchr(path, '/'), *p;

	base = base ? base + 1 : path;
	p = strstr(base, "python3.");
	if (!p || !isdigit((unsigned char)p[8]))
		return -1;
	return atoi(p + 8);
}

/*
 * Finds the file that holds the interpreter: libpython if one is mapped, else the executable,
 * and opens it from its first mapping (which tells the load bias): the file mapped, not what
 * its path names now.
 */
static int module_open(struct python_info *py)
{
	struct procfs_map m, first = { 0 };
	struct procfs_maps *maps;
	bool exe_seen = false;
	int ret, fd;

	ret = procfs_maps_open(py->pid, &maps);
	if (ret)
		return ret;
	while ((ret = procfs_maps_next(maps, &m)) > 0) {
		if (m.truncated || m.path[0] != '/')
			continue;
		if (is_libpython(m.path)) {
			snprintf(py->module, sizeof(py->module), "%s", m.path);
			py->shared = true;
			first = m;
			break;
		}
		if (!exe_seen && !strcmp(m.path, py->exe)) {
			exe_seen = true;
			first = m;
		}
	}
	procfs_maps_close(maps);
	if (ret < 0)
		return ret;
	if (!py->shared && !exe_seen)
		return -ENOEXEC;
	if (!py->shared)
		snprintf(py->module, sizeof(py->module), "%s", py->exe);
	py->map_start = first.start;
	py->map_pgoff = first.pgoff;
	ret = procfs_map_file_open(py->pid, &first, &fd);
	if (ret) {
		log_error("pid %d: open %s: %s", py->pid, py->module, strerror(-ret));
		return ret;
	}
	ret = elf_file_open(fd, &py->elf);
	if (ret) {
		log_error("pid %d: read %s: %s", py->pid, py->module, strerror(-ret));
		return ret;
	}
	/* Probes by path name this very inode: the daemon's descriptor, which the kernel follows. */
	snprintf(py->module_path, sizeof(py->module_path), "/proc/self/fd/%d", elf_file_fd(py->elf));
	return 0;
}

/* The version string: Py_Version (3.11+) or the "3.X.Y" literal in .rodata. */
static int version_find(struct python_info *py)
{
	const char *data;
	uint64_t vaddr, off;
	uint32_t hex;
	size_t size, i, n;
	char want[8];

	if (!elf_file_symbol(py->elf, "Py_Version", &vaddr, NULL) &&
	    !elf_file_vaddr_to_offset(py->elf, vaddr, &off) &&
	    !elf_file_pread(py->elf, off, &hex, sizeof(hex))) {
		py->major = hex >> 24;
		py->minor = (hex >> 16) & 0xff;
		py->micro = (hex >> 8) & 0xff;
		goto done;
	}
	py->minor = minor_from_name(py->module);
	if (py->minor < 0 || elf_file_section(py->elf, ".rodata", (const void **)&data, &size, NULL))
		return -ENOEXEC;
	snprintf(want, sizeof(want), "3.%d.", py->minor);
	/*
	 * PY_VERSION is a literal such as "3.8.18"; the linker may have merged it into the tail of
	 * a longer string ("/root/.pyenv/versions/3.8.18"), so only its end is certain: a NUL.
	 */
	n = strlen(want);
	for (i = 1; i + n + 2 < size; i++) {
		size_t j = i + n;

		if (data[i] != '3' || isdigit((unsigned char)data[i - 1]) || data[i - 1] == '.' ||
		    memcmp(data + i, want, n) || !isdigit((unsigned char)data[j]))
			continue;
		while (j < size && isdigit((unsigned char)data[j]))
			j++;
		if (j < size && (data[j] == '\0' || data[j] == '+')) {
			py->major = 3;
			py->micro = atoi(data + i + n);
			goto done;
		}
	}
	return -ENOEXEC;
done:
	snprintf(py->version, sizeof(py->version), "%d.%d.%d", py->major, py->minor, py->micro);
	return 0;
}

int python_inspect(pid_t pid, struct python_info *py)
{
	char link[64];
	uint64_t vaddr;
	ssize_t n;
	int err;

	memset(py, 0, sizeof(*py));
	py->pid = pid;
	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	n = readlink(link, py->exe, sizeof(py->exe) - 1);
	if (n < 0) {
		err = errno == ENOENT ? -ESRCH : -errno;
		goto cleanup;
	}
	py->exe[n] = '\0';
	err = module_open(py);
	if (err) {
		err = err == -ESRCH || err == -EACCES ? err : -ENOEXEC;
		goto cleanup;
	}
	/* Where the first file mapping sits tells the load bias (0 for ET_EXEC). */
	if (!elf_file_is_exec(py->elf)) {
		uint64_t vaddr0;

		if (elf_file_offset_to_vaddr(py->elf, py->map_pgoff, &vaddr0)) {
			err = -ENOEXEC;
			goto cleanup;
		}
		py->bias = py->map_start - vaddr0;
	}
	if (python_symbol_addr(py, "_PyRuntime", &py->runtime)) {
		err = -ENOEXEC;
		goto cleanup;
	}
	err = version_find(py);
	if (err)
		goto cleanup;
	if (py->major != 3 || py->minor < 8 || py->minor > 13) {
		err = -EPROTONOSUPPORT;
		goto cleanup;
	}
	if (!elf_file_symbol(py->elf, "_Py_NewReference", &vaddr, NULL) &&
	    !elf_file_has_plt_slot(py->elf, "_Py_NewReference")) {
		py->newref_calls = elf_file_count_calls(py->elf, vaddr);
		py->inlined = py->newref_calls < NEWREF_MIN_CALLS;
	}
	/* Shown in `status` and `ps`: a path that is not UTF-8 would cost the reply its row. */
	text_utf8_fix(py->exe);
	text_utf8_fix(py->module);
	return 0;
cleanup:
	python_release(py);
	return err;
}

void python_release(struct python_info *py)
{
	elf_file_close(py->elf);
	py->elf = NULL;
}

int python_symbol_addr(const struct python_info *py, const char *name, uint64_t *addr)
{
	uint64_t vaddr;
	int err;

	err = elf_file_symbol(py->elf, name, &vaddr, NULL);
	if (err)
		return err;
	*addr = vaddr + py->bias;
	return 0;
}

uint64_t python_func_size(const struct python_info *py, uint64_t addr)
{
	uint64_t size = 0;

	return elf_file_func_size_at(py->elf, addr - py->bias, &size) ? 0 : size;
}

int python_file_of_addr(pid_t pid, uint64_t addr, int *fd, uint64_t *offset)
{
	struct procfs_maps *maps;
	struct procfs_map m;
	int ret;

	ret = procfs_maps_open(pid, &maps);
	if (ret)
		return ret;
	while ((ret = procfs_maps_next(maps, &m)) > 0 && (addr < m.start || addr >= m.end))
		;
	if (ret > 0 && m.inode) {
		*offset = m.pgoff + (addr - m.start);
		ret = procfs_map_file_open(pid, &m, fd);
	} else if (ret >= 0) {
		ret = -ENOENT;
	}
	procfs_maps_close(maps);
	return ret;
}

/*
 * What to hook, on every build: births at PyType_GenericAlloc (classes and sets, a few per
 * object created by Python code) and deaths at each watched type's tp_dealloc.  The builtins
 * below are created and freed millions of times a second by an allocation-heavy loop; probing
 * each of those would slow the target several times (and Debian's LTO build inlines their
 * constructors, so no probe would even see them there): a census counts them instead.
 */
static const char *const census_types[] = {
	"PyUnicode_Type", "PyBytes_Type", "PyLong_Type", "PyFloat_Type",
	"PyList_Type", "PyDict_Type", "PyTuple_Type",
};

static void plan_add(struct python_plan *plan, const char *sym, int kind)
{
	if (plan->nhooks < PYTHON_MAX_HOOKS) {
		plan->hooks[plan->nhooks].symbol = sym;
		plan->hooks[plan->nhooks].kind = kind;
		plan->nhooks++;
	}
}

/* The cyclic collector: USDT where the build has it, else its static function (.symtab):
 * gc_collect_main(tstate, generation, ...) on 3.10+, collect(tstate, generation, ...) on 3.9,
 * and on 3.8 two constant-propagated clones of collect() whose arguments are not known. */
static void plan_gc(const struct python_info *py, struct python_plan *plan)
{
	static const char *const names[] = { "gc_collect_main", "collect" };
	const void *data;
	uint64_t vaddr;
	size_t size, i;

	if (!elf_file_section(py->elf, ".note.stapsdt", &data, &size, NULL)) {
		plan->gc_usdt = true;
		return;
	}
	plan->gc_gen_reg = PYLEAK_REG_RSI;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!elf_file_symbol(py->elf, names[i], &vaddr, NULL)) {
			plan->gc_funcs[plan->ngc_funcs++] = names[i];
			return;
		}
	}
	plan->gc_gen_reg = -1;
	if (!elf_file_symbol(py->elf, "collect.constprop.0", &vaddr, NULL))
		plan->gc_funcs[plan->ngc_funcs++] = "collect.constprop.0";
	if (!elf_file_symbol(py->elf, "collect.constprop.1", &vaddr, NULL))
		plan->gc_funcs[plan->ngc_funcs++] = "collect.constprop.1";
}

void python_plan(const struct python_info *py, struct python_plan *plan)
{
	const struct cpython_offsets *abi = cpython_offsets_find(py->major, py->minor);
	size_t i;

	memset(plan, 0, sizeof(*plan));
	plan_gc(py, plan);
	plan->pool_size = abi ? abi->pool_size : 0;
	plan->preheader_flags = abi ? abi->preheader_flags : 0;
	plan->str_ascii_data = abi ? abi->str_ascii_data : 0;
	plan->str_compact_data = abi ? abi->str_compact_data : 0;
	plan_add(plan, "PyType_GenericAlloc", PYLEAK_HOOK_BIRTH);
	plan->watched[plan->nwatched++] = "PySet_Type";
	for (i = 0; i < sizeof(census_types) / sizeof(census_types[0]); i++)
		plan->census[plan->ncensus++] = census_types[i];
	plan->census_why = py->inlined ?
		"this build (LTO) inlines their constructors: no probe sees their births" :
		"probing their every birth and death would slow the target several times";
}
