// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * `pyleakctl sites --format pprof`: the reply as a pprof profile (cli/profile.proto, encoded by
 * the code protoc-c generates from it), gzip-compressed as pprof readers expect on disk.
 *
 * Every array is sized up front from the number of sites and frames, so the messages that the
 * profile points to never move: each frame adds at most one location, one function and two
 * strings. Maps from a string or a (function, line) pair to its index or id are JSON objects.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "cli/profile.pb-c.h"
#include "pprof.h"

#define HEADER_STRINGS		7	/* "", 2 sample types and units, two comments */
#define KEY_MAX			48	/* a letter and two 64-bit numbers */
#define UNKNOWN_FUNCTION	"(unknown)"
#define GZIP_WINDOW		(16 + MAX_WBITS)	/* 16: a gzip header and trailer */

struct builder {
	Perftools__Profiles__Profile profile;	/* its arrays of pointers have room for all */
	Perftools__Profiles__ValueType sample_type, native_type;
	Perftools__Profiles__ValueType *sample_types[2];
	size_t nvalues;				/* per sample: live objects, and native bytes */
	Perftools__Profiles__Mapping mapping;	/* the only one */
	Perftools__Profiles__Mapping *mappings[1];
	Perftools__Profiles__Sample *samples;
	Perftools__Profiles__Location *locations;
	Perftools__Profiles__Line *lines;	/* one per location */
	Perftools__Profiles__Line **line_ptrs;
	Perftools__Profiles__Function *functions;
	uint64_t *location_ids;			/* the samples' stacks, one after the other */
	size_t nlocation_ids;
	int64_t *values;			/* nvalues per sample */
	int64_t comments[2];
	json_t *strings;			/* text -> index in the string table */
	json_t *ids;				/* "f<name>,<file>", "l<function>,<line>" -> id */
};

static json_t *field(json_t *obj, const char *key)
{
	return json_object_get(obj, key);
}

static const char *text_get(json_t *obj, const char *key, const char *missing)
{
	const char *s = json_string_value(field(obj, key));

	return s ? s : missing;
}

/* A JSON number as an int64_t, rounded to the nearest; 0 when missing or out of range. */
static int64_t number_get(json_t *v)
{
	double x = json_number_value(v);

	if (json_is_integer(v))
		return json_integer_value(v);
	return x > -9e18 && x < 9e18 ? (int64_t)(x < 0 ? x - 0.5 : x + 0.5) : 0;
}

/* Frames of all sites; a site without a stack is one frame, a native one has one more. */
static size_t frames_count(json_t *sites, size_t extra)
{
	size_t i, n, frames = 0;
	json_t *site;

	json_array_foreach(sites, i, site) {
		n = json_array_size(field(site, "stack"));
		frames += (n ? n : 1) + extra;
	}
	return frames;
}

static int builder_alloc(struct builder *b, size_t nsites, size_t nframes, size_t nvalues)
{
	Perftools__Profiles__Profile *p = &b->profile;

	perftools__profiles__profile__init(p);
	b->strings = json_object();
	b->ids = json_object();
	/* One more of each: calloc(0, ...) may return NULL. */
	nsites++;
	nframes++;
	p->sample = calloc(nsites, sizeof(*p->sample));
	p->location = calloc(nframes, sizeof(*p->location));
	p->function = calloc(nframes, sizeof(*p->function));
	p->string_table = calloc(2 * nframes + HEADER_STRINGS, sizeof(*p->string_table));
	b->samples = calloc(nsites, sizeof(*b->samples));
	b->values = calloc(nsites * nvalues, sizeof(*b->values));
	b->nvalues = nvalues;
	b->locations = calloc(nframes, sizeof(*b->locations));
	b->lines = calloc(nframes, sizeof(*b->lines));
	b->line_ptrs = calloc(nframes, sizeof(*b->line_ptrs));
	b->functions = calloc(nframes, sizeof(*b->functions));
	b->location_ids = calloc(nframes, sizeof(*b->location_ids));
	if (!b->strings || !b->ids || !p->sample || !p->location || !p->function ||
	    !p->string_table || !b->samples || !b->values || !b->locations || !b->lines ||
	    !b->line_ptrs || !b->functions || !b->location_ids)
		return -ENOMEM;
	return 0;
}

static void builder_free(struct builder *b)
{
	Perftools__Profiles__Profile *p = &b->profile;
	size_t i;

	for (i = 0; i < p->n_string_table; i++)
		free(p->string_table[i]);
	free(p->string_table);
	free(p->sample);
	free(p->location);
	free(p->function);
	free(b->samples);
	free(b->values);
	free(b->locations);
	free(b->lines);
	free(b->line_ptrs);
	free(b->functions);
	free(b->location_ids);
	json_decref(b->strings);
	json_decref(b->ids);
}

/* The index of text in the string table, where it is added if new. */
static int string_index(struct builder *b, const char *text, int64_t *index)
{
	Perftools__Profiles__Profile *p = &b->profile;
	json_t *known = field(b->strings, text);
	char *copy;

	if (known) {
		*index = json_integer_value(known);
		return 0;
	}
	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	*index = (int64_t)p->n_string_table;
	if (json_object_set_new(b->strings, text, json_integer(*index))) {
		free(copy);
		return -ENOMEM;
	}
	p->string_table[p->n_string_table++] = copy;
	return 0;
}

/* The id stored under key or, if none is, next, now stored there; *added says which. */
static int id_lookup(json_t *ids, const char *key, uint64_t next, uint64_t *id, bool *added)
{
	json_t *known = field(ids, key);

	*added = !known;
	if (known) {
		*id = (uint64_t)json_integer_value(known);
		return 0;
	}
	*id = next;
	return json_object_set_new(ids, key, json_integer((json_int_t)next)) ? -ENOMEM : 0;
}

/* The id of the function named name (a string index) in file, added if new. */
static int function_id(struct builder *b, int64_t name, int64_t file, uint64_t *id)
{
	Perftools__Profiles__Profile *p = &b->profile;
	Perftools__Profiles__Function *f;
	char key[KEY_MAX];
	bool added;
	int err;

	snprintf(key, sizeof(key), "f%" PRId64 ",%" PRId64, name, file);
	err = id_lookup(b->ids, key, p->n_function + 1, id, &added);
	if (err || !added)
		return err;
	f = &b->functions[p->n_function];
	perftools__profiles__function__init(f);
	f->id = *id;
	f->name = name;
	f->filename = file;
	p->function[p->n_function++] = f;
	return 0;
}

/* The id of the location of a frame ({"function", "file", "line"}), added if new. */
static int location_id(struct builder *b, json_t *frame, uint64_t *id)
{
	Perftools__Profiles__Profile *p = &b->profile;
	int64_t name, file, line = number_get(field(frame, "line"));
	Perftools__Profiles__Location *loc;
	Perftools__Profiles__Line *l;
	char key[KEY_MAX];
	uint64_t function;
	bool added;
	int err;

	err = string_index(b, text_get(frame, "function", UNKNOWN_FUNCTION), &name);
	if (!err)
		err = string_index(b, text_get(frame, "file", ""), &file);
	if (!err)
		err = function_id(b, name, file, &function);
	if (err)
		return err;
	snprintf(key, sizeof(key), "l%" PRIu64 ",%" PRId64, function, line);
	err = id_lookup(b->ids, key, p->n_location + 1, id, &added);
	if (err || !added)
		return err;
	l = &b->lines[p->n_location];
	perftools__profiles__line__init(l);
	l->function_id = function;
	l->line = line;
	b->line_ptrs[p->n_location] = l;
	loc = &b->locations[p->n_location];
	perftools__profiles__location__init(loc);
	loc->id = *id;
	loc->mapping_id = b->mapping.id;
	loc->n_line = 1;
	loc->line = &b->line_ptrs[p->n_location];
	p->location[p->n_location++] = loc;
	return 0;
}

/* One sample per site: its live count, at its stack (the allocating frame first); a native
 * site's bytes, at a "[native]" frame called by its stack. */
static int sample_add(struct builder *b, json_t *site, bool native)
{
	Perftools__Profiles__Profile *p = &b->profile;
	Perftools__Profiles__Sample *s = &b->samples[p->n_sample];
	json_t *stack = field(site, "stack"), *frame, *leaf;
	int64_t *v = &b->values[p->n_sample * b->nvalues];
	size_t i;
	int err = 0;

	perftools__profiles__sample__init(s);
	s->location_id = &b->location_ids[b->nlocation_ids];
	v[native] = number_get(field(site, native ? "bytes" : "live"));
	s->value = v;
	s->n_value = b->nvalues;
	if (native) {
		leaf = json_pack("{s:s,s:s,s:i}", "function", NATIVE_FRAME, "file", "", "line", 0);
		err = leaf ? location_id(b, leaf, &s->location_id[s->n_location_id++]) : -ENOMEM;
		json_decref(leaf);
	}
	if (!err && !json_array_size(stack))
		err = location_id(b, site, &s->location_id[s->n_location_id++]);
	json_array_foreach(stack, i, frame) {
		if (err)
			break;
		err = location_id(b, frame, &s->location_id[s->n_location_id++]);
	}
	b->nlocation_ids += s->n_location_id;
	p->sample[p->n_sample++] = s;
	return err;
}

/* What the profile is: its type and pid, then what the daemon says was sampled. */
static int comments_add(struct builder *b, json_t *reply)
{
	Perftools__Profiles__Profile *p = &b->profile;
	const char *sampled = json_string_value(field(reply, "sampled"));
	char *comment;
	int err;

	if (asprintf(&comment, "pyleak sites: live objects of type %s in pid %" PRId64,
		     text_get(reply, "type", "?"), number_get(field(reply, "pid"))) < 0)
		return -ENOMEM;
	p->comment = b->comments;
	err = string_index(b, comment, &b->comments[p->n_comment++]);
	if (!err && sampled)
		err = string_index(b, sampled, &b->comments[p->n_comment++]);
	free(comment);
	return err;
}

/* The sample type, the mapping, the comments and the time: what comes before the samples. */
static int header_add(struct builder *b, json_t *reply)
{
	Perftools__Profiles__Profile *p = &b->profile;
	struct timespec now;
	int64_t empty;
	int err;

	err = string_index(b, "", &empty);
	if (!err)
		err = string_index(b, PPROF_SAMPLE_TYPE, &b->sample_type.type);
	if (!err)
		err = string_index(b, PPROF_SAMPLE_UNIT, &b->sample_type.unit);
	if (!err)
		err = comments_add(b, reply);
	if (err)
		return err;
	b->sample_types[0] = &b->sample_type;
	b->sample_types[1] = &b->native_type;
	p->sample_type = b->sample_types;
	p->n_sample_type = b->nvalues;
	p->default_sample_type = b->sample_type.type;
	if (b->nvalues > 1) {
		err = string_index(b, PPROF_NATIVE_TYPE, &b->native_type.type);
		if (!err)
			err = string_index(b, PPROF_NATIVE_UNIT, &b->native_type.unit);
		/* only native samples: their type is the one shown */
		if (!json_array_size(field(reply, "sites")))
			p->default_sample_type = b->native_type.type;
		if (err)
			return err;
	}
	b->mapping.id = 1;
	b->mapping.has_functions = true;
	b->mapping.has_filenames = true;
	b->mapping.has_line_numbers = true;
	b->mappings[0] = &b->mapping;
	p->mapping = b->mappings;
	p->n_mapping = 1;
	if (!clock_gettime(CLOCK_REALTIME, &now))
		p->time_nanos = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	return 0;
}

static int profile_build(struct builder *b, json_t *reply)
{
	json_t *sites = field(reply, "sites"), *native = field(reply, "native"), *site;
	size_t i, nnative = json_array_size(native);
	int err;

	perftools__profiles__value_type__init(&b->sample_type);
	perftools__profiles__value_type__init(&b->native_type);
	perftools__profiles__mapping__init(&b->mapping);
	err = builder_alloc(b, json_array_size(sites) + nnative,
			    frames_count(sites, 0) + frames_count(native, 1), nnative ? 2 : 1);
	if (!err)
		err = header_add(b, reply);
	json_array_foreach(sites, i, site) {
		if (err)
			break;
		err = sample_add(b, site, false);
	}
	json_array_foreach(native, i, site) {
		if (err)
			break;
		err = sample_add(b, site, true);
	}
	return err;
}

/* In one deflate() call: the output buffer has deflateBound()'s room, header included. */
static int gzip_compress(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	z_stream zs = { 0 };
	uint8_t *buf = NULL;
	uLong room;
	int err = 0;

	if (len > UINT_MAX / 2)
		return -EFBIG;	/* deflateBound() adds little: its room then fits an uInt */
	if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, GZIP_WINDOW, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	room = deflateBound(&zs, len);
	buf = malloc(room);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = buf;
	zs.avail_out = (uInt)room;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		err = -EIO;
		goto cleanup;
	}
	*out = buf;
	*out_len = zs.total_out;
	buf = NULL;
cleanup:
	deflateEnd(&zs);
	free(buf);
	return err;
}

int pprof_encode(json_t *reply, uint8_t **out, size_t *len)
{
	struct builder b = { 0 };
	uint8_t *packed = NULL;
	size_t size = 0;
	int err;

	err = profile_build(&b, reply);
	if (err)
		goto cleanup;
	size = perftools__profiles__profile__get_packed_size(&b.profile);
	packed = malloc(size ? size : 1);
	if (!packed) {
		err = -ENOMEM;
		goto cleanup;
	}
	perftools__profiles__profile__pack(&b.profile, packed);
	err = gzip_compress(packed, size, out, len);
cleanup:
	free(packed);
	builder_free(&b);
	return err;
}
