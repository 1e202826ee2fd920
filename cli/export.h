/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* `pyleakctl sites --format folded|pprof`: a sites reply for flame graph and profile readers. */
#ifndef PYLEAKCTL_EXPORT_H
#define PYLEAKCTL_EXPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* One folded stack (flamegraph.pl input) per site, with its live count; native sites (a
 * reply's "native") with their bytes, under a "[native]" leaf frame. */
void sites_folded_print(FILE *out, json_t *sites, bool native);

/* The reply as a gzip'd pprof profile (pprof.h); 0 or a negative errno. */
int sites_pprof_write(FILE *out, json_t *reply);

#endif
