// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <string.h>

#include "procmem.h"
#include "pytype.h"

/* CPython type object fields (3.8-3.13, x86-64). */
#define TP_NAME_OFF 24
#define TP_DEALLOC_OFF 48
#define TP_FLAGS_OFF 168
#define TPFLAGS_HEAPTYPE (1ull << 9)

int pytype_name(pid_t pid, uint64_t type, char *buf, size_t len)
{
	char name[256];
	const char *dot;
	uint64_t p;
	size_t n;
	int err;

	err = procmem_read_u64(pid, type + TP_NAME_OFF, &p);
	if (!err)
		err = procmem_read_str(pid, p, name, sizeof(name));
	if (err) {
		snprintf(buf, len, "<type 0x%lx>", type);
		return err;
	}
	dot = strrchr(name, '.');
	dot = dot ? dot + 1 : name;
	n = strnlen(dot, len - 1);
	memcpy(buf, dot, n);
	buf[n] = '\0';
	return 0;
}

bool pytype_is_heap(pid_t pid, uint64_t type)
{
	uint64_t flags = 0;

	return !procmem_read_u64(pid, type + TP_FLAGS_OFF, &flags) && (flags & TPFLAGS_HEAPTYPE);
}

int pytype_dealloc(pid_t pid, uint64_t type, uint64_t *out)
{
	return procmem_read_u64(pid, type + TP_DEALLOC_OFF, out);
}
