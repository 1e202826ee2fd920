/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* systemd's watchdog (WatchdogSec=): pinged from the event loop, so a stalled loop stops the
 * pings and systemd restarts the daemon. */
#ifndef PYLEAK_WATCHDOG_H
#define PYLEAK_WATCHDOG_H

/* 0 and nothing armed when $WATCHDOG_USEC is unset (not under systemd, or no WatchdogSec=). */
int watchdog_start(void);
void watchdog_stop(void);

#endif
