// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include <errno.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

static int epfd = -1;
/* The batch being dispatched: a watcher deleted by a callback (its owner freed) must not get
 * the events still pending for it in the same batch. */
static struct epoll_event batch[32];
static int batch_next, batch_len;

int loop_init(void)
{
	epfd = epoll_create1(EPOLL_CLOEXEC);
	return epfd < 0 ? -errno : 0;
}

void loop_fini(void)
{
	if (epfd >= 0)
		close(epfd);
	epfd = -1;
}

int loop_add(struct watcher *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, w->fd, &ev) ? -errno : 0;
}

int loop_mod(struct watcher *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(epfd, EPOLL_CTL_MOD, w->fd, &ev) ? -errno : 0;
}

void loop_del(struct watcher *w)
{
	int i;

	if (w->fd >= 0)
		epoll_ctl(epfd, EPOLL_CTL_DEL, w->fd, NULL);
	for (i = batch_next; i < batch_len; i++)
		if (batch[i].data.ptr == w)
			batch[i].data.ptr = NULL;
}

int loop_run(volatile sig_atomic_t *stop)
{
	int i, n;

	while (!*stop) {
		n = epoll_wait(epfd, batch, 32, 1000);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_wait: %m");
			return -errno;
		}
		batch_len = n;
		for (i = 0; i < n; i++) {
			struct watcher *w = batch[i].data.ptr;

			batch_next = i + 1;
			if (w)
				w->fn(w, batch[i].events);
		}
		batch_len = 0;
	}
	return 0;
}

double loop_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

double loop_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct timespec timespec_of(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9) };

	return ts;
}

int loop_timer_set(struct watcher *w, double first_s, double interval_s)
{
	struct itimerspec its = { .it_value = timespec_of(first_s),
				  .it_interval = timespec_of(interval_s) };

	/* 0 would disarm it: a due timer fires now */
	if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
		its.it_value.tv_nsec = 1;
	return timerfd_settime(w->fd, 0, &its, NULL) ? -errno : 0;
}

int loop_timer_start(struct watcher *w, void (*fn)(struct watcher *w, uint32_t events),
		     double first_s, double interval_s)
{
	int err;

	w->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (w->fd < 0)
		return -errno;
	w->fn = fn;
	err = loop_timer_set(w, first_s, interval_s);
	if (!err)
		err = loop_add(w, EPOLLIN);
	if (err) {
		close(w->fd);
		w->fd = -1;
	}
	return err;
}

void loop_timer_stop(struct watcher *w)
{
	if (w->fd < 0)
		return;
	loop_del(w);
	close(w->fd);
	w->fd = -1;
}
