// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: the /proc parsers, on text a process's owner partly chooses (mapped file
 * names, the command name in stat). The first byte picks the parser; the rest is its input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procfs.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct procfs_map m;
	uint64_t v;
	double cpu;
	uint8_t pick;
	char *text;

	text = fuzz_text(data, size, &pick);
	if (!text)
		return 0;
	switch (pick % 4) {
	case 0:
		/* One line per call, as procfs_maps_next() hands them (no newline). */
		text[strcspn(text, "\n")] = '\0';
		if (!procfs_map_parse(text, &m) &&
		    (m.start >= m.end || m.path < text || m.path > text + strlen(text) ||
		     strlen(m.perms) != 4))
			abort();
		break;
	case 1:
		if (!procfs_cpu_seconds_parse(text, &cpu) && !(cpu >= 0))
			abort();
		procfs_start_time_parse(text, &v);
		break;
	case 3:
		/* smaps field lines, one per call */
		text[strcspn(text, "\n")] = '\0';
		if (!procfs_smaps_rss_parse(text, &v) && (v > (UINT64_MAX >> 10) ||
							  strncmp(text, "Rss:", 4)))
			abort();
		break;
	default:
		procfs_fdinfo_parse(text, "memlock", &v);
		break;
	}
	free(text);
	return 0;
}
