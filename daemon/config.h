/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* pyleakd's settings: KEY=VALUE lines of a config file, and the options that set the same. */
#ifndef PYLEAK_CONFIG_H
#define PYLEAK_CONFIG_H

#include "server.h"

/* Applies one setting (socket, group, mode, budget, max_targets, max_objects, max_pages,
 * sample_interval, log_level, watch, exclude, max_maps_memory, max_memory, max_cpu,
 * metrics_listen, metrics_top_types, state_dir) to o; 0, or -EINVAL with the reason logged. */
int config_set(struct server_options *o, const char *key, const char *val);

/* Applies text's KEY=VALUE lines ('#' starts a comment; blanks around keys and values are
 * ignored) in order, up to the first bad one; name: the file, for messages. 0 or -errno. */
int config_parse(const char *text, const char *name, struct server_options *o);

/* config_parse() of the file at path; 0 or -errno, logged. */
int config_read(const char *path, struct server_options *o);

#endif
