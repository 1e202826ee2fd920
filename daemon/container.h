/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Where a process runs: the container id and systemd unit its cgroup path names, and its pid
 * inside its own PID namespace.  The cgroup path is chosen by whoever created the cgroup (a
 * delegated user, a container runtime): parsed with bounds, kept only in known shapes.
 */
#ifndef PYLEAK_CONTAINER_H
#define PYLEAK_CONTAINER_H

#include <sys/types.h>

#define CONTAINER_ID_MAX 72	/* a 64-hex id, or a machine name (cut) */
#define CONTAINER_UNIT_MAX 128

struct container_label {
	char container[CONTAINER_ID_MAX];	/* "" if none */
	char unit[CONTAINER_UNIT_MAX];		/* "" if none */
	pid_t ns_pid;				/* 0 if unknown */
};

/* The container and unit named by the text of a /proc/PID/cgroup (the systemd hierarchies'
 * lines first: "0::" and "name=systemd"); fields not found stay "".  The unit is the outermost
 * non-slice one, as systemd names it (the cgroups below may be delegated); a user manager's
 * units are qualified by it: "user@1000.service/app.service". */
void container_cgroup_parse(const char *text, struct container_label *out);

/* The pid in the innermost PID namespace from the text of a /proc/PID/status (its NSpid
 * line's last number); 0 or -ENOENT/-EINVAL. */
int container_nspid_parse(const char *status, pid_t *out);

/* Both, read from /proc/PID; 0, -ESRCH or -errno.  A missing field is not an error. */
int container_read(pid_t pid, struct container_label *out);

#endif
