// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "container.h"
#include "procfs.h"
#include "text.h"

#define CGROUP_READ_MAX 8192	/* ~14 lines of a short path each */
#define STATUS_READ_MAX 8192
#define COMPONENT_MAX 256	/* NAME_MAX + 1: a longer "component" is not a cgroup's */
#define ID_MIN_HEX 12

/* Container runtimes' scope names: PREFIX<hex id>.scope (docker, podman, containerd, CRI-O). */
static const char *const scope_prefixes[] = { "docker-", "libpod-", "cri-containerd-", "crio-",
					      "containerd-" };

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && !memcmp(s + len - n, suffix, n);
}

static bool all_hex(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

/* A hex id of ID_MIN_HEX..64 digits at s, len bytes: copied into out. */
static bool id_take(const char *s, size_t len, char *out, size_t size)
{
	if (len < ID_MIN_HEX || len > 64 || len >= size || !all_hex(s, len))
		return false;
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

/* systemd-nspawn's machine-NAME.scope: NAME with systemd's \xNN escapes undone (printable
 * ASCII only; anything else ends it). */
static bool machine_take(const char *s, size_t len, char *out, size_t size)
{
	size_t i, n = 0;
	unsigned int c;

	if (len <= 14 || strncmp(s, "machine-", 8) || !ends_with(s, len, ".scope"))
		return false;
	for (i = 8; i < len - 6 && n + 1 < size; i++) {
		c = (unsigned char)s[i];
		if (c == '\\' && i + 3 < len - 6 && s[i + 1] == 'x' &&
		    isxdigit((unsigned char)s[i + 2]) && isxdigit((unsigned char)s[i + 3]) &&
		    sscanf(s + i + 2, "%2x", &c) == 1)
			i += 3;
		if (c < 0x21 || c > 0x7e)
			break;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return n > 0;
}

static void component_scan(const char *s, size_t len, struct container_label *l, bool *id_found)
{
	size_t i;

	if (!len || len >= COMPONENT_MAX || *id_found)
		return;
	for (i = 0; i < sizeof(scope_prefixes) / sizeof(scope_prefixes[0]); i++) {
		size_t n = strlen(scope_prefixes[i]);

		if (len > n + 6 && !strncmp(s, scope_prefixes[i], n) && ends_with(s, len, ".scope") &&
		    id_take(s + n, len - n - 6, l->container, sizeof(l->container))) {
			*id_found = true;
			return;
		}
	}
	/* /docker/<id>, /kubepods/.../<id>, /lxc.payload... bare 64-hex ids */
	if (len == 64 && id_take(s, len, l->container, sizeof(l->container)))
		*id_found = true;
	else if (machine_take(s, len, l->container, sizeof(l->container)))
		*id_found = true;
}

/*
 * The unit of one line's path (after the second ':'), as systemd's cg_path_get_unit() names it:
 * the outermost component that is not a slice, if it is a unit.  Below it the cgroups may be
 * delegated (a user's, a container's) and named anything: user@1000.service/app.slice/
 * sshd.service is a user's process, labelled "user@1000.service/sshd.service".
 */
static void unit_scan(const char *p, const char *end, struct container_label *l)
{
	size_t user = 0;	/* the length of "user@UID.service" in l->unit once found */

	while (p < end) {
		const char *slash = memchr(p, '/', end - p);
		const char *stop = slash ? slash : end;
		size_t len = stop - p;

		p = stop + 1;
		if (!len || ends_with(stop - len, len, ".slice"))
			continue;
		if (len >= COMPONENT_MAX || user + 1 + len >= sizeof(l->unit) ||
		    !(ends_with(stop - len, len, ".service") || ends_with(stop - len, len, ".scope")))
			break;
		if (user)
			l->unit[user++] = '/';
		memcpy(l->unit + user, stop - len, len);
		l->unit[user + len] = '\0';
		if (user || strncmp(l->unit, "user@", 5) || !ends_with(l->unit, len, ".service"))
			return;
		user = len;	/* a user's manager: its unit, qualified */
	}
	l->unit[user] = '\0';
}

/* One line's path (after the second ':'), up to end. */
static void path_scan(const char *p, const char *end, struct container_label *l, bool *id_found)
{
	const char *start = p;

	while (p < end) {
		const char *slash = memchr(p, '/', end - p);
		const char *stop = slash ? slash : end;

		component_scan(p, stop - p, l, id_found);
		p = stop + 1;
	}
	/* A unit is taken from one line only: the first that names one. */
	if (!l->unit[0])
		unit_scan(start, end, l);
}

void container_cgroup_parse(const char *text, struct container_label *out)
{
	bool id_found = false;
	int pass;

	out->container[0] = out->unit[0] = '\0';
	/* Pass 0: systemd's hierarchies (cgroup v2, name=systemd); pass 1: the controllers'. */
	for (pass = 0; pass < 2; pass++) {
		const char *line, *end;

		for (line = text; *line; line = *end ? end + 1 : end) {
			const char *c1, *c2;
			bool systemd;

			end = line + strcspn(line, "\n");
			c1 = memchr(line, ':', end - line);
			c2 = c1 ? memchr(c1 + 1, ':', end - c1 - 1) : NULL;
			if (!c2)
				continue;
			systemd = (c1 == line + 1 && line[0] == '0' && c2 == c1 + 1) ||
				  (c2 - c1 - 1 == 12 && !strncmp(c1 + 1, "name=systemd", 12));
			if (systemd == (pass == 0))
				path_scan(c2 + 1, end, out, &id_found);
		}
	}
	/* A cgroup's name is any bytes but '/': shown in JSON. */
	text_utf8_fix(out->unit);
}

int container_nspid_parse(const char *status, pid_t *out)
{
	const char *line = strstr(status, "\nNSpid:"), *p, *end;
	long v = -1;

	if (!strncmp(status, "NSpid:", 6))
		line = status - 1;
	if (!line)
		return -ENOENT;
	p = line + 7;
	end = p + strcspn(p, "\n");
	while (p < end) {
		char *next;

		p += strspn(p, " \t");
		if (p >= end)
			break;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		errno = 0;
		v = strtol(p, &next, 10);
		if (errno || v <= 0 || v > (1 << 22) || next > end)
			return -EINVAL;
		p = next;
	}
	if (v <= 0)
		return -EINVAL;
	*out = (pid_t)v;
	return 0;
}

int container_read(pid_t pid, struct container_label *out)
{
	char buf[CGROUP_READ_MAX > STATUS_READ_MAX ? CGROUP_READ_MAX : STATUS_READ_MAX];
	int err;

	memset(out, 0, sizeof(*out));
	err = procfs_read(pid, "cgroup", buf, sizeof(buf));
	if (err)
		return err;
	container_cgroup_parse(buf, out);
	err = procfs_read(pid, "status", buf, sizeof(buf));
	if (err)
		return err;
	if (container_nspid_parse(buf, &out->ns_pid))
		out->ns_pid = 0;
	return 0;
}
