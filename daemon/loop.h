/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* The daemon's single-threaded epoll loop: every fd it waits on is a watcher. */
#ifndef PYLEAK_LOOP_H
#define PYLEAK_LOOP_H

#include <signal.h>
#include <stdint.h>

struct watcher {
	int fd;
	void (*fn)(struct watcher *w, uint32_t events);
};

int loop_init(void);
void loop_fini(void);
int loop_add(struct watcher *w, uint32_t events);
int loop_mod(struct watcher *w, uint32_t events);
/* Stops watching w; events of w still pending in the batch being dispatched are dropped, so
 * its owner may be freed right after. */
void loop_del(struct watcher *w);
/* Dispatches events until *stop is set. */
int loop_run(volatile sig_atomic_t *stop);

/* Wall-clock seconds (for JSON `time`) and monotonic seconds (for durations). */
double loop_now(void);
double loop_mono(void);

#endif
