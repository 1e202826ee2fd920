// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elf.h"

struct elf_file {
	int fd;
	Elf *elf;
	bool exec;
	Elf_Scn *symtab;
	Elf_Scn *dynsym;
};

int elf_file_open(const char *path, struct elf_file **out)
{
	struct elf_file *ef;
	Elf_Scn *scn = NULL;
	GElf_Ehdr ehdr;
	int err;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	ef = calloc(1, sizeof(*ef));
	if (!ef)
		return -ENOMEM;
	ef->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (ef->fd < 0) {
		err = -errno;
		goto cleanup;
	}
	ef->elf = elf_begin(ef->fd, ELF_C_READ_MMAP, NULL);
	if (!ef->elf || elf_kind(ef->elf) != ELF_K_ELF || !gelf_getehdr(ef->elf, &ehdr) ||
	    ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_machine != EM_X86_64) {
		err = -ENOEXEC;
		goto cleanup;
	}
	ef->exec = ehdr.e_type == ET_EXEC;
	while ((scn = elf_nextscn(ef->elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB)
			ef->symtab = scn;
		else if (sh.sh_type == SHT_DYNSYM)
			ef->dynsym = scn;
	}
	*out = ef;
	return 0;
cleanup:
	elf_file_close(ef);
	return err;
}

void elf_file_close(struct elf_file *ef)
{
	if (!ef)
		return;
	if (ef->elf)
		elf_end(ef->elf);
	if (ef->fd >= 0)
		close(ef->fd);
	free(ef);
}

bool elf_file_is_exec(const struct elf_file *ef)
{
	return ef->exec;
}

/* The first defined symbol of scn that match() accepts; 0 or -ENOENT. */
static int symtab_find(Elf *elf, Elf_Scn *scn,
		       bool (*match)(const GElf_Sym *sym, const char *name, const void *arg),
		       const void *arg, GElf_Sym *out)
{
	Elf_Data *data;
	GElf_Shdr sh;
	size_t i, n;

	if (!scn || !gelf_getshdr(scn, &sh) || !(data = elf_getdata(scn, NULL)) || !sh.sh_entsize)
		return -ENOENT;
	n = sh.sh_size / sh.sh_entsize;
	for (i = 0; i < n; i++) {
		const char *s;

		if (!gelf_getsym(data, i, out) || out->st_shndx == SHN_UNDEF || !out->st_value)
			continue;
		s = elf_strptr(elf, sh.sh_link, out->st_name);
		if (s && match(out, s, arg))
			return 0;
	}
	return -ENOENT;
}

static bool match_name(const GElf_Sym *sym, const char *name, const void *arg)
{
	(void)sym;
	return !strcmp(name, arg);
}

static bool match_func_at(const GElf_Sym *sym, const char *name, const void *arg)
{
	uint64_t vaddr = *(const uint64_t *)arg;

	(void)name;
	return GELF_ST_TYPE(sym->st_info) == STT_FUNC && vaddr >= sym->st_value &&
	       vaddr < sym->st_value + sym->st_size;
}

int elf_file_symbol(const struct elf_file *ef, const char *name, uint64_t *vaddr, uint64_t *size)
{
	GElf_Sym sym;

	if (symtab_find(ef->elf, ef->symtab, match_name, name, &sym) &&
	    symtab_find(ef->elf, ef->dynsym, match_name, name, &sym))
		return -ENOENT;
	*vaddr = sym.st_value;
	if (size)
		*size = sym.st_size;
	return 0;
}

/* The PT_LOAD segment whose file bytes hold x: a virtual address, or a file offset. */
static int load_segment(const struct elf_file *ef, uint64_t x, bool is_vaddr, GElf_Phdr *ph)
{
	size_t i, n;

	if (elf_getphdrnum(ef->elf, &n))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		uint64_t start;

		if (!gelf_getphdr(ef->elf, i, ph) || ph->p_type != PT_LOAD)
			continue;
		start = is_vaddr ? ph->p_vaddr : ph->p_offset;
		if (x >= start && x < start + ph->p_filesz)
			return 0;
	}
	return -ENOENT;
}

int elf_file_vaddr_to_offset(const struct elf_file *ef, uint64_t vaddr, uint64_t *offset)
{
	GElf_Phdr ph;
	int err = load_segment(ef, vaddr, true, &ph);

	if (!err)
		*offset = vaddr - ph.p_vaddr + ph.p_offset;
	return err;
}

int elf_file_offset_to_vaddr(const struct elf_file *ef, uint64_t offset, uint64_t *vaddr)
{
	GElf_Phdr ph;
	int err = load_segment(ef, offset, false, &ph);

	if (!err)
		*vaddr = offset - ph.p_offset + ph.p_vaddr;
	return err;
}

int elf_file_func_size_at(const struct elf_file *ef, uint64_t vaddr, uint64_t *size)
{
	GElf_Sym sym;

	if (symtab_find(ef->elf, ef->symtab, match_func_at, &vaddr, &sym) &&
	    symtab_find(ef->elf, ef->dynsym, match_func_at, &vaddr, &sym))
		return -ENOENT;
	*size = sym.st_size - (vaddr - sym.st_value);
	return 0;
}

int elf_file_pread(const struct elf_file *ef, uint64_t offset, void *buf, size_t len)
{
	ssize_t n = pread(ef->fd, buf, len, offset);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int elf_file_section(const struct elf_file *ef, const char *name, const void **data, size_t *size,
		     uint64_t *vaddr)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(ef->elf, &shstrndx))
		return -EINVAL;
	while ((scn = elf_nextscn(ef->elf, scn))) {
		Elf_Data *d;
		GElf_Shdr sh;
		const char *s;

		if (!gelf_getshdr(scn, &sh))
			continue;
		s = elf_strptr(ef->elf, shstrndx, sh.sh_name);
		if (!s || strcmp(s, name) || sh.sh_type == SHT_NOBITS)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			return -EINVAL;
		*data = d->d_buf;
		*size = d->d_size;
		if (vaddr)
			*vaddr = sh.sh_addr;
		return 0;
	}
	return -ENOENT;
}

long elf_file_count_calls(const struct elf_file *ef, uint64_t vaddr)
{
	const uint8_t *text;
	uint64_t base;
	size_t size, i;
	long calls = 0;

	if (elf_file_section(ef, ".text", (const void **)&text, &size, &base))
		return -ENOENT;
	for (i = 0; i + 5 <= size; i++) {
		int32_t rel;

		if (text[i] != 0xe8)
			continue;
		memcpy(&rel, text + i + 1, sizeof(rel));
		if (base + i + 5 + (int64_t)rel == vaddr)
			calls++;
	}
	return calls;
}

bool elf_file_has_plt_slot(const struct elf_file *ef, const char *name)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(ef->elf, scn))) {
		GElf_Shdr sh, symsh;
		Elf_Data *data, *syms;
		Elf_Scn *symscn;
		size_t i, n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		symscn = elf_getscn(ef->elf, sh.sh_link);
		if (!symscn || !gelf_getshdr(symscn, &symsh) || !(syms = elf_getdata(symscn, NULL)) ||
		    !(data = elf_getdata(scn, NULL)))
			continue;
		n = sh.sh_size / sh.sh_entsize;
		for (i = 0; i < n; i++) {
			GElf_Rela rela;
			GElf_Sym sym;
			const char *s;

			if (!gelf_getrela(data, i, &rela) || GELF_R_TYPE(rela.r_info) != R_X86_64_JUMP_SLOT ||
			    !gelf_getsym(syms, GELF_R_SYM(rela.r_info), &sym))
				continue;
			s = elf_strptr(ef->elf, symsh.sh_link, sym.st_name);
			if (s && !strcmp(s, name))
				return true;
		}
	}
	return false;
}
