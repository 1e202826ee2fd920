// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "metrics_http.h"

/* A config file is a few lines: a larger one is refused rather than read whole. */
#define CONFIG_MAX (64 * 1024)
#define SIZE_MAX_BYTES (1ULL << 44)	/* 16 TiB: more is a typo */

static int group_parse(const char *name, struct server_options *o)
{
	struct group *gr = getgrnam(name);

	if (!gr) {
		log_error("unknown group %s", name);
		return -EINVAL;
	}
	o->group = gr->gr_gid;
	o->has_group = true;
	return 0;
}

/* "HOST:PORT", checked now so that a bad one fails at start, with its line. */
static int metrics_listen_set(struct server_options *o, const char *val)
{
	static char listen[80];
	struct sockaddr_storage ss;
	socklen_t len;

	if (strlen(val) >= sizeof(listen) || metrics_listen_parse(val, &ss, &len)) {
		log_error("metrics_listen must be IPv4:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9464");
		return -EINVAL;
	}
	snprintf(listen, sizeof(listen), "%s", val);
	o->metrics.listen = listen;
	return 0;
}

/* Bytes, or with a K, M or G suffix, up to SIZE_MAX_BYTES; 0 or -EINVAL. */
static int size_parse(const char *val, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!isdigit((unsigned char)val[0]))
		return -EINVAL;		/* strtoull takes blanks and signs */
	errno = 0;
	v = strtoull(val, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end && !end[1] && strchr("KMG", *end))
		shift = *end == 'K' ? 10 : *end == 'M' ? 20 : 30, end++;
	/* checked before the shift, which would wrap */
	if (*end || v > SIZE_MAX_BYTES >> shift)
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/* A number in [min, max]: 0 or -EINVAL.  Written so that NaN ("nan" parses) fails, and "" is
 * no number rather than 0. */
static int number_parse(const char *val, double min, double max, double *out)
{
	char *end;
	double d = strtod(val, &end);

	if (end == val || *end || !(d >= min && d <= max))
		return -EINVAL;
	*out = d;
	return 0;
}

/* A whole number in [min, max]: 0 or -EINVAL. */
static int whole_parse(const char *val, long min, long max, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(val, &end, 10);
	if (end == val || *end || errno || n < min || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

int config_set(struct server_options *o, const char *key, const char *val)
{
	static char socket_path[4096], state_dir[256];
	long n;

	if (!strcmp(key, "socket")) {
		snprintf(socket_path, sizeof(socket_path), "%s", val);
		o->path = socket_path;
	} else if (!strcmp(key, "state_dir")) {
		if (val[0] != '/' || strlen(val) >= sizeof(state_dir)) {
			log_error("state_dir must be an absolute path shorter than %zu bytes", sizeof(state_dir));
			return -EINVAL;
		}
		snprintf(state_dir, sizeof(state_dir), "%s", val);
		o->state_dir = state_dir;
	} else if (!strcmp(key, "group")) {
		return group_parse(val, o);
	} else if (!strcmp(key, "max_objects")) {
		if (whole_parse(val, 1024, 1L << 28, &n)) {
			log_error("max_objects must be 1024..268435456");
			return -EINVAL;
		}
		o->target.max_objects = n;
	} else if (!strcmp(key, "max_targets")) {
		if (whole_parse(val, 1, 4096, &n)) {
			log_error("max_targets must be 1..4096");
			return -EINVAL;
		}
		o->target.max_targets = n;
	} else if (!strcmp(key, "max_pages")) {
		if (whole_parse(val, 1024, 1L << 26, &n)) {
			log_error("max_pages must be 1024..67108864");
			return -EINVAL;
		}
		o->target.max_pages = n;
	} else if (!strcmp(key, "mode")) {
		if (target_mode_parse(val, &o->target.mode)) {
			log_error("mode must be precise or sampled");
			return -EINVAL;
		}
	} else if (!strcmp(key, "budget")) {
		if (number_parse(val, 0, 1, &o->target.budget)) {
			log_error("budget must be a fraction in [0, 1]");
			return -EINVAL;
		}
	} else if (!strcmp(key, "sample_interval")) {
		if (number_parse(val, 0.1, 3600, &o->target.sample_interval)) {
			log_error("sample_interval must be 0.1..3600 seconds");
			return -EINVAL;
		}
	} else if (!strcmp(key, "watch") || !strcmp(key, "exclude")) {
		n = watch_rules_add(&o->discovery.rules, key[0] == 'e', val);
		if (n == -E2BIG)
			log_error("more than %d %s rules", WATCH_RULES_MAX, key);
		else if (n)
			log_error("%s must be all, exe:GLOB, cmdline:GLOB, unit:GLOB or container:GLOB",
				  key);
		if (n)
			return -EINVAL;
	} else if (!strcmp(key, "max_maps_memory") || !strcmp(key, "max_memory")) {
		uint64_t v;

		if (size_parse(val, &v)) {
			log_error("%s must be bytes (suffix K, M or G) up to 16T, 0: unlimited", key);
			return -EINVAL;
		}
		if (!strcmp(key, "max_memory"))
			o->discovery.max_memory_bytes = v;
		else
			o->discovery.max_maps_bytes = v;
	} else if (!strcmp(key, "native_sample_bytes")) {
		uint64_t v;

		if (size_parse(val, &v) || (v && (v < 4096 || v > (1ULL << 30)))) {
			log_error("native_sample_bytes must be 4K..1G (suffix K, M or G), 0: off");
			return -EINVAL;
		}
		o->target.native_sample_bytes = v;
	} else if (!strcmp(key, "native_max_blocks")) {
		if (whole_parse(val, 1024, 1L << 24, &n)) {
			log_error("native_max_blocks must be 1024..16777216");
			return -EINVAL;
		}
		o->target.native_max_blocks = n;
	} else if (!strcmp(key, "max_cpu")) {
		if (number_parse(val, 0, 64, &o->discovery.max_cpu)) {
			log_error("max_cpu must be a share of one core in [0, 64], 0: unlimited");
			return -EINVAL;
		}
	} else if (!strcmp(key, "metrics_listen")) {
		return metrics_listen_set(o, val);
	} else if (!strcmp(key, "metrics_top_types")) {
		if (whole_parse(val, 1, METRICS_TOP_TYPES_MAX, &n)) {
			log_error("metrics_top_types must be 1..%d", METRICS_TOP_TYPES_MAX);
			return -EINVAL;
		}
		o->metrics.top_types = n;
	} else if (!strcmp(key, "log_level")) {
		n = log_parse_level(val);
		if (n < 0) {
			log_error("unknown log level %s", val);
			return -EINVAL;
		}
		log_threshold = n;
	} else {
		log_error("unknown setting %s", key);
		return -EINVAL;
	}
	return 0;
}

int config_parse(const char *text, const char *name, struct server_options *o)
{
	char *copy, *line, *next;
	int err = 0, lineno = 0;

	/* Cut in place, one line at a time. */
	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	for (line = copy; line && !err; line = next) {
		char *key = line, *val, *end;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		line[strcspn(line, "#")] = '\0';
		while (*key == ' ' || *key == '\t')
			key++;
		if (!*key)
			continue;
		val = strchr(key, '=');
		if (!val) {
			log_error("%s:%d: expected KEY=VALUE", name, lineno);
			err = -EINVAL;
			continue;
		}
		*val++ = '\0';
		for (end = val + strlen(val); end > val && (end[-1] == ' ' || end[-1] == '\t'); end--)
			end[-1] = '\0';
		while (*val == ' ' || *val == '\t')
			val++;
		key[strcspn(key, " \t")] = '\0';
		err = config_set(o, key, val);
	}
	free(copy);
	return err;
}

int config_read(const char *path, struct server_options *o)
{
	char *text = NULL;
	size_t n;
	FILE *f;
	int err;

	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		log_error("%s: %s", path, strerror(-err));
		return err;
	}
	text = malloc(CONFIG_MAX + 1);
	if (!text) {
		err = -ENOMEM;
		goto cleanup;
	}
	n = fread(text, 1, CONFIG_MAX + 1, f);
	if (ferror(f) || n > CONFIG_MAX) {
		err = ferror(f) ? -EIO : -EFBIG;
		log_error("%s: %s", path, strerror(-err));
		goto cleanup;
	}
	text[n] = '\0';
	err = config_parse(text, path, o);
cleanup:
	free(text);
	fclose(f);
	return err;
}
