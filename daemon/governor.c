// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include "governor.h"

bool governor_update(struct governor *g, uint64_t cost_ns, double cpu_s, bool adjustable)
{
	uint64_t mask = g->page_mask;
	double dcpu;

	g->over = false;
	/* A program's info unreadable this time: its cost would come back as a jump later. */
	if (cost_ns < g->cost_ns)
		return false;
	if (cpu_s < 0) {
		g->cost_ns = cost_ns;
		return false;
	}
	if (!g->cpu_s) {
		g->cost_ns = cost_ns;
		g->cpu_s = cpu_s;
		return false;
	}
	dcpu = cpu_s - g->cpu_s;
	if (dcpu < GOVERNOR_MIN_CPU_S)
		return false;
	g->prev_cost_ns = g->cost_ns;
	g->prev_cpu_s = g->cpu_s;
	g->cost_ns = cost_ns;
	g->cpu_s = cpu_s;
	g->ratio = (g->cost_ns - g->prev_cost_ns) / 1e9 / dcpu;
	g->over = g->budget && g->ratio > g->budget;
	g->over_streak = g->over ? g->over_streak + 1 : 0;
	g->sustained = g->over_streak >= GOVERNOR_OVER_STREAK;
	if (!g->budget || !adjustable)
		return false;
	if (g->over && mask < GOVERNOR_PAGE_MASK_MAX) {
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
