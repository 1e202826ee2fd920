/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Which processes the daemon attaches by itself: the config's `watch` and `exclude` rules
 * (all | exe:GLOB | cmdline:GLOB | unit:GLOB | container:GLOB), matched against what is known
 * of a process.  Pure: no I/O.
 */
#ifndef PYLEAK_WATCH_H
#define PYLEAK_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#define WATCH_RULES_MAX 32
#define WATCH_GLOB_MAX 256

enum watch_key { WATCH_ALL, WATCH_EXE, WATCH_CMDLINE, WATCH_UNIT, WATCH_CONTAINER };

struct watch_rule {
	enum watch_key key;
	char glob[WATCH_GLOB_MAX];	/* fnmatch(3) pattern; "" for all */
};

struct watch_rules {
	struct watch_rule watch[WATCH_RULES_MAX], exclude[WATCH_RULES_MAX];
	int nwatch, nexclude;
};

/* What is known of a process; NULL: unknown (matches no rule on that key). */
struct watch_proc {
	const char *exe;	/* its executable, as the process sees it */
	const char *cmdline;	/* its arguments joined by spaces */
	const char *unit;	/* systemd unit from its cgroup */
	const char *container;	/* container id from its cgroup */
};

/* Parses one rule; 0 or -EINVAL (unknown key, empty or too long a pattern). */
int watch_rule_parse(const char *text, struct watch_rule *out);
/* Parses text and adds it as a watch (or exclude) rule; 0, -EINVAL or -E2BIG (too many). */
int watch_rules_add(struct watch_rules *r, bool exclude, const char *text);

#define WATCH_NONE -1	/* no watch rule matches */
#define WATCH_EXCLUDED -2	/* one does, and so does an exclude rule */

/* The index of the first watch rule p matches, WATCH_NONE or WATCH_EXCLUDED. */
int watch_match(const struct watch_rules *r, const struct watch_proc *p);

/* The rule as the config writes it ("exe:*python3*") into buf. */
void watch_rule_format(const struct watch_rule *rule, char *buf, size_t size);

#endif
