// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expo.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "procfs.h"
#include "view.h"

/* The leak score's window: that of `leaks` without --window. */
#define LEAK_WINDOW_S	60.0
#define OTHER		"other"
/* A snapshot costs the loop a walk of every row of every target: it is rendered only at the
 * sample tick after a scrape was answered, and at most every RENDER_MIN_S, or RENDER_SHARE
 * times the last render's time (the loop's share it may take: 1/RENDER_SHARE). */
#define RENDER_MIN_S	5.0
#define RENDER_SHARE	10.0

/* A tracked target, as one snapshot shows it. */
struct target_view {
	struct target *t;
	struct metrics_target_labels l;
	struct metrics_type *types;	/* the top ntop, then the rest */
	size_t ntop, nother;
	struct metrics_type other;
	struct metrics_type *suspects;	/* the top nsuspects */
	size_t nsuspects;
	struct pyleak_gc gc;
	uint64_t cnt[PYLEAK_CNT_MAX];
};

static bool serving;
static uint32_t top_types = METRICS_TOP_TYPES_DEFAULT;
/* The last snapshot's figures, for `status` and the next snapshot. */
static double render_s, rendered_at;
static bool wanted;		/* a scrape was answered since the last snapshot */
static size_t text_bytes;
static uint64_t series_dropped, snapshots;

void metrics_target_labels(const struct target *t, struct metrics_target_labels *l)
{
	snprintf(l->pid, sizeof(l->pid), "%d", t->pid);
	l->exe = t->py.exe;
	l->unit = t->label.unit;
	l->container = t->label.container;
}

static int name_cmp(const void *a, const void *b)
{
	const struct metrics_type *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* Descending; ties by name, so that the same state renders the same text. */
static int live_cmp(const void *a, const void *b)
{
	const struct metrics_type *x = a, *y = b;

	if (x->live != y->live)
		return (y->live > x->live) - (y->live < x->live);
	return strcmp(x->name, y->name);
}

static int score_cmp(const void *a, const void *b)
{
	const struct metrics_type *x = a, *y = b;

	if (x->score != y->score)
		return (y->score > x->score) - (y->score < x->score);
	return strcmp(x->name, y->name);
}

/* Sorts v by name and folds each run of one name into its first entry: the new count. */
static size_t types_merge(struct metrics_type *v, size_t n)
{
	size_t i, m = 0;

	qsort(v, n, sizeof(*v), name_cmp);
	for (i = 0; i < n; i++) {
		struct metrics_type *d = m ? &v[m - 1] : NULL;

		if (!d || strcmp(d->name, v[i].name)) {
			v[m++] = v[i];
			continue;
		}
		d->live += v[i].live;
		if (v[i].bytes >= 0)
			d->bytes = (d->bytes < 0 ? 0 : d->bytes) + v[i].bytes;
		if (v[i].score > d->score)
			d->score = v[i].score;
	}
	return m;
}

size_t metrics_types_top(struct metrics_type *v, size_t n, size_t top, struct metrics_type *other,
			 size_t *nother)
{
	size_t i, m, kept;

	*other = (struct metrics_type){ .name = OTHER, .bytes = -1, .score = -1 };
	m = types_merge(v, n);
	qsort(v, m, sizeof(*v), live_cmp);
	/* a type named "other" would clash with the sum's series: it goes last, summed in */
	for (i = 0; i < m; i++) {
		if (!strcmp(v[i].name, OTHER)) {
			struct metrics_type o = v[i];

			memmove(&v[i], &v[i + 1], (m - i - 1) * sizeof(*v));
			v[m - 1] = o;
			break;
		}
	}
	kept = m - (i < m);
	kept = kept < top ? kept : top;
	for (i = kept; i < m; i++) {
		other->live += v[i].live;
		if (v[i].bytes >= 0)
			other->bytes = (other->bytes < 0 ? 0 : other->bytes) + v[i].bytes;
	}
	*nother = m - kept;
	return kept;
}

size_t metrics_suspects_top(struct metrics_type *v, size_t n, size_t top)
{
	size_t m = types_merge(v, n);

	qsort(v, m, sizeof(*v), score_cmp);
	return m < top ? m : top;
}

/* Each row seen in the last sample, its leak score where `leaks` ranks it a suspect. */
static int target_view_make(struct target *t, double now, struct target_view *tv)
{
	size_t i, n = 0, m = 0, count = t->rows.n ? t->rows.n : 1;

	tv->t = t;
	metrics_target_labels(t, &tv->l);
	tv->types = calloc(count, sizeof(*tv->types));
	tv->suspects = calloc(count, sizeof(*tv->suspects));
	if (!tv->types || !tv->suspects) {
		free(tv->types);
		free(tv->suspects);
		return -ENOMEM;
	}
	for (i = 0; i < t->rows.n; i++) {
		const struct type_row *r = &t->rows.v[i];
		struct leak_score sc;

		if (!r->seen)
			continue;
		tv->types[n++] = (struct metrics_type){ r->name, r->live, r->bytes, -1 };
		if (view_leak_judge(t, r, now, LEAK_WINDOW_S, &sc) == 1)
			tv->suspects[m++] = (struct metrics_type){ r->name, r->live, r->bytes,
								   sc.score };
	}
	tv->ntop = metrics_types_top(tv->types, n, top_types, &tv->other, &tv->nother);
	tv->nsuspects = metrics_suspects_top(tv->suspects, m, top_types);
	probes_read_gc(&t->probes, &tv->gc);
	probes_read_counters(&t->probes, tv->cnt);
	return 0;
}

static void base_labels(const struct target_view *tv, struct expo_labels *l)
{
	*l = (struct expo_labels){};
	expo_label(l, "pid", tv->l.pid);
	expo_label(l, "exe", tv->l.exe);
	expo_label(l, "unit", tv->l.unit);
	expo_label(l, "container", tv->l.container);
}

static void types_render(struct expo *e, const struct target_view *v, size_t nv, bool bytes)
{
	struct expo_labels l;
	size_t i, j;

	for (i = 0; i < nv; i++) {
		for (j = 0; j <= v[i].ntop; j++) {
			const struct metrics_type *ty = j < v[i].ntop ? &v[i].types[j] : &v[i].other;

			if (j == v[i].ntop && !v[i].nother)
				break;
			if (bytes && ty->bytes < 0)
				continue;
			base_labels(&v[i], &l);
			expo_label(&l, "py_type", ty->name);
			expo_sample(e, bytes ? "pyleak_live_bytes" : "pyleak_live_objects", &l,
				    bytes ? ty->bytes : ty->live);
		}
	}
}

static void targets_render(struct expo *e, const struct target_view *v, size_t nv)
{
	static const struct { int cnt; const char *reason; } drops[] = {
		{ PYLEAK_CNT_OBJS_FULL, "objects_map_full" },
		{ PYLEAK_CNT_TYPES_FULL, "types_map_full" },
		{ PYLEAK_CNT_EVENTS_LOST, "events_lost" },
	};
	/* by generation: [0] its runs, [1] the objects it collected */
	static const struct { const char *name, *help; } gc_families[] = {
		{ "pyleak_gc_collections_total", "Cyclic-GC collections since attach, by generation." },
		{ "pyleak_gc_collected_objects_total",
		  "Objects the cyclic GC collected since attach, by generation." },
	};
	struct expo_labels l;
	size_t i, j, k;
	int g;

	expo_family(e, "pyleak_target_info", "gauge", "A tracked Python process (value 1).");
	for (i = 0; i < nv; i++) {
		base_labels(&v[i], &l);
		expo_label(&l, "python", v[i].t->py.version);
		expo_label(&l, "mode", target_mode_name(v[i].t->opt.mode));
		expo_sample(e, "pyleak_target_info", &l, 1);
	}
	expo_family(e, "pyleak_live_objects", "gauge",
		    "Live objects of a type (the top types of each process; py_type=\"other\": the rest).");
	types_render(e, v, nv, false);
	expo_family(e, "pyleak_live_bytes", "gauge",
		    "Bytes of the live objects of a type, where known.");
	types_render(e, v, nv, true);
	expo_family(e, "pyleak_leak_score", "gauge",
		    "Leak score in [0, 1] of the suspects `pyleakctl leaks` ranks over 60 s.");
	for (i = 0; i < nv; i++) {
		for (j = 0; j < v[i].nsuspects; j++) {
			base_labels(&v[i], &l);
			expo_label(&l, "py_type", v[i].suspects[j].name);
			expo_sample(e, "pyleak_leak_score", &l, v[i].suspects[j].score);
		}
	}
	for (k = 0; k < sizeof(gc_families) / sizeof(gc_families[0]); k++) {
		expo_family(e, gc_families[k].name, "counter", gc_families[k].help);
		for (i = 0; i < nv; i++) {
			for (g = 0; g < PYLEAK_GC_GENS; g++) {
				const struct pyleak_gc_gen *gen = &v[i].gc.gens[g];

				if (g == PYLEAK_GC_GENS - 1 && !gen->runs)
					continue;
				base_labels(&v[i], &l);
				expo_label(&l, "generation", view_gc_generation(g));
				expo_sample(e, gc_families[k].name, &l,
					    k ? gen->collected : gen->runs);
			}
		}
	}
	expo_family(e, "pyleak_events_dropped_total", "counter",
		    "What the probes could not record, by reason: a sampled birth's site "
		    "(objects_map_full; counts stay exact), a type (types_map_full), an event.");
	for (i = 0; i < nv; i++) {
		for (j = 0; j < sizeof(drops) / sizeof(drops[0]); j++) {
			base_labels(&v[i], &l);
			expo_label(&l, "reason", drops[j].reason);
			expo_sample(e, "pyleak_events_dropped_total", &l, v[i].cnt[drops[j].cnt]);
		}
	}
	expo_family(e, "pyleak_census_corrupt_total", "counter",
		    "Data read from a process's heap that cannot be a live heap's (skipped).");
	for (i = 0; i < nv; i++) {
		base_labels(&v[i], &l);
		expo_sample(e, "pyleak_census_corrupt_total", &l, v[i].t->corrupt_events);
	}
}

static void daemon_render(struct expo *e, size_t tracked)
{
	expo_family(e, "pyleak_targets_tracked", "gauge", "Python processes pyleakd tracks.");
	expo_sample(e, "pyleak_targets_tracked", NULL, tracked);
	expo_family(e, "pyleak_daemon_cpu_seconds_total", "counter", "CPU time pyleakd has used.");
	expo_sample(e, "pyleak_daemon_cpu_seconds_total", NULL, procfs_self_cpu_seconds(false));
	expo_family(e, "pyleak_daemon_resident_bytes", "gauge", "pyleakd's resident memory.");
	expo_sample(e, "pyleak_daemon_resident_bytes", NULL, procfs_self_rss_bytes());
	expo_family(e, "pyleak_metrics_scrapes_total", "counter", "Scrapes of /metrics answered.");
	expo_sample(e, "pyleak_metrics_scrapes_total", NULL, metrics_http_scrapes());
	expo_family(e, "pyleak_metrics_render_seconds", "gauge",
		    "Time the previous snapshot of these metrics took to render.");
	expo_sample(e, "pyleak_metrics_render_seconds", NULL, render_s);
}

void metrics_update(void)
{
	double start = loop_mono(), now = start;
	struct target_view *v;
	struct expo e;
	struct target *t;
	size_t nv = 0, i, n = 0;

	if (!serving)
		return;
	wanted |= metrics_http_scraped();
	if (!wanted || start - rendered_at < (RENDER_MIN_S > RENDER_SHARE * render_s ?
					      RENDER_MIN_S : RENDER_SHARE * render_s))
		return;
	wanted = false;
	rendered_at = start;
	for (t = target_list(); t; t = t->next)
		n++;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return;		/* the previous snapshot stays */
	for (t = target_list(); t && nv < n; t = t->next)
		if (t->state == TARGET_TRACKING && !target_view_make(t, now, &v[nv]))
			nv++;
	/* the limit keeps room for the last family, which says what the limit left out */
	expo_init(&e, METRICS_TEXT_MAX - 4096);
	targets_render(&e, v, nv);
	daemon_render(&e, nv);
	e.limit = METRICS_TEXT_MAX;
	expo_family(&e, "pyleak_metrics_series_dropped", "gauge",
		    "Series left out of this scrape: the text reached its size limit.");
	expo_sample(&e, "pyleak_metrics_series_dropped", NULL, e.dropped);
	if (e.dropped && !series_dropped)
		log_warn("metrics: %lu series left out: the text reached %u bytes",
			 (unsigned long)e.dropped, METRICS_TEXT_MAX);
	series_dropped = e.dropped;
	text_bytes = e.len;
	metrics_http_publish(expo_take(&e), text_bytes);
	snapshots++;
	for (i = 0; i < nv; i++) {
		free(v[i].types);
		free(v[i].suspects);
	}
	free(v);
	render_s = loop_mono() - start;
}

int metrics_start(const struct metrics_options *o)
{
	int err;

	if (!o->listen)
		return 0;
	if (o->top_types)
		top_types = o->top_types;
	err = metrics_http_start(o->listen);
	if (err)
		return err;
	serving = true;
	wanted = true;		/* the first snapshot, before any scrape */
	metrics_update();
	return 0;
}

void metrics_stop(void)
{
	if (!serving)
		return;
	metrics_http_stop();
	serving = false;
}

json_t *metrics_status_json(void)
{
	json_t *o;

	if (!serving)
		return NULL;
	o = metrics_http_status_json();
	if (!o)
		return NULL;
	json_object_set_new(o, "top_types", json_integer(top_types));
	json_object_set_new(o, "text_bytes", json_integer((json_int_t)text_bytes));
	json_object_set_new(o, "text_max_bytes", json_integer(METRICS_TEXT_MAX));
	json_object_set_new(o, "series_dropped", json_integer((json_int_t)series_dropped));
	json_object_set_new(o, "render_s", json_real(render_s));
	json_object_set_new(o, "snapshots", json_integer((json_int_t)snapshots));
	json_object_set_new(o, "snapshot_age_s", json_real(loop_mono() - rendered_at));
	return o;
}
