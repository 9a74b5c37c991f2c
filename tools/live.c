// SPDX-License-Identifier: MIT
/*
 * live.c - the live screen's terminal side: ncurses, keys, resizes.
 *
 * Design: one thread of its own owns the terminal from live_start() to
 * live_stop(); no other thread calls ncurses in between (live_start()
 * before it exists, live_stop() after joining it).  The run loop publishes
 * a snapshot a second with live_update(), which only copies it under the
 * screen's mutex; the thread waits for a key at most POLL_MS at a time,
 * then redraws when a key, a resize (KEY_RESIZE: SIGWINCH is unblocked in
 * this thread alone, so the signal interrupts its wait, and so is SIGTSTP,
 * so that ncurses' ^Z handler, which gives the terminal back before the
 * process stops, runs in the thread that owns the terminal) or a new snapshot
 * asks for it.  The lines come from live_view.c; this file only places
 * them.  `q` calls the owner's on_quit once; ending the run is the
 * owner's business (run.c sends its main thread a signal), and the owner
 * calls live_stop(), which tells the thread to end, joins it and only then
 * calls endwin(), so the terminal is given back whatever ends the screen.
 *
 * Invariants: ncurses is only used by one thread at a time; live_stop() is
 * bounded (the thread looks at the stop flag every POLL_MS) and may be
 * called from any thread, any number of times; after it the terminal is as
 * it was before live_start().
 *
 * Lock ordering: lock (snapshot, view message, flags) is a leaf; stop_lock
 * (serialises live_stop) is taken before it, never after.
 */
/* before term.h, whose macros (lines, columns, ...) would rename its
 * parameters */
#include "live.h"

#include <curses.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <unistd.h>

/* Longest the thread waits for a key before it looks at the flags. */
#define POLL_MS 100

struct live {
	pthread_mutex_t lock; /* guards snap, seq, msg, up */
	pthread_mutex_t stop_lock; /* one live_stop() at a time */
	struct snap snap; /* the latest published */
	uint64_t seq; /* bumped by live_update and live_message */
	char msg[200]; /* the latest message */
	bool up; /* the screen is on the terminal */
	bool started; /* the thread exists and was not joined */
	atomic_bool stop; /* tells the thread to end */
	SCREEN *screen;
	pthread_t thread;
	void (*on_quit)(void *);
	void *quit_arg;
};

int live_check_terminal(char *err, size_t len)
{
	const char *cup;
	int rc;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		snprintf(
			err, len,
			"--live needs a terminal on stdin and stdout (use the live line, or --metrics, when the output is redirected)");
		return -1;
	}
	if (setupterm(NULL, STDOUT_FILENO, &rc) != OK) {
		snprintf(
			err, len,
			"--live: the terminal type '%s' is not known here (set TERM)",
			getenv("TERM") ? getenv("TERM") : "");
		return -1;
	}
	cup = tigetstr("cup");
	if (!cup || cup == (char *)-1) {
		snprintf(
			err, len,
			"--live: the terminal type '%s' cannot place the cursor",
			getenv("TERM") ? getenv("TERM") : "");
		del_curterm(cur_term);
		return -1;
	}
	/* setupterm() made cur_term; newterm() makes its own */
	del_curterm(cur_term);
	return 0;
}

struct live *live_create(size_t nvms)
{
	struct live *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	if (snap_init(&l->snap, nvms)) {
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->stop_lock, NULL);
	return l;
}

static void draw(const struct snap *s, const struct live_view *v)
{
	int height = LINES, width = COLS;
	struct live_line *text_lines;
	size_t n;

	if (height < 1 || width < 1)
		return;
	text_lines = calloc((size_t)height, sizeof(*text_lines));
	if (!text_lines)
		return;
	n = live_render(s, v, width, height, text_lines);
	erase();
	for (size_t i = 0; i < n; i++) {
		attr_t a = text_lines[i].attr == LIVE_HEADER ? A_REVERSE :
			   text_lines[i].attr == LIVE_TEXT   ? A_NORMAL :
							       A_BOLD;

		attrset(a);
		mvaddnstr((int)i, 0, text_lines[i].text, width);
		if (text_lines[i].attr == LIVE_HEADER) {
			/* the bar runs the width of the screen */
			for (int x = (int)strlen(text_lines[i].text); x < width;
			     x++)
				mvaddch((int)i, x, ' ');
		}
	}
	attrset(A_NORMAL);
	refresh();
	free(text_lines);
}

static void *screen_main(void *arg)
{
	struct live *l = arg;
	struct live_view view = { .sort = LIVE_SORT_MEMSZ };
	struct snap mine;
	uint64_t shown = 0;
	bool quit_sent = false, redraw = true;
	sigset_t winch;
	int ch, sort;

	sigemptyset(&winch);
	sigaddset(&winch, SIGWINCH);
	sigaddset(&winch, SIGTSTP);
	pthread_sigmask(SIG_UNBLOCK, &winch, NULL);
	snap_init(&mine, 0);
	while (!atomic_load(&l->stop)) {
		ch = getch();
		switch (ch) {
		case ERR:
			break;
		case KEY_RESIZE:
			redraw = true;
			break;
		case 'q':
		case 'Q':
			if (!quit_sent && l->on_quit) {
				quit_sent = true;
				pthread_mutex_lock(&l->lock);
				snprintf(l->msg, sizeof(l->msg),
					 "ending the run: stopping the guests");
				l->seq++;
				pthread_mutex_unlock(&l->lock);
				l->on_quit(l->quit_arg);
			}
			break;
		case 'h':
		case 'H':
		case '?':
			view.help = !view.help;
			redraw = true;
			break;
		case 12: /* ^L */
			clearok(curscr, TRUE);
			redraw = true;
			break;
		default:
			sort = live_sort_for_key(ch);
			if (sort >= 0) {
				view.sort = (enum live_sort)sort;
				redraw = true;
			}
			break;
		}
		pthread_mutex_lock(&l->lock);
		if (l->seq != shown) {
			shown = l->seq;
			snap_copy(&mine, &l->snap);
			snprintf(view.msg, sizeof(view.msg), "%s", l->msg);
			redraw = true;
		}
		pthread_mutex_unlock(&l->lock);
		if (redraw)
			draw(&mine, &view);
		redraw = false;
	}
	snap_free(&mine);
	return NULL;
}

int live_start(struct live *l, void (*on_quit)(void *), void *arg, char *err,
	       size_t len)
{
	int rc;

	l->screen = newterm(NULL, stdout, stdin);
	if (!l->screen) {
		snprintf(err, len, "--live: cannot set up the terminal");
		return -1;
	}
	set_term(l->screen);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	curs_set(0);
	timeout(POLL_MS);
	l->on_quit = on_quit;
	l->quit_arg = arg;
	atomic_store(&l->stop, false);
	rc = pthread_create(&l->thread, NULL, screen_main, l);
	if (rc) {
		endwin();
		delscreen(l->screen);
		l->screen = NULL;
		snprintf(err, len, "--live: cannot start its thread: %s",
			 strerror(rc));
		return -1;
	}
	pthread_mutex_lock(&l->lock);
	l->up = true;
	l->started = true;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

void live_update(struct live *l, const struct snap *s)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	snap_copy(&l->snap, s);
	l->seq++;
	pthread_mutex_unlock(&l->lock);
}

bool live_message(struct live *l, const char *msg)
{
	bool up;

	if (!l)
		return false;
	pthread_mutex_lock(&l->lock);
	up = l->up;
	if (up) {
		snprintf(l->msg, sizeof(l->msg), "%s", msg);
		l->seq++;
	}
	pthread_mutex_unlock(&l->lock);
	return up;
}

void live_stop(struct live *l)
{
	bool started;

	if (!l)
		return;
	pthread_mutex_lock(&l->stop_lock);
	pthread_mutex_lock(&l->lock);
	started = l->started;
	l->started = false;
	l->up = false;
	pthread_mutex_unlock(&l->lock);
	if (started) {
		atomic_store(&l->stop, true);
		pthread_join(l->thread, NULL);
		curs_set(1);
		endwin();
		delscreen(l->screen);
		l->screen = NULL;
	}
	pthread_mutex_unlock(&l->stop_lock);
}

void live_destroy(struct live *l)
{
	if (!l)
		return;
	live_stop(l);
	snap_free(&l->snap);
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->stop_lock);
	free(l);
}
