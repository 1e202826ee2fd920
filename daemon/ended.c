// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <stdlib.h>
#include <string.h>

#include "ended.h"
#include "log.h"
#include "postmortem.h"
#include "view.h"

/* A record is a few KiB (50 rows of `top`, 20 suspects): 64 of them stay well under 4 MiB. */
#define ENDED_MAX 64
#define ENDED_MAX_BYTES (4u << 20)
#define ENDED_TOP_ROWS 50
#define ENDED_SUSPECTS 20
#define ENDED_WINDOW_S 60

static struct ended *records;
static size_t nrecords, nbytes;
static unsigned long dropped;

static void ended_free(struct ended *e)
{
	nrecords--;
	nbytes -= e->bytes;
	free(e->status);
	free(e->report);
	free(e);
}

/* Drops the oldest records over the caps; the newest one stays whatever its size. */
static void ended_trim(void)
{
	struct ended **pp, *e;

	while (nrecords > 1 && (nrecords > ENDED_MAX || nbytes > ENDED_MAX_BYTES)) {
		for (pp = &records; (*pp)->next; pp = &(*pp)->next)
			;
		e = *pp;
		*pp = NULL;
		ended_free(e);
		dropped++;
	}
}

const struct ended *ended_find(pid_t pid)
{
	const struct ended *e;

	for (e = records; e; e = e->next)
		if (e->pid == pid)
			return e;
	return NULL;
}

const struct ended *ended_list(void)
{
	return records;
}

void ended_forget(pid_t pid)
{
	struct ended **pp = &records, *e;

	while ((e = *pp)) {
		if (e->pid == pid) {
			*pp = e->next;
			ended_free(e);
		} else {
			pp = &e->next;
		}
	}
}

void ended_free_all(void)
{
	struct ended *e;

	while ((e = records)) {
		records = e->next;
		ended_free(e);
	}
}

json_t *ended_stats_json(void)
{
	return json_pack("{s:I, s:I, s:I, s:i, s:i}", "count", (json_int_t)nrecords,
			 "bytes", (json_int_t)nbytes, "dropped", (json_int_t)dropped,
			 "max_count", ENDED_MAX, "max_bytes", ENDED_MAX_BYTES);
}

/* The postmortem report: {"pid", "exe", "python", "mode", "cause", "exit_code" | "signal",
 * "attached_at", "ended_at", "uid", "gid", "top", "leaks"}. */
static json_t *report_json(struct target *t, const struct end_cause *cause, json_t *top,
			   json_t *leaks)
{
	json_t *doc;

	doc = json_pack("{s:i, s:s, s:s, s:s, s:s, s:f, s:f, s:i, s:i, s:O, s:O}",
			"pid", t->pid, "exe", t->py.exe, "python", t->py.version,
			"mode", target_mode_name(t->opt.mode), "cause", end_kind_name(cause->kind),
			"attached_at", t->attached_at, "ended_at", t->ended_at,
			"uid", (int)t->uid, "gid", (int)t->gid, "top", top, "leaks", leaks);
	if (!doc)
		return NULL;
	if (cause->kind == END_EXIT)
		json_object_set_new(doc, "exit_code", cause->code >= 0 ? json_integer(cause->code) : json_null());
	else if (cause->kind == END_SIGNAL || cause->kind == END_OOM_KILL)
		json_object_set_new(doc, "signal", json_integer(cause->code));
	return doc;
}

/* The status entry as it stays: its final state, its cause. */
static void status_end(json_t *st, struct target *t, const char *state, const struct end_cause *cause)
{
	json_object_set_new(st, "state", json_string(state));
	json_object_set_new(st, "attached_s", json_real(t->ended_at - t->attached_at));
	json_object_set_new(st, "cause", json_string(end_kind_name(cause->kind)));
	json_object_set_new(st, "ended_at", json_real(t->ended_at));
	if (cause->kind == END_EXIT && cause->code >= 0)
		json_object_set_new(st, "exit_code", json_integer(cause->code));
	else if (cause->kind == END_SIGNAL || cause->kind == END_OOM_KILL)
		json_object_set_new(st, "signal", json_integer(cause->code));
	/* Its probes and maps are gone with it. */
	json_object_del(st, "maps_bytes");
	json_object_set_new(st, "probes", json_integer(0));
	json_object_set_new(st, "probe_addresses", json_array());
}

void ended_record(struct target *t, const char *state, const struct end_cause *cause)
{
	json_t *st = view_status_json(t), *top, *leaks, *report = NULL;
	struct ended *e = calloc(1, sizeof(*e));

	/* Its last census of page sites stands: one now would find a zombie's empty memory. */
	if (t->sites_cache_at)
		t->sites_cache_at = loop_mono();
	top = view_top_json(t, ENDED_TOP_ROWS, VIEW_SORT_LIVE, 0, 0);
	leaks = view_leaks_json(t, ENDED_WINDOW_S, ENDED_SUSPECTS);
	if (!e || !st || !top || !leaks)
		goto cleanup;
	status_end(st, t, state, cause);
	report = report_json(t, cause, top, leaks);
	if (!report)
		goto cleanup;
	postmortem_add(report);
	e->pid = t->pid;
	e->uid = t->uid;
	e->gid = t->gid;
	e->state = state;
	e->ended_at = t->ended_at;
	e->status = json_dumps(st, JSON_COMPACT);
	e->report = json_dumps(report, JSON_COMPACT);
	if (!e->status || !e->report)
		goto cleanup;
	e->bytes = sizeof(*e) + strlen(e->status) + strlen(e->report) + 2;
	ended_forget(t->pid);
	e->next = records;
	records = e;
	nrecords++;
	nbytes += e->bytes;
	e = NULL;
	ended_trim();
cleanup:
	if (e) {
		log_warn("pid %d: out of memory: its summary is not kept", t->pid);
		free(e->status);
		free(e->report);
		free(e);
	}
	json_decref(report);
	json_decref(st);
	json_decref(top);
	json_decref(leaks);
}
