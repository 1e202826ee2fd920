// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: the ELF reader opens files the target's owner wrote. Whatever the bytes, the
 * symbol, segment, section, PLT, call-count and unwind-table lookups and the search for pymalloc's
 * pool initialiser must not read out of bounds, loop for long or return a section outside the
 * file.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elf.h"
#include "pymalloc.h"

/* What python.c asks of an interpreter, plus names in the seeds. */
static const char *const names[] = { "_PyRuntime", "Py_Version", "_Py_NewReference", "main",
				     "PyObject_Malloc", "printf" };
static const char *const sections[] = { ".text", ".rodata", ".note.stapsdt", ".symtab" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct elf_file *ef;
	uint64_t vaddr, vsize, off, v;
	const void *sdata;
	static volatile uint8_t sink;
	size_t ssize, i, j;
	uint8_t buf[16], sum = 0;
	int fd;

	fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	if (elf_file_open(fd, &ef))
		return 0;
	elf_file_is_exec(ef);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (elf_file_symbol(ef, names[i], &vaddr, &vsize))
			continue;
		elf_file_func_size_at(ef, vaddr, &vsize);
		if (!elf_file_vaddr_to_offset(ef, vaddr, &off)) {
			elf_file_pread(ef, off, buf, sizeof(buf));
			elf_file_offset_to_vaddr(ef, off, &v);
		}
		elf_file_has_plt_slot(ef, names[i]);
		elf_file_count_calls(ef, vaddr);
		if (!elf_file_func_bounds(ef, vaddr, &v, &vsize) && (vaddr < v || vaddr - v >= vsize))
			abort();
	}
	pymalloc_pool_init_find(ef, &vaddr, &vsize);
	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		if (elf_file_section(ef, sections[i], &sdata, &ssize, &v))
			continue;
		/* Every byte said to be there is read: ASan reports a short buffer. */
		for (j = 0; j < ssize; j++)
			sum += ((const uint8_t *)sdata)[j];
		if (ssize > size)
			abort();
	}
	sink = sum;
	elf_file_offset_to_vaddr(ef, 0, &v);
	elf_file_close(ef);
	return 0;
}
