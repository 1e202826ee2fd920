// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "watch.h"

static const char *const key_names[] = {
	[WATCH_ALL] = "all", [WATCH_EXE] = "exe", [WATCH_CMDLINE] = "cmdline",
	[WATCH_UNIT] = "unit", [WATCH_CONTAINER] = "container",
};

int watch_rule_parse(const char *text, struct watch_rule *out)
{
	const char *colon = strchr(text, ':');
	size_t klen, i;

	if (!strcmp(text, "all")) {
		out->key = WATCH_ALL;
		out->glob[0] = '\0';
		return 0;
	}
	if (!colon || !colon[1] || strlen(colon + 1) >= sizeof(out->glob))
		return -EINVAL;
	klen = colon - text;
	for (i = WATCH_EXE; i < sizeof(key_names) / sizeof(key_names[0]); i++) {
		if (strlen(key_names[i]) == klen && !strncmp(text, key_names[i], klen)) {
			out->key = (enum watch_key)i;
			snprintf(out->glob, sizeof(out->glob), "%s", colon + 1);
			return 0;
		}
	}
	return -EINVAL;
}

int watch_rules_add(struct watch_rules *r, bool exclude, const char *text)
{
	int *n = exclude ? &r->nexclude : &r->nwatch;
	struct watch_rule *rules = exclude ? r->exclude : r->watch;

	if (*n >= WATCH_RULES_MAX)
		return -E2BIG;
	if (watch_rule_parse(text, &rules[*n]))
		return -EINVAL;
	(*n)++;
	return 0;
}

static bool rule_match(const struct watch_rule *rule, const struct watch_proc *p)
{
	const char *const field[] = { [WATCH_EXE] = p->exe, [WATCH_CMDLINE] = p->cmdline,
				      [WATCH_UNIT] = p->unit, [WATCH_CONTAINER] = p->container };
	const char *s;

	if (rule->key == WATCH_ALL)
		return true;
	s = (size_t)rule->key < sizeof(field) / sizeof(field[0]) ? field[rule->key] : NULL;
	/* '*' crosses '/': exe:*python3* matches /usr/bin/python3.11. */
	return s && !fnmatch(rule->glob, s, 0);
}

int watch_match(const struct watch_rules *r, const struct watch_proc *p)
{
	int i, found = WATCH_NONE;

	for (i = 0; i < r->nwatch && found < 0; i++)
		if (rule_match(&r->watch[i], p))
			found = i;
	for (i = 0; i < r->nexclude && found >= 0; i++)
		if (rule_match(&r->exclude[i], p))
			found = WATCH_EXCLUDED;
	return found;
}

void watch_rule_format(const struct watch_rule *rule, char *buf, size_t size)
{
	if (rule->key == WATCH_ALL)
		snprintf(buf, size, "all");
	else
		snprintf(buf, size, "%s:%s", key_names[rule->key], rule->glob);
}
