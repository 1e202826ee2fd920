// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "peer.h"
#include "procfs.h"
#include "target.h"

#define PEER_GROUPS_MAX 256	/* supplementary groups looked at; more: not a member */

int peer_read(int fd, bool has_group, gid_t group, struct peer *out)
{
	gid_t groups[PEER_GROUPS_MAX];
	socklen_t len = sizeof(struct ucred);
	struct ucred cred;
	size_t i, n;

	memset(out, 0, sizeof(*out));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return -errno;
	out->pid = cred.pid;
	out->uid = cred.uid;
	out->gid = cred.gid;
	out->privileged = cred.uid == 0 || cred.uid == geteuid();
	out->allowed = out->privileged || (has_group && cred.gid == group);
	if (out->allowed || !has_group)
		return 0;
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return errno == ERANGE ? 0 : -errno;	/* more groups than we look at: not allowed */
	n = len / sizeof(gid_t);
	for (i = 0; i < n && !out->allowed; i++)
		out->allowed = groups[i] == group;
	return 0;
}

/* Real, effective and saved ids (the fourth, filesystem, follows) of the status text's "Uid:"
 * or "Gid:" line: all equal to id? */
static bool ids_all(const char *status, const char *key, unsigned long id)
{
	uint64_t v[3];

	return !procfs_key_parse(status, key, v, 3) && v[0] == id && v[1] == id && v[2] == id;
}

int peer_may_access(const struct peer *p, pid_t pid)
{
	char path[64], buf[4096];
	struct stat st;
	int dfd, fd, err = -EACCES;
	ssize_t n;

	if (p->privileged)
		return 0;
	if (!p->allowed || pid <= 0)
		return -EACCES;
	snprintf(path, sizeof(path), "/proc/%d", pid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? -ESRCH : -EACCES;
	/* A process that is not dumpable has its private /proc entries owned by root (the
	 * directory itself keeps the process's euid: task_dump_owner()). */
	if (fstatat(dfd, "environ", &st, 0) || st.st_uid != p->uid)
		goto cleanup;
	fd = openat(dfd, "status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto cleanup;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		goto cleanup;
	buf[n] = '\0';
	if (ids_all(buf, "Uid", p->uid) && ids_all(buf, "Gid", p->gid))
		err = 0;
cleanup:
	close(dfd);
	return err;
}

int peer_may_access_uid(const struct peer *p, uid_t uid)
{
	return p->privileged || (p->allowed && uid == p->uid) ? 0 : -EACCES;
}

int peer_may_access_target(const struct peer *p, const struct target *t)
{
	if (t->state == TARGET_TRACKING)
		return peer_may_access(p, t->pid);
	return peer_may_access_uid(p, t->uid);
}
