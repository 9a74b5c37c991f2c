/* SPDX-License-Identifier: MIT */
/*
 * live.h - `memvisor run --live`: a full-screen view of the running host,
 * modelled on esxtop's memory panel, redrawn every second.
 *
 * Two halves: live_view.c turns a snapshot (snap.h) into lines of text for
 * a screen of a given size (no terminal involved, so tests can read it),
 * and live.c puts those lines on the terminal with ncurses from a thread of
 * its own, reading keys (sort, help, quit) and following resizes.
 */
#ifndef MV_TOOL_LIVE_H
#define MV_TOOL_LIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "snap.h"

/* What the VM rows are sorted by: numbers largest first, names A to Z. */
enum live_sort {
	LIVE_SORT_MEMSZ = 0,
	LIVE_SORT_GRANT,
	LIVE_SORT_TCHD,
	LIVE_SORT_SWCUR,
	LIVE_SORT_MCTLSZ,
	LIVE_SORT_CACHEUSD,
	LIVE_SORT_OPS,
	LIVE_SORT_NAME,
	LIVE_NSORTS
};

/* How a line is shown. */
enum live_attr {
	LIVE_TEXT = 0, /* plain */
	LIVE_TITLE, /* the first line: bold */
	LIVE_HEADER, /* the VM table's column names: reverse video */
	LIVE_NOTE, /* the help or message line: bold */
};

/* Longest line rendered; wider screens show blank beyond it. */
#define LIVE_MAX_COLS 400

struct live_line {
	enum live_attr attr;
	char text[LIVE_MAX_COLS + 1];
};

/* What the person at the screen chose, and the last message. */
struct live_view {
	enum live_sort sort;
	bool help; /* show the key help line */
	char msg[200]; /* the latest host message, "" if none */
};

/* The sort a key selects (M G T S B C O N, either case); -1 for other
 * keys. */
int live_sort_for_key(int ch);
/* "MEMSZ", "OPS/s", "NAME", ... */
const char *live_sort_name(enum live_sort sort);
/* Fills order[0..s->nvms) with VM indexes in the sort's order; ties go by
 * name, then by index, so the order is always the same for a snapshot. */
void live_order(const struct snap *s, enum live_sort sort, size_t *order);
/* Renders s as at most height lines of at most width (<= LIVE_MAX_COLS)
 * characters into lines; returns how many.  Host lines first, then the
 * help or message line, the column names, and a row per VM in v's order
 * for as many as fit (the last line then says how many do not). */
size_t live_render(const struct snap *s, const struct live_view *v, int width,
		   int height, struct live_line *lines);

/* The screen itself (live.c). */
struct live;

/* Whether the screen can run here: stdin and stdout are terminals and
 * $TERM is known and can place the cursor.  0, or -1 with a sentence in
 * err. */
int live_check_terminal(char *err, size_t len);
/* For snapshots of nvms VMs.  NULL if out of memory. */
struct live *live_create(size_t nvms);
/* Takes the terminal and starts the screen's thread, which calls
 * on_quit(arg) once when `q` is pressed.  SIGWINCH and SIGTSTP should be
 * blocked in every other thread (the screen's unblocks them for itself, so
 * that ncurses' handlers run there).  0, or -1 with a sentence in err. */
int live_start(struct live *l, void (*on_quit)(void *), void *arg, char *err,
	       size_t len);
/* Publishes a snapshot; the screen shows it at once.  Never blocks for
 * longer than a copy. */
void live_update(struct live *l, const struct snap *s);
/* Shows msg on the screen's message line if the screen is up (true), so
 * that it need not be printed over the screen; false otherwise. */
bool live_message(struct live *l, const char *msg);
/* Ends the screen and gives the terminal back as it was (within about
 * 100 ms); any thread may call it, any number of times. */
void live_stop(struct live *l);
/* live_stop(), then frees l (NULL is fine). */
void live_destroy(struct live *l);

#endif /* MV_TOOL_LIVE_H */
