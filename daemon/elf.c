// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ehframe.h"
#include "elf.h"

/* Interpreters with full debug information are ~30 MiB; what libelf keeps of one (the symbol
 * tables, .text, .rodata) a few MiB. The section count sizes libelf's table at elf_begin(). */
#define ELF_MAX_FILE		(512u << 20)
#define ELF_MAX_LOADED		(64u << 20)
#define ELF_MAX_LOADED_SCNS	16
#define ELF_MAX_SECTIONS	1024
#define ELF_MAX_SEGMENTS	256

struct elf_file {
	int fd;
	Elf *elf;
	bool exec;
	uint64_t size;
	Elf_Scn *symtab;
	Elf_Scn *dynsym;
	/* Sections read so far (libelf keeps them until elf_end()), against ELF_MAX_LOADED. */
	size_t loaded[ELF_MAX_LOADED_SCNS];
	int nloaded;
	uint64_t loaded_bytes;
};

/* What libelf would trust without looking: header entry sizes, and table sizes that make it
 * allocate before any data is read. */
static int header_check(int fd, uint64_t size)
{
	Elf64_Ehdr eh;

	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64)
		return -ENOEXEC;
	/* No extended numbering (e_shnum 0 with a table, PN_XNUM, SHN_XINDEX): no interpreter needs it. */
	if ((!eh.e_shnum && eh.e_shoff) || eh.e_shstrndx == SHN_XINDEX ||
	    (eh.e_shnum && eh.e_shentsize != sizeof(Elf64_Shdr)) ||
	    (eh.e_phnum && eh.e_phentsize != sizeof(Elf64_Phdr)) ||
	    eh.e_shoff > size || (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr) > size - eh.e_shoff ||
	    eh.e_phoff > size || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > size - eh.e_phoff)
		return -ENOEXEC;
	if (eh.e_shnum > ELF_MAX_SECTIONS || eh.e_phnum > ELF_MAX_SEGMENTS)
		return -EFBIG;
	return 0;
}

int elf_file_open(int fd, struct elf_file **out)
{
	struct elf_file *ef;
	Elf_Scn *scn = NULL;
	struct stat st;
	GElf_Ehdr ehdr;
	int err;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		close(fd);
		return -EINVAL;
	}
	ef = calloc(1, sizeof(*ef));
	if (!ef) {
		close(fd);
		return -ENOMEM;
	}
	ef->fd = fd;
	if (fstat(fd, &st)) {
		err = -errno;
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -ENOEXEC;
		goto cleanup;
	}
	if ((uint64_t)st.st_size > ELF_MAX_FILE) {
		err = -EFBIG;
		goto cleanup;
	}
	ef->size = st.st_size;
	err = header_check(fd, ef->size);
	if (err)
		goto cleanup;
	/* ELF_C_READ: libelf preads what is asked into its own memory; no mapping of the file. */
	ef->elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!ef->elf || elf_kind(ef->elf) != ELF_K_ELF || !gelf_getehdr(ef->elf, &ehdr)) {
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
	close(ef->fd);
	free(ef);
}

int elf_file_fd(const struct elf_file *ef)
{
	return ef->fd;
}

bool elf_file_is_exec(const struct elf_file *ef)
{
	return ef->exec;
}

/*
 * The data of a section, read on first use; NULL if it has none, lies outside the file, or would
 * take the sections read so far past ELF_MAX_LOADED (a hostile file can make every section
 * header describe the whole file).
 */
static Elf_Data *scn_data(struct elf_file *ef, Elf_Scn *scn, GElf_Shdr *sh)
{
	size_t ndx;
	int i;

	if (!scn || !gelf_getshdr(scn, sh) || sh->sh_type == SHT_NOBITS || sh->sh_offset > ef->size ||
	    sh->sh_size > ef->size - sh->sh_offset)
		return NULL;
	ndx = elf_ndxscn(scn);
	for (i = 0; i < ef->nloaded && ef->loaded[i] != ndx; i++)
		;
	if (i == ef->nloaded) {
		if (ef->nloaded == ELF_MAX_LOADED_SCNS || sh->sh_size > ELF_MAX_LOADED - ef->loaded_bytes)
			return NULL;
		ef->loaded[ef->nloaded++] = ndx;
		ef->loaded_bytes += sh->sh_size;
	}
	return elf_getdata(scn, NULL);
}

/* Reads string table section strndx through scn_data() before elf_strptr() (which checks each
 * string ends inside it) would read it unaccounted; 0 or -ENOENT. */
static int strtab_load(struct elf_file *ef, size_t strndx)
{
	GElf_Shdr sh;

	return scn_data(ef, elf_getscn(ef->elf, strndx), &sh) && sh.sh_type == SHT_STRTAB ? 0 : -ENOENT;
}

/* The first defined symbol of scn that match() accepts; 0 or -ENOENT. */
static int symtab_find(struct elf_file *ef, Elf_Scn *scn,
		       bool (*match)(const GElf_Sym *sym, const char *name, const void *arg),
		       const void *arg, GElf_Sym *out)
{
	Elf_Data *data;
	GElf_Shdr sh;
	size_t i, n;

	data = scn_data(ef, scn, &sh);
	if (!data || strtab_load(ef, sh.sh_link))
		return -ENOENT;
	/* From the data read, not sh_entsize: gelf_getsym() reads Elf64_Sym whatever it says. */
	n = data->d_size / sizeof(Elf64_Sym);
	for (i = 0; i < n; i++) {
		const char *s;

		if (!gelf_getsym(data, i, out) || out->st_shndx == SHN_UNDEF || !out->st_value)
			continue;
		s = elf_strptr(ef->elf, sh.sh_link, out->st_name);
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
	       vaddr - sym->st_value < sym->st_size;
}

int elf_file_symbol(struct elf_file *ef, const char *name, uint64_t *vaddr, uint64_t *size)
{
	GElf_Sym sym;

	if (symtab_find(ef, ef->symtab, match_name, name, &sym) &&
	    symtab_find(ef, ef->dynsym, match_name, name, &sym))
		return -ENOENT;
	*vaddr = sym.st_value;
	if (size)
		*size = sym.st_size;
	return 0;
}

/* The PT_LOAD segment, inside the file, whose file bytes hold x: a virtual address, or a file
 * offset. */
static int load_segment(const struct elf_file *ef, uint64_t x, bool is_vaddr, GElf_Phdr *ph)
{
	size_t i, n;

	if (elf_getphdrnum(ef->elf, &n))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		uint64_t start;

		if (!gelf_getphdr(ef->elf, i, ph) || ph->p_type != PT_LOAD || ph->p_offset > ef->size ||
		    ph->p_filesz > ef->size - ph->p_offset)
			continue;
		start = is_vaddr ? ph->p_vaddr : ph->p_offset;
		if (x >= start && x - start < ph->p_filesz)
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

int elf_file_func_size_at(struct elf_file *ef, uint64_t vaddr, uint64_t *size)
{
	GElf_Sym sym;

	if (symtab_find(ef, ef->symtab, match_func_at, &vaddr, &sym) &&
	    symtab_find(ef, ef->dynsym, match_func_at, &vaddr, &sym))
		return -ENOENT;
	*size = sym.st_size - (vaddr - sym.st_value);
	return 0;
}

int elf_file_pread(const struct elf_file *ef, uint64_t offset, void *buf, size_t len)
{
	ssize_t n;

	if (offset > ef->size || len > ef->size - offset)
		return -EIO;
	n = pread(ef->fd, buf, len, offset);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int elf_file_section(struct elf_file *ef, const char *name, const void **data, size_t *size,
		     uint64_t *vaddr)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(ef->elf, &shstrndx) || strtab_load(ef, shstrndx))
		return -EINVAL;
	while ((scn = elf_nextscn(ef->elf, scn))) {
		Elf_Data *d;
		GElf_Shdr sh;
		const char *s;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		s = elf_strptr(ef->elf, shstrndx, sh.sh_name);
		if (!s || strcmp(s, name))
			continue;
		d = scn_data(ef, scn, &sh);
		if (!d || !d->d_buf)
			return -EINVAL;
		*data = d->d_buf;
		*size = d->d_size;
		if (vaddr)
			*vaddr = sh.sh_addr;
		return 0;
	}
	return -ENOENT;
}

int elf_file_func_bounds(struct elf_file *ef, uint64_t vaddr, uint64_t *start, uint64_t *size)
{
	struct ehframe eh;
	const void *hdr, *frames;

	if (elf_file_section(ef, ".eh_frame_hdr", &hdr, &eh.hdr_size, &eh.hdr_vaddr) ||
	    elf_file_section(ef, ".eh_frame", &frames, &eh.eh_size, &eh.eh_vaddr))
		return -ENOEXEC;
	eh.hdr = hdr;
	eh.eh = frames;
	return ehframe_func_at(&eh, vaddr, start, size);
}

long elf_file_count_calls(struct elf_file *ef, uint64_t vaddr)
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

bool elf_file_has_plt_slot(struct elf_file *ef, const char *name)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(ef->elf, scn))) {
		GElf_Shdr sh, symsh;
		Elf_Data *data, *syms;
		size_t i, n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA ||
		    !(syms = scn_data(ef, elf_getscn(ef->elf, sh.sh_link), &symsh)) ||
		    (symsh.sh_type != SHT_DYNSYM && symsh.sh_type != SHT_SYMTAB) ||
		    strtab_load(ef, symsh.sh_link) || !(data = scn_data(ef, scn, &sh)))
			continue;
		n = data->d_size / sizeof(Elf64_Rela);
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
