// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The pprof export of `sites` (cli/pprof.c): a known reply is encoded, gunzipped and decoded
 * with the unpacker protoc-c generates, and every field a pprof reader uses is checked.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "cli/profile.pb-c.h"
#include "pprof.h"

/* Two sites sharing their outer frames; main appears at two lines; one site has no stack. */
static const char reply_text[] =
	"{\"pid\": 4242, \"type\": \"Foo\", \"sampled\": \"every allocation (precise)\","
	" \"sites\": ["
	"  {\"function\": \"make_foo\", \"file\": \"/t/app.py\", \"line\": 12, \"live\": 300,"
	"   \"stack\": [{\"function\": \"make_foo\", \"file\": \"/t/app.py\", \"line\": 12},"
	"             {\"function\": \"main\", \"file\": \"/t/app.py\", \"line\": 60},"
	"             {\"function\": \"<module>\", \"file\": \"/t/app.py\", \"line\": 70}]},"
	"  {\"function\": \"other\", \"file\": \"/t/lib.py\", \"line\": 5, \"live\": 100,"
	"   \"stack\": [{\"function\": \"other\", \"file\": \"/t/lib.py\", \"line\": 5},"
	"             {\"function\": \"main\", \"file\": \"/t/app.py\", \"line\": 61},"
	"             {\"function\": \"<module>\", \"file\": \"/t/app.py\", \"line\": 70}]},"
	"  {\"function\": \"bare\", \"file\": \"/t/lib.py\", \"line\": 9, \"live\": 7},"
	"  {\"file\": \"/t/lib.py\", \"line\": 1, \"live\": 2, \"stack\": []}"
	"]}";

static Perftools__Profiles__Profile *profile;
static uint8_t *gz;
static size_t gz_len;

/* The whole gzip stream, as a pprof reader inflates it. */
static uint8_t *gunzip(const uint8_t *in, size_t len, size_t *out_len)
{
	size_t cap = 1 << 16;
	uint8_t *out = malloc(cap);
	z_stream zs = { 0 };
	int zerr = Z_OK;

	assert_non_null(out);
	assert_int_equal(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	while (zerr == Z_OK) {
		if (zs.total_out == cap) {
			cap *= 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		zs.next_out = out + zs.total_out;
		zs.avail_out = (uInt)(cap - zs.total_out);
		zerr = inflate(&zs, Z_NO_FLUSH);
	}
	assert_int_equal(zerr, Z_STREAM_END);
	assert_int_equal(zs.avail_in, 0);
	*out_len = zs.total_out;
	inflateEnd(&zs);
	return out;
}

static Perftools__Profiles__Profile *encode_decode(const char *text)
{
	Perftools__Profiles__Profile *p;
	json_t *reply = json_loads(text, 0, NULL);
	uint8_t *raw;
	size_t raw_len;

	assert_non_null(reply);
	free(gz);
	gz = NULL;
	assert_int_equal(pprof_encode(reply, &gz, &gz_len), 0);
	json_decref(reply);
	assert_true(gz_len > 18);
	assert_int_equal(gz[0], 0x1f);	/* gzip magic */
	assert_int_equal(gz[1], 0x8b);
	raw = gunzip(gz, gz_len, &raw_len);
	p = perftools__profiles__profile__unpack(NULL, raw_len, raw);
	free(raw);
	assert_non_null(p);
	return p;
}

static const char *str(int64_t index)
{
	assert_true(index >= 0 && (size_t)index < profile->n_string_table);
	return profile->string_table[index];
}

static Perftools__Profiles__Location *location(uint64_t id)
{
	size_t i;

	for (i = 0; i < profile->n_location; i++)
		if (profile->location[i]->id == id)
			return profile->location[i];
	fail_msg("no location %llu", (unsigned long long)id);
	return NULL;
}

static Perftools__Profiles__Function *function(uint64_t id)
{
	size_t i;

	for (i = 0; i < profile->n_function; i++)
		if (profile->function[i]->id == id)
			return profile->function[i];
	fail_msg("no function %llu", (unsigned long long)id);
	return NULL;
}

/* Frame k of sample s as "function file:line". */
static void assert_frame(size_t s, size_t k, const char *name, const char *file, int64_t line)
{
	Perftools__Profiles__Location *loc;
	Perftools__Profiles__Function *f;

	assert_true(k < profile->sample[s]->n_location_id);
	loc = location(profile->sample[s]->location_id[k]);
	assert_int_equal(loc->n_line, 1);
	assert_int_equal(loc->line[0]->line, line);
	f = function(loc->line[0]->function_id);
	assert_string_equal(str(f->name), name);
	assert_string_equal(str(f->filename), file);
}

static int teardown(void **state)
{
	(void)state;
	perftools__profiles__profile__free_unpacked(profile, NULL);
	profile = NULL;
	free(gz);
	gz = NULL;
	return 0;
}

static void test_header(void **state)
{
	(void)state;
	profile = encode_decode(reply_text);
	assert_true(profile->n_string_table > 0);
	assert_string_equal(profile->string_table[0], "");
	assert_int_equal(profile->n_sample_type, 1);
	assert_string_equal(str(profile->sample_type[0]->type), "live_objects");
	assert_string_equal(str(profile->sample_type[0]->unit), "count");
	assert_string_equal(str(profile->default_sample_type), "live_objects");
	assert_true(profile->time_nanos > 1700000000ll * 1000000000);
	assert_int_equal(profile->n_comment, 2);
	assert_non_null(strstr(str(profile->comment[0]), "type Foo in pid 4242"));
	assert_string_equal(str(profile->comment[1]), "every allocation (precise)");
}

/* A type's objects and the native bytes its constructor touched: two values per sample. */
static void test_native_samples(void **state)
{
	(void)state;
	profile = encode_decode(
		"{\"pid\": 7, \"type\": \"Foo\", \"sites\": [{\"function\": \"make\", \"file\": \"/a.py\","
		" \"line\": 3, \"live\": 5, \"stack\": [{\"function\": \"make\", \"file\": \"/a.py\", \"line\": 3}]}],"
		" \"native\": [{\"function\": \"__init__\", \"file\": \"/a.py\", \"line\": 9, \"bytes\": 8192,"
		" \"stack\": [{\"function\": \"__init__\", \"file\": \"/a.py\", \"line\": 9},"
		"             {\"function\": \"make\", \"file\": \"/a.py\", \"line\": 3}]}]}");
	assert_int_equal(profile->n_sample_type, 2);
	assert_string_equal(str(profile->sample_type[1]->type), "inuse_space");
	assert_string_equal(str(profile->sample_type[1]->unit), "bytes");
	assert_string_equal(str(profile->default_sample_type), "live_objects");
	assert_int_equal(profile->n_sample, 2);
	assert_int_equal(profile->sample[0]->n_value, 2);
	assert_int_equal(profile->sample[0]->value[0], 5);
	assert_int_equal(profile->sample[0]->value[1], 0);
	assert_int_equal(profile->sample[1]->value[0], 0);
	assert_int_equal(profile->sample[1]->value[1], 8192);
	assert_int_equal(profile->sample[1]->n_location_id, 3);
	assert_frame(1, 0, "[native]", "", 0);
	assert_frame(1, 1, "__init__", "/a.py", 9);
	assert_frame(1, 2, "make", "/a.py", 3);
	/* the same location as the object sample's */
	assert_int_equal(profile->sample[1]->location_id[2], profile->sample[0]->location_id[0]);
}

static void test_samples_innermost_first(void **state)
{
	int64_t want[] = { 300, 100, 7, 2 };
	size_t i;

	(void)state;
	profile = encode_decode(reply_text);
	assert_int_equal(profile->n_sample, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(profile->sample[i]->n_value, 1);
		assert_int_equal(profile->sample[i]->value[0], want[i]);
	}
	assert_int_equal(profile->sample[0]->n_location_id, 3);
	assert_frame(0, 0, "make_foo", "/t/app.py", 12);
	assert_frame(0, 1, "main", "/t/app.py", 60);
	assert_frame(0, 2, "<module>", "/t/app.py", 70);
	assert_int_equal(profile->sample[1]->n_location_id, 3);
	assert_frame(1, 0, "other", "/t/lib.py", 5);
	assert_frame(1, 1, "main", "/t/app.py", 61);
	assert_frame(1, 2, "<module>", "/t/app.py", 70);
	/* Without a stack (or with an empty one) the site is its own frame. */
	assert_int_equal(profile->sample[2]->n_location_id, 1);
	assert_frame(2, 0, "bare", "/t/lib.py", 9);
	assert_int_equal(profile->sample[3]->n_location_id, 1);
	assert_frame(3, 0, "(unknown)", "/t/lib.py", 1);
}

/* One location per (function, file, line), one function per (function, file), unique ids. */
static void test_dedup_and_ids(void **state)
{
	size_t i, j;

	(void)state;
	profile = encode_decode(reply_text);
	/* make_foo:12 main:60 <module>:70 other:5 main:61 bare:9 (unknown):1 */
	assert_int_equal(profile->n_location, 7);
	/* make_foo main <module> other bare (unknown) */
	assert_int_equal(profile->n_function, 6);
	assert_int_equal(profile->sample[0]->location_id[2], profile->sample[1]->location_id[2]);
	assert_int_not_equal(profile->sample[0]->location_id[1],
			     profile->sample[1]->location_id[1]);
	assert_int_equal(location(profile->sample[0]->location_id[1])->line[0]->function_id,
			 location(profile->sample[1]->location_id[1])->line[0]->function_id);
	for (i = 0; i < profile->n_location; i++) {
		assert_int_not_equal(profile->location[i]->id, 0);
		for (j = 0; j < i; j++)
			assert_int_not_equal(profile->location[i]->id, profile->location[j]->id);
	}
	for (i = 0; i < profile->n_function; i++) {
		assert_int_not_equal(profile->function[i]->id, 0);
		for (j = 0; j < i; j++)
			assert_int_not_equal(profile->function[i]->id, profile->function[j]->id);
	}
	/* Each string once. */
	for (i = 0; i < profile->n_string_table; i++)
		for (j = 0; j < i; j++)
			assert_string_not_equal(profile->string_table[i], profile->string_table[j]);
}

static void test_no_sites(void **state)
{
	(void)state;
	profile = encode_decode("{\"pid\": 1, \"type\": \"Foo\", \"sites\": []}");
	assert_int_equal(profile->n_sample, 0);
	assert_int_equal(profile->n_location, 0);
	assert_int_equal(profile->n_function, 0);
	assert_int_equal(profile->n_comment, 1);
	assert_string_equal(str(profile->sample_type[0]->type), "live_objects");
}

/* Many sites over a few shared frames stay small, and the samples keep their stacks apart. */
static void test_many_sites(void **state)
{
	json_t *reply = json_pack("{s:i,s:s,s:[]}", "pid", 7, "type", "str", "sites");
	json_t *sites = json_object_get(reply, "sites");
	int64_t sum = 0;
	char *text;
	int i;

	(void)state;
	for (i = 0; i < 2000; i++)
		assert_int_equal(json_array_append_new(sites, json_pack(
			"{s:s,s:s,s:i,s:i,s:[{s:s,s:s,s:i},{s:s,s:s,s:i}]}",
			"function", "f", "file", "a.py", "line", i, "live", i + 1, "stack",
			"function", "f", "file", "a.py", "line", i,
			"function", "main", "file", "a.py", "line", 1)), 0);
	text = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	assert_non_null(text);
	profile = encode_decode(text);
	free(text);
	assert_int_equal(profile->n_sample, 2000);
	assert_int_equal(profile->n_location, 2001);
	assert_int_equal(profile->n_function, 2);
	for (i = 0; i < 2000; i++) {
		sum += profile->sample[i]->value[0];
		assert_frame(i, 0, "f", "a.py", i);
		assert_frame(i, 1, "main", "a.py", 1);
	}
	assert_int_equal(sum, 2000 * 2001 / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_header, teardown),
		cmocka_unit_test_teardown(test_native_samples, teardown),
		cmocka_unit_test_teardown(test_samples_innermost_first, teardown),
		cmocka_unit_test_teardown(test_dedup_and_ids, teardown),
		cmocka_unit_test_teardown(test_no_sites, teardown),
		cmocka_unit_test_teardown(test_many_sites, teardown),
	};

	return cmocka_run_group_tests_name("pprof", tests, NULL, NULL);
}
