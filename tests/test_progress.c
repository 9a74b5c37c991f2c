// SPDX-License-Identifier: MIT
/*
 * test_progress.c - the progress line of long work (tools/progress.c):
 * what it says, in place on a terminal, plain lines elsewhere but none for
 * work done in a moment, and nothing at all when quiet.
 *
 * Lock ordering: none.
 */
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../tools/progress.c"
#include "helper.h"

#define MB (1ull << 20)

static char *contents(FILE *f)
{
	static char buf[4096];
	size_t n;

	fflush(f);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	return buf;
}

static void test_line_says_how_far_in_mb_and_percent(void **state)
{
	char line[160];

	(void)state;
	progress_format(line, sizeof(line), "verifying", 412 * MB, 768 * MB);
	assert_string_equal(line, "verifying: 412 of 768 MB (54%)");
	/* an estimate exceeded is shown as done, never above 100% */
	progress_format(line, sizeof(line), "verifying", 900 * MB, 768 * MB);
	assert_string_equal(line, "verifying: 768 of 768 MB (100%)");
	progress_format(line, sizeof(line), "verifying", 0, 0);
	assert_string_equal(line, "verifying: 0 of 0 MB (100%)");
}

static void test_plain_output_gets_no_line_for_quick_work(void **state)
{
	FILE *f = th_tmpfile();
	struct progress p;

	(void)state;
	assert_non_null(f);
	progress_init(&p, f, false, "verifying");
	assert_false(p.tty);
	progress_update(&p, 1 * MB, 10 * MB);
	progress_update(&p, 10 * MB, 10 * MB);
	progress_clear(&p);
	assert_string_equal(contents(f), "");
	fclose(f);
}

static void test_plain_output_gets_whole_lines_when_due(void **state)
{
	FILE *f = th_tmpfile();
	struct progress p;

	(void)state;
	assert_non_null(f);
	progress_init(&p, f, false, "verifying");
	p.every_s = 0; /* as if PLAIN_EVERY_S had passed each time */
	progress_update(&p, 1 * MB, 10 * MB);
	progress_update(&p, 5 * MB, 10 * MB);
	progress_clear(&p);
	assert_string_equal(contents(f), "verifying: 1 of 10 MB (10%)\n"
					 "verifying: 5 of 10 MB (50%)\n");
	fclose(f);
}

static void test_quiet_says_nothing(void **state)
{
	FILE *f = th_tmpfile();
	struct progress p;

	(void)state;
	assert_non_null(f);
	progress_init(&p, f, true, "verifying");
	p.every_s = 0;
	progress_update(&p, 1 * MB, 10 * MB);
	progress_clear(&p);
	assert_string_equal(contents(f), "");
	fclose(f);
}

/* On a terminal the line is rewritten in place and taken off again. */
static void test_terminal_line_is_rewritten_in_place(void **state)
{
	char buf[512];
	struct progress p;
	int master, slave;
	ssize_t n, got = 0;
	FILE *f;

	(void)state;
	if (openpty(&master, &slave, NULL, NULL, NULL))
		skip();
	f = fdopen(slave, "w");
	assert_non_null(f);
	progress_init(&p, f, false, "verifying");
	assert_true(p.tty);
	progress_update(&p, 1 * MB, 10 * MB); /* the first at once */
	p.every_s = 3600;
	progress_update(&p, 2 * MB, 10 * MB); /* too soon: skipped */
	p.every_s = 0;
	progress_update(&p, 3 * MB, 10 * MB);
	progress_clear(&p);
	fclose(f);
	while ((n = read(master, buf + got, sizeof(buf) - 1 - (size_t)got)) >
	       0) {
		got += n;
		if (strstr(buf, "30%)\033[K\r\033[K"))
			break;
	}
	buf[got] = '\0';
	assert_string_equal(buf, "\rverifying: 1 of 10 MB (10%)\033[K"
				 "\rverifying: 3 of 10 MB (30%)\033[K"
				 "\r\033[K");
	close(master);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_says_how_far_in_mb_and_percent),
		cmocka_unit_test(test_plain_output_gets_no_line_for_quick_work),
		cmocka_unit_test(test_plain_output_gets_whole_lines_when_due),
		cmocka_unit_test(test_quiet_says_nothing),
		cmocka_unit_test(test_terminal_line_is_rewritten_in_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
