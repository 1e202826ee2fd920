// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <stdio.h>
#include <string.h>

#include "cpython.h"
#include "procmem.h"
#include "pytype.h"
#include "text.h"

int pytype_name(pid_t pid, uint64_t type, char *buf, size_t len)
{
	char name[256];
	const char *dot;
	uint64_t p;
	size_t n;
	int err;

	err = procmem_read_u64(pid, type + CPY_TP_NAME, &p);
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
	text_utf8_fix(buf);	/* a cut may also have split a sequence */
	return 0;
}

bool pytype_is_heap(pid_t pid, uint64_t type)
{
	uint64_t flags = 0;

	return !procmem_read_u64(pid, type + CPY_TP_FLAGS, &flags) && (flags & CPY_TPFLAGS_HEAPTYPE);
}

int pytype_dealloc(pid_t pid, uint64_t type, uint64_t *out)
{
	return procmem_read_u64(pid, type + CPY_TP_DEALLOC, out);
}

int pytype_sizes(pid_t pid, uint64_t type, uint64_t *basicsize, uint64_t *itemsize,
		 uint64_t *dealloc)
{
	uint64_t v[3];
	int err;

	_Static_assert(CPY_TP_ITEMSIZE == CPY_TP_BASICSIZE + 8 && CPY_TP_DEALLOC == CPY_TP_ITEMSIZE + 8,
		       "one read");
	err = procmem_read(pid, type + CPY_TP_BASICSIZE, v, sizeof(v));
	if (err)
		return err;
	*basicsize = v[0];
	*itemsize = v[1];
	*dealloc = v[2];
	return 0;
}
