// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: /proc/PID/cgroup (paths named by whoever made the cgroups: a delegated
 * user, a container runtime) and /proc/PID/status's NSpid line.  The first byte picks the
 * parser; the rest is its input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "container.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct container_label l;
	uint8_t pick;
	char *text;
	pid_t pid;

	text = fuzz_text(data, size, &pick);
	if (!text)
		return 0;
	if (pick & 1) {
		container_cgroup_parse(text, &l);
		/* bounded, terminated, and fit for JSON (what `status` shows) */
		if (strnlen(l.container, sizeof(l.container)) == sizeof(l.container) ||
		    strnlen(l.unit, sizeof(l.unit)) == sizeof(l.unit))
			abort();
		for (int i = 0; i < 2; i++) {
			json_t *j = json_string(i ? l.unit : l.container);

			if (!j)
				abort();
			json_decref(j);
		}
	} else if (!container_nspid_parse(text, &pid) && pid <= 0) {
		abort();
	}
	free(text);
	return 0;
}
