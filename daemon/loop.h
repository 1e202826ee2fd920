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

/* A CLOCK_MONOTONIC timerfd watched by w: fn called first_s from now, then every interval_s
 * (0: once); 0 or -errno (w->fd -1). */
int loop_timer_start(struct watcher *w, void (*fn)(struct watcher *w, uint32_t events),
		     double first_s, double interval_s);
/* Re-arms w's timer the same way; 0 or -errno. */
int loop_timer_set(struct watcher *w, double first_s, double interval_s);
/* Stops and closes w's timer (nothing if w->fd < 0). */
void loop_timer_stop(struct watcher *w);

/* Wall-clock seconds (for JSON `time`) and monotonic seconds (for durations). */
double loop_now(void);
double loop_mono(void);

#endif
