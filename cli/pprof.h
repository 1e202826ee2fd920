/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* pprof export of a `sites` reply (cli/profile.proto), for `pyleakctl sites --format pprof`. */
#ifndef PYLEAK_PPROF_H
#define PYLEAK_PPROF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define PPROF_SAMPLE_TYPE	"live_objects"
#define PPROF_SAMPLE_UNIT	"count"
/* With native sites (a reply's "native"), a second value per sample: their resident bytes,
 * each native site's stack having a NATIVE_FRAME as its innermost frame. */
#define PPROF_NATIVE_TYPE	"inuse_space"
#define PPROF_NATIVE_UNIT	"bytes"
#define NATIVE_FRAME		"[native]"

/*
 * Encodes a sites reply ({"pid", "type", "sampled", "sites": [{"function", "file", "line",
 * "live", "stack": [...]}]}) as a gzip-compressed profile: one sample per site whose value is
 * its live count and whose stack is innermost first, one location per distinct (function,
 * file, line), one function per distinct (function, file). A site without a stack is its own
 * one-frame stack. On success *out (for free()) holds *len bytes. Returns 0 or a negative errno.
 */
int pprof_encode(json_t *reply, uint8_t **out, size_t *len);

#endif
