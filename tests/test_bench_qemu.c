// SPDX-License-Identifier: MIT
/*
 * test_bench_qemu.c - `memvisor bench qemu`: its options (defaults, the
 * budget below the guest's memory, bad values refused), the medians of
 * the rounds that ran, the JSON report (every field, ratios consistent
 * with the medians, a skipped configuration saying why), finding the guest
 * RAM mapping's Rss in smaps, and, where QEMU, the test guest and root are
 * there, one short run end to end by the built command (two 96 MiB
 * guests: memvisor and the cgroup): every configuration that ran
 * verified its guest's memory, memvisor paged, and nothing the run set is
 * left behind.  The end-to-end test skips, saying why, without them (and
 * in sanitizer builds, which have no preload library).
 *
 * Every wait polls with a deadline; none sleeps to let something happen.
 */

/* The benchmark is part of the command, not of a library the Makefile
 * links into tests, so it is compiled in here with what it uses. */
#include "helper.h"
#include "../tools/qmp.c"
#include "../tools/qemu.c"
#include "../tools/preflight.c"
#include "../bench/bench_linux_sys.c"
#include "../bench/bench_qemu.c"

#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>

#include <cmocka.h>

#define E2E_MS 500000 /* below run-tests.sh's 600 s: this test says why */
#define POLL_MS_T 50

static int parse_line(const char *line, struct bq_opts *o, char *msg,
		      size_t len)
{
	static char buf[512];
	static char *v[32];
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *s = strtok(buf, " "); s && n < 31; s = strtok(NULL, " "))
		v[n++] = s;
	v[n] = NULL;
	return bq_parse_opts(n, v, o, msg, len);
}

static void test_options_default_to_one_round_and_sixty_percent(void **state)
{
	struct bq_opts o;
	char msg[BQ_MSG] = "";

	(void)state;
	assert_int_equal(parse_line("qemu", &o, msg, sizeof(msg)), 0);
	assert_int_equal(o.rounds, 1);
	assert_int_equal(o.memsize_mib, 256);
	assert_int_equal(bq_budget_bytes(&o), 153ull << 20);
	assert_false(o.json);
	for (int c = 0; c < BQ_NCONFIGS; c++)
		assert_false(o.skip[c]);
}

static void test_options_take_every_setting(void **state)
{
	struct bq_opts o;
	char msg[BQ_MSG] = "";

	(void)state;
	assert_int_equal(
		parse_line(
			"qemu --rounds 3 --memsize 512 --budget 200 --fill-pct 50 --guest-rounds 2 --overhead 40 --timeout 60 --swapdir /tmp --preload /x.so --no-cgroup --json",
			&o, msg, sizeof(msg)),
		0);
	assert_int_equal(o.rounds, 3);
	assert_int_equal(o.memsize_mib, 512);
	assert_int_equal(bq_budget_bytes(&o), 200ull << 20);
	assert_int_equal(o.fill_pct, 50);
	assert_int_equal(o.guest_rounds, 2);
	assert_int_equal(o.overhead_mib, 40);
	assert_int_equal(o.timeout_s, 60);
	assert_string_equal(o.swapdir, "/tmp");
	assert_string_equal(o.preload, "/x.so");
	assert_true(o.skip[BQ_CGROUP]);
	assert_false(o.skip[BQ_MEMVISOR]);
	assert_true(o.json);
	assert_int_equal(
		parse_line("qemu --budget-pct 50", &o, msg, sizeof(msg)), 0);
	assert_int_equal(bq_budget_bytes(&o), 128ull << 20);
	assert_int_equal(parse_line("qemu --help", &o, msg, sizeof(msg)), 1);
}

static void
test_options_refuse_bad_values_and_a_budget_not_below_ram(void **state)
{
	static const char *const bad[] = {
		"qemu --rounds 0",
		"qemu --rounds 10",
		"qemu --rounds x",
		"qemu --memsize 32",
		"qemu --budget 256",
		"qemu --memsize 128 --budget 200",
		"qemu --budget-pct 100",
		"qemu --fill-pct 0",
		"qemu --timeout -5",
		"qemu --frobnicate",
		"qemu extra",
		"qemu --no-ceiling --no-memvisor --no-cgroup",
	};
	struct bq_opts o;
	char msg[BQ_MSG];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg[0] = '\0';
		if (parse_line(bad[i], &o, msg, sizeof(msg)) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_true(msg[0] != '\0');
	}
}

static void
test_summary_times_finished_guests_and_counts_every_run(void **state)
{
	struct bq_run runs[4];
	struct bq_summary s;

	(void)state;
	memset(runs, 0, sizeof(runs));
	runs[0] = (struct bq_run){ .ran = true,
				   .ok = true,
				   .verdict_found = true,
				   .boot_s = 3,
				   .work_s = 10,
				   .checks_s = 100,
				   .swapout_bytes = 4096 };
	runs[1] = (struct bq_run){ .ran = false, .boot_s = 99 };
	runs[2] = (struct bq_run){ .ran = true,
				   .ok = false,
				   .verdict_found = true,
				   .boot_s = 5,
				   .work_s = 20,
				   .checks_s = 300,
				   .swapout_bytes = 8192 };
	/* OOM-killed: no verdict, no work time; its memory still counts */
	runs[3] = (struct bq_run){
		.ran = true, .boot_s = 1, .oom_kills = 1, .swapout_bytes = 12288
	};
	bq_summarize(runs, 4, &s);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.finished, 2);
	assert_int_equal(s.n_ok, 1);
	assert_true(fabs(s.med.boot_s - 4) < 1e-9);
	assert_true(fabs(s.med.work_s - 15) < 1e-9);
	assert_true(fabs(s.med.checks_s - 200) < 1e-9);
	assert_int_equal(s.med.swapout_bytes, 8192);
	assert_false(s.all_ok);
	assert_int_equal(s.oom_kills, 1);
}

static double num_of(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v))
		fail_msg("no number %s", key);
	return v->valuedouble;
}

static void test_json_has_every_field_ratios_and_why_skipped(void **state)
{
	static const char *const keys[] = {
		"boot_s",
		"work_s",
		"host_work_s",
		"checks_s",
		"pages",
		"errors",
		"checks",
		"ram_peak_bytes",
		"rss_peak_bytes",
		"cgroup_peak_bytes",
		"frames_peak_bytes",
		"swapout_bytes",
		"swapin_bytes",
		"zip_pages",
		"oom_kills",
	};
	struct bq_run runs[1][BQ_NCONFIGS];
	const char *why[BQ_NCONFIGS] = { NULL, NULL, "needs root" };
	const cJSON *cfgs, *mv, *ceil, *med, *ratios, *cg;
	struct bq_opts o;
	char msg[BQ_MSG];
	cJSON *root;

	(void)state;
	assert_int_equal(parse_line("qemu", &o, msg, sizeof(msg)), 0);
	memset(runs, 0, sizeof(runs));
	runs[0][BQ_CEILING] = (struct bq_run){ .ran = true,
					       .ok = true,
					       .verdict_found = true,
					       .boot_s = 2,
					       .work_s = 8,
					       .checks_s = 400 };
	runs[0][BQ_MEMVISOR] = (struct bq_run){ .ran = true,
						.ok = true,
						.verdict_found = true,
						.boot_s = 3,
						.work_s = 12,
						.checks_s = 300,
						.zip_pages = 77 };
	root = bq_json(&o, 200ull << 20, "swap file + zswap",
		       (const struct bq_run(*)[BQ_NCONFIGS])runs, 1, why);
	assert_non_null(root);
	assert_int_equal(num_of(root, "guest_mib"), 256);
	assert_int_equal(num_of(root, "budget_mib"), 153);
	assert_int_equal(num_of(root, "cgroup_limit_mib"), 200);
	assert_true(
		cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "note")));
	cfgs = cJSON_GetObjectItemCaseSensitive(root, "configs");
	mv = cJSON_GetObjectItemCaseSensitive(cfgs, "memvisor");
	ceil = cJSON_GetObjectItemCaseSensitive(cfgs, "ceiling");
	cg = cJSON_GetObjectItemCaseSensitive(cfgs, "cgroup");
	assert_non_null(mv);
	assert_non_null(ceil);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(cg, "ran")));
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(cg, "why")->valuestring,
		"needs root");
	med = cJSON_GetObjectItemCaseSensitive(mv, "median");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		num_of(med, keys[i]);
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(med, "verdict")->valuestring,
		"ok");
	assert_int_equal(num_of(med, "zip_pages"), 77);
	assert_int_equal(cJSON_GetArraySize(
				 cJSON_GetObjectItemCaseSensitive(mv, "runs")),
			 1);
	ratios = cJSON_GetObjectItemCaseSensitive(root, "ratios");
	assert_true(fabs(num_of(ratios, "boot_vs_ceiling") - 1.5) < 1e-9);
	assert_true(fabs(num_of(ratios, "work_vs_ceiling") - 1.5) < 1e-9);
	assert_true(fabs(num_of(ratios, "checks_s_vs_ceiling") - 0.75) < 1e-9);
	/* no ratio to a configuration that did not run */
	assert_null(cJSON_GetObjectItemCaseSensitive(ratios, "boot_vs_cgroup"));
	cJSON_Delete(root);
}

static void test_smaps_gives_the_rss_of_the_mapping_of_ram_size(void **state)
{
	static const char smaps[] =
		"55d0a0000000-55d0a0100000 r-xp 00000000 08:01 123 /usr/bin/qemu\n"
		"Size:               1024 kB\n"
		"Rss:                 900 kB\n"
		"7f0000000000-7f0010000000 rw-p 00000000 00:00 0 \n"
		"Size:             262144 kB\n"
		"KernelPageSize:        4 kB\n"
		"Rss:              150000 kB\n"
		"Pss:              150000 kB\n"
		"7f0010000000-7f0010001000 rw-p 00000000 00:00 0 \n"
		"Size:                  4 kB\n"
		"Rss:                   4 kB\n";

	(void)state;
	assert_int_equal(bq_smaps_ram_rss(smaps, 256ull << 20),
			 150000ull * 1024);
	assert_int_equal(bq_smaps_ram_rss(smaps, 512ull << 20), 0);
	assert_int_equal(bq_smaps_ram_rss("", 256ull << 20), 0);
}

/* Nothing a run made may be left: no state file, cgroup or swap of ours
 * (a swap file in dir). */
static bool leftovers_found(const char *dir, char *what, size_t len)
{
	char *swaps = th_slurp("/proc/swaps");
	bool found = false;

	if (!access("/run/memvisor-bench-qemu.state", F_OK)) {
		snprintf(what, len, "the state file is still there");
		found = true;
	}
	if (swaps && strstr(swaps, dir)) {
		snprintf(what, len, "a swap file is still on: %s", swaps);
		found = true;
	}
	free(swaps);
	return found;
}

static const char *e2e_missing(void)
{
	char k[PATH_MAX], i[PATH_MAX], bin[PATH_MAX + 16];
	static char why[PATH_MAX + 64];

	if (geteuid() != 0)
		return "the cgroup peer needs root (cgroups, swapon)";
	if (system("command -v qemu-system-x86_64 >/dev/null 2>&1"))
		return "no qemu-system-x86_64 in PATH (install qemu-system-x86)";
	if (qemu_guest_paths(k, sizeof(k), i, sizeof(i)) || access(k, R_OK) ||
	    access(i, R_OK)) {
		snprintf(why, sizeof(why),
			 "no test guest at %.400s (make guest)", k);
		return why;
	}
	th_memvisor_bin(bin, sizeof(bin));
	if (access(bin, X_OK))
		return "no memvisor binary (make all)";
	*strrchr(bin, '/') = '\0';
	strcat(bin, "/libmemvisor-preload.so");
	if (access(bin, R_OK))
		return "no libmemvisor-preload.so beside the binary (sanitizer builds have none: a sanitized library cannot be preloaded into an unsanitized QEMU)";
	return NULL;
}

static void test_small_run_end_to_end_verifies_every_guest(void **state)
{
	char bin[PATH_MAX + 16], dir[TH_DIR_LEN], out[TH_PATH_LEN],
		err[TH_PATH_LEN], what[600];
	char preload[PATH_MAX + 64];
	const char *argv[32], *missing = e2e_missing();
	posix_spawn_file_actions_t fa;
	const cJSON *cfgs;
	uint64_t until;
	cJSON *root;
	char *text;
	int status, n = 0;
	pid_t pid;

	(void)state;
	if (missing) {
		fprintf(stderr, "skipped: %s\n", missing);
		skip();
	}
	th_memvisor_bin(bin, sizeof(bin));
	snprintf(preload, sizeof(preload), "%s", bin);
	*strrchr(preload, '/') = '\0';
	strcat(preload, "/libmemvisor-preload.so");
	/* swapon needs a real file system: the work directory is removed.
	 * The bench runs in it and is given it as ".": its daemon's socket
	 * goes there, and a name through the build tree's path may be too
	 * long for a unix socket (sun_path, 108 bytes) */
	th_scratch(dir, sizeof(dir), "bench-qemu-e2e");
	snprintf(out, sizeof(out), "%s/out.json", dir);
	snprintf(err, sizeof(err), "%s/err.txt", dir);
	argv[n++] = bin;
	argv[n++] = "bench";
	argv[n++] = "qemu";
	/* short: two small guests, no ceiling (a fixed allowance instead) */
	argv[n++] = "--memsize";
	argv[n++] = "96";
	argv[n++] = "--budget";
	argv[n++] = "48";
	argv[n++] = "--fill-pct";
	argv[n++] = "60";
	argv[n++] = "--guest-rounds";
	argv[n++] = "1";
	argv[n++] = "--no-ceiling";
	argv[n++] = "--overhead";
	argv[n++] = "64";
	argv[n++] = "--timeout";
	argv[n++] = "150";
	argv[n++] = "--preload";
	argv[n++] = preload;
	argv[n++] = "--json";
	argv[n++] = "--swapdir";
	argv[n++] = ".";
	argv[n] = NULL;
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT, 0644);
	posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT, 0644);
	assert_int_equal(posix_spawn_file_actions_addchdir_np(&fa, dir), 0);
	assert_int_equal(
		posix_spawn(&pid, bin, &fa, NULL, (char **)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	until = th_now_ms() + E2E_MS;
	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (th_now_ms() > until) {
			kill(pid, SIGINT);
			waitpid(pid, &status, 0);
			fail_msg("bench qemu still running after %d ms",
				 E2E_MS);
		}
		th_nap_ms(POLL_MS_T);
	}
	text = th_slurp(err);
	if (text && strstr(text, "another one is running")) {
		free(text);
		skip(); /* someone runs the real benchmark now */
	}
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status)) {
		char *o = th_slurp(out);

		fail_msg("exit %d:\n%s\n%s", WEXITSTATUS(status), text,
			 o ? o : "");
	}
	free(text);
	text = th_slurp(out);
	root = cJSON_Parse(text);
	free(text);
	assert_non_null(root);
	cfgs = cJSON_GetObjectItemCaseSensitive(root, "configs");
	for (int c = 0; c < BQ_NCONFIGS; c++) {
		const cJSON *cj = cJSON_GetObjectItemCaseSensitive(
			cfgs, bq_config_name(c));
		const cJSON *med =
			cJSON_GetObjectItemCaseSensitive(cj, "median");

		if (cJSON_IsFalse(
			    cJSON_GetObjectItemCaseSensitive(cj, "ran"))) {
			fprintf(stderr, "%s not run: %s\n", bq_config_name(c),
				cJSON_GetObjectItemCaseSensitive(cj, "why")
					->valuestring);
			/* only the ceiling not asked for, or a kernel lack */
			assert_true(c == BQ_CEILING || c == BQ_CGROUP);
			continue;
		}
		/* the kernel may OOM-kill the cgroup's QEMU: said, not hidden */
		if (c == BQ_CGROUP &&
		    !cJSON_IsTrue(
			    cJSON_GetObjectItemCaseSensitive(cj, "all_ok"))) {
			assert_true(num_of(med, "oom_kills") > 0);
			continue;
		}
		assert_true(cJSON_IsTrue(
			cJSON_GetObjectItemCaseSensitive(cj, "all_ok")));
		assert_true(num_of(med, "boot_s") > 0);
		assert_true(num_of(med, "work_s") > 0);
		assert_true(num_of(med, "checks") > 0);
		assert_int_equal(num_of(med, "errors"), 0);
	}
	/* memvisor held the guest to its budget: it had to page */
	assert_true(num_of(cJSON_GetObjectItemCaseSensitive(
				   cJSON_GetObjectItemCaseSensitive(cfgs,
								    "memvisor"),
				   "median"),
			   "swapout_bytes") +
			    num_of(cJSON_GetObjectItemCaseSensitive(
					   cJSON_GetObjectItemCaseSensitive(
						   cfgs, "memvisor"),
					   "median"),
				   "zip_pages") >
		    0);
	cJSON_Delete(root);
	assert_false(leftovers_found(dir, what, sizeof(what)));
	snprintf(what, sizeof(what), "rm -rf '%s'", dir);
	assert_int_equal(system(what), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_options_default_to_one_round_and_sixty_percent),
		cmocka_unit_test(test_options_take_every_setting),
		cmocka_unit_test(
			test_options_refuse_bad_values_and_a_budget_not_below_ram),
		cmocka_unit_test(
			test_summary_times_finished_guests_and_counts_every_run),
		cmocka_unit_test(
			test_json_has_every_field_ratios_and_why_skipped),
		cmocka_unit_test(
			test_smaps_gives_the_rss_of_the_mapping_of_ram_size),
		cmocka_unit_test(
			test_small_run_end_to_end_verifies_every_guest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
