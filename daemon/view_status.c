// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <stdio.h>

#include "discovery.h"
#include "pystack.h"
#include "sampler.h"
#include "view.h"

/* Generation "unknown" only on 3.8, whose collector's argument is not readable (python_plan). */
static const char *const gc_generations[PYLEAK_GC_GENS] = { "0", "1", "2", "unknown" };

const char *view_gc_generation(int g)
{
	return g >= 0 && g < PYLEAK_GC_GENS ? gc_generations[g] : "unknown";
}

json_t *view_gc_json(struct target *t)
{
	struct pyleak_gc gc;
	json_t *o = json_object();
	int g;

	if (!o || t->state != TARGET_TRACKING)
		return o;
	probes_read_gc(&t->probes, &gc);
	for (g = 0; g < PYLEAK_GC_GENS; g++) {
		if (g == PYLEAK_GC_GENS - 1 && !gc.gens[g].runs)
			continue;
		json_object_set_new(o, gc_generations[g], json_pack("{s:I, s:f, s:f, s:I}",
			"runs", (json_int_t)gc.gens[g].runs, "total_ms", gc.gens[g].ns / 1e6,
			"max_ms", gc.gens[g].max_ns / 1e6, "collected", (json_int_t)gc.gens[g].collected));
	}
	return o;
}

/* Where the uprobes sit in the target (the USDT probes are libbpf's): its instructions hold
 * an int3 there while probed. */
static json_t *probe_addresses_json(const struct probes *p)
{
	json_t *a = json_array();
	int i;

	for (i = 0; a && i < p->nlinks; i++)
		if (p->links[i].fd >= 0)
			json_array_append_new(a, json_integer((json_int_t)p->links[i].addr));
	return a;
}

void view_budget_add(const struct target *t, json_t *doc, json_t *notes)
{
	const struct governor *g = &t->gov;
	char buf[256];

	if (t->pool_removed)
		json_array_append_new(notes, json_sprintf(
			"the pool sampler's probe spent its budget (%.1f%% of a CPU, bursts of up to "
			"%.0f s of it): this process initialises pymalloc pools at a high rate; removed, "
			"objects in recycled pools are named by their pages' samples", g->budget * 100,
			PYLEAK_BURST_NS / 1e9));
	if (t->pages_paused_until > 0)
		json_array_append_new(notes, json_sprintf(
			"the page sampler is paused for %.0f s more (pause %u; each lasts twice as "
			"long as the last, up to 16 min): this process faults fresh pages faster than "
			"page sampling at any rate pays for within its budget (%.1f%% of its CPU: every "
			"fault runs the sampler, sampled or not); its new pages are not sampled "
			"meanwhile", t->pages_paused_until - loop_mono(), t->page_pauses,
			g->budget * 100));
	if (t->fell_back_ratio > 0) {
		json_object_set_new(doc, "fell_back", json_pack("{s:s, s:f, s:f}", "from", "precise",
			"cost_ratio", t->fell_back_ratio, "budget", g->budget));
		snprintf(buf, sizeof(buf), "precise mode cost this process %.1f%% of its CPU, over its "
			 "budget of %.1f%%: it fell back to sampled mode (--mode precise --force keeps "
			 "precise mode)", t->fell_back_ratio * 100, g->budget * 100);
	} else if (!target_sampled(t) && g->budget && g->ratio > g->budget) {
		snprintf(buf, sizeof(buf), "precise mode costs this process %.1f%% of its CPU against "
			 "a budget of %.1f%% (kept: attached with --force)", g->ratio * 100,
			 g->budget * 100);
	} else {
		return;
	}
	json_array_append_new(notes, json_string(buf));
}

void view_label_add(const struct container_label *l, pid_t pid, json_t *doc)
{
	if (l->container[0])
		json_object_set_new(doc, "container", json_string(l->container));
	if (l->unit[0])
		json_object_set_new(doc, "unit", json_string(l->unit));
	if (l->ns_pid && l->ns_pid != pid)
		json_object_set_new(doc, "ns_pid", json_integer(l->ns_pid));
}

/* Sampled mode's death windows (gcwatch.h): which classes, how many windows, their cost. */
static json_t *gc_deaths_json(const struct target *t)
{
	const struct gcwatch *w = &t->gcwatch;
	json_t *types = json_array();
	int i;

	for (i = 0; types && i < w->ntypes; i++)
		json_array_append_new(types, json_string(w->names[i]));
	return json_pack("{s:o*, s:I, s:I, s:b, s:f, s:f, s:f, s:f}", "types", types,
		"windows", (json_int_t)w->windows, "measured", (json_int_t)w->measured,
		"open", w->open, "open_s", w->open_s,
		"last_opened_at", w->windows ? w->opened_at : 0.0, "cost_s", w->cost_ns / 1e9,
		"last_cost_s", w->last_cost_ns / 1e9);
}

json_t *view_status_json(struct target *t)
{
	uint64_t cnt[PYLEAK_CNT_MAX] = {};
	int stepped = 0, nprobes;
	json_t *o, *notes;

	if (t->state == TARGET_TRACKING)
		probes_read_counters(&t->probes, cnt);
	nprobes = probes_count(&t->probes, &stepped);
	o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:b, s:f, s:i, s:i, s:I, s:I}",
		      "pid", t->pid, "python", t->py.version, "mode", target_mode_name(t->opt.mode),
		      "state", target_state_name(t->state), "exe", t->py.exe, "module", t->py.module,
		      "lto_inlined", t->py.inlined,
		      "attached_s", (t->state == TARGET_TRACKING ? loop_now() : t->ended_at) - t->attached_at,
		      "probes", nprobes, "probes_single_stepped", stepped,
		      "events", (json_int_t)(cnt[PYLEAK_CNT_BIRTHS] + cnt[PYLEAK_CNT_DEATHS]),
		      /* counts lost: a full object map loses sampled sites only (its counter) */
		      "drops", (json_int_t)(cnt[PYLEAK_CNT_TYPES_FULL] + cnt[PYLEAK_CNT_EVENTS_LOST]));
	if (!o)
		return NULL;
	json_object_set_new(o, "gc", view_gc_json(t));
	json_object_set_new(o, "counters", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
		"births", (json_int_t)cnt[PYLEAK_CNT_BIRTHS], "deaths", (json_int_t)cnt[PYLEAK_CNT_DEATHS],
		"objects_map_full", (json_int_t)cnt[PYLEAK_CNT_OBJS_FULL],
		"types_map_full", (json_int_t)cnt[PYLEAK_CNT_TYPES_FULL],
		"read_errors", (json_int_t)cnt[PYLEAK_CNT_READ_ERRORS],
		"events_lost", (json_int_t)cnt[PYLEAK_CNT_EVENTS_LOST]));
	json_object_set_new(o, "sites", json_pack(
		"{s:b, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:s, s:I, s:I, s:I}",
		"enabled", t->sites, "code_memo_bytes", (json_int_t)pystack_memo_bytes(t->py.memo),
		"page_faults", (json_int_t)cnt[PYLEAK_CNT_FAULTS],
		"pages_sampled", (json_int_t)cnt[PYLEAK_CNT_PAGES],
		"pages_skipped", (json_int_t)cnt[PYLEAK_CNT_PAGES_SKIPPED],
		/* the sampler's own rate halvings, between the governor's intervals */
		"page_brakes", (json_int_t)cnt[PYLEAK_CNT_FAULT_BRAKES],
		/* its fault events off: over budget in its unsampled faults alone, or at its
		 * least rate (sampler.c) */
		"page_sampler", t->probes.faults_on ? "on" : t->pages_paused_until > 0 ? "paused" :
			       "off",
		"page_pauses", (json_int_t)t->page_pauses,
		"pools_sampled", (json_int_t)cnt[PYLEAK_CNT_POOLS],
		"pool_sampler", t->pool_func ? "on" : t->pool_removed ? "removed" : "off",
		"no_python_stack", (json_int_t)cnt[PYLEAK_CNT_NO_STACK],
		"stacks_map_full", (json_int_t)cnt[PYLEAK_CNT_STACKS_FULL],
		"threads_past_max", (json_int_t)cnt[PYLEAK_CNT_THREADS_PAST]));
	if (t->native)
		json_object_set_new(o, "native", json_pack("{s:I, s:I, s:f, s:i, s:i, s:I, s:f, s:b}",
			"scans", (json_int_t)t->native->scans, "errors", (json_int_t)t->native->errors,
			"scan_seconds", t->native->seconds, "sites_followed", t->native->nsites,
			"sites_max", NATIVE_SITES_MAX,
			"memory_bytes", (json_int_t)native_memory_bytes(t->native),
			"period_s", sampler_native_period(),
			/* the scans need more than their budget's round */
			"period_over_max", sampler_native_period() > NATIVE_PERIOD_MAX));
	json_object_set_new(o, "governor", json_pack("{s:f, s:f, s:f, s:I, s:I, s:f}",
		"budget", t->gov.budget, "spent_ratio", t->gov.ratio, "spent_s", t->gov.cost_ns / 1e9,
		"page_sample_every", (json_int_t)(sampler_page_mask(t) + 1),
		"throttles", (json_int_t)t->gov.throttles, "target_cpu_s", t->gov.cpu_s));
	if (t->state == TARGET_TRACKING)
		json_object_set_new(o, "maps_bytes", json_integer(probes_maps_memory(&t->probes)));
	json_object_set_new(o, "probe_addresses", probe_addresses_json(&t->probes));
	if (target_sampled(t))
		json_object_set_new(o, "gc_deaths", gc_deaths_json(t));
	if (t->nalloc && t->state == TARGET_TRACKING)
		json_object_set_new(o, "native_alloc", nativealloc_json(t->nalloc, &t->probes, &t->py,
								  PROBES_TRAP_NS, 5));
	else if (!target_sampled(t) && t->nalloc_off)
		json_object_set_new(o, "native_alloc", json_pack("{s:s}", "off", t->nalloc_off));
	json_object_set_new(o, "census_s", json_real(t->census_seconds));
	json_object_set_new(o, "census_cut_short", json_integer((json_int_t)t->census_cut_short));
	json_object_set_new(o, "corrupt", json_pack("{s:I, s:s}",
		"events", (json_int_t)t->corrupt_events, "last", t->corrupt_last));
	json_object_set_new(o, "census_period_s", json_real(sampler_census_period(t)));
	json_object_set_new(o, "force", json_boolean(t->opt.force));
	view_label_add(&t->label, t->pid, o);
	if (t->watch_rule >= 0) {
		char rule[WATCH_GLOB_MAX + 16];

		discovery_rule_format(t->watch_rule, rule, sizeof(rule));
		json_object_set_new(o, "discovered_by", json_string(rule));
	}
	notes = json_array();
	view_budget_add(t, o, notes);
	if (notes && discovery_census_slowdown() > 1) {
		char buf[160];

		snprintf(buf, sizeof(buf), "censuses %.0fx less often: the daemon is over its host-wide "
			 "CPU budget (max_cpu; `status` discovery.budget)", discovery_census_slowdown());
		json_array_append_new(notes, json_string(buf));
	}
	json_object_set_new(o, "notes", notes);
	return o;
}
