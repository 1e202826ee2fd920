/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * A hash map from u64 keys (0 included) to fixed-size values: open addressing, linear probing,
 * doubling as it fills up to a cap set at creation, so that what a target holds cannot make the
 * daemon's memory grow without bound.
 */
#ifndef PYLEAK_U64MAP_H
#define PYLEAK_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct u64map;

/* A map of values of value_size bytes holding at most max_entries; 0, -EINVAL or -ENOMEM. */
int u64map_new(size_t value_size, size_t max_entries, struct u64map **out);
void u64map_free(struct u64map *m);

/* The value of key, or NULL. Value pointers stay valid until the next insert. */
void *u64map_lookup(const struct u64map *m, uint64_t key);

/* The value of key in *value, added zero-filled if absent: 1 added, 0 found, -E2BIG (the map
 * holds max_entries) or -ENOMEM. */
int u64map_insert(struct u64map *m, uint64_t key, void **value);

size_t u64map_count(const struct u64map *m);

/* The memory the map holds, in bytes. */
size_t u64map_bytes(const struct u64map *m);

/* Iteration, in no order: start with *pos = 0; false once every entry was visited. */
bool u64map_next(const struct u64map *m, size_t *pos, uint64_t *key, void **value);

#endif
