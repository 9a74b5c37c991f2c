// SPDX-License-Identifier: MIT
/*
 * test_layers.c - scripts/layers.sh, the check that keeps the engine in
 * layers: it passes on the engine's own objects, and fails on objects made
 * here that call upwards, call each other in a circle, or belong to no
 * layer.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"

static char script[PATH_MAX + 64];
static char objdir[PATH_MAX + 64]; /* the engine: BUILD/libmemvisor.a */

/* The build directory is the test binary's grandparent; the script is in
 * the source tree, which make runs the tests from. */
static void find_paths(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	assert_true(n > 0);
	self[n] = '\0';
	slash = strrchr(self, '/');
	assert_non_null(slash);
	*slash = '\0'; /* BUILD/tests */
	snprintf(objdir, sizeof(objdir), "%s/../libmemvisor.a", self);
	snprintf(script, sizeof(script), "scripts/layers.sh");
	if (access(script, X_OK))
		snprintf(script, sizeof(script), "%s/../../scripts/layers.sh",
			 self);
	assert_int_equal(access(script, X_OK), 0);
}

/* Runs the script, its TMPDIR (where it makes its work directory) a
 * fresh scratch directory; returns its exit status, its output in out. */
static int run_check(const char *table, const char *dir, char *out,
		     size_t outlen)
{
	char cmd[3 * PATH_MAX + TH_DIR_LEN + 256], tmp[TH_DIR_LEN];
	size_t got = 0, r;
	FILE *p;
	int st;

	th_scratch(tmp, sizeof(tmp), "layers-tmp");
	th_remove_at_teardown(tmp); /* the script removes its work directory */
	if (table)
		snprintf(cmd, sizeof(cmd),
			 "TMPDIR='%s' '%s' --table '%s' '%s' 2>&1", tmp, script,
			 table, dir);
	else
		snprintf(cmd, sizeof(cmd), "TMPDIR='%s' '%s' '%s' 2>&1", tmp,
			 script, dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (got + 1 < outlen &&
	       (r = fread(out + got, 1, outlen - 1 - got, p)) > 0)
		got += r;
	out[got] = '\0';
	st = pclose(p);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

struct fake {
	char dir[TH_DIR_LEN];
	char table[TH_PATH_LEN];
};

static void fake_remove(void *arg)
{
	struct fake *f = arg;
	char cmd[TH_DIR_LEN + 16];

	if (!f->dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd)) {
		/* nothing to do: a leftover in the build tree's scratch
		 * directory harms no later test */
	}
	f->dir[0] = '\0';
}

static struct fake fake;

static void fake_init(void)
{
	th_scratch(fake.dir, sizeof(fake.dir), "layers");
	snprintf(fake.table, sizeof(fake.table), "%s/table", fake.dir);
	th_at_teardown(fake_remove, &fake);
}

/* An object NAME.o compiled from the C source given. */
static void fake_object(const char *name, const char *src)
{
	char path[TH_PATH_LEN], cmd[3 * TH_PATH_LEN];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.c", fake.dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(src, f);
	assert_int_equal(fclose(f), 0);
	/* -pipe: no temporary files (under /tmp) between the passes */
	snprintf(cmd, sizeof(cmd), "cc -pipe -c -o '%s/%s.o' '%s'", fake.dir,
		 name, path);
	assert_int_equal(system(cmd), 0);
}

static void fake_table(const char *text)
{
	FILE *f = fopen(fake.table, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_the_engine_calls_only_downwards(void **state)
{
	char out[8192];

	(void)state;
	find_paths();
	assert_int_equal(run_check(NULL, objdir, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "all downwards, no circle"));
}

static void test_a_call_down_a_layer_passes(void **state)
{
	char out[4096];

	(void)state;
	find_paths();
	fake_init();
	fake_object("top", "void low(void);\nvoid top(void) { low(); }\n");
	fake_object("low", "void low(void) {}\n");
	fake_table("0 low\n4 top\n");
	assert_int_equal(run_check(fake.table, fake.dir, out, sizeof(out)), 0);
	fake_remove(&fake);
}

static void test_a_call_from_a_lower_layer_to_a_higher_one_fails(void **state)
{
	char out[4096];

	(void)state;
	find_paths();
	fake_init();
	fake_object("top", "void top(void) {}\n");
	fake_object("low", "void top(void);\nvoid low(void) { top(); }\n");
	fake_table("0 low\n4 top\n");
	assert_int_equal(run_check(fake.table, fake.dir, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "low (platform) calls up into top (API)"));
	fake_remove(&fake);
}

static void test_files_calling_each_other_in_a_circle_fail(void **state)
{
	char out[4096];

	(void)state;
	find_paths();
	fake_init();
	fake_object("one", "void two(void);\nvoid one(void) { two(); }\n");
	fake_object("two", "void three(void);\nvoid two(void) { three(); }\n");
	fake_object("three", "void one(void);\nvoid three(void) { one(); }\n");
	fake_table("2 one two three\n");
	assert_int_equal(run_check(fake.table, fake.dir, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "in a circle"));
	fake_remove(&fake);
}

static void test_an_object_in_no_layer_fails(void **state)
{
	char out[4096];

	(void)state;
	find_paths();
	fake_init();
	fake_object("known", "void known(void) {}\n");
	fake_object("stray", "void stray(void) {}\n");
	fake_table("0 known\n");
	assert_int_equal(run_check(fake.table, fake.dir, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "stray.o is in no layer"));
	fake_remove(&fake);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_engine_calls_only_downwards),
		cmocka_unit_test(test_a_call_down_a_layer_passes),
		cmocka_unit_test(
			test_a_call_from_a_lower_layer_to_a_higher_one_fails),
		cmocka_unit_test(
			test_files_calling_each_other_in_a_circle_fail),
		cmocka_unit_test(test_an_object_in_no_layer_fails),
	};

	return th_run_tests(tests);
}
