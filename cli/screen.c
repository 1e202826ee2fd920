// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* top on the full screen: the terminal, the keys and the requests (screen.h). */
#define _GNU_SOURCE
#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "failure.h"
#include "format.h"
#include "screen.h"
#include "watch.h"

/* Refreshes between leak judgements and between status reads: both change slowly. */
#define LEAKS_EVERY		3
#define STATUS_EVERY		5
#define SITES_MAX		10
#define ESC_DELAY_MS		25	/* a lone Esc is a key, not the start of a sequence */
#define KEY_ESC			27
#define KEY_DEL			127

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * One request. The daemon's own error leaves the connection usable: -EAGAIN when it is busy,
 * -EREMOTEIO otherwise, with its message in e. Any other error is the connection's.
 */
static int screen_request(struct screen *s, json_t *req, json_t **reply, struct client_error *e)
{
	json_t *doc, *error;
	const char *code;
	int err;

	if (!req) {
		e->code = "internal";
		snprintf(e->message, sizeof(e->message), "out of memory");
		return -ENOMEM;
	}
	err = client_request(s->c, req, &doc, e);
	json_decref(req);
	if (err)
		return err;
	error = field(doc, "error");
	if (error) {
		code = json_string_value(field(error, "code"));
		err = code && !strcmp(code, "busy") ? -EAGAIN : -EREMOTEIO;
		e->code = err == -EAGAIN ? "busy" : "internal";
		snprintf(e->message, sizeof(e->message), "%s",
			 json_string_value(field(error, "message")) ?: "pyleakd sent an error");
		json_decref(doc);
		return err;
	}
	/* Type names and paths come from the target: no control character reaches the screen. */
	err = json_sanitize(doc);
	if (err) {
		json_decref(doc);
		e->code = "internal";
		snprintf(e->message, sizeof(e->message), "out of memory");
		return err;
	}
	*reply = doc;
	return 0;
}

/* A request besides top's: the daemon's refusal is shown and the screen goes on. */
static int side_request(struct screen *s, json_t *req, json_t **slot, struct client_error *e)
{
	json_t *reply;
	int err = screen_request(s, req, &reply, e);

	if (err == -EAGAIN || err == -EREMOTEIO) {
		snprintf(s->message, sizeof(s->message), "%s", e->message);
		return 0;
	}
	if (err)
		return err;
	json_decref(*slot);
	*slot = reply;
	return 0;
}

static int status_fetch(struct screen *s, struct client_error *e)
{
	json_t *status = NULL, *target;
	size_t i;
	int err;

	err = side_request(s, json_pack("{s:s}", "cmd", "status"), &status, e);
	json_array_foreach(field(status, "targets"), i, target) {
		if (json_integer_value(field(target, "pid")) == s->o->pid) {
			json_decref(s->target);
			s->target = json_incref(target);
		}
	}
	json_decref(status);
	return err;
}

/* top's reply, and every few refreshes or for the view shown, the others. */
static int screen_fetch(struct screen *s, unsigned long n, struct client_error *e)
{
	const struct opts *o = s->o;
	json_t *reply;
	int err;

	s->message[0] = '\0';
	err = screen_request(s, json_incref(s->top_req), &reply, e);
	if (err == -EAGAIN) {
		snprintf(s->message, sizeof(s->message), "%s", e->message);
		return 0;
	}
	if (err)
		return err;
	json_decref(s->top);
	s->top = reply;
	err = sparks_record(&s->sparks, field(reply, "types"));
	if (!err && (n % LEAKS_EVERY == 0 || s->view == VIEW_LEAKS))
		err = side_request(s, json_pack("{s:s,s:i,s:i,s:i}", "cmd", "leaks", "pid", o->pid,
						"window", o->window, "n", 0), &s->leaks, e);
	if (!err && n % STATUS_EVERY == 0)
		err = status_fetch(s, e);
	if (!err && s->view == VIEW_SITES)
		err = side_request(s, json_pack("{s:s,s:i,s:s,s:i}", "cmd", "sites", "pid", o->pid,
						"type", s->type, "n", SITES_MAX), &s->sites, e);
	if (err == -ENOMEM)
		snprintf(e->message, sizeof(e->message), "out of memory");
	return err;
}

static void view_set(struct screen *s, enum view view)
{
	s->view = view;
	s->scroll = 0;
	json_decref(s->sites);
	s->sites = NULL;
}

/* Applies a key; returns true when it asks for a fetch now (paused or not). */
static bool key_handle(struct screen *s, int ch, bool *quit)
{
	switch (ch) {
	case 'q':
	case 'Q':
		*quit = true;
		return false;
	case 's':
		s->sort = sorts[s->sort + 1] ? s->sort + 1 : 0;
		break;
	case 'l':
	case 'b':
	case 'g':
		/* Each key is the initial of its order. */
		for (s->sort = 0; sorts[s->sort][0] != ch; s->sort++)
			;
		break;
	case 'p':
	case ' ':
		s->paused = !s->paused;
		return false;
	case KEY_UP:
	case 'k':
		s->move--;
		return false;
	case KEY_DOWN:
	case 'j':
		s->move++;
		return false;
	case '\n':
	case '\r':
	case KEY_ENTER:
	case 't':
		if (s->view != VIEW_TYPES || !s->type) {
			view_set(s, VIEW_TYPES);
			return false;
		}
		view_set(s, VIEW_SITES);
		return true;
	case 'K':
		view_set(s, s->view == VIEW_LEAKS ? VIEW_TYPES : VIEW_LEAKS);
		return s->view == VIEW_LEAKS;
	case KEY_ESC:
	case KEY_BACKSPACE:
	case KEY_DEL:
	case KEY_LEFT:
	case 'h':
		view_set(s, VIEW_TYPES);
		return false;
	default:
		return false;	/* KEY_RESIZE too: the next draw takes the new size */
	}
	json_object_set_new(s->top_req, "sort", json_string(sorts[s->sort]));
	return true;
}

static int screen_loop(struct screen *s, const sigset_t *keymask, struct client_error *e)
{
	double next = 0, wait;
	unsigned long fetches = 0;
	bool quit = false, due = true;
	int err, ch;

	while (!quit) {
		if (due || (!s->paused && mono_now() >= next)) {
			err = screen_fetch(s, fetches++, e);
			if (err)
				return err;
			next = mono_now() + s->o->interval;
		}
		err = screen_draw(s);
		if (err)
			return err;
		wait = s->paused ? s->o->interval : next - mono_now();
		err = watch_wait(STDIN_FILENO, wait > 0 ? wait : 0, keymask);
		if (err < 0)
			return err;
		due = false;
		while (!quit && (ch = getch()) != ERR)
			due |= key_handle(s, ch, &quit);
	}
	return 0;
}

/* The terminal in the screen's modes; newterm() (not initscr()) fails instead of exiting. */
static SCREEN *terminal_open(void)
{
	SCREEN *term = newterm(NULL, stdout, stdin);

	if (!term)
		return NULL;
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	curs_set(0);
	set_escdelay(ESC_DELAY_MS);
	return term;
}

int screen_run(const struct opts *o, struct client *c, json_t *req, const sigset_t *waitmask)
{
	struct screen s = { .o = o, .c = c, .sort = o->sort, .top_req = json_copy(req) };
	struct client_error e = { .code = "internal" };
	sigset_t winch, before, keymask, clientmask;
	SCREEN *term;
	int err;

	/*
	 * ncurses turns SIGWINCH into KEY_RESIZE; it must not cut short a wait for a reply, so it
	 * gets through only while waiting for keys.
	 */
	sigemptyset(&winch);
	sigaddset(&winch, SIGWINCH);
	sigprocmask(SIG_BLOCK, &winch, &before);
	keymask = clientmask = *waitmask;
	sigdelset(&keymask, SIGWINCH);
	sigaddset(&clientmask, SIGWINCH);
	client_waitmask_set(c, &clientmask);
	setlocale(LC_CTYPE, "");
	s.utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	if (!s.top_req) {
		err = fail(false, -ENOMEM, "internal", "out of memory");
		goto cleanup;
	}
	term = terminal_open();
	if (!term) {
		err = fail(false, -ENOTTY, "internal",
			   "cannot use this terminal (TERM=%s): use --once or a pipe",
			   getenv("TERM") ?: "");
		goto cleanup;
	}
	err = screen_loop(&s, &keymask, &e);
	endwin();
	delscreen(term);
	if (err && err != -EINTR)
		fail(false, err, e.code, "%s", e.message);
cleanup:
	client_waitmask_set(c, waitmask);
	sigprocmask(SIG_SETMASK, &before, NULL);
	sparks_free(&s.sparks);
	free(s.type);
	json_decref(s.sites);
	json_decref(s.target);
	json_decref(s.leaks);
	json_decref(s.top);
	json_decref(s.top_req);
	return err;
}
