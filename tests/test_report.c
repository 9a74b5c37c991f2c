// SPDX-License-Identifier: MIT
/*
 * test_report.c - the JSON report of `memvisor run`: it replaces the file
 * whole (temporary file and rename) or leaves it as it was, it carries the
 * exit status and the error of a failed run, lost_pages and the verified
 * flag of each VM, and its path is checked before the run; the host's
 * figures count a VM in another process as the host's own.
 */

/*
 * The report and the scenario reader are part of the command, not of a
 * library the Makefile links into tests, so they are compiled in here, as
 * test_scenario.c does.
 */
#include "helper.h"
#include "../tools/files.c"
#include "../tools/report.c"
#include "../tools/scenario.c"
#include "../tools/series.c"

#include <dirent.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/resource.h>

#include <cmocka.h>

/* A scenario of nvms small VMs and a result for it, as run.c fills one. */
struct fixture {
	struct scenario sc;
	struct vm_result vms[8];
	struct run_result res;
	char dir[TH_DIR_LEN]; /* a fresh scratch directory */
	char path[TH_PATH_LEN]; /* dir/report.json */
};

static int setup(void **state)
{
	static const char text[] = "[host]\nmemsize = 64M\n"
				   "[vm a]\nmemsize = 4M\n"
				   "[vm b]\nmemsize = 4M\nworkload = random\n";
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];

	if (!f || scenario_load_string(text, "t.ini", &f->sc, err, sizeof(err)))
		return -1;
	if (th_scratch_dir(f->dir, sizeof(f->dir), "report"))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/report.json", f->dir);
	f->res.sc = &f->sc;
	f->res.swapdir = "/var/tmp/memvisor";
	f->res.have_stats = true;
	f->res.duration_s = 1;
	f->res.vms = f->vms;
	f->res.error = "";
	for (size_t i = 0; i < f->sc.nvms; i++) {
		f->vms[i].vm = &f->sc.vms[i];
		f->vms[i].verified = true;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct dirent *e;
	char p[TH_PATH_LEN + 256];
	DIR *d = opendir(f->dir);

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' || strlen(e->d_name) > 2) {
			snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(f->dir);
	scenario_free(&f->sc);
	free(f);
	return 0;
}

/* Entries of dir other than . and .. */
static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static cJSON *write_and_parse(struct fixture *f)
{
	struct report_target t;
	char err[512], *text;
	cJSON *root;

	if (report_json_prepare(f->path, &t, err, sizeof(err)))
		fail_msg("%s", err);
	if (report_write_json(&t, &f->res, err, sizeof(err)))
		fail_msg("%s", err);
	report_json_target_free(&t);
	text = th_slurp(f->path);
	root = cJSON_Parse(text);
	free(text);
	assert_non_null(root);
	return root;
}

static void test_report_replaces_an_earlier_one_by_rename(void **state)
{
	struct fixture *f = *state;
	struct stat before, after;
	cJSON *root;

	th_put(f->path, "{\"earlier\": true}\n");
	assert_int_equal(stat(f->path, &before), 0);
	root = write_and_parse(f);
	assert_int_equal(stat(f->path, &after), 0);
	/* a new file took the name: the old one was never truncated */
	assert_true(before.st_ino != after.st_ino);
	assert_null(cJSON_GetObjectItem(root, "earlier"));
	assert_non_null(cJSON_GetObjectItem(root, "vms"));
	/* and no temporary file is left beside it */
	assert_int_equal(entries(f->dir), 1);
	cJSON_Delete(root);
}

static void test_report_keeps_the_mode_of_the_file_it_replaces(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	cJSON *root;

	th_put(f->path, "{}\n");
	assert_int_equal(chmod(f->path, 0640), 0);
	root = write_and_parse(f);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	cJSON_Delete(root);
}

static void test_failed_write_keeps_the_earlier_report(void **state)
{
	struct fixture *f = *state;
	struct rlimit old, tiny;
	struct report_target t;
	char err[512], *text;

	th_put(f->path, "{\"earlier\": true}\n");
	assert_int_equal(report_json_prepare(f->path, &t, err, sizeof(err)), 0);
	/* files may not grow past 64 bytes: the report cannot be written */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	tiny = (struct rlimit){ 64, old.rlim_max };
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &tiny), 0);
	assert_int_equal(report_write_json(&t, &f->res, err, sizeof(err)),
			 -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_non_null(strstr(err, "earlier report there is unchanged"));
	text = th_slurp(f->path);
	assert_string_equal(text, "{\"earlier\": true}\n");
	free(text);
	assert_int_equal(entries(f->dir), 1);
	report_json_target_free(&t);
}

static void test_report_has_lost_pages_and_exit_status(void **state)
{
	struct fixture *f = *state;
	cJSON *root, *host;

	f->res.host.lost_pages = 3;
	f->res.exit_status = 3;
	f->res.error = "engine bug: 3 guest page(s) lost";
	root = write_and_parse(f);
	host = cJSON_GetObjectItem(root, "host");
	assert_int_equal(
		cJSON_GetNumberValue(cJSON_GetObjectItem(host, "lost_pages")),
		3);
	assert_int_equal(
		cJSON_GetNumberValue(cJSON_GetObjectItem(root, "exit_status")),
		3);
	assert_string_equal(
		cJSON_GetStringValue(cJSON_GetObjectItem(root, "error")),
		"engine bug: 3 guest page(s) lost");
	cJSON_Delete(root);
}

static void test_successful_report_has_no_error(void **state)
{
	struct fixture *f = *state;
	cJSON *root = write_and_parse(f);

	assert_int_equal(
		cJSON_GetNumberValue(cJSON_GetObjectItem(root, "exit_status")),
		0);
	assert_null(cJSON_GetObjectItem(root, "error"));
	assert_null(cJSON_GetObjectItem(root, "interrupted"));
	cJSON_Delete(root);
}

static void test_report_of_a_run_that_never_started_has_the_error(void **state)
{
	struct fixture *f = *state;
	cJSON *root;

	f->res.have_stats = false;
	f->res.sc = NULL;
	f->res.scenario_name = "web.ini";
	f->res.exit_status = 2;
	f->res.error = "web.ini:7: bad size '512'";
	root = write_and_parse(f);
	assert_string_equal(
		cJSON_GetStringValue(cJSON_GetObjectItem(root, "scenario")),
		"web.ini");
	assert_string_equal(
		cJSON_GetStringValue(cJSON_GetObjectItem(root, "error")),
		"web.ini:7: bad size '512'");
	assert_int_equal(
		cJSON_GetNumberValue(cJSON_GetObjectItem(root, "exit_status")),
		2);
	assert_null(cJSON_GetObjectItem(root, "vms"));
	cJSON_Delete(root);
}

static void test_report_says_which_vms_were_not_verified(void **state)
{
	struct fixture *f = *state;
	cJSON *root, *vms;

	f->vms[1].verified = false;
	f->res.unverified = 1;
	f->res.interrupted = true;
	f->res.interrupted_during = "verification";
	f->res.signal = SIGINT;
	f->res.exit_status = 4;
	f->res.error = "interrupted";
	root = write_and_parse(f);
	vms = cJSON_GetObjectItem(root, "vms");
	assert_true(cJSON_IsTrue(
		cJSON_GetObjectItem(cJSON_GetArrayItem(vms, 0), "verified")));
	assert_true(cJSON_IsFalse(
		cJSON_GetObjectItem(cJSON_GetArrayItem(vms, 1), "verified")));
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
				    root, "interrupted_during")),
			    "verification");
	assert_string_equal(
		cJSON_GetStringValue(cJSON_GetObjectItem(root, "signal")),
		"SIGINT");
	assert_int_equal(cJSON_GetNumberValue(
				 cJSON_GetObjectItem(root, "unverified_vms")),
			 1);
	cJSON_Delete(root);
}

static void test_path_in_a_missing_directory_is_refused(void **state)
{
	struct fixture *f = *state;
	struct report_target t;
	char path[TH_PATH_LEN], err[512];

	snprintf(path, sizeof(path), "%s/no/such/report.json", f->dir);
	assert_int_equal(report_json_prepare(path, &t, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "cannot create a file in"));
	assert_null(t.path);
}

static void test_directory_as_report_path_is_refused(void **state)
{
	struct fixture *f = *state;
	struct report_target t;
	char err[512];

	assert_int_equal(report_json_prepare(f->dir, &t, err, sizeof(err)),
			 -EISDIR);
	assert_non_null(strstr(err, "is a directory"));
}

static void test_checking_the_path_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct report_target t;
	char err[512], *text;

	th_put(f->path, "{\"earlier\": true}\n");
	assert_int_equal(report_json_prepare(f->path, &t, err, sizeof(err)), 0);
	text = th_slurp(f->path);
	assert_string_equal(text, "{\"earlier\": true}\n");
	free(text);
	assert_int_equal(entries(f->dir), 1);
	report_json_target_free(&t);
}

static void test_device_is_written_in_place_not_replaced(void **state)
{
	struct fixture *f = *state;
	struct report_target t;
	struct stat st;
	char err[512];

	assert_int_equal(report_json_prepare("/dev/null", &t, err, sizeof(err)),
			 0);
	assert_true(t.in_place);
	assert_int_equal(report_write_json(&t, &f->res, err, sizeof(err)), 0);
	assert_int_equal(stat("/dev/null", &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	report_json_target_free(&t);
}

static void test_link_is_followed_and_its_target_replaced(void **state)
{
	struct fixture *f = *state;
	struct report_target t;
	char link[TH_PATH_LEN], err[512], *text;
	struct stat st;

	th_put(f->path, "{}\n");
	snprintf(link, sizeof(link), "%s/latest.json", f->dir);
	assert_int_equal(symlink("report.json", link), 0);
	assert_int_equal(report_json_prepare(link, &t, err, sizeof(err)), 0);
	assert_int_equal(report_write_json(&t, &f->res, err, sizeof(err)), 0);
	report_json_target_free(&t);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	text = th_slurp(f->path);
	assert_non_null(strstr(text, "\"vms\""));
	free(text);
}

/* A pinned VM's CPUs are in its entry, in the kernel's list syntax; an
 * unpinned VM's "cpus" is "". */
static void test_report_gives_each_vms_cpus(void **state)
{
	struct fixture *f = *state;
	const cJSON *vms;
	cJSON *root;

	/* what cpus = 0-2,5 or pin_vcpus would have set on VM a */
	CPU_ZERO(&f->sc.vms[0].cpus);
	for (int c = 0; c < 3; c++)
		CPU_SET(c, &f->sc.vms[0].cpus);
	CPU_SET(5, &f->sc.vms[0].cpus);
	f->sc.vms[0].ncpus = 4;
	root = write_and_parse(f);
	vms = cJSON_GetObjectItem(root, "vms");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
				    cJSON_GetArrayItem(vms, 0), "cpus")),
			    "0-2,5");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
				    cJSON_GetArrayItem(vms, 1), "cpus")),
			    "");
	cJSON_Delete(root);
}

/* A VM in another process adds into the host's figures as the host's own
 * VMs do: what it compressed or swapped out (its cache's evictions to swap
 * counted once) to the host's reclaim, and its swap errors, sharing and
 * large pages; the host line and the JSON say the sums. */
static void test_host_counts_a_remote_vm_as_its_own(void **state)
{
	struct fixture *f = *state;
	const struct mv_vm_stats st = {
		.zip_pages = 512,
		.swapout_pages = 300,
		.zip_evict_pages = 44,
		.swap_errors = 2,
		.alloc_waits = 30,
		.blocked_waits = 400,
		.shrd_pages = 100,
		.zero_pages = 28,
		.shrdsvd_pages = 64,
		.share_scanned_pages = 5000,
		.cow_breaks = 3,
		.lpage_pages = 512,
		.lpage_collapses = 2,
		.lpage_breaks = 1,
	};
	char *text = NULL;
	size_t len = 0;
	FILE *out;
	cJSON *root, *host;

	f->res.host.memsize_pages = 16384;
	f->res.host.reclaim_pages = 256; /* its own VMs' */
	f->res.host.swap_errors = 1;
	f->res.host.alloc_waits = 2;
	report_host_add_remote(&f->res.host, &st);
	assert_int_equal(f->res.host.alloc_waits, 32);
	assert_int_equal(f->res.host.blocked_waits, 400);
	assert_int_equal(f->res.host.reclaim_pages, 256 + 512 + 300 - 44);
	assert_int_equal(f->res.host.swap_errors, 3);
	assert_int_equal(f->res.host.share_saved_pages, 64);
	assert_int_equal(f->res.host.share_frames, 100 + 28 - 64);
	assert_int_equal(f->res.host.share_refs, 100);
	assert_int_equal(f->res.host.share_scanned_pages, 5000);
	assert_int_equal(f->res.host.cow_breaks, 3);
	assert_int_equal(f->res.host.lpage_pages, 512);
	assert_int_equal(f->res.host.lpage_collapses, 2);
	out = open_memstream(&text, &len);
	assert_non_null(out);
	report_print(out, &f->res);
	assert_int_equal(fclose(out), 0);
	/* 1024 pages */
	assert_non_null(strstr(text, "4.0 MB reclaimed"));
	assert_non_null(strstr(text, "3 swap errors"));
	assert_non_null(strstr(text, "32 waits for a free frame"));
	assert_non_null(strstr(text, "400 faults held in low"));
	assert_non_null(strstr(text, "5000 pages scanned"));
	free(text);
	root = write_and_parse(f);
	host = cJSON_GetObjectItem(root, "host");
	assert_true(cJSON_GetNumberValue(
			    cJSON_GetObjectItem(host, "reclaimed_mb")) == 4.0);
	cJSON_Delete(root);
}

/* A size that is an exact tie at 0.1 MB (78912 pages are 308.25 MB) reads
 * the same in the text and in the JSON: both round it to the even digit. */
static void test_text_and_json_round_a_tie_alike(void **state)
{
	struct fixture *f = *state;
	char *text = NULL;
	size_t len = 0;
	FILE *out;
	cJSON *root;

	f->res.host.memsize_pages = 16384;
	f->res.host.reclaim_pages = 78912;
	f->res.host.consumed_pages = 78912 + 128; /* 308.75 MB */
	out = open_memstream(&text, &len);
	assert_non_null(out);
	report_print(out, &f->res);
	assert_int_equal(fclose(out), 0);
	assert_non_null(strstr(text, "308.2 MB reclaimed"));
	assert_non_null(strstr(text, "consumed 308.8 MB"));
	free(text);
	root = write_and_parse(f);
	assert_true(th_jnum(cJSON_GetObjectItem(root, "host"),
			    "reclaimed_mb") == 308.2);
	assert_true(th_jnum(cJSON_GetObjectItem(root, "host"), "consumed_mb") ==
		    308.8);
	cJSON_Delete(root);
}

/* The scheduler's balances, and why those before the period's end came,
 * in the text's scheduler line and in the JSON's host. */
static void test_report_counts_balances_by_why(void **state)
{
	struct fixture *f = *state;
	char *text = NULL;
	size_t len = 0;
	FILE *out;
	cJSON *root, *host;

	f->res.host.memsize_pages = 16384;
	f->res.host.balances = 40;
	f->res.host.balances_state = 3;
	f->res.host.balances_asked = 2;
	f->res.host.balances_early = 11;
	out = open_memstream(&text, &len);
	assert_non_null(out);
	report_print(out, &f->res);
	assert_int_equal(fclose(out), 0);
	assert_non_null(strstr(
		text,
		"scheduler: 40 balances, of them before the period's end 3 for a new state, 2 asked (shares, reservation, limit), 11 for a demand cap outgrown"));
	free(text);
	root = write_and_parse(f);
	host = cJSON_GetObjectItem(root, "host");
	assert_true(th_jnum(host, "balances") == 40);
	assert_true(th_jnum(host, "balances_state") == 3);
	assert_true(th_jnum(host, "balances_asked") == 2);
	assert_true(th_jnum(host, "balances_early") == 11);
	cJSON_Delete(root);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_report_replaces_an_earlier_one_by_rename),
		T(test_report_counts_balances_by_why),
		T(test_report_keeps_the_mode_of_the_file_it_replaces),
		T(test_failed_write_keeps_the_earlier_report),
		T(test_report_has_lost_pages_and_exit_status),
		T(test_successful_report_has_no_error),
		T(test_report_of_a_run_that_never_started_has_the_error),
		T(test_report_says_which_vms_were_not_verified),
		T(test_path_in_a_missing_directory_is_refused),
		T(test_directory_as_report_path_is_refused),
		T(test_checking_the_path_changes_nothing),
		T(test_device_is_written_in_place_not_replaced),
		T(test_link_is_followed_and_its_target_replaced),
		T(test_report_gives_each_vms_cpus),
		T(test_host_counts_a_remote_vm_as_its_own),
		T(test_text_and_json_round_a_tie_alike),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
