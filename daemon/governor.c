// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include "governor.h"

bool governor_update(struct governor *g, uint64_t cost_ns, double cpu_s, bool adjustable)
{
	uint64_t mask = g->page_mask;
	double dcpu;

	g->over = false;
	g->prev_cost_ns = g->cost_ns;
	g->cost_ns = cost_ns;
	if (cpu_s < 0)
		return false;
	g->prev_cpu_s = g->cpu_s ? g->cpu_s : cpu_s;
	g->cpu_s = cpu_s;
	dcpu = g->cpu_s - g->prev_cpu_s;
	if (dcpu <= 0)
		return false;
	g->ratio = (g->cost_ns - g->prev_cost_ns) / 1e9 / dcpu;
	g->over = g->budget && g->ratio > g->budget;
	if (!g->budget || !adjustable)
		return false;
	if (g->ratio > g->budget && mask < GOVERNOR_PAGE_MASK_MAX) {
		mask = mask * 2 + 1;
		g->throttles++;
	} else if (g->ratio < g->budget / 4 && mask) {
		mask >>= 1;
	}
	if (mask == g->page_mask)
		return false;
	g->page_mask = mask;
	return true;
}
