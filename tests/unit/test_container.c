// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Container ids, systemd units and namespace pids from real shapes of /proc/PID/cgroup and
 * /proc/PID/status, and hostile ones. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "container.h"

#define ID64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void check(const char *cgroup, const char *container, const char *unit)
{
	struct container_label l;

	container_cgroup_parse(cgroup, &l);
	assert_string_equal(l.container, container);
	assert_string_equal(l.unit, unit);
}

static void test_shapes(void **state)
{
	(void)state;
	/* cgroup v2, systemd driver (docker, podman, containerd, CRI-O) */
	check("0::/system.slice/docker-" ID64 ".scope\n", ID64, "docker-" ID64 ".scope");
	check("0::/machine.slice/libpod-" ID64 ".scope/container\n", ID64,
	      "libpod-" ID64 ".scope");
	check("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/"
	      "cri-containerd-" ID64 ".scope\n", ID64, "cri-containerd-" ID64 ".scope");
	check("0::/kubepods.slice/kubepods-pod1.slice/crio-" ID64 ".scope\n", ID64,
	      "crio-" ID64 ".scope");
	/* cgroupfs driver: bare ids */
	check("12:memory:/docker/" ID64 "\n11:cpu:/docker/" ID64 "\n0::/\n", ID64, "");
	check("0::/kubepods/burstable/pod0a1b/" ID64 "\n", ID64, "");
	/* systemd-nspawn, its name escaped */
	check("0::/machine.slice/machine-web\\x2d1.scope/payload/system.slice/nginx.service\n",
	      "web-1", "machine-web\\x2d1.scope");
	/* plain services; a service's own sub-cgroups stay its; sessions */
	check("0::/system.slice/worker.service\n", "", "worker.service");
	check("0::/system.slice/app.service/sub/tasks\n", "", "app.service");
	check("0::/user.slice/user-0.slice/session-4.scope\n", "", "session-4.scope");
	/* the outermost unit, as systemd's cg_path_get_unit(): what a service delegates below it
	 * names no system unit */
	check("0::/system.slice/app.service/system.slice/sshd.service\n", "", "app.service");
	/* a user manager's units (its delegated subtree) are qualified by it */
	check("0::/user.slice/user-1000.slice/user@1000.service/app.slice/sshd.service\n", "",
	      "user@1000.service/sshd.service");
	check("0::/user.slice/user-1000.slice/user@1000.service/init.scope\n", "",
	      "user@1000.service/init.scope");
	check("0::/user.slice/user-1000.slice/user@1000.service/app.slice\n", "",
	      "user@1000.service");
	check("0::/user.slice/user-1000.slice/user@1000.service/mine/sshd.service\n", "",
	      "user@1000.service");
	/* not under a unit: none, whatever is below */
	check("0::/mydir/sshd.service\n", "", "");
	check("0::/\n", "", "");
	check("", "", "");
}

static void test_line_priority(void **state)
{
	(void)state;
	/* systemd's hierarchies first, wherever their lines are */
	check("4:memory:/process_api/b7f0\n9:name=systemd:/system.slice/demo.service\n0::/\n", "",
	      "demo.service");
	check("4:memory:/system.slice/other.service\n0::/system.slice/demo.service\n", "",
	      "demo.service");
	/* a controller's line when systemd's name none (a v1 cgroup made by hand) */
	check("4:memory:/system.slice/demo.service\n9:name=systemd:/\n0::/\n", "", "demo.service");
}

static void test_hostile(void **state)
{
	char buf[4096];

	(void)state;
	/* no ':' structure, short or upper-case hex, ids too long, junk around */
	check("garbage\n::\n:\n0:/docker/" ID64 "\n", "", "");
	check("0::/docker/0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n", "", "");
	check("0::/system.slice/docker-abc.scope\n", "", "docker-abc.scope");
	check("0::/docker/" ID64 "0\n", "", "");
	check("0::/machine.slice/machine-\\x01.scope\n", "", "machine-\\x01.scope");
	check("0::/machine.slice/machine-.scope\n", "", "machine-.scope");
	/* a unit name that is not UTF-8 is made so */
	check("0::/system.slice/a\xff.service\n", "", "a?.service");
	/* a component over NAME_MAX is no cgroup's */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "0::/", 4);
	memcpy(buf + 3000, ".service", 9);
	check(buf, "", "");
	/* a unit name too long for the label is not cut */
	memset(buf, 'b', sizeof(buf));
	memcpy(buf, "0::/", 4);
	memcpy(buf + 200, ".service", 9);
	check(buf, "", "");
}

static void test_nspid(void **state)
{
	pid_t p = 0;

	(void)state;
	assert_int_equal(container_nspid_parse("Name:\tpython3\nNSpid:\t5681\t1\nNSpgid:\t1\n", &p), 0);
	assert_int_equal(p, 1);
	assert_int_equal(container_nspid_parse("NSpid:\t77\n", &p), 0);
	assert_int_equal(p, 77);
	assert_int_equal(container_nspid_parse("NSpid:\t9\t8\t7", &p), 0);
	assert_int_equal(p, 7);
	assert_int_equal(container_nspid_parse("Name:\tx\n", &p), -ENOENT);
	assert_int_equal(container_nspid_parse("NSpid:\n", &p), -EINVAL);
	assert_int_equal(container_nspid_parse("NSpid:\t12x\n", &p), -EINVAL);
	assert_int_equal(container_nspid_parse("NSpid:\t-1\n", &p), -EINVAL);
	assert_int_equal(container_nspid_parse("NSpid:\t99999999999999999999\n", &p), -EINVAL);
	assert_int_equal(container_nspid_parse("XNSpid:\t5\n", &p), -ENOENT);
}

/* This very process: its own pid (not in another PID namespace here) and a label read. */
static void test_read_self(void **state)
{
	struct container_label l;

	(void)state;
	assert_int_equal(container_read(getpid(), &l), 0);
	assert_true(l.ns_pid > 0);
	assert_int_equal(container_read(0x7fffffff, &l), -ESRCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_line_priority),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_nspid),
		cmocka_unit_test(test_read_self),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
