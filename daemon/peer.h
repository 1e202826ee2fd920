/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Who is on the other end of a client socket, and what it may do: root (or the daemon's own
 * user) anything; a member of the configured group only what ptrace would let it do itself.
 */
#ifndef PYLEAK_PEER_H
#define PYLEAK_PEER_H

#include <stdbool.h>
#include <sys/types.h>

struct target;

struct peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool privileged;	/* root or the daemon's user: every process */
	bool allowed;		/* may use the socket at all */
};

/* The credentials of the socket's peer at connect time (SO_PEERCRED, SO_PEERGROUPS: the
 * groups cannot be changed afterwards by the peer); has_group: members of group are allowed.
 * 0 or a negative errno. */
int peer_read(int fd, bool has_group, gid_t group, struct peer *out);

/*
 * May the peer act on pid (attach, read its heap, detach)?  A privileged peer: yes.  Others:
 * only a process whose real, effective and saved uid and gid are the peer's and that is
 * dumpable (its /proc entry is owned by its user), as ptrace_may_access() would decide.
 * Checked at every request: a process can change its credentials at any time.  0, -EACCES,
 * or -ESRCH (no such process).  Yama's ptrace_scope is not applied: membership of the group
 * is the administrator's grant to act on one's own processes.
 */
int peer_may_access(const struct peer *p, pid_t pid);

/* The same for a target: a tracked one by its process now, an ended one by the owner it had
 * (its pid may belong to someone else by now). */
int peer_may_access_target(const struct peer *p, const struct target *t);

/* The same for what is kept of a process that ended, by the owner it had. */
int peer_may_access_uid(const struct peer *p, uid_t uid);

#endif
