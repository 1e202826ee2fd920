// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* top's refresh loop (watch.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "failure.h"
#include "reply.h"
#include "screen.h"
#include "watch.h"

#define SCREEN_CLEAR		"\033[H\033[2J"

static volatile sig_atomic_t stop_requested;

static void stop_handle(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/*
 * SIGINT/SIGTERM stay blocked except inside ppoll(), so a stop between two checks is not lost.
 * saved gets the mask to restore; waitmask the one to wait with.
 */
static int signals_catch(sigset_t *saved, sigset_t *waitmask)
{
	struct sigaction sa = { .sa_handler = stop_handle };
	sigset_t stop;

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigemptyset(&sa.sa_mask);
	if (sigprocmask(SIG_BLOCK, &stop, saved) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGTERM, &sa, NULL) < 0)
		return -errno;
	*waitmask = *saved;
	sigdelset(waitmask, SIGINT);
	sigdelset(waitmask, SIGTERM);
	return 0;
}

int watch_wait(int fd, double seconds, const sigset_t *waitmask)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec ts = {
		.tv_sec = (time_t)seconds,
		.tv_nsec = (long)((seconds - (time_t)seconds) * 1e9),
	};
	int n = ppoll(&pfd, fd >= 0, &ts, waitmask);

	if (n < 0 && errno == EINTR && stop_requested)
		return -EINTR;
	return n > 0;
}

/* The plain loop, for pipes: one table per refresh, whole. */
static int frames_print(const struct opts *o, struct client *c, json_t *req,
			const sigset_t *waitmask)
{
	bool tty = isatty(STDOUT_FILENO);
	json_t *reply;
	int err = 0, frames;

	/* Whole frames per write, so a refresh does not flicker line by line. */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	for (frames = 0; !err; frames++) {
		err = reply_get(o, c, req, &reply);
		if (err)
			break;
		if (tty)
			fputs(SCREEN_CLEAR, stdout);
		else if (frames)
			putchar('\n');
		err = reply_print(o, stdout, reply);
		json_decref(reply);
		/* A failed write is reported by main(), which checks stdout last. */
		if (!err && fflush(stdout))
			err = -EIO;
		if (!err)
			err = watch_wait(-1, o->interval, waitmask);
	}
	return err;
}

int top_watch(const struct opts *o, struct client *c, json_t *req)
{
	sigset_t saved, waitmask;
	int err;

	err = signals_catch(&saved, &waitmask);
	if (err)
		return fail(o->json, err, "internal", "cannot catch signals: %s", strerror(-err));
	client_waitmask_set(c, &waitmask);
	/* The full screen takes its keys from stdin: without a terminal there, frames. */
	if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
		err = screen_run(o, c, req, &waitmask);
	else
		err = frames_print(o, c, req, &waitmask);
	/* A late second signal (timeout(1) also signals the group) now only sets the flag. */
	client_waitmask_set(c, NULL);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	return err == -EINTR ? 0 : err;
}
