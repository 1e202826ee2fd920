// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: watch rules (the config's `watch`/`exclude`, root's text but checked like
 * any input) and their matching against a process's exe, cmdline, unit and container, which
 * the process's owner chooses.  Input: rule lines, a NUL, then the four fields by lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "watch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct watch_rules r = {};
	struct watch_proc p = {};
	char *text, *line, *next, *fields[4] = {};
	size_t nul;
	int i, m;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	nul = strlen(text);
	for (line = text, i = 0; line && *line; line = next, i++) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (watch_rules_add(&r, i % 3 == 2, line) == 0) {
			char back[WATCH_GLOB_MAX + 16];
			struct watch_rule again;
			const struct watch_rule *rule = i % 3 == 2 ? &r.exclude[r.nexclude - 1] :
								&r.watch[r.nwatch - 1];

			/* what is shown parses back to the same rule */
			watch_rule_format(rule, back, sizeof(back));
			if (watch_rule_parse(back, &again) || again.key != rule->key ||
			    strcmp(again.glob, rule->glob))
				abort();
		}
	}
	if (nul < size) {
		line = text + nul + 1;
		for (i = 0; i < 4 && line; i++) {
			fields[i] = line;
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			line = next;
		}
	}
	p.exe = fields[0];
	p.cmdline = fields[1];
	p.unit = fields[2];
	p.container = fields[3];
	m = watch_match(&r, &p);
	if (m >= r.nwatch || m < WATCH_EXCLUDED || (m == WATCH_EXCLUDED && !r.nexclude))
		abort();
	free(text);
	return 0;
}
