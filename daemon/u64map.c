// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Each slot holds a key, then its value. Key 0 marks an empty slot, so the entry of key 0, if
 * any, lives in one extra slot past the table. Entries are never removed: empty slots keep the
 * zeroes calloc gave them, and an added value starts zero-filled.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "u64map.h"

#define SLOTS_INITIAL	16u
#define VALUE_SIZE_MAX	(1u << 20)

struct u64map {
	uint8_t *slots;		/* nslots + 1 slots of stride bytes */
	size_t nslots;		/* a power of two, at least twice the nonzero keys */
	size_t stride;		/* the key and the value, rounded up to keep keys aligned */
	size_t count;
	size_t max;
	bool has_zero;
};

/* murmur3's finalizer: addresses differ in a few middle bits, which the mask must see. */
static size_t key_hash(uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return key;
}

static uint64_t *slot_key(const uint8_t *slots, size_t stride, size_t i)
{
	return (uint64_t *)(slots + i * stride);
}

/* The slot of a nonzero key, or the empty slot where it belongs; the table is never full. */
static uint64_t *slot_find(const uint8_t *slots, size_t nslots, size_t stride, uint64_t key)
{
	size_t i;

	for (i = key_hash(key) & (nslots - 1);; i = (i + 1) & (nslots - 1)) {
		uint64_t *k = slot_key(slots, stride, i);

		if (*k == key || !*k)
			return k;
	}
}

int u64map_new(size_t value_size, size_t max_entries, struct u64map **out)
{
	struct u64map *m;

	*out = NULL;
	if (!max_entries || value_size > VALUE_SIZE_MAX)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->stride = sizeof(uint64_t) + (value_size + 7) / 8 * 8;
	m->nslots = SLOTS_INITIAL;
	m->max = max_entries;
	m->slots = calloc(m->nslots + 1, m->stride);
	if (!m->slots) {
		free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void u64map_free(struct u64map *m)
{
	if (!m)
		return;
	free(m->slots);
	free(m);
}

void *u64map_lookup(const struct u64map *m, uint64_t key)
{
	uint64_t *k;

	if (!key)
		return m->has_zero ? slot_key(m->slots, m->stride, m->nslots) + 1 : NULL;
	k = slot_find(m->slots, m->nslots, m->stride, key);
	return *k ? k + 1 : NULL;
}

static int map_grow(struct u64map *m)
{
	size_t n = m->nslots * 2, i;
	uint8_t *slots;

	if (n > SIZE_MAX / 2 / m->stride)
		return -ENOMEM;
	slots = calloc(n + 1, m->stride);
	if (!slots)
		return -ENOMEM;
	for (i = 0; i < m->nslots; i++) {
		const uint64_t *k = slot_key(m->slots, m->stride, i);

		if (*k)
			memcpy(slot_find(slots, n, m->stride, *k), k, m->stride);
	}
	memcpy(slot_key(slots, m->stride, n), slot_key(m->slots, m->stride, m->nslots), m->stride);
	free(m->slots);
	m->slots = slots;
	m->nslots = n;
	return 0;
}

int u64map_insert(struct u64map *m, uint64_t key, void **value)
{
	uint64_t *k;
	int err;

	if (!key) {
		k = slot_key(m->slots, m->stride, m->nslots);
		if (m->has_zero) {
			*value = k + 1;
			return 0;
		}
	} else {
		k = slot_find(m->slots, m->nslots, m->stride, key);
		if (*k) {
			*value = k + 1;
			return 0;
		}
	}
	if (m->count == m->max)
		return -E2BIG;
	if (!key) {
		m->has_zero = true;
	} else if ((m->count - m->has_zero + 1) * 2 > m->nslots) {
		/* at most half full: probes stay short */
		err = map_grow(m);
		if (err)
			return err;
		k = slot_find(m->slots, m->nslots, m->stride, key);
	}
	*k = key;
	m->count++;
	*value = k + 1;
	return 1;
}

size_t u64map_bytes(const struct u64map *m)
{
	return sizeof(*m) + (m->nslots + 1) * m->stride;
}

size_t u64map_count(const struct u64map *m)
{
	return m->count;
}

bool u64map_next(const struct u64map *m, size_t *pos, uint64_t *key, void **value)
{
	uint64_t *k;

	/* the slots, then the slot of key 0 past them */
	while (*pos < m->nslots && !*slot_key(m->slots, m->stride, *pos))
		(*pos)++;
	if (*pos > m->nslots || (*pos == m->nslots && !m->has_zero))
		return false;
	k = slot_key(m->slots, m->stride, (*pos)++);
	*key = *k;
	*value = k + 1;
	return true;
}
