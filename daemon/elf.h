/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * ELF files of a target: symbols (.symtab, .dynsym), segments, section data. The files are the
 * target owner's: nothing is mapped (a truncation cannot fault the daemon), what is read is
 * bounded, and every offset, size and count is checked against the file before use.
 */
#ifndef PYLEAK_ELF_H
#define PYLEAK_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_file;

/* Reads the ELF file open at fd, which ef then owns (closed by elf_file_close(), or here on
 * failure); 0, -ENOEXEC (not a 64-bit x86 ELF file), -EFBIG (over the size limits) or -errno. */
int elf_file_open(int fd, struct elf_file **out);
void elf_file_close(struct elf_file *ef);

/* The open file: /proc/self/fd/N names this very inode to the kernel (uprobes). */
int elf_file_fd(const struct elf_file *ef);

/* ET_EXEC: symbol values are absolute addresses (no load bias). */
bool elf_file_is_exec(const struct elf_file *ef);

/* Looks a symbol up in .symtab, then .dynsym; 0 or -ENOENT. */
int elf_file_symbol(struct elf_file *ef, const char *name, uint64_t *vaddr, uint64_t *size);

/* Translates a virtual address to a file offset through the PT_LOAD segments. */
int elf_file_vaddr_to_offset(const struct elf_file *ef, uint64_t vaddr, uint64_t *offset);

/* The inverse: the virtual address of a file offset. */
int elf_file_offset_to_vaddr(const struct elf_file *ef, uint64_t offset, uint64_t *vaddr);

/* The size of the function symbol that contains vaddr; 0 or -ENOENT. */
int elf_file_func_size_at(struct elf_file *ef, uint64_t vaddr, uint64_t *size);

/* The function that holds vaddr, from the unwind tables (.eh_frame_hdr, .eh_frame): its start
 * and size, stripped or not; 0, -ENOENT or -ENOEXEC (no tables, or malformed). */
int elf_file_func_bounds(struct elf_file *ef, uint64_t vaddr, uint64_t *start, uint64_t *size);

/* Reads len bytes of the file at offset. */
int elf_file_pread(const struct elf_file *ef, uint64_t offset, void *buf, size_t len);

/* The contents of a section, owned by ef. */
int elf_file_section(struct elf_file *ef, const char *name, const void **data, size_t *size,
		     uint64_t *vaddr);

/* True if calls to the named function go through a PLT slot (it can then not be inlined:
 * semantic interposition forbids it). */
bool elf_file_has_plt_slot(struct elf_file *ef, const char *name);

/* Counts `call rel32` instructions in .text that target vaddr (how often a function was not inlined). */
long elf_file_count_calls(struct elf_file *ef, uint64_t vaddr);

#endif
