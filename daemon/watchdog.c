// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <stdint.h>
#include <string.h>
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
	err = loop_timer_start(&timer, on_tick, period / 1e6, period / 1e6);
	if (!err)
		log_info("systemd watchdog: pinging every %.3f s", period / 1e6);
	return err;
}

void watchdog_stop(void)
{
	loop_timer_stop(&timer);
}
