/* SPDX-License-Identifier: MIT */
/*
 * progress.h - "how far is it": one line for long work (the final
 * verification, generating guest images), updated in place on a terminal
 * and printed every few seconds otherwise.
 */
#ifndef MV_TOOL_PROGRESS_H
#define MV_TOOL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct progress {
	FILE *out; /* NULL: says nothing (--quiet) */
	const char *what; /* "verifying", "generating guest images" */
	bool tty; /* out is a terminal: one line, rewritten */
	bool shown; /* a line in place is on the screen */
	double every_s; /* seconds between two updates */
	struct timespec last; /* the last update */
	bool started; /* last is set */
};

/* out NULL or quiet: the progress stays silent. */
void progress_init(struct progress *p, FILE *out, bool quiet, const char *what);
/* "what: 412 of 768 MB (54%)" if the last update is old enough. */
void progress_update(struct progress *p, uint64_t done_bytes,
		     uint64_t total_bytes);
/* Takes a line in place off the screen before other output. */
void progress_clear(struct progress *p);

/* The line progress_update() prints, into buf (for tests). */
void progress_format(char *buf, size_t len, const char *what,
		     uint64_t done_bytes, uint64_t total_bytes);

#endif /* MV_TOOL_PROGRESS_H */
