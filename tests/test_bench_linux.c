// SPDX-License-Identifier: MIT
/*
 * test_bench_linux.c - `memvisor bench linux`: its options, the
 * median/ratio arithmetic, the worst VM, the JSON of a case, reading a
 * `memvisor run` report, its CPU window (timed by this run's per-second
 * lines only), the state file's round trip (each change recorded
 * before it is made, undone newest first, even for a change that never
 * happened) on a fake /proc and /sys tree, and, as root, one tiny case run
 * end to end by the built command, which must leave nothing behind.
 *
 * Every wait polls with a deadline; none sleeps to let something happen.
 */

/* The benchmark is part of the command, not of a library the Makefile
 * links into tests, so it is compiled in here with what it uses. */
#include "helper.h"
#include "../tools/progress.c"
#include "../tools/genimage.c"
#include "../tools/scenario.c"
#include "../tools/preflight.c"
#include "../bench/bench_linux.c"
#include "../bench/bench_linux_sys.c"
#include "../bench/bench_linux_vm.c"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>

#include <cmocka.h>

/* The end-to-end case: images, five configurations, verification. */
#define E2E_MS 500000 /* below run-tests.sh's 600 s: this test says why */
#define POLL_MS_T 50

static char **argv_of(const char *line, int *argc)
{
	static char buf[512];
	static char *v[32];
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *s = strtok(buf, " "); s && n < 31; s = strtok(NULL, " "))
		v[n++] = s;
	v[n] = NULL;
	*argc = n;
	return v;
}

static int parse_line(const char *line, struct bl_opts *o, char *msg,
		      size_t len)
{
	int argc;
	char **argv = argv_of(line, &argc);

	return bl_parse_opts(argc, argv, o, msg, len);
}

static void test_options_give_cases_rounds_duration_and_json(void **state)
{
	struct bl_opts o;
	char msg[256];

	(void)state;
	assert_int_equal(
		parse_line(
			"linux --case kvstore-2 --case tiny --rounds 3 --duration 7 --json --swapdir /tmp",
			&o, msg, sizeof(msg)),
		0);
	assert_int_equal(o.ncases, 2);
	assert_string_equal(o.cases[0], "kvstore-2");
	assert_string_equal(o.cases[1], "tiny");
	assert_int_equal(o.rounds, 3);
	assert_int_equal(o.duration_s, 7);
	assert_true(o.json);
	assert_string_equal(o.swapdir, "/tmp");
}

static void test_options_default_to_every_case_two_rounds(void **state)
{
	struct bl_opts o;
	char msg[256];

	(void)state;
	assert_int_equal(parse_line("linux", &o, msg, sizeof(msg)), 0);
	assert_int_equal(o.ncases, 0);
	assert_int_equal(o.rounds, BL_DEFAULT_ROUNDS);
	assert_int_equal(o.duration_s, BL_DEFAULT_DURATION_S);
	assert_false(o.json);
	assert_false(o.no_pin); /* pinned unless told */
	assert_false(o.vmm_threads); /* one process per VM unless told */
}

static void test_vmm_option_picks_threads_or_process(void **state)
{
	struct bl_opts o;
	char msg[256];

	(void)state;
	assert_int_equal(
		parse_line("linux --vmm threads", &o, msg, sizeof(msg)), 0);
	assert_true(o.vmm_threads);
	assert_int_equal(
		parse_line("linux --vmm process", &o, msg, sizeof(msg)), 0);
	assert_false(o.vmm_threads);
	assert_int_equal(parse_line("linux --vmm qemu", &o, msg, sizeof(msg)),
			 -EINVAL);
	assert_non_null(strstr(msg, "--vmm wants process or threads"));
}

static void test_kvstore_case_runs_each_vm_in_its_own_process(void **state)
{
	struct scenario sc;
	char err[512], *text;

	(void)state;
	text = case_ini(case_find("kvstore-4"), "/tmp", false, true);
	assert_non_null(text);
	if (scenario_load_string(text, "kvstore-4.ini", &sc, err, sizeof(err)))
		fail_msg("%s:\n%s", err, text);
	free(text);
	assert_int_equal(sc.nvms, 4);
	for (unsigned i = 0; i < sc.nvms; i++)
		assert_true(sc.vms[i].vmm_process);
	scenario_free(&sc);
	text = case_ini(case_find("kvstore-4"), "/tmp", false, false);
	assert_null(strstr(text, "vmm"));
	free(text);
}

static void test_no_pin_option_turns_pinning_off(void **state)
{
	struct bl_opts o;
	char msg[256];

	(void)state;
	assert_int_equal(parse_line("linux --no-pin --case kvstore-4", &o, msg,
				    sizeof(msg)),
			 0);
	assert_true(o.no_pin);
	assert_int_equal(o.ncases, 1);
	assert_false(o.pause_damon);
	assert_int_equal(
		parse_line("linux --pause-damon", &o, msg, sizeof(msg)), 0);
	assert_true(o.pause_damon);
}

/* The i-th CPU this process may run on, round-robin, read here and not
 * through scenario_spread_cpu(), so that a wrong helper shows. */
static int nth_usable_cpu(unsigned i)
{
	cpu_set_t set;

	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	i %= (unsigned)CPU_COUNT(&set);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set) && !i--)
			return c;
	fail_msg("no usable CPU");
	return -1;
}

static void test_kvstore_case_pins_vm_i_to_usable_cpu_i_mod_n(void **state)
{
	struct scenario sc;
	char err[512], *text;

	(void)state;
	text = case_ini(case_find("kvstore-8"), "/tmp", true, false);
	assert_non_null(text);
	if (scenario_load_string(text, "kvstore-8.ini", &sc, err, sizeof(err)))
		fail_msg("%s:\n%s", err, text);
	free(text);
	assert_int_equal(sc.nvms, 8);
	for (unsigned i = 0; i < sc.nvms; i++) {
		assert_int_equal(sc.vms[i].ncpus, 1);
		if (!CPU_ISSET(nth_usable_cpu(i), &sc.vms[i].cpus))
			fail_msg("VM %s is not on CPU %d", sc.vms[i].name,
				 nth_usable_cpu(i));
	}
	scenario_free(&sc);
}

static void test_unpinned_case_gives_no_vm_cpus(void **state)
{
	struct scenario sc;
	char err[512], *text;

	(void)state;
	text = case_ini(case_find("kvstore-text"), "/tmp", false, false);
	assert_non_null(text);
	assert_null(strstr(text, "cpus"));
	if (scenario_load_string(text, "kvstore-text.ini", &sc, err,
				 sizeof(err)))
		fail_msg("%s:\n%s", err, text);
	free(text);
	for (unsigned i = 0; i < sc.nvms; i++)
		assert_int_equal(sc.vms[i].ncpus, 0);
	scenario_free(&sc);
}

/* bl_run_linux on its own thread, so that the test can look at the VM
 * processes while they run. */
struct linux_run {
	struct scenario sc;
	struct bl_run r;
	char msg[BL_MSG];
	int ret;
};

static void *linux_run_main(void *arg)
{
	struct linux_run *lr = arg;

	lr->ret = bl_run_linux(&lr->sc, NULL, 2, &lr->r, lr->msg,
			       sizeof(lr->msg));
	return NULL;
}

/* The CPUs of the children of this process (the VM processes) whose every
 * thread is pinned to one CPU, into cpus (sorted); how many there are. */
static unsigned pinned_children(int *cpus, unsigned max)
{
	DIR *proc = opendir("/proc");
	struct dirent *d;
	unsigned n = 0;

	assert_non_null(proc);
	while ((d = readdir(proc)) && n < max) {
		char path[300], buf[512], *paren;
		cpu_set_t set;
		int pid = atoi(d->d_name), ppid = 0, cpu = -1;
		bool all = true;
		FILE *f;
		DIR *tasks;
		struct dirent *t;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		buf[0] = '\0';
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
		paren = strrchr(buf, ')');
		if (!paren || sscanf(paren + 2, "%*c %d", &ppid) != 1 ||
		    ppid != getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task", pid);
		tasks = opendir(path);
		while (tasks && (t = readdir(tasks)) && all) {
			int tid = atoi(t->d_name);

			if (tid <= 0)
				continue;
			if (sched_getaffinity(tid, sizeof(set), &set) ||
			    CPU_COUNT(&set) != 1)
				all = false;
			for (int c = 0; all && c < CPU_SETSIZE; c++)
				if (CPU_ISSET(c, &set)) {
					all = cpu < 0 || cpu == c;
					cpu = c;
				}
		}
		if (tasks)
			closedir(tasks);
		if (all && cpu >= 0)
			cpus[n++] = cpu;
	}
	closedir(proc);
	for (unsigned i = 1; i < n; i++) /* insertion sort: n is 2 */
		for (unsigned k = i; k > 0 && cpus[k - 1] > cpus[k]; k--) {
			int x = cpus[k];

			cpus[k] = cpus[k - 1];
			cpus[k - 1] = x;
		}
	return n;
}

struct pin_watch {
	int want[2], got[2];
	unsigned n;
};

static bool children_pinned(void *arg)
{
	struct pin_watch *w = arg;

	w->n = pinned_children(w->got, 2);
	return w->n == 2 && w->got[0] == w->want[0] && w->got[1] == w->want[1];
}

static void test_linux_vm_process_runs_on_the_vms_cpus(void **state)
{
	static struct linux_run lr;
	struct pin_watch w = { .want = { nth_usable_cpu(0),
					 nth_usable_cpu(1) } };
	char text[256], err[512];
	pthread_t tid;

	(void)state;
	memset(&lr, 0, sizeof(lr));
	if (w.want[0] > w.want[1]) {
		int x = w.want[0];

		w.want[0] = w.want[1];
		w.want[1] = x;
	}
	/* two small idle VMs: they touch their memory once and sleep */
	snprintf(text, sizeof(text),
		 "[vm a]\nmemsize = 4M\nworkload = idle\ncpus = %d\n"
		 "[vm b]\nmemsize = 4M\nworkload = idle\ncpus = %d\n",
		 nth_usable_cpu(0), nth_usable_cpu(1));
	if (scenario_load_string(text, "t.ini", &lr.sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(pthread_create(&tid, NULL, linux_run_main, &lr), 0);
	/* both VM processes, every thread of each, on their CPUs */
	if (!th_wait_until(children_pinned, &w, 20000))
		fail_msg(
			"%u VM processes pinned, on CPUs %d and %d; want 2 on %d and %d",
			w.n, w.got[0], w.got[1], w.want[0], w.want[1]);
	pthread_join(tid, NULL);
	if (lr.ret)
		fail_msg("bl_run_linux: %s", lr.msg);
	assert_int_equal(lr.r.integrity_errors, 0);
	scenario_free(&lr.sc);
}

static void test_options_refuse_unknown_cases_and_bad_numbers(void **state)
{
	struct bl_opts o;
	char msg[256];

	(void)state;
	assert_int_equal(parse_line("linux --case nosuch", &o, msg,
				    sizeof(msg)),
			 -EINVAL);
	assert_non_null(strstr(msg, "nosuch"));
	assert_int_equal(parse_line("linux --rounds 0", &o, msg, sizeof(msg)),
			 -EINVAL);
	assert_int_equal(parse_line("linux --rounds 99", &o, msg, sizeof(msg)),
			 -EINVAL);
	assert_int_equal(parse_line("linux --duration x", &o, msg, sizeof(msg)),
			 -EINVAL);
	assert_int_equal(parse_line("linux --bogus", &o, msg, sizeof(msg)),
			 -EINVAL);
	assert_int_equal(parse_line("linux extra", &o, msg, sizeof(msg)),
			 -EINVAL);
	assert_int_equal(parse_line("linux --help", &o, msg, sizeof(msg)), 1);
}

static void test_median_of_odd_and_even_counts_leaves_input_alone(void **state)
{
	double v[] = { 5, 1, 3 }, w[] = { 4, 1, 3, 2 };

	(void)state;
	assert_true(bl_median(v, 3) == 3);
	assert_true(v[0] == 5 && v[1] == 1); /* not sorted in place */
	assert_true(bl_median(w, 4) == 2.5);
	assert_true(bl_median(v, 0) == 0);
	assert_true(bl_ratio(3, 2) == 1.5);
	assert_true(bl_ratio(3, 0) == 0);
}

static void
test_worst_vm_counts_a_killed_vm_as_zero_and_skips_idle(void **state)
{
	struct bl_run r = { .nvms = 3 };

	(void)state;
	r.vms[0] = (struct bl_vm_result){ .ops_s = 100 };
	r.vms[1] = (struct bl_vm_result){ .ops_s = 10, .idle = true };
	r.vms[2] = (struct bl_vm_result){ .ops_s = 50, .integrity_errors = 2 };
	bl_run_totals(&r);
	assert_true(r.total_ops_s == 160);
	assert_true(r.worst_ops_s == 50);
	assert_int_equal(r.integrity_errors, 2);
	r.vms[0].killed = true;
	bl_run_totals(&r);
	assert_true(r.worst_ops_s == 0);
}

/* A case with memvisor, two Linux configurations and the ceiling. */
static void fill_case(struct case_result *cr)
{
	static const double tot[BL_NCONFIGS][2] = {
		{ 300, 500 }, { 400, 200 }, { 600, 600 }, { 0, 0 }, { 900, 0 }
	};

	memset(cr, 0, sizeof(*cr));
	cr->def = case_find("kvstore-2");
	cr->nvms = 2;
	snprintf(cr->vm_names[0], 32, "kv1");
	snprintf(cr->vm_names[1], 32, "kv2");
	cr->budget = 512 * MIB;
	cr->overhead = 8 * MIB;
	cr->limit = cr->budget + cr->overhead;
	snprintf(cr->skipped[BL_ZRAM], BL_MSG, "no zram here");
	for (int c = 0; c < BL_NCONFIGS; c++) {
		if (c == BL_ZRAM)
			continue;
		cr->nruns[c] = c == BL_CEILING ? 1 : 2;
		for (unsigned i = 0; i < cr->nruns[c]; i++) {
			struct bl_run *r = &cr->runs[c][i];

			r->ran = true;
			r->nvms = 2;
			r->vms[0].ops_s = tot[c][i] * 0.75;
			r->vms[1].ops_s = tot[c][i] * 0.25;
			r->oom_kills = c == BL_ZSWAP;
			bl_run_totals(r);
		}
	}
	medians(cr);
}

static double num_of(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

static void test_case_json_has_every_field_and_consistent_ratios(void **state)
{
	static const char *const keys[] = {
		"memvisor_ops_s", "best_linux_ops_s", "unconstrained_ops_s",
		"ratio_total",	  "ratio_worst_vm",   "ratio_vs_unconstrained",
		"oom_kills",	  "integrity_errors", "cgroup_limit_mb"
	};
	struct case_result *cr = calloc(1, sizeof(*cr));
	struct ctx x = { .o = { .rounds = 2, .duration_s = 5 } };
	const cJSON *cfgs, *zram;
	cJSON *o;

	(void)state;
	assert_non_null(cr);
	fill_case(cr);
	o = json_case(&x, cr);
	assert_non_null(o);
	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		num_of(o, keys[i]);
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(o, "name")->valuestring,
		"kvstore-2");
	/* medians: memvisor 400, swap 300, zswap 600 but OOM-killed (no
	 * peer), ceiling 900 */
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(o, "best_linux")->valuestring,
		"swap");
	assert_true(num_of(o, "memvisor_ops_s") == 400);
	assert_true(num_of(o, "best_linux_ops_s") == 300);
	assert_true(num_of(o, "unconstrained_ops_s") == 900);
	assert_true(fabs(num_of(o, "ratio_total") - 400.0 / 300) < 1e-9);
	/* worst VMs: a quarter of each total */
	assert_true(fabs(num_of(o, "ratio_worst_vm") - 100.0 / 75) < 1e-9);
	assert_true(fabs(num_of(o, "ratio_vs_unconstrained") - 400.0 / 900) <
		    1e-9);
	assert_true(num_of(o, "oom_kills") == 2);
	assert_true(num_of(o, "cgroup_limit_mb") == 520);
	cfgs = cJSON_GetObjectItemCaseSensitive(o, "configs");
	zram = cJSON_GetObjectItemCaseSensitive(cfgs, "zram");
	assert_true(
		cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(zram, "ran")));
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(zram, "skipped")->valuestring,
		"no zram here");
	assert_int_equal(
		cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(cfgs, "swap"), "vms")),
		2);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cfgs, "zswap"), "usable")));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cfgs, "swap"), "usable")));
	cJSON_Delete(o);
	free(cr);
}

static void test_case_json_gives_halves_and_their_ratio_or_null(void **state)
{
	struct case_result *cr = calloc(1, sizeof(*cr));
	struct ctx x = { .o = { .rounds = 2, .duration_s = 5 } };
	const cJSON *swap;
	cJSON *o;

	(void)state;
	assert_non_null(cr);
	fill_case(cr);
	/* memvisor's second halves 350 and 450, the swap file's 100 and
	 * 300; the swap file's first halves not measured in one run */
	for (unsigned i = 0; i < 2; i++) {
		cr->runs[BL_MEMVISOR][i].first_half_ops_s = 100;
		cr->runs[BL_MEMVISOR][i].second_half_ops_s = 350 + 100.0 * i;
		cr->runs[BL_SWAP][i].first_half_ops_s = i ? -1 : 700;
		cr->runs[BL_SWAP][i].second_half_ops_s = 100 + 200.0 * i;
	}
	medians(cr);
	o = json_case(&x, cr);
	assert_non_null(o);
	assert_true(num_of(o, "memvisor_second_half_ops_s") == 400);
	assert_true(num_of(o, "best_linux_second_half_ops_s") == 200);
	assert_true(fabs(num_of(o, "ratio_second_half") - 2.0) < 1e-9);
	swap = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(o, "configs"), "swap");
	/* the median of the runs that measured it */
	assert_true(num_of(swap, "first_half_ops_s") == 700);
	cJSON_Delete(o);
	/* no run said: null, and no ratio */
	for (unsigned i = 0; i < 2; i++)
		cr->runs[BL_SWAP][i].second_half_ops_s = -1;
	medians(cr);
	o = json_case(&x, cr);
	assert_non_null(o);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
		o, "best_linux_second_half_ops_s")));
	assert_true(cJSON_IsNull(
		cJSON_GetObjectItemCaseSensitive(o, "ratio_second_half")));
	cJSON_Delete(o);
	free(cr);
}

/*
 * The closing summary has a line per case with memvisor's ratios over the
 * best Linux and over the best within the budget, and counts the cases
 * memvisor is at or above in both figures.
 */
static void test_summary_gives_each_case_its_ratios_and_the_count(void **state)
{
	struct case_result *cr = calloc(3, sizeof(*cr));
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	assert_non_null(cr);
	/* memvisor 400 / 100 against the swap file's 300 / 75: ahead */
	fill_case(&cr[0]);
	/* the second case: every Linux configuration OOM-killed */
	fill_case(&cr[1]);
	cr[1].def = case_find("kvstore-4");
	for (unsigned i = 0; i < 2; i++)
		cr[1].runs[BL_SWAP][i].oom_kills = 1;
	medians(&cr[1]);
	assert_int_equal(cr[1].best, BL_NCONFIGS);
	/* the third: the swap file at three times its figures, ahead */
	fill_case(&cr[2]);
	cr[2].def = case_find("kvstore-8");
	for (unsigned i = 0; i < 2; i++) {
		struct bl_run *r = &cr[2].runs[BL_SWAP][i];

		for (unsigned k = 0; k < r->nvms; k++)
			r->vms[k].ops_s *= 3;
		bl_run_totals(r);
	}
	medians(&cr[2]);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	print_summary(f, cr, 3);
	assert_int_equal(fclose(f), 0);
	print_message("%s", text);
	assert_non_null(strstr(text, "kvstore-2"));
	assert_non_null(strstr(text, "1.33x / 1.33x (swap)"));
	assert_non_null(strstr(text, "kvstore-4"));
	assert_non_null(strstr(text, "no usable peer"));
	assert_non_null(strstr(
		text,
		"at or above the best Linux in both: 1 of the 2 cases with a usable peer (above it in every run, in both: 0); within the budget: 1 of 2"));
	assert_non_null(strstr(text, "0.44x / 0.44x (swap)"));
	/* run by run: memvisor 300-500 against 200-400 overlaps; against
	 * 600-1200 below in every run */
	assert_non_null(
		strstr(text, "1.33x / 1.33x (swap)         overlap / overlap"));
	assert_non_null(
		strstr(text, "0.44x / 0.44x (swap)         below / below"));
	free(text);
	free(cr);
}

/*
 * Run by run, memvisor is "above" a peer only when its lowest run is above
 * the peer's highest, "below" when its highest is under the peer's lowest,
 * and "overlap" otherwise; runs that did not run do not count, and a
 * configuration without runs is no comparison ("none").
 */
static void test_runs_apart_compares_every_run_with_every_run(void **state)
{
	struct case_result *cr = calloc(1, sizeof(*cr));
	cJSON *o;
	struct ctx x = { .o = { .rounds = 2, .duration_s = 5 } };

	(void)state;
	assert_non_null(cr);
	fill_case(cr); /* memvisor 300 and 500, the swap file 400 and 200 */
	assert_string_equal(runs_apart(cr, BL_SWAP, false), "overlap");
	assert_string_equal(runs_apart(cr, BL_SWAP, true), "overlap");
	/* the swap file's 400 did not run: 300-500 above 200 */
	cr->runs[BL_SWAP][0].ran = false;
	assert_string_equal(runs_apart(cr, BL_SWAP, false), "above");
	assert_string_equal(runs_apart(cr, BL_SWAP, true), "above");
	/* the ceiling's 900 is above both of memvisor's */
	assert_string_equal(runs_apart(cr, BL_CEILING, false), "below");
	/* zram never ran; no peer at all */
	assert_string_equal(runs_apart(cr, BL_ZRAM, false), "none");
	assert_string_equal(runs_apart(cr, BL_NCONFIGS, false), "none");
	/* equal ends are an overlap, not a win */
	cr->runs[BL_SWAP][0].ran = true;
	cr->runs[BL_SWAP][0].total_ops_s = 300;
	assert_string_equal(runs_apart(cr, BL_SWAP, false), "overlap");
	/* and the JSON says it beside the ratios */
	cr->runs[BL_SWAP][0].ran = false;
	medians(cr);
	o = json_case(&x, cr);
	assert_non_null(o);
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(o, "runs_total_vs_best")
			->valuestring,
		"above");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(
				    o, "runs_worst_vm_within_budget")
				    ->valuestring,
			    "above");
	cJSON_Delete(o);
	free(cr);
}

static void test_run_report_cuts_its_ops_in_halves_at_the_middle(void **state)
{
	/* 4 s: the cut at second 2; a's 100, 100 | 300, 300 ops, b's 50
	 * each second */
	static const char text[] =
		"{\"duration_s\": 4, \"vms\": ["
		"{\"name\": \"a\", \"ops_s\": 200},"
		"{\"name\": \"b\", \"ops_s\": 50}],"
		" \"series\": {\"t\": [0, 1, 2.001, 3, 4], \"vms\": ["
		"{\"name\": \"a\", \"ops\": [0, 100, 100, 300, 300]},"
		"{\"name\": \"b\", \"ops\": [0, 50, 50, 50, 50]}]}}";
	static const char no_series[] =
		"{\"duration_s\": 4, \"vms\": [{\"name\": \"a\", \"ops_s\": 9}]}";
	struct bl_run r;
	char msg[256] = "";

	(void)state;
	assert_int_equal(bl_parse_run_json(text, &r, msg, sizeof(msg)), 0);
	assert_true(fabs(r.first_half_ops_s - 300 / 2.001) < 1e-9);
	assert_true(fabs(r.second_half_ops_s - 700 / (4 - 2.001)) < 1e-9);
	assert_int_equal(bl_parse_run_json(no_series, &r, msg, sizeof(msg)), 0);
	assert_true(r.first_half_ops_s < 0);
	assert_true(r.second_half_ops_s < 0);
}

static void test_linux_vm_halves_count_a_vm_that_died(void **state)
{
	struct slot s;
	struct bl_run r;

	(void)state;
	memset(&r, 0, sizeof(r));
	/* ran the whole 10 s: 500 ops by second 5, 1500 by 10 */
	memset(&s, 0, sizeof(s));
	s.ops_mid = 500;
	s.mid_s = 5;
	s.end_s = 10;
	atomic_store(&s.ops, 1500);
	add_halves(&r, &s, 10);
	assert_true(r.first_half_ops_s == 100);
	assert_true(r.second_half_ops_s == 200);
	/* killed at second 3: what it published, in the first half only */
	memset(&s, 0, sizeof(s));
	atomic_store(&s.ops, 250);
	add_halves(&r, &s, 10);
	assert_true(r.first_half_ops_s == 150);
	assert_true(r.second_half_ops_s == 200);
	/* killed after the middle: what it published since, over the rest */
	memset(&s, 0, sizeof(s));
	s.ops_mid = 100;
	s.mid_s = 5;
	atomic_store(&s.ops, 600);
	add_halves(&r, &s, 10);
	assert_true(r.first_half_ops_s == 170);
	assert_true(r.second_half_ops_s == 300);
}

/* When zram is the best Linux configuration, the case says how much
 * memory it used beyond the budget (any other peer used none), and the
 * best configuration that kept to the budget, with its ratios. */
static void test_case_json_says_what_zram_held_beyond_the_budget(void **state)
{
	struct case_result *cr = calloc(1, sizeof(*cr));
	struct ctx x = { .o = { .rounds = 2, .duration_s = 5 } };
	cJSON *o;

	(void)state;
	assert_non_null(cr);
	fill_case(cr);
	cr->zram_mb = 75;
	o = json_case(&x, cr);
	assert_non_null(o);
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(o, "best_linux")->valuestring,
		"swap");
	assert_true(num_of(o, "best_linux_outside_budget_mb") == 0);
	/* no peer held anything outside: the same peer within the budget */
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(o, "best_linux_within_budget")
			->valuestring,
		"swap");
	assert_true(num_of(o, "ratio_total_within_budget") ==
		    num_of(o, "ratio_total"));
	cJSON_Delete(o);
	/* zram ran, ahead of the swap file (800 and 700 against 300) */
	cr->skipped[BL_ZRAM][0] = '\0';
	cr->nruns[BL_ZRAM] = 2;
	for (unsigned i = 0; i < 2; i++) {
		struct bl_run *r = &cr->runs[BL_ZRAM][i];

		r->ran = true;
		r->nvms = 2;
		r->vms[0].ops_s = 400 + 50.0 * i;
		r->vms[1].ops_s = 350 - 50.0 * i;
		bl_run_totals(r);
	}
	medians(cr);
	o = json_case(&x, cr);
	assert_non_null(o);
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(o, "best_linux")->valuestring,
		"zram");
	assert_true(num_of(o, "best_linux_outside_budget_mb") == 75);
	/* within the budget the swap file is still the peer, with its ratios */
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(o, "best_linux_within_budget")
			->valuestring,
		"swap");
	assert_true(num_of(o, "best_linux_within_budget_ops_s") ==
		    cr->total[BL_SWAP]);
	assert_true(num_of(o, "ratio_total_within_budget") ==
		    bl_ratio(cr->total[BL_MEMVISOR], cr->total[BL_SWAP]));
	assert_true(
		num_of(o, "ratio_worst_vm_within_budget") ==
		bl_ratio(cr->worst[BL_MEMVISOR], cr->worst[cr->best_worst_in]));
	assert_true(cr->best_worst_in != BL_ZRAM);
	assert_true(num_of(o, "ratio_total") <
		    num_of(o, "ratio_total_within_budget"));
	cJSON_Delete(o);
	/* zram that held nothing outside (it never swapped) keeps to it */
	cr->zram_mb = 0;
	medians(cr);
	o = json_case(&x, cr);
	assert_non_null(o);
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(o, "best_linux_within_budget")
			->valuestring,
		"zram");
	cJSON_Delete(o);
	free(cr);
}

/* zswap's pool under a v1 cgroup is outside the budget too: a zswap that
 * ran ahead is the best of all, and the swap file the best within it. */
static void test_case_json_counts_zswaps_pool_beyond_the_budget(void **state)
{
	struct case_result *cr = calloc(1, sizeof(*cr));
	struct ctx x = { .o = { .rounds = 2, .duration_s = 5 } };
	cJSON *o, *co;

	(void)state;
	assert_non_null(cr);
	fill_case(cr);
	for (unsigned i = 0; i < 2; i++)
		cr->runs[BL_ZSWAP][i].oom_kills = 0;
	cr->runs[BL_ZSWAP][1].zswap_outside_bytes = 40 * MIB;
	medians(cr);
	assert_true(cr->zswap_mb == 40);
	o = json_case(&x, cr);
	assert_non_null(o);
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(o, "best_linux")->valuestring,
		"zswap");
	assert_true(num_of(o, "best_linux_outside_budget_mb") == 40);
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(o, "best_linux_within_budget")
			->valuestring,
		"swap");
	co = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(o, "configs"), "zswap");
	assert_true(num_of(co, "zswap_outside_budget_mb") == 40);
	cJSON_Delete(o);
	free(cr);
}

static void test_no_linux_peer_when_every_config_was_oom_killed(void **state)
{
	struct case_result *cr = calloc(1, sizeof(*cr));
	struct ctx x = { .o = { .rounds = 2, .duration_s = 5 } };
	cJSON *o;

	(void)state;
	assert_non_null(cr);
	fill_case(cr);
	cr->runs[BL_SWAP][1].oom_kills = 1;
	medians(cr);
	o = json_case(&x, cr);
	assert_non_null(o);
	assert_true(cJSON_IsNull(
		cJSON_GetObjectItemCaseSensitive(o, "best_linux")));
	assert_true(cJSON_IsNull(
		cJSON_GetObjectItemCaseSensitive(o, "ratio_total")));
	assert_true(cJSON_IsString(
		cJSON_GetObjectItemCaseSensitive(o, "best_linux_note")));
	assert_true(num_of(o, "oom_kills") == 3);
	cJSON_Delete(o);
	free(cr);
}

static void test_run_report_gives_ops_swap_traffic_and_idle_vms(void **state)
{
	static const char text[] =
		"{\"duration_s\": 5, \"integrity_errors\": 1, \"vms\": ["
		"{\"name\": \"a\", \"workload\": \"kvstore\", \"ops_s\": 1000,"
		" \"integrity_errors\": 1, \"swapin_mb\": 2, \"unzip_mb\": 1,"
		" \"swapout_mb\": 3, \"zip_mb\": 1},"
		"{\"name\": \"b\", \"workload\": \"idle\", \"ops_s\": 5}]}";
	struct bl_run r;
	char msg[256] = "";

	(void)state;
	assert_int_equal(bl_parse_run_json(text, &r, msg, sizeof(msg)), 0);
	assert_true(r.ran);
	assert_int_equal(r.nvms, 2);
	assert_string_equal(r.vms[0].name, "a");
	assert_true(r.vms[1].idle);
	assert_true(r.total_ops_s == 1005);
	assert_true(r.worst_ops_s == 1000);
	assert_int_equal(r.integrity_errors, 1);
	assert_int_equal(r.swapin_bytes, 3 * MIB);
	assert_int_equal(r.swapout_bytes, 4 * MIB);
	assert_int_equal(bl_parse_run_json("{\"error\": \"bad\"}", &r, msg,
					   sizeof(msg)),
			 -EIO);
	assert_non_null(strstr(msg, "bad"));
}

static void test_cpu_window_opens_and_closes_on_run_seconds(void **state)
{
	struct cpu_watch w = { 0 };

	(void)state;
	cpu_line(&w, getpid(), " TIME STATE    FREE", 10);
	cpu_line(&w, getpid(), "  vm kv1  24.0 MB", 10);
	assert_true(w.ta == 0);
	cpu_line(&w, getpid(), "loading 50%\r   1s high     10.4", 10);
	assert_true(w.ta > 0);
	assert_true(w.tb == 0);
	cpu_line(&w, getpid(), "  10s high     10.4", 10);
	assert_true(w.tb >= w.ta);
	/* past the run's end: verification, not measured */
	w.tb = 0;
	cpu_line(&w, getpid(), "  11s high     10.4", 10);
	assert_true(w.tb == 0);
}

static bool exited(void *arg)
{
	pid_t pid = *(pid_t *)arg;
	siginfo_t si = { 0 };

	return !waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) &&
	       si.si_pid == pid;
}

/* Every run of a bench writes its log to the same work directory: the
 * first look at a run's log, right after its start, must not take the
 * per-second lines an earlier run left there for this run's. */
static void test_cpu_window_ignores_an_earlier_runs_log(void **state)
{
	const char *argv[] = { "sh", "-c", "echo '   1s soft'", NULL };
	struct cpu_watch w = { 0 };
	char dir[TH_DIR_LEN], log[TH_PATH_LEN];
	pid_t pid;

	(void)state;
	th_scratch(dir, sizeof(dir), "bl-cpu");
	th_remove_at_teardown(dir);
	snprintf(log, sizeof(log), "%s/memvisor-run.log", dir);
	th_remove_at_teardown(log);
	th_put(log, "   1s soft\n   2s soft\n   3s soft\n");
	pid = run_start("/bin/sh", argv, log);
	assert_true(pid > 0);
	/* as bl_run_memvisor looks: at once, then until the run ends */
	cpu_watch(&w, pid, log, 10);
	assert_true(th_wait_until(exited, &pid, TH_WAIT_MS));
	cpu_watch(&w, pid, log, 10);
	assert_int_equal(waitpid(pid, NULL, WNOHANG), pid);
	/* this run's second 1 opened the window; no second closed it */
	assert_true(w.ta > 0);
	assert_true(w.tb == 0);
}

/* ---- the state file on a fake tree ---- */

struct tree {
	char root[TH_DIR_LEN];
};

static void put_at(const struct tree *t, const char *rel, const char *text)
{
	char path[512], cmd[600];

	snprintf(path, sizeof(path), "%s%s", t->root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	th_put(path, text);
}

static char *read_at(const struct tree *t, const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s%s", t->root, rel);
	return th_slurp(path);
}

/* The file at rel in the tree holds exactly want. */
static void assert_file_is(const struct tree *t, const char *rel,
			   const char *want)
{
	char *text = read_at(t, rel);

	assert_string_equal(text, want);
	free(text);
}

static int tree_setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	if (th_scratch_dir(t->root, sizeof(t->root), "bench-linux")) {
		free(t);
		return -1;
	}
	snprintf(bl_sys_root, sizeof(bl_sys_root), "%s", t->root);
	snprintf(bl_state_path, sizeof(bl_state_path), "%s/state", t->root);
	*state = t;
	return 0;
}

static int tree_teardown(void **state)
{
	struct tree *t = *state;
	char cmd[TH_DIR_LEN + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->root);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", t->root);
	bl_sys_root[0] = '\0';
	free(t);
	return 0;
}

/* zswap's pool is read from /proc/meminfo ("Zswap:", kB). */
static void test_zswap_pool_is_read_from_meminfo(void **state)
{
	const struct tree *t = *state;

	put_at(t, "/proc/meminfo",
	       "MemTotal:       24000000 kB\nZswap:             15360 kB\nZswapped:         197000 kB\n");
	assert_int_equal(bl_zswap_pool(), 15360 * 1024);
	put_at(t, "/proc/meminfo", "MemTotal:       24000000 kB\n");
	assert_int_equal(bl_zswap_pool(), 0);
}

static void
test_state_file_undoes_settings_and_cgroup_newest_first(void **state)
{
	struct tree *t = *state;
	char cg[TH_PATH_LEN], *text;

	put_at(t, "/proc/sys/vm/page-cluster", "3\n");
	put_at(t, "/sys/module/zswap/parameters/enabled", "N\n");
	put_at(t, "/sys/module/zswap/parameters/compressor", "lzo\n");
	assert_int_equal(set_param("/proc/sys/vm/page-cluster", "0"), 0);
	assert_int_equal(set_param("/sys/module/zswap/parameters/enabled", "Y"),
			 0);
	/* a second change of one file: undone to the first value */
	assert_int_equal(set_param("/sys/module/zswap/parameters/enabled", "X"),
			 0);
	assert_int_equal(set_param("/sys/module/zswap/parameters/compressor",
				   "lzo-rle"),
			 0);
	snprintf(cg, sizeof(cg), "%s/cg", t->root);
	assert_int_equal(bl_state_add("cgroup", cg, NULL), 0);
	assert_int_equal(mkdir(cg, 0700), 0);
	put_at(t, "/cg/cgroup.procs", "");
	assert_file_is(t, "/proc/sys/vm/page-cluster", "0");
	text = th_slurp(bl_state_path);
	assert_true(!strncmp(text, "owner\t", 6));
	free(text);

	assert_int_equal(bl_state_undo(NULL), 5);
	assert_file_is(t, "/proc/sys/vm/page-cluster", "3");
	assert_file_is(t, "/sys/module/zswap/parameters/enabled", "N");
	assert_file_is(t, "/sys/module/zswap/parameters/compressor", "lzo");
	assert_int_equal(access(cg, F_OK), -1);
	assert_int_equal(access(bl_state_path, F_OK), -1);
}

static void
test_state_undo_of_changes_that_never_happened_is_no_error(void **state)
{
	struct tree *t = *state;
	char p[TH_PATH_LEN];

	snprintf(p, sizeof(p), "%s/no-such-swap", t->root);
	assert_int_equal(bl_state_add("swap", p, NULL), 0);
	assert_int_equal(bl_state_add("unlink", p, NULL), 0);
	snprintf(p, sizeof(p), "%s/no-such-cgroup", t->root);
	assert_int_equal(bl_state_add("cgroup", p, NULL), 0);
	assert_int_equal(bl_state_add("zram", "7", NULL), 0);
	assert_int_equal(bl_state_undo(NULL), 4);
	assert_int_equal(access(bl_state_path, F_OK), -1);
	/* nothing to undo: nothing done */
	assert_int_equal(bl_state_undo(NULL), 0);
}

/* --pause-damon switches off each DAMON monitor of physical addresses (no
 * other), and the state file switches it on again. */
static void test_damon_paddr_monitors_are_paused_and_undone(void **state)
{
	struct tree *t = *state;
	unsigned first = 9, paused = 9;

	assert_int_equal(bl_damon_paddr(&first), 0);
	assert_int_equal(bl_damon_pause(&paused), 0);
	assert_int_equal(paused, 0);
	put_at(t, "/sys/kernel/mm/damon/admin/kdamonds/0/state", "on\n");
	put_at(t, "/sys/kernel/mm/damon/admin/kdamonds/0/contexts/0/operations",
	       "vaddr\n");
	put_at(t, "/sys/kernel/mm/damon/admin/kdamonds/1/state", "on\n");
	put_at(t, "/sys/kernel/mm/damon/admin/kdamonds/1/contexts/0/operations",
	       "paddr\n");
	put_at(t, "/sys/kernel/mm/damon/admin/kdamonds/2/state", "off\n");
	put_at(t, "/sys/kernel/mm/damon/admin/kdamonds/2/contexts/0/operations",
	       "paddr\n");
	assert_int_equal(bl_damon_paddr(&first), 1);
	assert_int_equal(first, 1);
	assert_int_equal(bl_damon_pause(&paused), 0);
	assert_int_equal(paused, 1);
	assert_file_is(t, "/sys/kernel/mm/damon/admin/kdamonds/1/state", "off");
	assert_file_is(t, "/sys/kernel/mm/damon/admin/kdamonds/0/state",
		       "on\n");
	assert_int_equal(bl_damon_paddr(&first), 0);
	assert_int_equal(bl_state_undo(NULL), 1);
	assert_file_is(t, "/sys/kernel/mm/damon/admin/kdamonds/1/state", "on");
	assert_int_equal(bl_damon_paddr(&first), 1);
}

static void test_probes_name_what_the_kernel_lacks(void **state)
{
	struct tree *t = *state;
	char msg[BL_MSG] = "";

	assert_int_equal(bl_cgroup_probe(msg, sizeof(msg)), -ENOTSUP);
	assert_non_null(strstr(msg, "memory cgroup"));
	if (geteuid() == 0) {
		assert_int_equal(bl_swap_probe(BL_ZSWAP, msg, sizeof(msg)),
				 -ENOTSUP);
		assert_non_null(strstr(msg, "zswap"));
		assert_int_equal(bl_swap_probe(BL_ZRAM, msg, sizeof(msg)),
				 -ENOTSUP);
		assert_non_null(strstr(msg, "zram"));
	}
	put_at(t, "/sys/fs/cgroup/memory/memory.limit_in_bytes", "0\n");
	assert_int_equal(bl_cgroup_probe(msg, sizeof(msg)), 0);
}

/* ---- end to end ---- */

/* What the run of pid `pid` with swap directory `dir` left behind: its
 * swap file still on, or one of its cgroups.  Only its own: another bench
 * running on the machine at the same time is not this run's leftover. */
static bool leftovers_found(const char *dir, pid_t pid, char *what, size_t len)
{
	char *swaps = th_slurp("/proc/swaps"), line[300], cmd[300];
	bool found = strstr(swaps, dir) != NULL;
	FILE *f;

	free(swaps);
	if (found) {
		snprintf(what, len, "a swap file still on");
		return true;
	}
	snprintf(
		cmd, sizeof(cmd),
		"ls /sys/fs/cgroup/memory /sys/fs/cgroup /sys/fs/cgroup/unified 2>/dev/null | grep -- 'memvisor-bench-linux-%ld-'",
		(long)pid);
	f = popen(cmd, "r");
	if (f && fgets(line, sizeof(line), f)) {
		snprintf(what, len, "a cgroup left: %s", line);
		found = true;
	}
	if (f)
		pclose(f);
	return found;
}

static void test_tiny_case_end_to_end_gives_consistent_json(void **state)
{
	char bin[PATH_MAX + 16], dir[TH_DIR_LEN], out[TH_PATH_LEN],
		err[TH_PATH_LEN], what[TH_PATH_LEN];
	const char *argv[16];
	posix_spawn_file_actions_t fa;
	const cJSON *c, *cfgs, *v;
	uint64_t until;
	char *text, *old_tmpdir;
	cJSON *root;
	int status, spawned;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip(); /* cgroups and swap need root */
	th_memvisor_bin(bin, sizeof(bin));
	th_scratch(dir, sizeof(dir), "bench-linux-e2e");
	snprintf(out, sizeof(out), "%s/out.json", dir);
	snprintf(err, sizeof(err), "%s/err.txt", dir);
	argv[0] = bin;
	argv[1] = "bench";
	argv[2] = "linux";
	argv[3] = "--case";
	argv[4] = "tiny";
	argv[5] = "--duration";
	argv[6] = "2";
	argv[7] = "--rounds";
	argv[8] = "1";
	argv[9] = "--json";
	argv[10] = "--swapdir";
	argv[11] = dir;
	argv[12] = NULL;
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT, 0644);
	posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT, 0644);
	/* the bench, and the memvisor run it starts, work in dir with TMPDIR
	 * ".": the run's consoles and daemon socket go there, not into /tmp,
	 * by a path short enough for a socket's name (run.c takes a TMPDIR
	 * of at most 32 bytes; dir's path may be longer) */
	assert_int_equal(posix_spawn_file_actions_addchdir_np(&fa, dir), 0);
	old_tmpdir = getenv("TMPDIR");
	if (old_tmpdir)
		old_tmpdir = strdup(old_tmpdir);
	setenv("TMPDIR", ".", 1);
	spawned = posix_spawn(&pid, bin, &fa, NULL, (char **)argv, environ);
	if (old_tmpdir)
		setenv("TMPDIR", old_tmpdir, 1);
	else
		unsetenv("TMPDIR");
	free(old_tmpdir);
	assert_int_equal(spawned, 0);
	posix_spawn_file_actions_destroy(&fa);
	until = th_now_ms() + E2E_MS;
	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (th_now_ms() > until) {
			kill(pid, SIGINT);
			waitpid(pid, &status, 0);
			fail_msg("bench linux still running after %d ms",
				 E2E_MS);
		}
		th_nap_ms(POLL_MS_T);
	}
	text = th_slurp(err);
	if (strstr(text, "another memvisor bench linux")) {
		free(text);
		skip(); /* someone runs the real benchmark now */
	}
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status))
		fail_msg("exit %d:\n%s", WEXITSTATUS(status), text);
	free(text);
	text = th_slurp(out);
	root = cJSON_Parse(text);
	free(text);
	assert_non_null(root);
	c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "cases"),
			       0);
	assert_non_null(c);
	assert_string_equal(
		cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring,
		"tiny");
	assert_true(num_of(c, "memvisor_ops_s") > 0);
	assert_true(num_of(c, "unconstrained_ops_s") > 0);
	assert_true(num_of(c, "integrity_errors") == 0);
	num_of(c, "oom_kills");
	/* pinned by default, memvisor taking the case's cpus = keys */
	assert_true(cJSON_IsTrue(
		cJSON_GetObjectItemCaseSensitive(c, "vms_pinned")));
	cfgs = cJSON_GetObjectItemCaseSensitive(c, "configs");
	/* memvisor's CPU window opened (its VM processes' CPU counted) */
	v = cJSON_GetObjectItemCaseSensitive(cfgs, "memvisor");
	assert_true(num_of(v, "cpu_user_cores") + num_of(v, "cpu_sys_cores") >
		    0);
	/* its report's series cut in halves, both with work in them */
	assert_true(num_of(v, "first_half_ops_s") > 0);
	assert_true(num_of(v, "second_half_ops_s") > 0);
	assert_true(num_of(c, "memvisor_second_half_ops_s") > 0);
	/* swap on a file runs wherever root and a memory cgroup are */
	v = cJSON_GetObjectItemCaseSensitive(cfgs, "swap");
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "ran"))) {
		const cJSON *why =
			cJSON_GetObjectItemCaseSensitive(v, "skipped");

		assert_true(cJSON_IsString(why));
		fprintf(stderr, "skipped: no Linux peer here: %s\n",
			why->valuestring);
		cJSON_Delete(root);
		skip();
	}
	/* each Linux VM read its ops at the middle second too */
	assert_true(num_of(v, "first_half_ops_s") > 0);
	assert_true(num_of(v, "second_half_ops_s") > 0);
	/* the best Linux peer ran without OOM kills; there may be none */
	v = cJSON_GetObjectItemCaseSensitive(c, "best_linux");
	if (cJSON_IsString(v)) {
		const cJSON *b =
			cJSON_GetObjectItemCaseSensitive(cfgs, v->valuestring);

		assert_true(cJSON_IsTrue(
			cJSON_GetObjectItemCaseSensitive(b, "usable")));
		assert_true(num_of(b, "oom_kills") == 0);
		assert_true(fabs(num_of(c, "ratio_total") -
				 num_of(c, "memvisor_ops_s") /
					 num_of(c, "best_linux_ops_s")) < 1e-6);
	} else {
		assert_true(cJSON_IsNull(v));
		assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(
			c, "best_linux_note")));
	}
	assert_true(fabs(num_of(c, "ratio_vs_unconstrained") -
			 num_of(c, "memvisor_ops_s") /
				 num_of(c, "unconstrained_ops_s")) < 1e-6);
	/* the best within the budget: a usable peer that held nothing
	 * outside the cgroup's limit, or none */
	v = cJSON_GetObjectItemCaseSensitive(c, "best_linux_within_budget");
	if (cJSON_IsString(v)) {
		const cJSON *b =
			cJSON_GetObjectItemCaseSensitive(cfgs, v->valuestring);

		assert_true(cJSON_IsTrue(
			cJSON_GetObjectItemCaseSensitive(b, "usable")));
		assert_true(strcmp(v->valuestring, "zram") ||
			    num_of(b, "zram_outside_budget_mb") == 0);
		assert_true(strcmp(v->valuestring, "zswap") ||
			    num_of(b, "zswap_outside_budget_mb") == 0);
		assert_true(fabs(num_of(c, "ratio_total_within_budget") -
				 num_of(c, "memvisor_ops_s") /
					 num_of(b, "ops_s")) < 1e-6);
	} else {
		assert_true(cJSON_IsNull(v));
	}
	/* a peer this kernel lacks says why instead */
	for (int k = BL_ZSWAP; k <= BL_ZRAM; k++) {
		v = cJSON_GetObjectItemCaseSensitive(cfgs, bl_config_name(k));
		assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
				    v, "ran")) ||
			    cJSON_IsString(cJSON_GetObjectItemCaseSensitive(
				    v, "skipped")));
	}
	cJSON_Delete(root);
	assert_false(leftovers_found(dir, pid, what, sizeof(what)));
	snprintf(what, sizeof(what), "rm -rf '%s'", dir);
	assert_int_equal(system(what), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_options_give_cases_rounds_duration_and_json),
		cmocka_unit_test(test_options_default_to_every_case_two_rounds),
		cmocka_unit_test(test_no_pin_option_turns_pinning_off),
		cmocka_unit_test(test_vmm_option_picks_threads_or_process),
		cmocka_unit_test(
			test_kvstore_case_runs_each_vm_in_its_own_process),
		cmocka_unit_test(
			test_kvstore_case_pins_vm_i_to_usable_cpu_i_mod_n),
		cmocka_unit_test(test_unpinned_case_gives_no_vm_cpus),
		cmocka_unit_test(test_linux_vm_process_runs_on_the_vms_cpus),
		cmocka_unit_test(
			test_options_refuse_unknown_cases_and_bad_numbers),
		cmocka_unit_test(
			test_median_of_odd_and_even_counts_leaves_input_alone),
		cmocka_unit_test(
			test_worst_vm_counts_a_killed_vm_as_zero_and_skips_idle),
		cmocka_unit_test(
			test_case_json_has_every_field_and_consistent_ratios),
		cmocka_unit_test(
			test_no_linux_peer_when_every_config_was_oom_killed),
		cmocka_unit_test(
			test_case_json_gives_halves_and_their_ratio_or_null),
		cmocka_unit_test(
			test_summary_gives_each_case_its_ratios_and_the_count),
		cmocka_unit_test(
			test_runs_apart_compares_every_run_with_every_run),
		cmocka_unit_test(
			test_case_json_says_what_zram_held_beyond_the_budget),
		cmocka_unit_test(
			test_case_json_counts_zswaps_pool_beyond_the_budget),
		cmocka_unit_test_setup_teardown(
			test_zswap_pool_is_read_from_meminfo, tree_setup,
			tree_teardown),
		cmocka_unit_test(
			test_run_report_cuts_its_ops_in_halves_at_the_middle),
		cmocka_unit_test(test_linux_vm_halves_count_a_vm_that_died),
		cmocka_unit_test(
			test_run_report_gives_ops_swap_traffic_and_idle_vms),
		cmocka_unit_test(
			test_cpu_window_opens_and_closes_on_run_seconds),
		cmocka_unit_test(test_cpu_window_ignores_an_earlier_runs_log),
		cmocka_unit_test_setup_teardown(
			test_state_file_undoes_settings_and_cgroup_newest_first,
			tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(
			test_state_undo_of_changes_that_never_happened_is_no_error,
			tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(
			test_damon_paddr_monitors_are_paused_and_undone,
			tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(
			test_probes_name_what_the_kernel_lacks, tree_setup,
			tree_teardown),
		cmocka_unit_test(
			test_tiny_case_end_to_end_gives_consistent_json),
	};

	/* MV_BL_SKIP_E2E=1: the unit tests alone, without the heavy run */
	if (getenv("MV_BL_SKIP_E2E"))
		cmocka_set_skip_filter("*end_to_end*");
	return th_run_tests(tests);
}
