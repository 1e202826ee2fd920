// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"
#include "postmortem.h"

#define POSTMORTEM_MAX 64
#define POSTMORTEM_MAX_BYTES (16u << 20)
#define NAME_PREFIX "pyleak-"

struct entry {
	struct entry *next;		/* newer first */
	struct postmortem_info info;
	char name[64];			/* its file in the directory */
	char *text;			/* without a directory: the report itself */
	size_t bytes;
};

static struct entry *entries;
static size_t nentries, nbytes;
static unsigned long removed;
static int dirfd_ = -1;
static char dir_path[256];

int postmortem_parse(const char *text, size_t len, struct postmortem_info *out)
{
	json_t *doc, *pid, *uid, *ended, *cause, *exe;
	int err = -EINVAL;

	if (len > POSTMORTEM_FILE_MAX)
		return -EINVAL;
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(doc))
		goto cleanup;
	pid = json_object_get(doc, "pid");
	uid = json_object_get(doc, "uid");
	ended = json_object_get(doc, "ended_at");
	cause = json_object_get(doc, "cause");
	exe = json_object_get(doc, "exe");
	if (!json_is_integer(pid) || json_integer_value(pid) <= 0 || json_integer_value(pid) > (1 << 22) ||
	    !json_is_integer(uid) || json_integer_value(uid) < 0 || json_integer_value(uid) > 0xfffffffeLL ||
	    !json_is_number(ended) || !(json_number_value(ended) >= 0) ||
	    !json_is_string(cause) || json_string_length(cause) >= sizeof(out->cause) ||
	    !json_is_string(exe) || json_string_length(exe) >= sizeof(out->exe) ||
	    !json_is_object(json_object_get(doc, "top")) || !json_is_object(json_object_get(doc, "leaks")))
		goto cleanup;
	out->pid = json_integer_value(pid);
	out->uid = json_integer_value(uid);
	out->ended_at = json_number_value(ended);
	/* No NUL inside: the lengths were checked above, strlen() must agree. */
	snprintf(out->cause, sizeof(out->cause), "%s", json_string_value(cause));
	snprintf(out->exe, sizeof(out->exe), "%s", json_string_value(exe));
	if (strlen(out->cause) != json_string_length(cause) || strlen(out->exe) != json_string_length(exe))
		goto cleanup;
	err = 0;
cleanup:
	json_decref(doc);
	return err;
}

/* The file's text, if it is a regular file of at most POSTMORTEM_FILE_MAX bytes (no
 * symlink followed); *out is malloc'd and NUL-terminated. */
static int file_read(const char *name, char **out, size_t *len)
{
	struct stat st;
	ssize_t n;
	char *buf = NULL;
	int fd, err;

	fd = openat(dirfd_, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = -EINVAL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > POSTMORTEM_FILE_MAX)
		goto cleanup;
	err = -ENOMEM;
	buf = malloc(st.st_size + 1);
	if (!buf)
		goto cleanup;
	n = pread(fd, buf, st.st_size, 0);
	err = n < 0 ? -errno : n != st.st_size ? -EIO : 0;
	if (err)
		goto cleanup;
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
cleanup:
	free(buf);
	close(fd);
	return err;
}

static void entry_free(struct entry *e)
{
	nentries--;
	nbytes -= e->bytes;
	free(e->text);
	free(e);
}

/* Inserted by ended_at, newest first. */
static void entry_insert(struct entry *e)
{
	struct entry **pp = &entries;

	while (*pp && (*pp)->info.ended_at > e->info.ended_at)
		pp = &(*pp)->next;
	e->next = *pp;
	*pp = e;
	nentries++;
	nbytes += e->bytes;
}

/* Removes the oldest reports over the caps. */
static void entries_trim(void)
{
	struct entry **pp, *e;

	while (nentries && (nentries > POSTMORTEM_MAX || nbytes > POSTMORTEM_MAX_BYTES)) {
		for (pp = &entries; (*pp)->next; pp = &(*pp)->next)
			;
		e = *pp;
		*pp = NULL;
		if (dirfd_ >= 0 && unlinkat(dirfd_, e->name, 0) && errno != ENOENT)
			log_warn("%s/%s: remove: %s", dir_path, e->name, strerror(errno));
		entry_free(e);
		removed++;
	}
}

static bool name_ours(const char *name)
{
	size_t n = strlen(name);

	return !strncmp(name, NAME_PREFIX, strlen(NAME_PREFIX)) && n > 5 && n < 64 &&
	       !strcmp(name + n - 5, ".json");
}

static void dir_index(void)
{
	struct dirent *de;
	DIR *d;
	int fd = dup(dirfd_);

	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		log_warn("%s: list: %s", dir_path, strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		struct entry *e;
		char *text;
		size_t len;

		/* A report whose rename never happened (the daemon died writing it). */
		if (!strncmp(de->d_name, ".tmp-" NAME_PREFIX, 5 + strlen(NAME_PREFIX))) {
			unlinkat(dirfd_, de->d_name, 0);
			continue;
		}
		if (!name_ours(de->d_name) || file_read(de->d_name, &text, &len))
			continue;
		e = calloc(1, sizeof(*e));
		if (e && !postmortem_parse(text, len, &e->info)) {
			snprintf(e->name, sizeof(e->name), "%s", de->d_name);
			e->bytes = len;
			entry_insert(e);
		} else {
			log_warn("%s/%s: not a report, ignored", dir_path, de->d_name);
			free(e);
		}
		free(text);
	}
	closedir(d);
	entries_trim();
}

int postmortem_start(const char *dir)
{
	struct stat st;
	int err;

	snprintf(dir_path, sizeof(dir_path), "%s", dir);
	if (mkdir(dir, 0700) && errno != EEXIST) {
		err = -errno;
		goto cleanup;
	}
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd_ < 0) {
		err = -errno;
		goto cleanup;
	}
	/* Others must not plant reports (or symlinks) where root writes and reads. */
	err = -EPERM;
	if (fstat(dirfd_, &st) || st.st_uid != geteuid() || (st.st_mode & 022))
		goto cleanup;
	dir_index();
	log_info("postmortem reports in %s (%zu kept)", dir, nentries);
	return 0;
cleanup:
	log_warn("state_dir %s unusable (%s): postmortem reports are kept in memory only", dir,
		 strerror(-err));
	if (dirfd_ >= 0)
		close(dirfd_);
	dirfd_ = -1;
	return err;
}

void postmortem_stop(void)
{
	struct entry *e;

	while ((e = entries)) {
		entries = e->next;
		entry_free(e);
	}
	if (dirfd_ >= 0)
		close(dirfd_);
	dirfd_ = -1;
}

/* Writes text as name: a temporary file renamed over it, so a reader never sees half. */
static int file_write(const char *name, const char *text, size_t len)
{
	char tmp[80];
	size_t off = 0;
	ssize_t n;
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), ".tmp-%s", name);
	fd = openat(dirfd_, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (off < len && !err) {
		n = write(fd, text + off, len - off);
		if (n < 0 && errno != EINTR)
			err = -errno;
		else if (n > 0)
			off += n;
	}
	if (close(fd) && !err)
		err = -errno;
	if (!err && renameat(dirfd_, tmp, dirfd_, name))
		err = -errno;
	if (err)
		unlinkat(dirfd_, tmp, 0);
	return err;
}

static void journal_tell(const json_t *report, const struct postmortem_info *info)
{
	json_t *suspect = json_array_get(json_object_get(json_object_get(report, "leaks"), "suspects"), 0);
	const char *type = json_string_value(json_object_get(suspect, "type"));
	json_t *sig = json_object_get(report, "signal"), *code = json_object_get(report, "exit_code");
	char how[48] = "";

	if (sig)
		snprintf(how, sizeof(how), " (signal %d)", (int)json_integer_value(sig));
	else if (json_is_integer(code))
		snprintf(how, sizeof(how), " (exit code %d)", (int)json_integer_value(code));
	sd_journal_send("MESSAGE=pyleak: pid %d (%s) ended: %s%s; top suspect: %s", info->pid,
			info->exe, info->cause, how, type ? type : "none",
			"PRIORITY=%d", LOG_NOTICE, "PYLEAK_PID=%d", info->pid,
			"PYLEAK_CAUSE=%s", info->cause, "PYLEAK_SUSPECT=%s", type ? type : "", NULL);
}

void postmortem_add(json_t *report)
{
	struct entry *e = calloc(1, sizeof(*e));
	char *text = json_dumps(report, JSON_COMPACT);
	size_t len = text ? strlen(text) : 0;
	int err = -ENOMEM;

	if (!e || !text || postmortem_parse(text, len, &e->info))
		goto cleanup;
	snprintf(e->name, sizeof(e->name), NAME_PREFIX "%d-%.0f.json", e->info.pid,
		 e->info.ended_at * 1000);
	e->bytes = len;
	if (dirfd_ >= 0) {
		err = file_write(e->name, text, len);
		if (err)
			goto cleanup;
	} else {
		e->text = text;
		text = NULL;
	}
	journal_tell(report, &e->info);
	entry_insert(e);
	e = NULL;
	entries_trim();
	err = 0;
cleanup:
	if (err)
		log_warn("postmortem report: %s%s%s", dir_path, dirfd_ >= 0 ? ": " : "", strerror(-err));
	free(text);
	if (e)
		free(e->text);
	free(e);
}

json_t *postmortem_list_json(bool all, uid_t uid)
{
	json_t *arr = json_array();
	struct entry *e;

	for (e = entries; arr && e; e = e->next)
		if (all || e->info.uid == uid)
			json_array_append_new(arr, json_pack("{s:i, s:s, s:f, s:s}", "pid", e->info.pid,
					      "exe", e->info.exe, "ended_at", e->info.ended_at,
					      "cause", e->info.cause));
	return json_pack("{s:o}", "reports", arr);
}

int postmortem_get(pid_t pid, bool all, uid_t uid, json_t **out)
{
	struct entry *e;
	size_t len;
	char *text;
	int err;

	for (e = entries; e; e = e->next)
		if (e->info.pid == pid && (all || e->info.uid == uid))
			break;
	if (!e)
		return -ENOENT;
	if (e->text)
		return (*out = json_loads(e->text, 0, NULL)) ? 0 : -ENOMEM;
	err = file_read(e->name, &text, &len);
	if (err)
		return err;
	/* Rewritten since it was indexed: a report again, and still this process's. */
	*out = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	if (!*out || json_integer_value(json_object_get(*out, "pid")) != pid ||
	    json_integer_value(json_object_get(*out, "uid")) != (json_int_t)e->info.uid) {
		json_decref(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

json_t *postmortem_stats_json(void)
{
	return json_pack("{s:s, s:b, s:I, s:I, s:I, s:i, s:i}", "dir", dir_path, "on_disk", dirfd_ >= 0,
			 "count", (json_int_t)nentries, "bytes", (json_int_t)nbytes,
			 "removed", (json_int_t)removed, "max_count", POSTMORTEM_MAX,
			 "max_bytes", POSTMORTEM_MAX_BYTES);
}
