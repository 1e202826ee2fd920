// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "procmem.h"

int procmem_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n;

	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

int procmem_read_u64(pid_t pid, uint64_t addr, uint64_t *out)
{
	return procmem_read(pid, addr, out, sizeof(*out));
}

int procmem_read_str(pid_t pid, uint64_t addr, char *buf, size_t size)
{
	/* Read in small chunks: a string near the end of a mapping must not fail as a whole. */
	size_t got = 0;
	int err;

	if (size == 0)
		return -EINVAL;
	while (got + 1 < size) {
		size_t chunk = 64 - ((addr + got) & 63);

		if (chunk > size - 1 - got)
			chunk = size - 1 - got;
		err = procmem_read(pid, addr + got, buf + got, chunk);
		if (err)
			break;
		if (memchr(buf + got, '\0', chunk))
			return 0;
		got += chunk;
	}
	buf[got] = '\0';
	return got ? 0 : -EFAULT;
}
