// SPDX-License-Identifier: MIT
/*
 * progress.c - a progress line for long work (progress.h).
 *
 * Design: on a terminal the line is rewritten in place (carriage return,
 * erase to the end of the line) at most five times a second, and taken
 * off (progress_clear) before anything else is printed, so that other
 * lines never land in the middle of it.  Elsewhere (a pipe, a log file)
 * a plain line is printed every PLAIN_EVERY_S seconds, the first after
 * that long, so that work done in a moment prints none.
 * Nothing at all with --quiet.  The percentage is capped at 100: the
 * totals of some work are estimates made before it starts.
 *
 * Invariants: nothing is printed when out is NULL; after
 * progress_clear() the cursor is at the start of an empty line.
 *
 * Lock ordering: none; one thread updates a progress.
 */
#include <stdio.h>
#include <unistd.h>

#include "progress.h"

#define TTY_EVERY_S 0.2
#define PLAIN_EVERY_S 5.0

void progress_init(struct progress *p, FILE *out, bool quiet, const char *what)
{
	*p = (struct progress){ .out = quiet ? NULL : out, .what = what };
	if (p->out)
		p->tty = isatty(fileno(p->out));
	p->every_s = p->tty ? TTY_EVERY_S : PLAIN_EVERY_S;
	/* a plain line only for work that lasts: the first after every_s */
	clock_gettime(CLOCK_MONOTONIC, &p->last);
	p->started = !p->tty;
}

void progress_format(char *buf, size_t len, const char *what,
		     uint64_t done_bytes, uint64_t total_bytes)
{
	double pct = total_bytes ?
			     100.0 * (double)done_bytes / (double)total_bytes :
			     100.0;

	if (done_bytes > total_bytes)
		done_bytes = total_bytes;
	if (pct > 100)
		pct = 100;
	snprintf(buf, len, "%s: %llu of %llu MB (%.0f%%)", what,
		 (unsigned long long)(done_bytes >> 20),
		 (unsigned long long)(total_bytes >> 20), pct);
}

void progress_update(struct progress *p, uint64_t done_bytes,
		     uint64_t total_bytes)
{
	struct timespec now;
	char line[160];

	if (!p->out)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (p->started &&
	    (double)(now.tv_sec - p->last.tv_sec) +
			    (double)(now.tv_nsec - p->last.tv_nsec) / 1e9 <
		    p->every_s)
		return;
	p->last = now;
	p->started = true;
	progress_format(line, sizeof(line), p->what, done_bytes, total_bytes);
	if (p->tty) {
		fprintf(p->out, "\r%s\033[K", line);
		p->shown = true;
	} else {
		fprintf(p->out, "%s\n", line);
	}
	fflush(p->out);
}

void progress_clear(struct progress *p)
{
	if (!p->out || !p->shown)
		return;
	fprintf(p->out, "\r\033[K");
	fflush(p->out);
	p->shown = false;
}
