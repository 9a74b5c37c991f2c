// SPDX-License-Identifier: MIT
/*
 * test_scenario.c - scenario files: the embedded default and the shipped
 * files parse (those in scenarios/ with nothing outside the repository,
 * those in scenarios/image/ with stand-in images the test makes), sizes
 * parse exactly, and every malformed scenario is refused with a message
 * that names its line and the problem.
 */

/*
 * The parser is part of the command, not of a library the Makefile links
 * into tests (tests get tests/helper_*.c, libmvguest and libmemvisor), so
 * it is compiled into this test directly.  That also lets the test see the
 * embedded default exactly as the command does.
 */
#include "../tools/scenario.c"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"
#include "scenario_expect.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* The scenarios/ directory, found from this file's path so that the test
 * does not depend on more than being run from the repository's root. */
static void scenario_path(char *buf, size_t len, const char *name)
{
	const char *slash = strrchr(__FILE__, '/');
	int dirlen = slash ? (int)(slash - __FILE__) : 1;

	snprintf(buf, len, "%.*s/../scenarios/%s", dirlen,
		 slash ? __FILE__ : ".", name);
}

static void assert_same_scenario(const struct scenario *a,
				 const struct scenario *b)
{
	assert_int_equal(a->host.memsize, b->host.memsize);
	assert_int_equal(a->host.duration_s, b->host.duration_s);
	assert_int_equal(a->host.line, b->host.line);
	assert_true((a->host.swapdir == NULL) == (b->host.swapdir == NULL));
	if (a->host.swapdir)
		assert_string_equal(a->host.swapdir, b->host.swapdir);
	assert_memory_equal(&a->settings, &b->settings, sizeof(a->settings));
	assert_int_equal(a->nadvanced, b->nadvanced);
	for (size_t i = 0; i < a->nadvanced; i++) {
		assert_string_equal(a->advanced[i].name, b->advanced[i].name);
		assert_string_equal(a->advanced[i].value, b->advanced[i].value);
	}
	assert_int_equal(a->nvms, b->nvms);
	for (size_t i = 0; i < a->nvms; i++) {
		const struct sc_vm *x = &a->vms[i], *y = &b->vms[i];

		assert_string_equal(x->name, y->name);
		assert_int_equal(x->memsize, y->memsize);
		assert_int_equal(x->workload, y->workload);
		assert_int_equal(x->threads, y->threads);
		assert_true((x->image == NULL) == (y->image == NULL));
		assert_int_equal(x->seed, y->seed);
		assert_int_equal(x->think_us, y->think_us);
		assert_true(x->zipf_s == y->zipf_s);
		assert_int_equal(x->line, y->line);
	}
}

static void test_embedded_default_matches_default_ini(void **state)
{
	struct scenario emb, file;
	char err[512], path[512];

	(void)state;
	scenario_path(path, sizeof(path), "default.ini");
	assert_int_equal(scenario_load_default(&emb, err, sizeof(err)), 0);
	if (scenario_load_file(path, &file, err, sizeof(err)))
		fail_msg("%s", err);
	assert_same_scenario(&emb, &file);
	assert_string_equal(emb.source, SCENARIO_DEFAULT_NAME);
	scenario_free(&emb);
	scenario_free(&file);
}

static void test_embedded_default_is_default_ini_word_for_word(void **state)
{
	char path[512], *text;
	size_t len = strlen(scenario_default_text);
	FILE *f;

	(void)state;
	scenario_path(path, sizeof(path), "default.ini");
	f = fopen(path, "r");
	assert_non_null(f);
	text = calloc(1, len + 2);
	assert_non_null(text);
	/* one byte more than the embedded text: a longer file shows */
	assert_int_equal(fread(text, 1, len + 1, f), len);
	assert_string_equal(text, scenario_default_text);
	free(text);
	fclose(f);
}

/* The default shows every mechanism: VMs of one operating system on
 * generated images (two clones and one booted on its own), a busy VM, a
 * burst VM with a balloon driver, an idle VM, overcommitted, a minute. */
static void test_embedded_default_has_every_kind_of_vm(void **state)
{
	unsigned debian = 0, clones = 0, balloon = 0, idle = 0, busy = 0;
	struct scenario sc;
	char err[512];

	(void)state;
	assert_int_equal(scenario_load_default(&sc, err, sizeof(err)), 0);
	assert_int_equal(sc.host.memsize, 384 * MiB);
	assert_true(scenario_vm_memsize_total(&sc) > sc.host.memsize);
	assert_int_equal(sc.host.duration_s, 60);
	for (size_t i = 0; i < sc.nvms; i++) {
		const struct sc_vm *vm = &sc.vms[i];

		if (vm->image_generated &&
		    !strcmp(vm->image_spec.os, "debian") &&
		    !strcmp(vm->salt, "debian"))
			debian++;
		if (vm->image_generated && vm->image_seed_set &&
		    vm->image_spec.seed == 1)
			clones++;
		balloon += vm->workload == MVG_BURST && vm->balloon;
		idle += vm->workload == MVG_IDLE &&
			vm->shares_level == MV_SHARES_LOW;
		busy += vm->workload == MVG_KVSTORE;
		assert_null(vm->image); /* no file needed */
	}
	assert_int_equal(debian, 4);
	assert_int_equal(clones, 2);
	assert_int_equal(balloon, 1);
	assert_int_equal(idle, 1);
	assert_int_equal(busy, 1);
	scenario_free(&sc);
}

static void test_small_ini_parses(void **state)
{
	struct scenario sc;
	char err[512], path[512];

	(void)state;
	scenario_path(path, sizeof(path), "small.ini");
	if (scenario_load_file(path, &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_true(sc.host.duration_s <= 15);
	assert_true(scenario_vm_memsize_total(&sc) > sc.host.memsize);
	assert_string_equal(sc.host.swapdir, "/var/tmp/memvisor");
	scenario_free(&sc);
}

/*
 * Calls each(path, name) for every NAME.ini in scenarios/sub (sub "": in
 * scenarios/ itself); returns how many.
 */
static unsigned each_scenario(const char *sub,
			      void (*each)(const char *path, const char *name))
{
	char path[512], *slash;
	struct dirent *d;
	unsigned n = 0;
	DIR *dir;

	scenario_path(path, sizeof(path), sub);
	slash = path + strlen(path);
	if (slash[-1] == '/')
		*--slash = '\0';
	dir = opendir(path);
	assert_non_null(dir);
	while ((d = readdir(dir))) {
		size_t len = strlen(d->d_name);

		if (len < 4 || strcmp(d->d_name + len - 4, ".ini"))
			continue;
		snprintf(slash, sizeof(path) - (size_t)(slash - path), "/%s",
			 d->d_name);
		each(path, d->d_name);
		*slash = '\0';
		n++;
	}
	closedir(dir);
	return n;
}

/* Parses; needs nothing outside the repository (no RAM image). */
static void parses_alone(const char *path, const char *name)
{
	struct scenario sc;
	char err[512];

	if (scenario_load_file(path, &sc, err, sizeof(err)))
		fail_msg("%s", err);
	for (size_t i = 0; i < sc.nvms; i++)
		if (sc.vms[i].image)
			fail_msg(
				"%s: [vm %s] needs the image %s: a scenario that needs one belongs in scenarios/image/",
				name, sc.vms[i].name, sc.vms[i].image);
	scenario_free(&sc);
}

static void test_every_shipped_scenario_parses(void **state)
{
	(void)state;
	assert_true(each_scenario("", parses_alone) >= 2);
}

static char standin_dir[TH_DIR_LEN];

/*
 * The value of an "image = VALUE" line (VALUE up to a ';' comment, trimmed)
 * as [*start, *end), or false for any other line.
 */
static bool image_value(const char *line, const char **start, const char **end)
{
	const char *v;

	line += strspn(line, " \t");
	if (strncmp(line, "image", 5))
		return false;
	v = line + 5 + strspn(line + 5, " \t");
	if (*v != '=')
		return false;
	v += 1 + strspn(v + 1, " \t");
	*start = v;
	*end = v + strcspn(v, ";\n");
	while (*end > v && ((*end)[-1] == ' ' || (*end)[-1] == '\t'))
		(*end)--;
	return true;
}

/*
 * Parses an image scenario with every image replaced by a stand-in of the
 * same file name in standin_dir (made here, one page): the RAM images
 * themselves are never in the repository, and a test must not need them.
 */
static void parses_with_standins(const char *path, const char *name)
{
	char *text, *out, *o, err[512], standin[TH_PATH_LEN];
	const char *line, *v, *end, *base;
	size_t len, outcap, linelen;
	unsigned images = 0;
	struct scenario sc;
	FILE *f;
	int fd;

	f = fopen(path, "r");
	assert_non_null(f);
	text = calloc(1, 1 << 20);
	assert_non_null(text);
	len = fread(text, 1, (1 << 20) - 1, f);
	fclose(f);
	outcap = len * 2 + 4096;
	out = o = calloc(1, outcap);
	assert_non_null(out);
	for (line = text; *line; line += linelen + (line[linelen] == '\n')) {
		linelen = strcspn(line, "\n");

		if (!image_value(line, &v, &end) || v == end) {
			o += sprintf(o, "%.*s\n", (int)linelen, line);
			continue;
		}
		for (base = end; base > v && base[-1] != '/'; base--)
			;
		snprintf(standin, sizeof(standin), "%s/%.*s", standin_dir,
			 (int)(end - base), base);
		fd = open(standin, O_CREAT | O_EXCL | O_WRONLY, 0600);
		if (fd >= 0) {
			th_remove_at_teardown(standin);
			assert_int_equal(ftruncate(fd, MV_PAGE_SIZE), 0);
			close(fd);
		}
		o += sprintf(o, "%.*s%s%.*s\n", (int)(v - line), line, standin,
			     (int)(line + linelen - end), end);
		images++;
	}
	if (!images)
		fail_msg("%s names no image: it belongs in scenarios/", name);
	if (scenario_load_string(out, path, &sc, err, sizeof(err)))
		fail_msg("%s", err);
	for (size_t i = 0; i < sc.nvms; i++)
		if (sc.vms[i].image &&
		    strncmp(sc.vms[i].image, standin_dir, strlen(standin_dir)))
			fail_msg("%s: [vm %s] image %s is not a stand-in", name,
				 sc.vms[i].name, sc.vms[i].image);
	scenario_free(&sc);
	free(out);
	free(text);
}

static void test_every_image_scenario_parses_with_stand_in_images(void **state)
{
	(void)state;
	th_scratch(standin_dir, sizeof(standin_dir), "standin");
	th_remove_at_teardown(standin_dir);
	assert_true(each_scenario("image", parses_with_standins) >= 3);
}

static void test_sizes_parse_exactly(void **state)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} cases[] = {
		{ "512M", 512 * MiB },	 { "1G", GiB },
		{ "1.5G", 3 * GiB / 2 }, { "4096K", 4096ull << 10 },
		{ "2T", 2ull << 40 },	 { "1GiB", GiB },
		{ "64mb", 64 * MiB },	 { "0.5M", MiB / 2 },
		{ "3 G", 3 * GiB },	 { "16777215T", 16777215ull << 40 },
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 0;
		assert_int_equal(scenario_parse_size(cases[i].text, &v), 0);
		assert_int_equal(v, cases[i].bytes);
	}
}

static void test_junk_sizes_are_rejected(void **state)
{
	static const char *const junk[] = { "",	     "M",    "12",     "12Q",
					    "-1G",   "+1G",  "1.2.3G", "1G x",
					    "0x10M", "1e3M", "G1",     " ",
					    "1MiBB", "1Mi",  ".M",     "1,5G" };
	uint64_t v = 7;

	(void)state;
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		if (scenario_parse_size(junk[i], &v) != -EINVAL)
			fail_msg("'%s' was not rejected", junk[i]);
		assert_int_equal(v, 7);
	}
}

static void test_zero_size_is_rejected(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(scenario_parse_size("0M", &v), -EINVAL);
	assert_int_equal(scenario_parse_size("0.0G", &v), -EINVAL);
	assert_int_equal(scenario_parse_size("0K", &v), -EINVAL);
	assert_int_equal(v, 7);
}

static void test_overflowing_size_is_rejected(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(scenario_parse_size("16777216T", &v), -ERANGE);
	assert_int_equal(scenario_parse_size("18446744073709551616K", &v),
			 -ERANGE);
	assert_int_equal(scenario_parse_size("99999999999999999999999999999G",
					     &v),
			 -ERANGE);
	assert_int_equal(v, 7);
}

static void test_fraction_of_a_byte_is_rejected(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(scenario_parse_size("0.1K", &v), -EINVAL);
	assert_int_equal(v, 7);
}

static void test_unknown_key_names_line_and_key(void **state)
{
	(void)state;
	expect_error(
		"[host]\nmemsize = 1G\ncolour = red\n[vm a]\nmemsize = 1M\n", 3,
		"unknown key 'colour' in [host] (expected memsize, swapdir, duration or pin_vcpus)");
	expect_error("[vm a]\nmemsize = 1M\nmemsz = 2M\n", 3,
		     "unknown key 'memsz' in [vm a]");
}

static void test_unknown_section_names_line_and_section(void **state)
{
	(void)state;
	expect_error(
		"[vm a]\nmemsize = 1M\n\n[hots]\nmemsize = 1G\n", 4,
		"unknown section [hots] (expected [host], [vm NAME] or [advanced])");
	expect_error("[host extra]\n", 1, "unknown section [host extra]");
}

static void test_bad_size_names_line_and_value(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 12Q\n", 2,
		     "bad size '12Q' (expected a number with a unit");
	expect_error("[host]\nmemsize = 1\n[vm a]\nmemsize = 1M\n", 2,
		     "bad size '1'");
}

static void test_size_not_in_whole_pages_is_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 1.1M\n", 2,
		     "not a whole number of 4 KiB pages");
	expect_error("[vm a]\nmemsize = 6K\n", 2,
		     "not a whole number of 4 KiB pages");
}

static void test_tiny_host_is_refused(void **state)
{
	(void)state;
	expect_error("[host]\nmemsize = 512K\n[vm a]\nmemsize = 1M\n", 2,
		     "host memsize 512K is too small (expected at least 1M)");
}

static void test_overflowing_memsize_is_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 16777216T\n", 2, "too large");
}

static void test_vm_without_memory_names_its_section(void **state)
{
	(void)state;
	expect_error("[host]\nmemsize = 1G\n\n[vm a]\nworkload = idle\n", 4,
		     "[vm a] has no memsize");
	/* a section with no keys at all is still a VM */
	expect_error("[vm a]\nmemsize = 1M\n[vm b]\n", 3,
		     "[vm b] has no memsize");
}

static void test_vm_with_zero_memory_is_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 0M\n", 2, "memsize is zero");
}

static void test_no_vms_is_refused(void **state)
{
	(void)state;
	expect_error("[host]\nmemsize = 1G\n", 2, "no VMs");
}

static void test_duplicate_vm_names_both_lines(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 1M\n[vm a]\nmemsize = 2M\n", 3,
		     "VM 'a' is defined twice (first at line 1");
}

static void test_unknown_advanced_setting_says_the_name_is_wrong(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 1M\n[advanced]\nMem.Bogus = 1\n", 4,
		     "unknown setting 'Mem.Bogus' in [advanced]");
}

static void
test_bad_advanced_value_says_the_value_is_wrong_and_its_range(void **state)
{
	(void)state;
	expect_error(
		"[vm a]\nmemsize = 1M\n[advanced]\nMem.ShareForceSalting = 7\n",
		4,
		"bad value '7' for Mem.ShareForceSalting (expected a whole number from 0 to 2)");
	expect_error(
		"[vm a]\nmemsize = 1M\n[advanced]\nMem.ShareScanTime = 0\n", 4,
		"bad value '0' for Mem.ShareScanTime (expected a whole number from 1 to 600)");
	expect_error(
		"[vm a]\nmemsize = 1M\n[advanced]\nMem.ShareRateMax = lots\n",
		4,
		"bad value 'lots' for Mem.ShareRateMax (expected a whole number from 1 to 16777216)");
}

static void test_advanced_settings_reach_the_settings(void **state)
{
	struct scenario sc;
	char err[512];

	(void)state;
	assert_int_equal(
		scenario_load_string(
			"[vm a]\nmemsize = 1M\n[advanced]\nMem.FaultAroundPages = 32\n",
			"t.ini", &sc, err, sizeof(err)),
		0);
	assert_int_equal(sc.settings.fault_around_pages, 32);
	assert_int_equal(sc.nadvanced, 1);
	assert_int_equal(sc.advanced[0].line, 4);
	scenario_free(&sc);
}

static void test_bad_workload_names_line_and_choices(void **state)
{
	(void)state;
	expect_error(
		"[vm a]\nmemsize = 1M\nworkload = database\n", 3,
		"bad workload 'database' (expected idle, kvstore, random, image or burst)");
}

static void test_image_workload_without_image_is_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 1M\nworkload = image\n", 1,
		     "[vm a] has workload = image but no image");
}

static void test_burst_keys_need_the_burst_workload(void **state)
{
	(void)state;
	expect_error(
		"[vm a]\nmemsize = 1M\nworkload = kvstore\nburst_pct = 50\n", 1,
		"[vm a] sets burst_* keys but has workload = kvstore");
}

static void test_write_pct_needs_the_image_workload(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 1M\nworkload = random\nwrite_pct = 0\n",
		     1, "[vm a] sets write_pct but has workload = random");
	expect_error("[vm a]\nmemsize = 1M\nwrite_pct = 101\n", 3, "write_pct");
}

static void test_write_pct_reaches_the_image_workload(void **state)
{
	char text[TH_PATH_LEN + 128], err[512], dir[TH_DIR_LEN],
		img[TH_PATH_LEN];
	struct scenario sc;
	int fd;

	(void)state;
	th_scratch(dir, sizeof(dir), "wpct");
	th_remove_at_teardown(dir);
	snprintf(img, sizeof(img), "%s/img", dir);
	fd = open(img, O_CREAT | O_EXCL | O_WRONLY, 0600);
	assert_true(fd >= 0);
	th_remove_at_teardown(img);
	assert_int_equal(ftruncate(fd, 4096), 0);
	close(fd);
	snprintf(
		text, sizeof(text),
		"[vm a]\nmemsize = 1M\nworkload = image\nimage = %s\nwrite_pct = 0\n",
		img);
	if (scenario_load_string(text, "t.ini", &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(sc.vms[0].write_pct1, 1); /* 0%, set */
	scenario_free(&sc);
}

static void test_balloon_needs_the_burst_workload(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 1M\nworkload = random\nballoon = on\n",
		     1, "[vm a] has balloon = on but workload = random");
}

static void test_large_pages_key_turns_them_off_for_one_vm(void **state)
{
	struct scenario sc;
	char err[512];

	(void)state;
	if (scenario_load_string("[vm a]\nmemsize = 4M\nlarge_pages = off\n"
				 "[vm b]\nmemsize = 4M\nlarge_pages = on\n",
				 "t.ini", &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_true(sc.vms[0].large_pages_off);
	assert_false(sc.vms[1].large_pages_off);
	scenario_free(&sc);
	expect_error("[vm a]\nmemsize = 1M\nlarge_pages = maybe\n", 3,
		     "bad large_pages 'maybe' (expected on or off)");
}

static void test_qemu_vm_takes_its_keys_relative_to_the_file(void **state)
{
	char dir[TH_DIR_LEN], ini[TH_PATH_LEN], k[TH_PATH_LEN];
	struct scenario sc;
	char err[512];

	(void)state;
	th_scratch(dir, sizeof(dir), "scenario");
	th_remove_at_teardown(dir);
	snprintf(ini, sizeof(ini), "%s/q.ini", dir);
	snprintf(k, sizeof(k), "%s/vmlinuz", dir);
	th_remove_at_teardown(ini);
	th_remove_at_teardown(k);
	th_put(k, "");
	th_put(ini, "[vm q]\nvmm = qemu\nmemsize = 256M\nkernel = vmlinuz\n"
		    "append = console=ttyS0 mvguest.rounds=1\n"
		    "qemu_args = -S 'a b'\n[vm t]\nmemsize = 4M\n");
	if (scenario_load_file(ini, &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_true(sc.vms[0].vmm_qemu);
	assert_string_equal(sc.vms[0].kernel, k);
	assert_null(sc.vms[0].initrd);
	assert_string_equal(sc.vms[0].append, "console=ttyS0 mvguest.rounds=1");
	assert_string_equal(sc.vms[0].qemu_args, "-S 'a b'");
	assert_false(sc.vms[1].vmm_qemu);
	scenario_free(&sc);
}

static void test_qemu_vm_refuses_what_it_cannot_use(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 64M\nvmm = xen\n", 3,
		     "bad vmm 'xen' (expected threads, process or qemu)");
	expect_error(
		"[vm a]\nvmm = qemu\nmemsize = 64M\nworkload = random\n", 4,
		"[vm a] has vmm = qemu but sets workload, which only guest threads take");
	expect_error("[vm a]\nmemsize = 64M\nappend = quiet\n", 3,
		     "[vm a] sets append but is not a QEMU guest");
	expect_error("[vm a]\nvmm = qemu\nmemsize = 1536K\n", 1,
		     "memsize that is not whole MiB");
	expect_error(
		"[vm a]\nvmm = qemu\nmemsize = 64M\nkernel = /nonexistent/vmlinuz\n",
		4, "kernel /nonexistent/vmlinuz: No such file");
	expect_error("[vm a]\nvmm = qemu\nmemsize = 64M\nqemu_args = -S 'x\n",
		     4, "qemu_args has an unterminated ' quote");
}

static void test_process_vm_takes_the_thread_keys(void **state)
{
	struct scenario sc;
	char err[512];

	(void)state;
	if (scenario_load_string(
		    "[vm p]\nvmm = process\nmemsize = 8M\nworkload = kvstore\n"
		    "threads = 2\nseed = 7\nkv_values = text\nthink_us = 5\n"
		    "shares = high\nlimit = 6M\n[vm t]\nmemsize = 4M\n",
		    "t.ini", &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_true(sc.vms[0].vmm_process);
	assert_false(sc.vms[0].vmm_qemu);
	assert_int_equal(sc.vms[0].workload, MVG_KVSTORE);
	assert_int_equal(sc.vms[0].threads, 2);
	assert_true(sc.vms[0].kv_text);
	assert_int_equal(sc.vms[0].limit, 6 << 20);
	assert_false(sc.vms[1].vmm_process);
	scenario_free(&sc);
}

static void test_process_vm_refuses_its_image_and_balloon(void **state)
{
	(void)state;
	expect_error(
		"[vm a]\nvmm = process\nmemsize = 8M\nworkload = burst\nballoon = on\n",
		5,
		"[vm a] has vmm = process but sets balloon, which a VM in a process of its own does not take");
	expect_error(
		"[vm a]\nmemsize = 8M\nballoon_target = 2M\nvmm = process\n", 3,
		"has vmm = process but sets balloon_target");
	expect_error(
		"[vm a]\nmemsize = 8M\nworkload = image\nimage = generated\nvmm = process\n",
		4, "has vmm = process but sets image");
	expect_error("[vm a]\nvmm = process\nmemsize = 8M\nappend = quiet\n", 4,
		     "[vm a] sets append but is not a QEMU guest");
}

static void test_generated_image_takes_its_keys(void **state)
{
	struct scenario sc;
	char err[512];

	(void)state;
	if (scenario_load_string(
		    "[vm a]\nmemsize = 8M\nworkload = image\nimage = generated\n"
		    "image_os = fedora-40\nimage_seed = 42\n"
		    "image_mix = private 10%, zero 70, common 20, text 30\n",
		    "t.ini", &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_true(sc.vms[0].image_generated);
	assert_null(sc.vms[0].image); /* made when the run starts */
	assert_string_equal(sc.vms[0].image_spec.os, "fedora-40");
	assert_int_equal(sc.vms[0].image_spec.seed, 42);
	assert_int_equal(sc.vms[0].image_spec.size, 8 * MiB);
	assert_int_equal(sc.vms[0].image_spec.mix.zero_pct, 70);
	assert_int_equal(sc.vms[0].image_spec.mix.common_pct, 20);
	assert_int_equal(sc.vms[0].image_spec.mix.private_pct, 10);
	assert_int_equal(sc.vms[0].image_spec.mix.text_pct, 30);
	scenario_free(&sc);
}

static void test_generated_image_defaults_follow_the_measured_mix(void **state)
{
	const struct mvg_image_mix want = MVG_IMAGE_MIX_DEFAULT;
	struct scenario sc;
	char err[512];

	(void)state;
	if (scenario_load_string("[vm a]\nmemsize = 1M\nworkload = image\n"
				 "image = generated\nseed = 9\n"
				 "[vm b]\nmemsize = 1M\nimage = generated\n",
				 "t.ini", &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(sc.vms[0].image_spec.os, "linux");
	/* the VM's seed: VMs with different names differ in private pages */
	assert_int_equal(sc.vms[0].image_spec.seed, 9);
	assert_true(sc.vms[1].image_spec.seed != 9);
	assert_memory_equal(&sc.vms[0].image_spec.mix, &want, sizeof(want));
	assert_int_equal(want.zero_pct + want.common_pct + want.private_pct,
			 100);
	scenario_free(&sc);
}

static void test_image_mix_not_adding_up_to_100_is_refused(void **state)
{
	(void)state;
	expect_error(
		"[vm a]\nmemsize = 1M\nimage = generated\n"
		"image_mix = zero 60, common 23, private 11\n",
		4,
		"image_mix zero 60 + common 23 + private 11 is 94% (expected the three to add up to 100)");
}

static void test_bad_image_mix_parts_are_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 1M\nimage = generated\n"
		     "image_mix = zero 66, shared 23, private 11\n",
		     4, "bad image_mix part 'shared 23' (expected zero N,");
	expect_error("[vm a]\nmemsize = 1M\nimage = generated\n"
		     "image_mix = zero 66, common 234, private 11\n",
		     4, "bad image_mix part 'common 234'");
	expect_error("[vm a]\nmemsize = 1M\nimage = generated\n"
		     "image_mix = zero 66, zero 23, private 11\n",
		     4, "image_mix gives zero twice");
	expect_error("[vm a]\nmemsize = 1M\nimage = generated\n"
		     "image_mix = zero 66, common 34\n",
		     4, "image_mix has no private");
}

static void test_bad_image_os_is_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 1M\nimage = generated\n"
		     "image_os = deb ian\n",
		     4, "bad image_os 'deb ian'");
	expect_error("[vm a]\nmemsize = 1M\nimage = generated\n"
		     "image_seed = -1\n",
		     4, "bad image_seed '-1'");
}

static void test_image_keys_need_a_generated_image(void **state)
{
	(void)state;
	expect_error(
		"[vm a]\nmemsize = 1M\nworkload = idle\n"
		"image_os = debian\n",
		4,
		"[vm a] sets image_os, image_size, image_seed or image_mix but has no image = generated");
}

static void test_image_size_is_at_most_memsize(void **state)
{
	struct scenario sc;
	char err[512];

	(void)state;
	expect_error(
		"[vm a]\nmemsize = 1M\nimage = generated\n"
		"image_size = 2M\n",
		1,
		"[vm a] has an image_size above its memsize (expected image_size <= memsize)");
	expect_error(
		"[vm a]\nmemsize = 1M\nimage = generated\n"
		"image_size = 1.001K\n",
		4, "image_size '1.001K' is not a whole number of 4 KiB pages");
	if (scenario_load_string("[vm a]\nmemsize = 8M\nimage = generated\n"
				 "image_size = 2M\n",
				 "t.ini", &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(sc.vms[0].image_spec.size, 2 * MiB);
	scenario_free(&sc);
}

static void test_image_under_kvstore_or_burst_is_refused(void **state)
{
	(void)state;
	expect_error(
		"[vm a]\nmemsize = 1M\nworkload = kvstore\n"
		"image = generated\n",
		1,
		"[vm a] has an image but workload = kvstore, which expects its table in zeroed memory");
	expect_error("[vm a]\nmemsize = 1M\nworkload = burst\n"
		     "image = generated\n",
		     1, "[vm a] has an image but workload = burst");
}

static void test_missing_image_file_is_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 1M\nimage = /nonexistent/guest.raw\n",
		     3, "image /nonexistent/guest.raw: No such file");
}

static void test_threads_out_of_range_are_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 1M\nthreads = 65\n", 3,
		     "bad threads '65' (expected a whole number from 1 to 64)");
	expect_error("[vm a]\nmemsize = 1M\nthreads = 0\n", 3, "bad threads");
	expect_error("[vm a]\nmemsize = 1M\nthreads = two\n", 3, "bad threads");
}

static void test_bad_duration_is_refused(void **state)
{
	(void)state;
	expect_error("[host]\nduration = 0\n[vm a]\nmemsize = 1M\n", 2,
		     "bad duration '0'");
}

static void test_key_set_twice_is_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 1M\nmemsize = 2M\n", 3,
		     "memsize is set twice in [vm a]");
}

static void test_key_outside_a_section_is_refused(void **state)
{
	(void)state;
	expect_error("memsize = 1G\n[vm a]\nmemsize = 1M\n", 1,
		     "'memsize' is outside any section");
}

static void test_bad_vm_name_is_refused(void **state)
{
	(void)state;
	expect_error("[vm]\nmemsize = 1M\n", 1, "[vm] has no name");
	expect_error("[vm a/b]\nmemsize = 1M\n", 1, "bad VM name 'a/b'");
	expect_error("[vm this-name-is-far-too-long-for-a-vm]\nmemsize = 1M\n",
		     1, "bad VM name");
}

static void test_syntax_error_names_its_line(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 1M\nthis line has no equals sign\n", 3,
		     "cannot parse this line");
	expect_error("[vm a\nmemsize = 1M\n", 1, "cannot parse this line");
}

static void test_first_of_several_errors_is_reported(void **state)
{
	(void)state;
	expect_error("[vm a]\nnonsense\nmemsize = 1M\ncolour = red\n", 2,
		     "cannot parse this line");
	expect_error("[vm a]\ncolour = red\nnonsense\n", 2,
		     "unknown key 'colour'");
}

static void test_indented_keys_are_keys(void **state)
{
	struct scenario sc;
	char err[512];

	(void)state;
	assert_int_equal(
		scenario_load_string(
			"[vm a]\n  memsize = 1M\n\tworkload = random\n",
			"t.ini", &sc, err, sizeof(err)),
		0);
	assert_int_equal(sc.vms[0].memsize, MiB);
	assert_int_equal(sc.vms[0].workload, MVG_RANDOM);
	scenario_free(&sc);
}

static void test_vm_defaults(void **state)
{
	struct scenario sc;
	char err[512];

	(void)state;
	assert_int_equal(scenario_load_string(
				 "[vm a]\nmemsize = 1M\n[vm b]\nmemsize = 1M\n",
				 "t.ini", &sc, err, sizeof(err)),
			 0);
	assert_int_equal(sc.vms[0].workload, MVG_IDLE);
	assert_int_equal(sc.vms[0].threads, 1);
	assert_int_equal(sc.vms[0].think_us, 0);
	assert_null(sc.vms[0].image);
	assert_true(sc.vms[0].seed != sc.vms[1].seed);
	assert_int_equal(sc.vms[1].line, 3);
	assert_int_equal(sc.host.duration_s, DEFAULT_DURATION_S);
	scenario_free(&sc);
}

static void test_missing_file_is_reported(void **state)
{
	struct scenario sc;
	char err[512];

	(void)state;
	assert_int_equal(scenario_load_file("/nonexistent/x.ini", &sc, err,
					    sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/x.ini: cannot open"));
}

/* Writes len bytes of text to a new file, path, in a new scratch
 * directory, dir (TH_DIR_LEN bytes); th_teardown removes both. */
static void write_temp(char *dir, char *path, size_t pathlen, const char *text,
		       size_t len)
{
	FILE *f;

	th_scratch(dir, TH_DIR_LEN, "scenario");
	th_remove_at_teardown(dir);
	snprintf(path, pathlen, "%s/s.ini", dir);
	th_remove_at_teardown(path);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void test_nul_byte_is_refused_naming_its_line(void **state)
{
	static const char text[] = "[vm a]\nmemsize = 1M\nthreads = 1\0junk\n";
	char dir[TH_DIR_LEN], path[TH_PATH_LEN], err[512];
	struct scenario sc;

	(void)state;
	write_temp(dir, path, sizeof(path), text, sizeof(text) - 1);
	assert_int_equal(scenario_load_file(path, &sc, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, ":3: line has a NUL byte"));
	assert_null(sc.vms);
}

static void test_long_run_of_nul_bytes_is_refused_at_once(void **state)
{
	char dir[TH_DIR_LEN], path[TH_PATH_LEN], err[512];
	static char zeros[1 << 16];
	struct scenario sc;

	(void)state;
	write_temp(dir, path, sizeof(path), zeros, sizeof(zeros));
	assert_int_equal(scenario_load_file(path, &sc, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, ":1: line has a NUL byte"));
}

static void test_device_is_refused_before_reading(void **state)
{
	struct scenario sc;
	char err[512];

	(void)state;
	/* Read as text, /dev/zero never ends: the alarm fails a hang. */
	alarm(20);
	assert_int_equal(scenario_load_file("/dev/zero", &sc, err, sizeof(err)),
			 -EINVAL);
	alarm(0);
	assert_non_null(strstr(err, "/dev/zero: is a character device"));
	assert_null(sc.source);
}

static void test_pipe_is_refused_without_waiting_for_a_writer(void **state)
{
	char dir[TH_DIR_LEN], path[TH_PATH_LEN], err[512];
	struct scenario sc;

	(void)state;
	th_scratch(dir, sizeof(dir), "scenario");
	th_remove_at_teardown(dir);
	snprintf(path, sizeof(path), "%s/fifo.ini", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	th_remove_at_teardown(path);
	alarm(20);
	assert_int_equal(scenario_load_file(path, &sc, err, sizeof(err)),
			 -EINVAL);
	alarm(0);
	assert_non_null(strstr(err, "fifo.ini: is a pipe"));
}

static void test_directory_is_refused(void **state)
{
	char dir[TH_DIR_LEN], want[TH_DIR_LEN + 32], err[512];
	struct scenario sc;

	(void)state;
	th_scratch(dir, sizeof(dir), "scenario");
	th_remove_at_teardown(dir);
	assert_int_equal(scenario_load_file(dir, &sc, err, sizeof(err)),
			 -EISDIR);
	snprintf(want, sizeof(want), "%s: is a directory", dir);
	assert_non_null(strstr(err, want));
}

static void test_paths_are_relative_to_the_scenario_file(void **state)
{
	char dir[TH_DIR_LEN], ini[TH_PATH_LEN], img[TH_PATH_LEN],
		want[TH_PATH_LEN];
	struct scenario sc;
	char err[512];
	FILE *f;

	(void)state;
	th_scratch(dir, sizeof(dir), "scenario");
	th_remove_at_teardown(dir);
	snprintf(ini, sizeof(ini), "%s/s.ini", dir);
	snprintf(img, sizeof(img), "%s/guest.raw", dir);
	th_remove_at_teardown(ini);
	th_remove_at_teardown(img);
	f = fopen(img, "w");
	assert_non_null(f);
	fclose(f);
	f = fopen(ini, "w");
	assert_non_null(f);
	fputs("[host]\nswapdir = swap\n[vm a]\nmemsize = 1M\nworkload = image\nimage = guest.raw\n",
	      f);
	fclose(f);
	if (scenario_load_file(ini, &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(sc.vms[0].image, img);
	snprintf(want, sizeof(want), "%s/swap", dir);
	assert_string_equal(sc.host.swapdir, want);
	scenario_free(&sc);
}

/* ---- cpus and pin_vcpus ---- */

/* The CPUs this test may run on, read here rather than through the
 * parser's own helper, so that a wrong helper shows. */
static cpu_set_t usable_cpus(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	assert_true(CPU_COUNT(&set) > 0);
	return set;
}

/* The i-th usable CPU, round-robin. */
static int nth_usable_cpu(unsigned i)
{
	cpu_set_t set = usable_cpus();

	i %= (unsigned)CPU_COUNT(&set);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set) && !i--)
			return c;
	fail_msg("no usable CPU");
	return -1;
}

/* Loads text, failing the test with the parser's message if refused. */
static void load_ok(const char *text, struct scenario *sc)
{
	char err[512];

	if (scenario_load_string(text, "t.ini", sc, err, sizeof(err)))
		fail_msg("%s", err);
}

static void test_cpus_pins_a_vm_to_the_cpu_listed(void **state)
{
	struct scenario sc;
	char text[128];
	int cpu = nth_usable_cpu(1);

	(void)state;
	snprintf(text, sizeof(text),
		 "[vm a]\nmemsize = 4M\ncpus = %d\n[vm b]\nmemsize = 4M\n",
		 cpu);
	load_ok(text, &sc);
	assert_int_equal(sc.vms[0].ncpus, 1);
	assert_true(CPU_ISSET(cpu, &sc.vms[0].cpus));
	assert_int_equal(CPU_COUNT(&sc.vms[0].cpus), 1);
	/* a VM without cpus is not pinned */
	assert_int_equal(sc.vms[1].ncpus, 0);
	scenario_free(&sc);
}

static void test_cpus_takes_ranges_lists_and_blanks(void **state)
{
	cpu_set_t usable = usable_cpus(), want;
	struct scenario sc;
	char list[256], text[512];
	int first = nth_usable_cpu(0), last = -1;

	(void)state;
	/* the usable set as a list of ranges, the kernel's way */
	scenario_cpus_format(&usable, list, sizeof(list));
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &usable))
			last = c;
	snprintf(text, sizeof(text),
		 "[vm a]\nmemsize = 4M\ncpus = %s\n"
		 "[vm b]\nmemsize = 4M\ncpus = %d-%d\n"
		 "[vm c]\nmemsize = 4M\ncpus = %d , %d,%d\n",
		 list, first, first, first, last, first);
	load_ok(text, &sc);
	assert_true(CPU_EQUAL(&sc.vms[0].cpus, &usable));
	assert_int_equal(sc.vms[0].ncpus, CPU_COUNT(&usable));
	CPU_ZERO(&want);
	CPU_SET(first, &want);
	assert_true(CPU_EQUAL(&sc.vms[1].cpus, &want));
	CPU_SET(last, &want);
	assert_true(CPU_EQUAL(&sc.vms[2].cpus, &want));
	assert_int_equal(sc.vms[2].ncpus, CPU_COUNT(&want));
	scenario_free(&sc);
}

static void test_cpus_format_gives_the_kernels_list_syntax(void **state)
{
	cpu_set_t set;
	char buf[64];

	(void)state;
	CPU_ZERO(&set);
	scenario_cpus_format(&set, buf, sizeof(buf));
	assert_string_equal(buf, "");
	CPU_SET(5, &set);
	scenario_cpus_format(&set, buf, sizeof(buf));
	assert_string_equal(buf, "5");
	for (int c = 0; c < 4; c++)
		CPU_SET(c, &set);
	CPU_SET(7, &set);
	CPU_SET(CPU_SETSIZE - 1, &set);
	scenario_cpus_format(&set, buf, sizeof(buf));
	assert_string_equal(buf, "0-3,5,7,1023");
}

static void test_bad_cpus_syntax_names_line_and_value(void **state)
{
	static const char *const bad[] = { "a",	 "1-",	"-1",  "0,,0", "0,",
					   ",0", "0x1", "0 0", "1.5",  "0-a" };
	char text[128], what[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
			 "[vm a]\nmemsize = 4M\ncpus = %s\n", bad[i]);
		snprintf(
			what, sizeof(what),
			"bad cpus '%s' (expected a CPU list such as 0, 1,3 or 0-3,6)",
			bad[i]);
		expect_error(text, 3, what);
	}
}

static void test_empty_cpus_is_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 4M\ncpus =\n", 3,
		     "cpus is empty (expected a CPU list");
}

static void test_cpus_range_running_backwards_is_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 4M\ncpus = 1-0\n", 3,
		     "bad cpus '1-0': the range 1-0 runs backwards");
}

static void test_cpus_this_process_cannot_run_on_are_refused(void **state)
{
	cpu_set_t usable = usable_cpus();
	char text[128], what[400], list[256];
	int missing = -1;

	(void)state;
	for (int c = 0; c < CPU_SETSIZE && missing < 0; c++)
		if (!CPU_ISSET(c, &usable))
			missing = c;
	assert_true(missing >= 0);
	scenario_cpus_format(&usable, list, sizeof(list));
	snprintf(text, sizeof(text), "[vm a]\nmemsize = 4M\ncpus = %d-%d\n",
		 nth_usable_cpu(0), missing);
	snprintf(
		what, sizeof(what),
		"names CPU %d, which this process cannot run on (expected CPUs among %s)",
		missing, list);
	expect_error(text, 3, what);
	/* beyond any cpu_set_t, and beyond 32 bits */
	expect_error(
		"[vm a]\nmemsize = 4M\ncpus = 5000\n", 3,
		"cpus '5000' names CPU 5000, which this process cannot run on");
	expect_error("[vm a]\nmemsize = 4M\ncpus = 99999999999999999999\n", 3,
		     "which this process cannot run on");
}

static void test_qemu_vm_takes_cpus(void **state)
{
	struct scenario sc;
	char text[128];
	int cpu = nth_usable_cpu(0);

	(void)state;
	snprintf(text, sizeof(text),
		 "[vm q]\nvmm = qemu\nmemsize = 64M\ncpus = %d\n", cpu);
	load_ok(text, &sc);
	assert_true(sc.vms[0].vmm_qemu);
	assert_int_equal(sc.vms[0].ncpus, 1);
	assert_true(CPU_ISSET(cpu, &sc.vms[0].cpus));
	scenario_free(&sc);
}

static void
test_pin_vcpus_spread_gives_unpinned_vms_a_cpu_round_robin(void **state)
{
	struct scenario sc;
	char text[256];
	int own = nth_usable_cpu(0);

	(void)state;
	/* b names its own CPU; the others get CPU (index % n) */
	snprintf(text, sizeof(text),
		 "[host]\npin_vcpus = spread\n"
		 "[vm a]\nmemsize = 4M\n[vm b]\nmemsize = 4M\ncpus = %d\n"
		 "[vm c]\nmemsize = 4M\n[vm d]\nmemsize = 4M\n"
		 "[vm e]\nmemsize = 4M\n",
		 own);
	load_ok(text, &sc);
	assert_true(sc.host.pin_spread);
	for (unsigned i = 0; i < sc.nvms; i++) {
		int want = i == 1 ? own : nth_usable_cpu(i);

		assert_int_equal(sc.vms[i].ncpus, 1);
		assert_int_equal(CPU_COUNT(&sc.vms[i].cpus), 1);
		if (!CPU_ISSET(want, &sc.vms[i].cpus))
			fail_msg("VM %s is not on CPU %d", sc.vms[i].name,
				 want);
	}
	scenario_free(&sc);
}

static void test_pin_vcpus_none_leaves_vms_unpinned(void **state)
{
	struct scenario sc;

	(void)state;
	load_ok("[host]\npin_vcpus = none\n[vm a]\nmemsize = 4M\n", &sc);
	assert_false(sc.host.pin_spread);
	assert_int_equal(sc.vms[0].ncpus, 0);
	scenario_free(&sc);
	/* and none is the default */
	load_ok("[vm a]\nmemsize = 4M\n", &sc);
	assert_false(sc.host.pin_spread);
	assert_int_equal(sc.vms[0].ncpus, 0);
	scenario_free(&sc);
}

static void test_bad_pin_vcpus_is_refused(void **state)
{
	(void)state;
	expect_error("[host]\npin_vcpus = all\n[vm a]\nmemsize = 4M\n", 2,
		     "bad pin_vcpus 'all' (expected spread or none)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_embedded_default_matches_default_ini),
		cmocka_unit_test(
			test_embedded_default_is_default_ini_word_for_word),
		cmocka_unit_test(test_embedded_default_has_every_kind_of_vm),
		cmocka_unit_test(test_small_ini_parses),
		cmocka_unit_test(test_every_shipped_scenario_parses),
		cmocka_unit_test(
			test_every_image_scenario_parses_with_stand_in_images),
		cmocka_unit_test(test_sizes_parse_exactly),
		cmocka_unit_test(test_junk_sizes_are_rejected),
		cmocka_unit_test(test_zero_size_is_rejected),
		cmocka_unit_test(test_overflowing_size_is_rejected),
		cmocka_unit_test(test_fraction_of_a_byte_is_rejected),
		cmocka_unit_test(test_unknown_key_names_line_and_key),
		cmocka_unit_test(test_unknown_section_names_line_and_section),
		cmocka_unit_test(test_bad_size_names_line_and_value),
		cmocka_unit_test(test_size_not_in_whole_pages_is_refused),
		cmocka_unit_test(test_overflowing_memsize_is_refused),
		cmocka_unit_test(test_tiny_host_is_refused),
		cmocka_unit_test(test_vm_without_memory_names_its_section),
		cmocka_unit_test(test_vm_with_zero_memory_is_refused),
		cmocka_unit_test(test_no_vms_is_refused),
		cmocka_unit_test(test_duplicate_vm_names_both_lines),
		cmocka_unit_test(
			test_unknown_advanced_setting_says_the_name_is_wrong),
		cmocka_unit_test(
			test_bad_advanced_value_says_the_value_is_wrong_and_its_range),
		cmocka_unit_test(test_advanced_settings_reach_the_settings),
		cmocka_unit_test(test_bad_workload_names_line_and_choices),
		cmocka_unit_test(test_image_workload_without_image_is_refused),
		cmocka_unit_test(test_burst_keys_need_the_burst_workload),
		cmocka_unit_test(test_write_pct_needs_the_image_workload),
		cmocka_unit_test(test_write_pct_reaches_the_image_workload),
		cmocka_unit_test(test_balloon_needs_the_burst_workload),
		cmocka_unit_test(
			test_large_pages_key_turns_them_off_for_one_vm),
		cmocka_unit_test(test_generated_image_takes_its_keys),
		cmocka_unit_test(
			test_generated_image_defaults_follow_the_measured_mix),
		cmocka_unit_test(
			test_image_mix_not_adding_up_to_100_is_refused),
		cmocka_unit_test(test_bad_image_mix_parts_are_refused),
		cmocka_unit_test(test_bad_image_os_is_refused),
		cmocka_unit_test(test_image_keys_need_a_generated_image),
		cmocka_unit_test(test_image_size_is_at_most_memsize),
		cmocka_unit_test(test_image_under_kvstore_or_burst_is_refused),
		cmocka_unit_test(test_missing_image_file_is_refused),
		cmocka_unit_test(test_threads_out_of_range_are_refused),
		cmocka_unit_test(test_bad_duration_is_refused),
		cmocka_unit_test(test_key_set_twice_is_refused),
		cmocka_unit_test(test_key_outside_a_section_is_refused),
		cmocka_unit_test(test_bad_vm_name_is_refused),
		cmocka_unit_test(test_syntax_error_names_its_line),
		cmocka_unit_test(test_first_of_several_errors_is_reported),
		cmocka_unit_test(test_indented_keys_are_keys),
		cmocka_unit_test(test_vm_defaults),
		cmocka_unit_test(test_missing_file_is_reported),
		cmocka_unit_test(test_nul_byte_is_refused_naming_its_line),
		cmocka_unit_test(test_long_run_of_nul_bytes_is_refused_at_once),
		cmocka_unit_test(test_device_is_refused_before_reading),
		cmocka_unit_test(
			test_pipe_is_refused_without_waiting_for_a_writer),
		cmocka_unit_test(test_directory_is_refused),
		cmocka_unit_test(test_paths_are_relative_to_the_scenario_file),
		cmocka_unit_test(
			test_qemu_vm_takes_its_keys_relative_to_the_file),
		cmocka_unit_test(test_qemu_vm_refuses_what_it_cannot_use),
		cmocka_unit_test(test_process_vm_takes_the_thread_keys),
		cmocka_unit_test(test_process_vm_refuses_its_image_and_balloon),
		cmocka_unit_test(test_cpus_pins_a_vm_to_the_cpu_listed),
		cmocka_unit_test(test_cpus_takes_ranges_lists_and_blanks),
		cmocka_unit_test(
			test_cpus_format_gives_the_kernels_list_syntax),
		cmocka_unit_test(test_bad_cpus_syntax_names_line_and_value),
		cmocka_unit_test(test_empty_cpus_is_refused),
		cmocka_unit_test(test_cpus_range_running_backwards_is_refused),
		cmocka_unit_test(
			test_cpus_this_process_cannot_run_on_are_refused),
		cmocka_unit_test(test_qemu_vm_takes_cpus),
		cmocka_unit_test(
			test_pin_vcpus_spread_gives_unpinned_vms_a_cpu_round_robin),
		cmocka_unit_test(test_pin_vcpus_none_leaves_vms_unpinned),
		cmocka_unit_test(test_bad_pin_vcpus_is_refused),
	};

	return th_run_tests(tests);
}
