// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "loop.h"
#include "watchdog.h"

static struct watcher timer = { .fd = -1 };

static void on_tick(struct watcher *w, uint32_t events)
{
	uint64_t expirations;

	(void)events;
	if (read(w->fd, &expirations, sizeof(expirations)) < 0)
		return;
	sd_notify(0, "WATCHDOG=1");
}

int watchdog_start(void)
{
	struct itimerspec its = {};
	uint64_t usec, period;
	int err;

	err = sd_watchdog_enabled(0, &usec);
	if (err <= 0) {
		if (err < 0)
			log_warn("systemd watchdog: bad $WATCHDOG_USEC: %s", strerror(-err));
		return 0;
	}
	/* Half the timeout, as sd_watchdog_enabled(3) advises: one late tick is not a restart. */
	period = usec / 2 ? usec / 2 : 1;
	timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (timer.fd < 0)
		return -errno;
	timer.fn = on_tick;
	its.it_value.tv_sec = its.it_interval.tv_sec = period / 1000000;
	its.it_value.tv_nsec = its.it_interval.tv_nsec = (long)(period % 1000000) * 1000;
	if (timerfd_settime(timer.fd, 0, &its, NULL)) {
		err = -errno;
		goto cleanup;
	}
	err = loop_add(&timer, EPOLLIN);
	if (!err) {
		log_info("systemd watchdog: pinging every %.3f s", period / 1e6);
		return 0;
	}
cleanup:
	close(timer.fd);
	timer.fd = -1;
	return err;
}

void watchdog_stop(void)
{
	if (timer.fd < 0)
		return;
	loop_del(&timer);
	close(timer.fd);
	timer.fd = -1;
}
