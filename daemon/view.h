/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* The JSON views of a target that the protocol's replies carry (docs/protocol.md). */
#ifndef PYLEAK_VIEW_H
#define PYLEAK_VIEW_H

#include <jansson.h>

#include "target.h"

enum view_sort { VIEW_SORT_LIVE, VIEW_SORT_BYTES, VIEW_SORT_GROWTH };

/* "live", "bytes" or "growth": 0 or -EINVAL. */
int view_sort_parse(const char *s, enum view_sort *out);

/* `top`: the n largest rows (n <= 0: all), each row's delta over the last span seconds (0:
 * one sample interval); with history_s > 0 the first rows also carry their samples of the
 * last history_s seconds. */
json_t *view_top_json(struct target *t, int n, enum view_sort sort, double span,
		      double history_s);

/* `leaks`: the suspects over the last window_s seconds, n at most (n <= 0: all). */
json_t *view_leaks_json(struct target *t, double window_s, int n);

/* Whether r is a leak suspect of `leaks` over the last window_s seconds before now (its
 * score in *sc): 1, 0, or -ENODATA when it cannot be judged yet. */
int view_leak_judge(const struct target *t, const struct type_row *r, double now,
		    double window_s, struct leak_score *sc);

/* `status`: one target's entry. */
json_t *view_status_json(struct target *t);

/* `sites`: the n largest allocation sites of the type named type_name; 0 or a negative errno
 * (-EOPNOTSUPP: this interpreter's stacks cannot be read). */
int view_sites_json(struct target *t, const char *type_name, int n, json_t **out);

/* `path`: retention paths of the objects of the type named type_name, from the reference walk
 * (refwalk.h), which goes on at each request until complete; 0 or a negative errno
 * (-EOPNOTSUPP: this interpreter's layouts are not known). */
int view_paths_json(struct target *t, const char *type_name, json_t **out);

/* `leaks`: the first retention path of type_name, if the walk (one budgeted slice more) is
 * complete; else NULL. */
json_t *view_path_first_json(struct target *t, const char *type_name);

/* What holds the objects at the end of a path, as `leaks`' "held_by": {"container": "list",
 * "dict value", "dict key", "set", "attribute", ..., "type", "length"}; NULL if nothing does. */
json_t *view_path_holder_json(json_t *path);

/* The type of t's kept walk, or NULL. */
const char *view_path_walked(const struct target *t);

/* `status`: the walks the daemon keeps, one per target at most (pid, type, containers,
 * memory), their memory and its cap, and the sampler's slices. */
json_t *view_paths_status_json(void);

/* The sampler's tick: the kept walks go on by a small slice each (view_paths.c). */
void view_paths_tick(void);

/* At exit: the kept walks are freed (a leak of theirs then shows in a leak checker). */
void view_paths_free(void);

/* The type whose walk `leaks` over window_s asks for (the first class among the likely
 * leaks, else the first suspect), or NULL if none scores 0.5. */
const char *view_leaks_leader(struct target *t, double window_s);

/* Precise mode and the budget: a target that fell back gets doc's "fell_back" {"from",
 * "cost_ratio", "budget"} and a note; one forced to stay over it, a note. */
void view_budget_add(const struct target *t, json_t *doc, json_t *notes);

/* Where the process runs, where known: doc's "container", "unit" and "ns_pid" (its pid in
 * its own PID namespace, when that is another one). */
void view_label_add(const struct container_label *l, pid_t pid, json_t *doc);

/* Collections per generation since attach. */
json_t *view_gc_json(struct target *t);
/* A generation's name there: "0", "1", "2", or "unknown" (3.8, whose collector's argument is
 * not readable: counted as generation PYLEAK_GC_GENS - 1). */
const char *view_gc_generation(int g);

/* The suspect's "held_by" over the window, or NULL, its description appended to evidence. */
json_t *view_holder_json(struct target *t, double since, int64_t growth, char *evidence,
			 size_t len);

/* `native`: the target's resident memory by mapping kind and native bytes by Python site
 * (native.h); 0 or a negative errno (-EOPNOTSUPP: no stacks here; -EAGAIN: no scan yet). */
int view_native_json(struct target *t, json_t **out);

/* Native sites as in `native`: the n largest (n <= 0: all), or of those, the ones owned by the
 * type named owner; an empty array before the first scan, NULL on no memory. */
json_t *view_native_sites_json(struct target *t, const char *owner, int n);

/* `top`: "rss_bytes", "python_objects_bytes" and, once scanned, "native_bytes" into doc. */
void view_native_top_add(const struct target *t, json_t *doc);

/* `leaks`: native sites that grew over the last window_s seconds before now, as suspects of
 * type "native" in docs (their scores in scores), max at most; how many. */
size_t view_native_suspects(struct target *t, double now, double window_s, json_t **docs,
			    double *scores, size_t max);

#endif
