// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer target: pyleakd's config file. Whatever its lines, config_parse() must not crash or
 * leak, and must leave every setting within the range the daemon accepts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "metrics_http.h"

/* A metrics_listen accepted is an address the server can bind. */
static int listen_ok(const char *s)
{
	struct sockaddr_storage ss;
	socklen_t len;

	return !metrics_listen_parse(s, &ss, &len) &&
	       (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct server_options o = { .path = "/run/pyleakd/pyleakd.sock", .target.max_objects = 1u << 22,
				    .target.max_pages = 1u << 15, .target.max_targets = 256,
				    .target.budget = 0.01, .target.sample_interval = 2.0 };
	FILE *err = stderr;
	char *text;

	/* Every bad line is logged: to /dev/null, or the fuzzer would spend its time writing.
	 * Sanitizer and libFuzzer reports do not go through stdio's stderr. */
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	text = malloc(size + 1);
	if (!text || !devnull)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	stderr = devnull;
	config_parse(text, "fuzz.conf", &o);
	stderr = err;
	if (!o.path || strlen(o.path) >= 4096 || o.target.max_objects < 1024 ||
	    o.target.max_objects > (1u << 28) || o.target.max_targets < 1 || o.target.max_targets > 4096 ||
	    o.target.max_pages < 1024 || o.target.max_pages > (1u << 26) ||
	    !(o.target.budget >= 0 && o.target.budget <= 1) ||
	    !(o.target.sample_interval >= 0.1 && o.target.sample_interval <= 3600) ||
	    (o.target.mode != TARGET_PRECISE && o.target.mode != TARGET_SAMPLED) ||
	    o.discovery.max_maps_bytes > (1ULL << 44) || o.discovery.max_memory_bytes > (1ULL << 44) ||
	    o.metrics.top_types > METRICS_TOP_TYPES_MAX || (o.metrics.listen && !listen_ok(o.metrics.listen)))
		abort();
	free(text);
	return 0;
}
