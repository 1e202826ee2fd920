// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <stdio.h>
#include <string.h>

#include "cpython.h"
#include "holder.h"
#include "procmem.h"
#include "sites.h"

/* A list's item array lies in user space (x86-64: below 2^47). */
#define USER_ADDR_MAX	(1ull << 47)

void holders_record(struct holders *h, double t, const struct census *c)
{
	struct holder_snapshot *snap = &h->snaps[h->head];

	h->head = (h->head + 1) % HOLDER_SNAPSHOTS;
	if (h->n < HOLDER_SNAPSHOTS)
		h->n++;
	snap->t = t;
	snap->n = c->nlists;
	memcpy(snap->lists, c->lists, sizeof(c->lists));
}

/* Where a list grows: the code whose stores first touched the pages of its item array (an
 * append), which is the line to fix, as the items' own sites are where they were made. */
static json_t *grown_at_json(struct probes *p, const struct python_info *py, uint64_t list)
{
	uint64_t items[2];	/* ob_item, allocated */

	_Static_assert(CPY_LIST_ALLOCATED == CPY_LIST_ITEMS + 8, "ob_item, then allocated");
	if (procmem_read(p->pid, list + CPY_LIST_ITEMS, items, sizeof(items)) ||
	    items[0] >= USER_ADDR_MAX || items[1] > (USER_ADDR_MAX - items[0]) / 8)
		return NULL;
	return sites_range_json(p, py, items[0], items[0] + items[1] * 8);
}

json_t *holders_json(const struct holders *h, double since, int64_t growth, char *evidence,
		     size_t len, struct probes *p, const struct python_info *py)
{
	const struct holder_snapshot *old = NULL, *new = NULL;
	const struct census_container *best = NULL;
	int64_t best_grew = 0;
	json_t *holder, *site;
	char addr[32];
	int i, j;

	for (i = 0; i < h->n; i++) {
		const struct holder_snapshot *s =
			&h->snaps[(h->head + HOLDER_SNAPSHOTS - h->n + i) % HOLDER_SNAPSHOTS];

		if (s->t < since)
			continue;
		if (!old)
			old = s;
		new = s;
	}
	if (!old || old == new)
		return NULL;
	for (i = 0; i < new->n; i++) {
		for (j = 0; j < old->n; j++) {
			int64_t grew = new->lists[i].len - old->lists[j].len;

			if (new->lists[i].addr == old->lists[j].addr && grew > best_grew) {
				best = &new->lists[i];
				best_grew = grew;
			}
		}
	}
	if (!best || best_grew * 2 < growth)
		return NULL;
	i = strlen(evidence);
	snprintf(evidence + i, len - i, "; held by one list at 0x%lx that grew by %ld to %ld items in %.0f s",
		 best->addr, best_grew, best->len, new->t - old->t);
	snprintf(addr, sizeof(addr), "0x%lx", best->addr);
	holder = json_pack("{s:s, s:s, s:I, s:I}", "container", "list", "address", addr,
			   "length", (json_int_t)best->len, "growth", (json_int_t)best_grew);
	site = holder && p ? grown_at_json(p, py, best->addr) : NULL;
	if (site) {
		i = strlen(evidence);
		snprintf(evidence + i, len - i, ", grown by %s() at line %" JSON_INTEGER_FORMAT,
			 json_string_value(json_object_get(site, "function")),
			 json_integer_value(json_object_get(site, "line")));
		json_object_set_new(holder, "grown_at", site);
	}
	return holder;
}
