/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Allocation sites: a census whose objects are attributed to the Python stack that first
 * touched their page (recorded by BPF at the page fault), and those sites as JSON.
 */
#ifndef PYLEAK_SITES_H
#define PYLEAK_SITES_H

#include <jansson.h>
#include <stdint.h>

#include "census.h"
#include "probes.h"
#include "python.h"

/* Runs a census of p's process (interpreter py, layout l) with per-(type, site) tallies from
 * the pages p recorded (at most max_pages of them); 0 or a negative errno. */
int sites_census(struct probes *p, const struct python_info *py, const struct census_layout *l,
		 uint32_t max_pages, struct census *out);

/* Sites of the objects born since attach whose birth had its stack sampled, 1 in every
 * (per-object probes, precise mode), in out->sites; 0 or a negative errno. */
int sites_births(struct probes *p, uint32_t every, struct census *out);

/* The n largest sites of type in c, as the contract's "sites" array, frames named through
 * py; NULL on no memory. */
json_t *sites_json(struct probes *p, const struct python_info *py, const struct census *c,
		   uint64_t type, int n);

/* The sites v[0..n) as the contract's "sites" array (estimate as "live"), in that order. */
json_t *sites_list_json(struct probes *p, const struct python_info *py,
			const struct census_site *v, size_t n);

/* Pool objects of type in c, how many of them the sites stand for, and the sampled ones. */
void sites_totals(const struct census *c, uint64_t type, uint64_t *live, double *attributed,
		  uint64_t *samples);

/* The stack that first touched most sampled pages of [start, end) (what grew a container's
 * array: a list's append), as a site with "pages" for "live"; NULL if none is known. */
json_t *sites_range_json(struct probes *p, const struct python_info *py, uint64_t start,
			 uint64_t end);

#endif
