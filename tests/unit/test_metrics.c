// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The metrics text: exposition lines and their escaping, the size limit, the top types and
 * "other", the suspects, and the listen address. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "expo.h"
#include "metrics.h"
#include "metrics_http.h"

static void escape_check(const char *in, const char *want)
{
	char out[2 * EXPO_LABEL_MAX + 1];

	assert_int_equal(expo_escape(in, out), strlen(want));
	assert_string_equal(out, want);
}

static void test_escape(void **state)
{
	char long_in[1000], want[2 * EXPO_LABEL_MAX + 1];

	(void)state;
	escape_check("Segmenter", "Segmenter");
	escape_check("a\\b", "a\\\\b");
	escape_check("say \"hi\"", "say \\\"hi\\\"");
	escape_check("two\nlines", "two\\nlines");
	escape_check("\"}\nfake{x=\"1\"} 2\n", "\\\"}\\nfake{x=\\\"1\\\"} 2\\n");
	escape_check("caf\xc3\xa9", "caf\xc3\xa9");
	escape_check("bad\xff", "bad?");			/* not UTF-8: the scrape would fail */
	escape_check(NULL, "");
	escape_check("", "");
	/* capped at EXPO_LABEL_MAX bytes, before escaping: at most twice that after */
	memset(long_in, '"', sizeof(long_in) - 1);
	long_in[sizeof(long_in) - 1] = '\0';
	for (int i = 0; i < EXPO_LABEL_MAX; i++)
		want[2 * i] = '\\', want[2 * i + 1] = '"';
	want[2 * EXPO_LABEL_MAX] = '\0';
	escape_check(long_in, want);
	/* a cut inside a UTF-8 sequence leaves no half of it */
	memset(long_in, 'a', EXPO_LABEL_MAX - 1);
	strcpy(long_in + EXPO_LABEL_MAX - 1, "\xc3\xa9z");
	memset(want, 'a', EXPO_LABEL_MAX - 1);
	strcpy(want + EXPO_LABEL_MAX - 1, "?");
	escape_check(long_in, want);
}

static void test_lines(void **state)
{
	struct expo_labels l = {};
	struct expo e;
	char *text;

	(void)state;
	expo_init(&e, 1 << 20);
	expo_family(&e, "pyleak_live_objects", "gauge", "Live objects.");
	expo_label(&l, "pid", "42");
	expo_label(&l, "py_type", "we\"ird\\\n");
	assert_int_equal(expo_sample(&e, "pyleak_live_objects", &l, 1787580), 0);
	assert_int_equal(expo_sample(&e, "pyleak_leak_score", &l, 0.97), 0);
	assert_int_equal(expo_sample(&e, "pyleak_targets_tracked", NULL, 3), 0);
	assert_int_equal(expo_sample(&e, "x", NULL, 1.0 / 0.0), 0);
	assert_int_equal(expo_sample(&e, "x", NULL, -1.0 / 0.0), 0);
	assert_int_equal(expo_sample(&e, "x", NULL, 0.0 / 0.0), 0);
	assert_int_equal(expo_sample(&e, "x", NULL, 1e20), 0);
	assert_int_equal(e.dropped, 0);
	text = expo_take(&e);
	assert_string_equal(text,
		"# HELP pyleak_live_objects Live objects.\n"
		"# TYPE pyleak_live_objects gauge\n"
		"pyleak_live_objects{pid=\"42\",py_type=\"we\\\"ird\\\\\\n\"} 1787580\n"
		"pyleak_leak_score{pid=\"42\",py_type=\"we\\\"ird\\\\\\n\"} 0.97\n"
		"pyleak_targets_tracked 3\n"
		"x +Inf\nx -Inf\nx NaN\nx 1e+20\n");
	assert_int_equal(e.len, 0);
	free(text);
	expo_free(&e);
}

static void test_limit(void **state)
{
	struct expo e;
	int i, ok = 0;

	(void)state;
	expo_init(&e, 100);
	for (i = 0; i < 20; i++)
		ok += expo_sample(&e, "pyleak_some_metric", NULL, i) == 0;
	/* "pyleak_some_metric N\n": 21 bytes (22 from 10): whole lines only, then none */
	assert_int_equal(ok, 4);
	assert_int_equal(e.len, 84);
	assert_int_equal(e.dropped, 16);
	assert_int_equal(e.buf[e.len - 1], '\n');
	e.limit = 200;
	assert_int_equal(expo_sample(&e, "pyleak_some_metric", NULL, 7), 0);
	expo_free(&e);
}

static void test_top(void **state)
{
	struct metrics_type v[] = {
		{ "str", 1000, 50000, -1 }, { "Node", 300, -1, -1 }, { "dict", 500, 20000, -1 },
		{ "Node", 400, 8000, -1 },	/* another class named Node: one series */
		{ "other", 5000, 100, -1 },	/* a type named "other": summed into other */
		{ "int", 10, 280, -1 }, { "float", 5, -1, -1 },
	};
	struct metrics_type other;
	size_t kept, nother;

	(void)state;
	kept = metrics_types_top(v, 7, 3, &other, &nother);
	assert_int_equal(kept, 3);
	assert_string_equal(v[0].name, "str");
	assert_string_equal(v[1].name, "Node");
	assert_int_equal(v[1].live, 700);
	assert_int_equal(v[1].bytes, 8000);		/* the known bytes only */
	assert_string_equal(v[2].name, "dict");
	assert_string_equal(other.name, "other");
	assert_int_equal(nother, 3);			/* int, float, "other" */
	assert_int_equal(other.live, 5015);
	assert_int_equal(other.bytes, 380);

	/* fewer types than the top: nothing in other */
	kept = metrics_types_top(v, 2, 20, &other, &nother);
	assert_int_equal(kept, 2);
	assert_int_equal(nother, 0);
	assert_int_equal(other.live, 0);
	assert_int_equal(other.bytes, -1);
	kept = metrics_types_top(v, 0, 20, &other, &nother);
	assert_int_equal(kept, 0);
	assert_int_equal(nother, 0);
}

static void test_suspects(void **state)
{
	struct metrics_type v[] = {
		{ "Node", 1, 0, 0.3 }, { "str", 1, 0, 0.97 }, { "Node", 1, 0, 0.8 },
		{ "dict", 1, 0, 0.1 },
	};

	(void)state;
	assert_int_equal(metrics_suspects_top(v, 4, 2), 2);
	assert_string_equal(v[0].name, "str");
	assert_string_equal(v[1].name, "Node");
	assert_true(v[1].score == 0.8);			/* the highest of the two */
	assert_int_equal(metrics_suspects_top(v, 4, 20), 3);
}

static void listen_ok(const char *s, int family, const char *addr, int port)
{
	struct sockaddr_storage ss;
	char buf[INET6_ADDRSTRLEN];
	socklen_t len;

	assert_int_equal(metrics_listen_parse(s, &ss, &len), 0);
	assert_int_equal(ss.ss_family, family);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		assert_int_equal(len, sizeof(*in));
		assert_int_equal(ntohs(in->sin_port), port);
		inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		assert_int_equal(len, sizeof(*in6));
		assert_int_equal(ntohs(in6->sin6_port), port);
		inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
	}
	assert_string_equal(buf, addr);
}

static void test_listen(void **state)
{
	static const char *const bad[] = {
		"", ":", "9464", "127.0.0.1", "127.0.0.1:", ":9464", "127.0.0.1:65536",
		"127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1: 80", "127.0.0.1:0x10", "127.0.0.1:123456",
		"localhost:9464", "::1:9464", "[::1]", "[::1]9464", "[127.0.0.1]:9464", "[::1:9464",
		"1.2.3:80", "[]:80", "127.0.0.1:80 ",
		"[aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa]:80",
	};
	struct sockaddr_storage ss;
	socklen_t len;
	size_t i;

	(void)state;
	listen_ok("127.0.0.1:9464", AF_INET, "127.0.0.1", 9464);
	listen_ok("0.0.0.0:0", AF_INET, "0.0.0.0", 0);
	listen_ok("10.1.2.3:65535", AF_INET, "10.1.2.3", 65535);
	listen_ok("[::1]:9464", AF_INET6, "::1", 9464);
	listen_ok("[::]:80", AF_INET6, "::", 80);
	listen_ok("[fe80::1:2]:8080", AF_INET6, "fe80::1:2", 8080);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (metrics_listen_parse(bad[i], &ss, &len) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_suspects),
		cmocka_unit_test(test_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
