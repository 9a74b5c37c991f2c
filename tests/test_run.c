// SPDX-License-Identifier: MIT
/*
 * test_run.c - `memvisor run` as a user meets it, by running the built
 * command (build/memvisor, beside this test's directory): the report
 * arrives whatever ends the run, a signal during the final verification
 * finishes the report, an interrupted run exits 4, a run killed outright
 * leaves an earlier report whole, many small VMs are verified in seconds,
 * the host line counts VMs in processes of their own, and `memvisor
 * check` names the sysctl a scenario needs.
 *
 * Every wait polls the command's output or its exit with a deadline; none
 * sleeps to let something happen.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "helper.h"

/* Longest a step may take on a loaded machine before it counts as hung. */
#define STEP_MS 60000

static int setup(void **state)
{
	return th_cmd_setup(state, "run");
}

/* TMPDIR as it was before setup_in_dir (NULL: unset). */
static char *saved_tmpdir;

/*
 * For runs with VMs in processes of their own or QEMU guests: their
 * consoles, QMP sockets and daemon socket go into the fixture's directory,
 * not into /tmp.  memvisor runs there with TMPDIR ".", a path short enough
 * for its socket names (it takes a TMPDIR of at most 32 bytes, and the
 * scratch directory's path may be longer); teardown_in_dir puts TMPDIR
 * back, so that no other test's run sees it.
 */
static int setup_in_dir(void **state)
{
	const char *old = getenv("TMPDIR");

	if (setup(state))
		return -1;
	((struct th_cmd *)*state)->in_dir = true;
	free(saved_tmpdir);
	saved_tmpdir = old ? strdup(old) : NULL;
	setenv("TMPDIR", ".", 1);
	return 0;
}

static int teardown_in_dir(void **state)
{
	if (saved_tmpdir)
		setenv("TMPDIR", saved_tmpdir, 1);
	else
		unsetenv("TMPDIR");
	free(saved_tmpdir);
	saved_tmpdir = NULL;
	return th_cmd_teardown(state);
}

/* Two small VMs that run until stopped. */
static const char small[] = "memsize = 64M\nduration = 600\n"
			    "[vm a]\nmemsize = 8M\nworkload = random\n"
			    "[vm b]\nmemsize = 8M\nworkload = idle\n";

/*
 * One idle VM of 256M on a 32M host, pages read back one by one from swap
 * files (no compression, no clustering): its final verification takes
 * seconds, so a signal sent when it starts arrives while it runs.
 */
static const char slow_verify[] =
	"memsize = 32M\nduration = 2\n"
	"[vm big]\nmemsize = 256M\nworkload = idle\nthreads = 4\n"
	"[advanced]\nMem.MemZipEnable = 0\nMem.SwapInClusterPages = 1\n"
	"Mem.FaultAroundPages = 1\n";

static void test_sigint_during_verification_finishes_the_report(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN];
	cJSON *root, *vm;

	th_cmd_scenario(f, "slow.ini", slow_verify, ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, NULL);
	free(th_cmd_wait_output(f, "reading back every page", STEP_MS));
	kill(f->pid, SIGINT);
	assert_int_equal(th_wait_exit(&f->pid, f->out, STEP_MS), 4);
	root = th_cmd_report(f);
	assert_int_equal(th_jnum(root, "exit_status"), 4);
	assert_string_equal(th_jstr(root, "interrupted_during"),
			    "verification");
	assert_string_equal(th_jstr(root, "signal"), "SIGINT");
	assert_non_null(
		strstr(th_jstr(root, "error"), "interrupted by SIGINT"));
	vm = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "vms"), 0);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(vm, "verified")));
	assert_int_equal(th_jnum(vm, "integrity_errors"), 0);
	cJSON_Delete(root);
}

static void
test_two_signals_during_verification_still_leave_a_report(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN];
	cJSON *root;

	th_cmd_scenario(f, "slow.ini", slow_verify, ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, NULL);
	free(th_cmd_wait_output(f, "reading back every page", STEP_MS));
	kill(f->pid, SIGTERM);
	kill(f->pid, SIGINT);
	assert_int_equal(th_wait_exit(&f->pid, f->out, STEP_MS), 4);
	root = th_cmd_report(f);
	assert_int_equal(th_jnum(root, "exit_status"), 4);
	assert_string_equal(th_jstr(root, "interrupted_during"),
			    "verification");
	cJSON_Delete(root);
}

static void test_sigint_during_the_run_verifies_and_exits_4(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN], *text;
	cJSON *root, *vms;

	th_cmd_scenario(f, "small.ini", small, ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, NULL);
	/* the live line's header: the timed run is about to begin */
	free(th_cmd_wait_output(f, "INTEGRITY", STEP_MS));
	kill(f->pid, SIGINT);
	assert_int_equal(th_wait_exit(&f->pid, f->out, STEP_MS), 4);
	text = th_slurp(f->out);
	assert_non_null(strstr(text, "mappings:"));
	free(text);
	root = th_cmd_report(f);
	assert_int_equal(th_jnum(root, "exit_status"), 4);
	assert_string_equal(th_jstr(root, "interrupted_during"), "run");
	vms = cJSON_GetObjectItem(root, "vms");
	assert_int_equal(cJSON_GetArraySize(vms), 2);
	for (int i = 0; i < 2; i++)
		assert_true(cJSON_IsTrue(cJSON_GetObjectItem(
			cJSON_GetArrayItem(vms, i), "verified")));
	assert_int_equal(th_jnum(root, "integrity_errors"), 0);
	assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "host"),
					    "lost_pages"));
	cJSON_Delete(root);
}

static void test_killed_run_leaves_the_earlier_report_whole(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN], *text;

	th_put(f->json, "{\"earlier\": true}\n");
	th_cmd_scenario(f, "small.ini", small, ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, NULL);
	free(th_cmd_wait_output(f, "INTEGRITY", STEP_MS));
	kill(f->pid, SIGKILL);
	waitpid(f->pid, NULL, 0);
	f->pid = 0;
	text = th_slurp(f->json);
	assert_string_equal(text, "{\"earlier\": true}\n");
	free(text);
}

static void test_vm_that_cannot_start_still_gets_a_report(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN];
	cJSON *root;

	th_put(f->json, "{\"earlier\": true}\n");
	/* all of the host reserved: more than memsize less minFree */
	th_cmd_scenario(
		f, "reserved.ini",
		"memsize = 64M\n[vm a]\nmemsize = 64M\nreservation = 64M\n",
		ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, NULL);
	assert_int_equal(th_wait_exit(&f->pid, f->out, STEP_MS), 2);
	root = th_cmd_report(f);
	assert_int_equal(th_jnum(root, "exit_status"), 2);
	assert_non_null(strstr(th_jstr(root, "error"), "cannot create VM a"));
	assert_null(cJSON_GetObjectItem(root, "earlier"));
	cJSON_Delete(root);
}

static void test_dev_zero_is_refused_at_once_with_a_report(void **state)
{
	struct th_cmd *f = *state;
	cJSON *root;

	th_cmd_start(f, "run", "/dev/zero", "--json", f->json, NULL);
	assert_int_equal(th_wait_exit(&f->pid, f->out, 10000), 2);
	root = th_cmd_report(f);
	assert_int_equal(th_jnum(root, "exit_status"), 2);
	assert_non_null(strstr(th_jstr(root, "error"),
			       "/dev/zero: is a character device"));
	cJSON_Delete(root);
}

/* 200 VMs of 1 MiB (the case) end within the deadline once the
 * verification starts: the workloads are stopped first. */
static void test_many_small_vms_are_verified_in_seconds(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN], vm[64];
	size_t len = 0;
	char *body = NULL;
	FILE *m = open_memstream(&body, &len);
	cJSON *root;

	assert_non_null(m);
	fputs("memsize = 512M\nduration = 1\n", m);
	for (int i = 0; i < 200; i++) {
		snprintf(vm, sizeof(vm),
			 "[vm v%d]\nmemsize = 1M\nworkload = random\n", i);
		fputs(vm, m);
	}
	assert_int_equal(fclose(m), 0);
	th_cmd_scenario(f, "many.ini", body, ini, sizeof(ini));
	free(body);
	th_cmd_start(f, "run", ini, "--json", f->json, NULL);
	free(th_cmd_wait_output(f, "reading back every page", STEP_MS));
	/* one VM after another while the others ran took about 10 minutes */
	assert_int_equal(th_wait_exit(&f->pid, f->out, STEP_MS), 0);
	root = th_cmd_report(f);
	assert_int_equal(th_jnum(root, "unverified_vms"), 0);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "vms")),
			 200);
	cJSON_Delete(root);
}

/* Two VMs in processes of their own, overcommitted: they reclaim.  The
 * run is long; the test ends it (SIGINT) once it has seen the reclaim. */
static const char two_processes[] =
	"memsize = 32M\nduration = 600\n"
	"[vm p1]\nmemsize = 24M\nworkload = kvstore\nvmm = process\n"
	"[vm p2]\nmemsize = 24M\nworkload = kvstore\nvmm = process\n";

/* The VMs' own reclaim, as the host counts it: compressed or swapped out,
 * a page the cache pushed on to swap once. */
static double vms_reclaimed_mb(const cJSON *root)
{
	const cJSON *v;
	double mb = 0;

	cJSON_ArrayForEach(v, cJSON_GetObjectItem(root, "vms"))
		mb += th_jnum(v, "zip_mb") + th_jnum(v, "swapout_mb") -
		      th_jnum(v, "zip_evict_mb");
	return mb;
}

static bool reclaimed_1mb(const struct th_live *l, void *arg)
{
	(void)arg;
	return l->swapped_mb + l->cache_mb > 1;
}

static void test_host_line_counts_vms_in_processes_of_their_own(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN], line[64], *text;
	double host_mb, vms_mb, series_pages = 0, t;
	const cJSON *v;
	cJSON *root;

	th_cmd_scenario(f, "procs.ini", two_processes, ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, NULL);
	/* a second in which the VMs hold more than 1 MB swapped or
	 * compressed, then the next line, by when that second's sample is
	 * in the series */
	t = th_cmd_wait_live(f, reclaimed_1mb, NULL, STEP_MS);
	th_cmd_wait_live(f, th_live_after, &t, STEP_MS);
	kill(f->pid, SIGINT);
	assert_int_equal(th_wait_exit(&f->pid, f->out, STEP_MS), 4);
	root = th_cmd_report(f);
	host_mb = th_jnum(cJSON_GetObjectItem(root, "host"), "reclaimed_mb");
	vms_mb = vms_reclaimed_mb(root);
	print_message("host reclaimed %.1f MB, its VMs %.1f MB\n", host_mb,
		      vms_mb);
	/* the VMs reclaimed (48 MB on 32 MB) and the host says so, give or
	 * take the report's rounding to 0.1 MB */
	assert_true(vms_mb > 1);
	assert_true(host_mb > vms_mb - 0.5 && host_mb < vms_mb + 0.5);
	text = th_slurp(f->out);
	snprintf(line, sizeof(line), "%.1f MB reclaimed", host_mb);
	assert_non_null(strstr(text, line));
	free(text);
	/* and so does the time series, second by second (the live view and
	 * the metrics take the same figures) */
	cJSON_ArrayForEach(
		v, cJSON_GetObjectItem(
			   cJSON_GetObjectItem(
				   cJSON_GetObjectItem(root, "series"), "host"),
			   "reclaim_pages"))
		series_pages += cJSON_GetNumberValue(v);
	print_message("the series' host reclaimed %.0f pages\n", series_pages);
	assert_true(series_pages > 0);
	assert_true(series_pages * 4096 <= (host_mb + 0.1) * 1048576);
	cJSON_Delete(root);
}

/* Threads of process pid that may run on cpu alone. */
static unsigned threads_pinned_to(pid_t pid, int cpu)
{
	char path[64];
	struct dirent *d;
	unsigned n = 0;
	DIR *dp;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dp = opendir(path);
	while (dp && (d = readdir(dp))) {
		int tid = atoi(d->d_name);
		cpu_set_t set;

		if (tid > 0 && !sched_getaffinity(tid, sizeof(set), &set) &&
		    CPU_COUNT(&set) == 1 && CPU_ISSET(cpu, &set))
			n++;
	}
	if (dp)
		closedir(dp);
	return n;
}

/* A VM given cpus runs its guest thread there, is listed at the start
 * with them and reported with them; a VM without is none of these. */
static void test_pinned_vm_is_listed_and_reported_with_its_cpus(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN], body[256], line[64];
	const cJSON *vms;
	cpu_set_t usable;
	int cpu = -1;
	cJSON *root;
	char *text, *vm_b;
	uint64_t until;
	int status;

	assert_int_equal(sched_getaffinity(0, sizeof(usable), &usable), 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &usable))
			cpu = c;
	snprintf(body, sizeof(body),
		 "memsize = 64M\nduration = 3\n"
		 "[vm a]\nmemsize = 8M\nworkload = random\ncpus = %d\n"
		 "[vm b]\nmemsize = 8M\nworkload = idle\n",
		 cpu);
	th_cmd_scenario(f, "pinned.ini", body, ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, NULL);
	/* pinned: VM a's guest thread, and engine threads that follow it */
	until = th_now_ms() + STEP_MS;
	while (!threads_pinned_to(f->pid, cpu)) {
		if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
			f->pid = 0;
			fail_msg("no thread of memvisor ran pinned to CPU %d",
				 cpu);
		}
		if (th_now_ms() > until)
			fail_msg("no thread pinned to CPU %d in %d ms", cpu,
				 STEP_MS);
		th_nap_ms(1);
	}
	assert_int_equal(th_wait_exit(&f->pid, f->out, STEP_MS), 0);
	text = th_slurp(f->out);
	snprintf(line, sizeof(line), "shares  on CPU %d\n", cpu);
	vm_b = strstr(text, "  vm b ");
	if (vm_b)
		vm_b[strcspn(vm_b, "\n")] = '\0'; /* its line alone */
	if (!strstr(text, line) || !vm_b || strstr(vm_b, "on CPU"))
		fail_msg("not VM a alone listed on CPU %d:\n%s", cpu, text);
	free(text);
	root = th_cmd_report(f);
	vms = cJSON_GetObjectItem(root, "vms");
	snprintf(line, sizeof(line), "%d", cpu);
	assert_string_equal(th_jstr(cJSON_GetArrayItem(vms, 0), "cpus"), line);
	assert_string_equal(th_jstr(cJSON_GetArrayItem(vms, 1), "cpus"), "");
	cJSON_Delete(root);
}

/* The sum of a number over the report's VMs. */
static double vms_sum(const cJSON *root, const char *key)
{
	const cJSON *vm;
	double sum = 0;

	cJSON_ArrayForEach(vm, cJSON_GetObjectItem(root, "vms"))
		sum += th_jnum(vm, key);
	return sum;
}

/*
 * The default scenario (scenarios/default.ini, the embedded one word for
 * word), for 8 s instead of 60 with its swap files in the fixture's
 * directory: every mechanism has done something by then (here: zero pages
 * and sharing from the first seconds, the balloon from 2 s, compression
 * and swapping from 3 s) and every page is read back as written.
 */
static void test_default_scenario_shows_every_mechanism(void **state)
{
	struct th_cmd *f = *state;
	char src[PATH_MAX], ini[TH_PATH_LEN], *text, *host, *body;
	cJSON *root, *vm;

	snprintf(src, sizeof(src), "%s", __FILE__);
	*strrchr(src, '/') = '\0';
	strcat(src, "/../scenarios/default.ini");
	text = th_slurp(src);
	host = strstr(text, "[host]\n");
	assert_non_null(host);
	/* th_cmd_scenario() puts its own [host] line, with the swap directory */
	body = host + strlen("[host]\n");
	memmove(text + (host - text), body, strlen(body) + 1);
	th_cmd_scenario(f, "default.ini", text, ini, sizeof(ini));
	free(text);
	th_cmd_start(f, "run", ini, "--duration", "8", "--json", f->json, NULL);
	assert_int_equal(th_wait_exit(&f->pid, f->out, 4 * STEP_MS), 0);
	root = th_cmd_report(f);
	assert_int_equal(th_jnum(root, "integrity_errors"), 0);
	assert_int_equal(th_jnum(root, "unverified_vms"), 0);
	cJSON_ArrayForEach(vm, cJSON_GetObjectItem(root, "vms"))
		assert_true(cJSON_IsTrue(cJSON_GetObjectItem(vm, "verified")));
	if (!(th_jnum(cJSON_GetObjectItem(root, "host"), "shrdsvd_mb") > 0 &&
	      vms_sum(root, "zero_mb") > 0 && vms_sum(root, "shrd_mb") > 0 &&
	      vms_sum(root, "mctlsz_mb") > 0 &&
	      vms_sum(root, "cacheusd_mb") > 0 &&
	      vms_sum(root, "swcur_mb") > 0)) {
		text = th_slurp(f->json);
		fail_msg("a mechanism did nothing:\n%s", text);
	}
	cJSON_Delete(root);
	/* what was generated, and how far the VMs were in loading it: a
	 * plain line 5 s in if they had not finished, or when they had */
	text = th_slurp(f->out);
	assert_non_null(strstr(text, "generated 3 guest images (416 MB)"));
	if (!strstr(text, "loading images: ") &&
	    !strstr(text, "images loaded: every page of 576 MB"))
		fail_msg("no progress of the image loading:\n%s", text);
	free(text);
}

static void test_check_names_the_sysctl_a_scenario_needs(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN], *text;

	/* 4T of guest memory needs more mappings than any kernel allows */
	th_cmd_scenario(f, "huge.ini", "memsize = 64T\n[vm a]\nmemsize = 4T\n",
			ini, sizeof(ini));
	th_cmd_start(f, "check", ini, NULL);
	assert_int_equal(th_wait_exit(&f->pid, f->out, 10000), 0);
	text = th_slurp(f->out);
	assert_non_null(strstr(text, "sysctl -w vm.max_map_count="));
	assert_non_null(strstr(text, "an upper bound"));
	assert_non_null(strstr(text, "physical memory"));
	free(text);
}

/* A QEMU guest's run: the test guest booted (make guest), its wait
 * bounded well above a boot on a loaded machine. */
#define QEMU_RUN_MS 300000

static bool no_qemu(void)
{
	return access("/usr/bin/qemu-system-x86_64", X_OK) != 0;
}

/* The QEMU VM named name in the report: its console file's text.  The
 * run made it in the fixture's directory (setup_in_dir): its path is
 * relative to that, and th_cmd_teardown removes it with the directory. */
static char *qemu_console(struct th_cmd *f, cJSON *root, const char *name)
{
	char full[TH_PATH_LEN + 128];
	const char *path = NULL;
	cJSON *vm;

	cJSON_ArrayForEach(vm, cJSON_GetObjectItem(root, "vms"))
	{
		if (strcmp(th_jstr(vm, "name"), name))
			continue;
		assert_string_equal(th_jstr(vm, "vmm"), "qemu");
		path = th_jstr(vm, "console_path");
	}
	if (!path) {
		fail_msg("no VM %s in the report", name);
		return NULL; /* not reached: tells the compiler path is set */
	}
	/* ./memvisor-qemu-XXXXXX/NAME.console, in the fixture's directory */
	if (strncmp(path, "./memvisor-qemu-", 16))
		fail_msg("console %s is not in the run's directory", path);
	assert_true((size_t)snprintf(full, sizeof(full), "%s/%s", f->dir,
				     path) < sizeof(full));
	return th_slurp(full);
}

static void test_qemu_guest_verdict_is_its_integrity_result(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN], *con;
	cJSON *root, *vm;

	if (no_qemu())
		skip();
	unsetenv("MEMVISOR_PRELOAD");
	th_cmd_scenario(f, "qemu.ini",
			"memsize = 512M\nduration = 3\n"
			"[vm q]\nvmm = qemu\nmemsize = 256M\n"
			"[vm t]\nmemsize = 8M\n",
			ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, "--quiet", NULL);
	assert_int_equal(th_wait_exit(&f->pid, f->out, QEMU_RUN_MS), 0);
	root = th_cmd_report(f);
	assert_int_equal(th_jnum(root, "exit_status"), 0);
	con = qemu_console(f, root, "q");
	assert_non_null(strstr(con, "MVGUEST verdict=ok"));
	assert_non_null(strstr(con, "MVGUEST hold pass="));
	free(con);
	/* the thread VM has no console */
	cJSON_ArrayForEach(
		vm, cJSON_GetObjectItem(
			    root, "vms")) if (!strcmp(th_jstr(vm, "name"), "t"))
		assert_null(cJSON_GetObjectItem(vm, "console_path"));
	cJSON_Delete(root);
}

static void test_qemu_guest_that_gives_a_bad_verdict_fails_the_run(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN], *con;
	cJSON *root;

	if (no_qemu())
		skip();
	/* unmanaged; a guest program that fills nothing says verdict=fail */
	setenv("MEMVISOR_PRELOAD", "", 1);
	th_cmd_scenario(
		f, "qemu-fail.ini",
		"memsize = 64M\nduration = 1\n"
		"[vm q]\nvmm = qemu\nmemsize = 128M\n"
		"append = console=ttyS0 quiet panic=-1 mvguest.fill_pct=0 "
		"mvguest.rounds=0\n",
		ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, "--quiet", NULL);
	assert_int_equal(th_wait_exit(&f->pid, f->out, QEMU_RUN_MS), 1);
	unsetenv("MEMVISOR_PRELOAD");
	root = th_cmd_report(f);
	assert_int_equal(th_jnum(root, "exit_status"), 1);
	assert_non_null(strstr(th_jstr(root, "error"),
			       "in VM q: the guest's program found"));
	con = qemu_console(f, root, "q");
	assert_non_null(strstr(con, "MVGUEST verdict=fail"));
	free(con);
	cJSON_Delete(root);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, th_cmd_teardown)
#define T_IN_DIR(name) \
	cmocka_unit_test_setup_teardown(name, setup_in_dir, teardown_in_dir)
	const struct CMUnitTest tests[] = {
		T(test_sigint_during_verification_finishes_the_report),
		T(test_two_signals_during_verification_still_leave_a_report),
		T(test_sigint_during_the_run_verifies_and_exits_4),
		T(test_killed_run_leaves_the_earlier_report_whole),
		T(test_vm_that_cannot_start_still_gets_a_report),
		T(test_dev_zero_is_refused_at_once_with_a_report),
		T(test_many_small_vms_are_verified_in_seconds),
		T(test_pinned_vm_is_listed_and_reported_with_its_cpus),
		T(test_check_names_the_sysctl_a_scenario_needs),
		T(test_default_scenario_shows_every_mechanism),
		T_IN_DIR(test_host_line_counts_vms_in_processes_of_their_own),
		T_IN_DIR(test_qemu_guest_verdict_is_its_integrity_result),
		T_IN_DIR(
			test_qemu_guest_that_gives_a_bad_verdict_fails_the_run),
	};
#undef T_IN_DIR
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
