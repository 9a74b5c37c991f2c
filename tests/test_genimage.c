// SPDX-License-Identifier: MIT
/*
 * test_genimage.c - the generated images of a scenario (tools/genimage.c):
 * each distinct image is made once and VMs asking for the same one get the
 * same file, other seeds or os names get their own, the VMs' image paths
 * read as their images, and a run says what it made.
 *
 * Lock ordering: none.
 */
/* the tool's sources first: cmocka.h defines fail(), as scenario.c does */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../tools/genimage.c"
#include "../tools/progress.c"
#include "../tools/scenario.c"

#include <cmocka.h>

#include "helper.h"

static const char four_vms[] = "[vm a]\nmemsize = 4M\nimage = generated\n"
			       "image_os = debian\nimage_seed = 1\n"
			       "[vm b]\nmemsize = 4M\nimage = generated\n"
			       "image_os = debian\nimage_seed = 1\n"
			       "[vm c]\nmemsize = 4M\nimage = generated\n"
			       "image_os = debian\n"
			       "[vm d]\nmemsize = 4M\nworkload = random\n";

static void load(struct scenario *sc, const char *text)
{
	char err[512];

	if (scenario_load_string(text, "t.ini", sc, err, sizeof(err)))
		fail_msg("%s", err);
}

static ino_t inode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_ino;
}

static void test_one_file_per_distinct_image(void **state)
{
	struct gen_images gi;
	struct scenario sc;
	char err[256];

	(void)state;
	load(&sc, four_vms);
	assert_int_equal(gen_images_make(&sc, &gi, NULL, NULL, true, err,
					 sizeof(err)),
			 0);
	assert_int_equal(gi.n, 2);
	assert_non_null(sc.vms[0].image);
	/* clones: the same file, which the engine then shares */
	assert_string_equal(sc.vms[0].image, sc.vms[1].image);
	assert_int_equal(inode_of(sc.vms[0].image), inode_of(sc.vms[1].image));
	assert_true(inode_of(sc.vms[0].image) != inode_of(sc.vms[2].image));
	assert_null(sc.vms[3].image);
	gen_images_free(&gi);
	assert_int_equal(gi.n, 0);
	scenario_free(&sc);
}

/* The path opens as the image: its size, and its pages. */
static void test_vm_image_path_reads_as_the_image(void **state)
{
	uint8_t got[4096], want[4096], cls[1024];
	bool text[1024];
	struct gen_images gi;
	struct scenario sc;
	char err[256];
	int fd;

	(void)state;
	load(&sc, four_vms);
	assert_int_equal(gen_images_make(&sc, &gi, NULL, NULL, true, err,
					 sizeof(err)),
			 0);
	fd = open(sc.vms[2].image, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(lseek(fd, 0, SEEK_END), 4 << 20);
	mvg_image_layout(&sc.vms[2].image_spec, cls, text);
	for (unsigned i = 0; i < 1024; i++) {
		if (cls[i] == MVG_IMAGE_ZERO)
			continue;
		assert_int_equal(pread(fd, got, sizeof(got), i * 4096ll), 4096);
		mvg_image_page(&sc.vms[2].image_spec, i, cls[i], text[i], want);
		assert_memory_equal(got, want, sizeof(got));
	}
	close(fd);
	gen_images_free(&gi);
	scenario_free(&sc);
}

static void test_a_run_says_what_it_made(void **state)
{
	struct gen_images gi;
	struct scenario sc;
	char err[256], buf[512];
	FILE *f = th_tmpfile();
	size_t n;

	(void)state;
	assert_non_null(f);
	load(&sc, four_vms);
	assert_int_equal(
		gen_images_make(&sc, &gi, NULL, f, false, err, sizeof(err)), 0);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	/* two distinct images of 4 MB: 8 MB, made in a moment */
	assert_non_null(strstr(buf, "generated 2 guest images (8 MB) in "));
	fclose(f);
	gen_images_free(&gi);
	scenario_free(&sc);
}

static void test_no_generated_image_makes_nothing(void **state)
{
	struct gen_images gi;
	struct scenario sc;
	char err[256];
	FILE *f = th_tmpfile();

	(void)state;
	assert_non_null(f);
	load(&sc, "[vm a]\nmemsize = 4M\n");
	assert_int_equal(
		gen_images_make(&sc, &gi, NULL, f, false, err, sizeof(err)), 0);
	assert_int_equal(gi.n, 0);
	assert_int_equal(ftell(f), 0);
	fclose(f);
	scenario_free(&sc);
}

/* A SIGINT waiting (blocked, as during a run) stops the generation. */
static void test_pending_sigint_stops_the_generation(void **state)
{
	struct timespec zero = { 0, 0 };
	struct gen_images gi;
	struct scenario sc;
	sigset_t set, old;
	char err[256];

	(void)state;
	load(&sc, four_vms);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
	assert_int_equal(raise(SIGINT), 0);
	assert_int_equal(gen_images_make(&sc, &gi, NULL, NULL, true, err,
					 sizeof(err)),
			 -EINTR);
	assert_int_equal(sigtimedwait(&set, NULL, &zero), SIGINT);
	assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
	assert_non_null(strstr(
		err,
		"t.ini:1: interrupted while generating the guest image of VM a"));
	assert_null(sc.vms[0].image);
	gen_images_free(&gi);
	scenario_free(&sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_file_per_distinct_image),
		cmocka_unit_test(test_vm_image_path_reads_as_the_image),
		cmocka_unit_test(test_a_run_says_what_it_made),
		cmocka_unit_test(test_no_generated_image_makes_nothing),
		cmocka_unit_test(test_pending_sigint_stops_the_generation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
