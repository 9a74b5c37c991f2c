// SPDX-License-Identifier: MIT
/*
 * test_guest_process.c - `vmm = process` VMs (tools/guest_process.c, and
 * how tools/run.c runs them), by running the built command: two VMs in
 * processes of their own on an overcommitted host are both verified, with
 * ops and with engine stats the daemon got from their agents; a VM whose
 * process is killed during the run makes the run exit 1 naming it; the
 * child's lines are read as they are written; a VM whose process cannot
 * start makes the run exit 2 with the child's reason; a pinned VM's whole
 * process runs on its CPU.
 *
 * Every wait polls the command's output or its exit with a deadline; none
 * sleeps to let something happen.
 */
#include "../tools/guest_process.c"

#include <dirent.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "helper.h"

/* Longest a step may take on a loaded machine before it counts as hung. */
#define STEP_MS 90000

static int setup(void **state)
{
	struct th_cmd *f;

	if (th_cmd_setup(state, "guest-process"))
		return -1;
	f = *state;
	/* the run's consoles and daemon socket go into its own directory,
	 * not into /tmp: memvisor runs there and makes them in ".", a path
	 * short enough for its socket names (it takes a TMPDIR of at most
	 * 32 bytes, and the scratch directory's path may be longer) */
	f->in_dir = true;
	setenv("TMPDIR", ".", 1);
	return 0;
}

/* Two 24 MiB VMs, each in its own process, on a 32 MiB host, for as long
 * as the test lets them run. */
static const char two_processes[] =
	"memsize = 32M\nduration = 600\n"
	"[vm a]\nmemsize = 24M\nworkload = kvstore\nvmm = process\nseed = 3\n"
	"[vm b]\nmemsize = 24M\nworkload = random\nvmm = process\nseed = 4\n"
	"threads = 2\n";

static bool working_and_reclaimed(const struct th_live *l, void *arg)
{
	(void)arg;
	return l->ops_s > 0 && l->swapped_mb + l->cache_mb > 0;
}

static void
test_two_process_vms_on_an_overcommitted_host_are_verified(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN];
	double consumed = 0, swapped = 0, t;
	cJSON *root, *vms, *vm;

	th_cmd_scenario(f, "s.ini", two_processes, ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, NULL);
	/* the guests work and their memory is reclaimed (so the agents have
	 * reported); two seconds on, the test ends the run (SIGINT), which
	 * stops the guests and verifies every page as a timed end does */
	t = th_cmd_wait_live(f, working_and_reclaimed, NULL, STEP_MS) + 1;
	th_cmd_wait_live(f, th_live_after, &t, STEP_MS);
	kill(f->pid, SIGINT);
	assert_int_equal(th_wait_exit(&f->pid, f->out, STEP_MS), 4);
	root = th_cmd_report(f);
	assert_int_equal(th_jnum(root, "exit_status"), 4);
	assert_string_equal(th_jstr(root, "interrupted_during"), "run");
	vms = cJSON_GetObjectItem(root, "vms");
	assert_int_equal(cJSON_GetArraySize(vms), 2);
	for (int i = 0; i < 2; i++) {
		vm = cJSON_GetArrayItem(vms, i);
		assert_string_equal(th_jstr(vm, "vmm"), "process");
		assert_true(cJSON_IsTrue(cJSON_GetObjectItem(vm, "verified")));
		assert_int_equal(th_jnum(vm, "integrity_errors"), 0);
		assert_true(th_jnum(vm, "ops") > 0);
		assert_true(th_jnum(vm, "ops_s") > 0);
		/* from the daemon: what each agent reported */
		assert_true(th_jnum(vm, "consumed_mb") > 0);
		consumed += th_jnum(vm, "consumed_mb");
		swapped += th_jnum(vm, "swcur_mb");
	}
	/* 48 MiB of guests on 32: the daemon's grants made them reclaim */
	assert_true(consumed < 32);
	assert_true(swapped > 0 || consumed < 24);
	cJSON_Delete(root);
}

/* A long run whose VM a's process is killed: the run says so at once,
 * and ends (here by SIGINT) with status 1, naming the VM. */
static void test_killed_process_vm_makes_the_run_exit_1_naming_it(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN], *from;
	cJSON *root;
	int pid = 0;

	th_cmd_scenario(
		f, "s.ini",
		"memsize = 64M\nduration = 600\n"
		"[vm a]\nmemsize = 8M\nworkload = random\nvmm = process\n"
		"[vm b]\nmemsize = 8M\nworkload = idle\nvmm = process\n",
		ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, "--quiet", NULL);
	/* the daemon's log names the pid of the agent of VM a */
	from = th_cmd_wait_output(f, "VM a (pid ", STEP_MS);
	assert_int_equal(sscanf(from, "VM a (pid %d", &pid), 1);
	free(from);
	assert_true(pid > 1 && pid != f->pid);
	/* the banner comes once every VM's process has started its workload:
	 * killed before that, VM a is one that could not start (status 2) */
	free(th_cmd_wait_output(f, " of guest memory on a ", STEP_MS));
	assert_int_equal(kill(pid, SIGKILL), 0);
	free(th_cmd_wait_output(f, "VM a: its process", STEP_MS));
	kill(f->pid, SIGINT);
	assert_int_equal(th_wait_exit(&f->pid, f->out, STEP_MS), 1);
	root = th_cmd_report(f);
	assert_int_equal(th_jnum(root, "exit_status"), 1);
	assert_non_null(strstr(th_jstr(root, "error"), "VM a: its process"));
	assert_non_null(strstr(th_jstr(root, "error"), "killed by signal 9"));
	cJSON_Delete(root);
}

/* Its own host refuses the VM (all of it reserved, more than its memsize
 * less minFree): a VM that could not start, exit status 2, with the
 * child's reason. */
static void test_process_vm_that_cannot_start_exits_2_with_why(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN];
	cJSON *root;

	th_cmd_scenario(
		f, "s.ini",
		"memsize = 256M\nduration = 600\n"
		"[vm a]\nmemsize = 16M\nreservation = 16M\nvmm = process\n",
		ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, "--quiet", NULL);
	assert_int_equal(th_wait_exit(&f->pid, f->out, STEP_MS), 2);
	root = th_cmd_report(f);
	assert_int_equal(th_jnum(root, "exit_status"), 2);
	assert_non_null(strstr(th_jstr(root, "error"),
			       "VM a: its process could not start: cannot "
			       "create the VM"));
	cJSON_Delete(root);
}

/* Cpus_allowed_list of /proc/PID/task/TID into buf ("" if gone) and
 * the thread's name into comm. */
static void thread_cpus(int pid, const char *tid, char *buf, size_t len,
			char *comm, size_t clen)
{
	char path[400], *text, *line, *nl;

	buf[0] = comm[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%s/status", pid, tid);
	text = th_slurp(path);
	if (!text)
		return;
	line = strstr(text, "Cpus_allowed_list:");
	if (line) {
		line += strlen("Cpus_allowed_list:");
		line += strspn(line, " \t");
		nl = strchr(line, '\n');
		snprintf(buf, len, "%.*s", nl ? (int)(nl - line) : 0, line);
	}
	line = strstr(text, "Name:");
	if (line) {
		line += strlen("Name:");
		line += strspn(line, " \t");
		nl = strchr(line, '\n');
		snprintf(comm, clen, "%.*s", nl ? (int)(nl - line) : 0, line);
	}
	free(text);
}

struct pinned_view {
	int pid;
	char want[16]; /* the VM's CPU, as the kernel lists it */
	bool fault_there, vcpu_there, main_free;
};

/* The VM process's threads: its fault thread and a guest thread on the
 * VM's CPU, its main thread not pinned. */
static bool pinned_as_asked(void *arg)
{
	struct pinned_view *v = arg;
	char dirpath[64], cpus[64], comm[32], main_tid[16];
	struct dirent *d;
	DIR *dir;

	snprintf(dirpath, sizeof(dirpath), "/proc/%d/task", v->pid);
	snprintf(main_tid, sizeof(main_tid), "%d", v->pid);
	dir = opendir(dirpath);
	if (!dir)
		return false;
	v->fault_there = v->vcpu_there = v->main_free = false;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		thread_cpus(v->pid, d->d_name, cpus, sizeof(cpus), comm,
			    sizeof(comm));
		if (!strcmp(d->d_name, main_tid))
			v->main_free = strcmp(cpus, v->want) != 0;
		else if (!strcmp(comm, "mv-fault"))
			v->fault_there = !strcmp(cpus, v->want);
		else if (strncmp(comm, "mv-", 3) && !strcmp(cpus, v->want))
			v->vcpu_there = true;
	}
	closedir(dir);
	return v->fault_there && v->vcpu_there && v->main_free;
}

/* A pinned process VM's guest threads run on its CPU, and its fault
 * thread follows them there (Mem.ServiceAffinity); the process itself
 * is not pinned (guest_process.c says why). */
static void test_pinned_process_vm_runs_its_vcpus_on_its_cpu(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN], body[256], *from;
	struct pinned_view v = { 0 };
	cpu_set_t set;
	int cpu = -1;

	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	if (CPU_COUNT(&set) < 2)
		skip(); /* one CPU: pinned and free look the same */
	for (int c = CPU_SETSIZE - 1; c >= 0; c--)
		if (CPU_ISSET(c, &set))
			cpu = c; /* the lowest usable */
	snprintf(v.want, sizeof(v.want), "%d", cpu);
	snprintf(body, sizeof(body),
		 "memsize = 64M\nduration = 600\n"
		 "[vm a]\nmemsize = 8M\nworkload = random\nvmm = process\n"
		 "cpus = %d\n",
		 cpu);
	th_cmd_scenario(f, "s.ini", body, ini, sizeof(ini));
	th_cmd_start(f, "run", ini, "--json", f->json, "--quiet", NULL);
	from = th_cmd_wait_output(f, "VM a (pid ", STEP_MS);
	assert_int_equal(sscanf(from, "VM a (pid %d", &v.pid), 1);
	free(from);
	assert_true(th_wait_until(pinned_as_asked, &v, STEP_MS));
	kill(f->pid, SIGINT);
	assert_int_equal(th_wait_exit(&f->pid, f->out, STEP_MS), 4);
}

static void test_parse_reads_each_kind_of_line(void **state)
{
	struct guest_process_line gl;

	(void)state;
	guest_process_parse("MVPROC ops=12 errors=0", &gl);
	assert_int_equal(gl.kind, GP_OPS);
	assert_int_equal(gl.ops, 12);
	guest_process_parse(
		"MVPROC verdict=ok ops=99 errors=0 pages=7 secs=2.500", &gl);
	assert_int_equal(gl.kind, GP_VERDICT);
	assert_true(gl.ok);
	assert_int_equal(gl.ops, 99);
	assert_int_equal(gl.pages, 7);
	assert_true(gl.secs > 2.4 && gl.secs < 2.6);
	guest_process_parse(
		"MVPROC verdict=fail ops=5 errors=3 pages=1 secs=1.0", &gl);
	assert_int_equal(gl.kind, GP_VERDICT);
	assert_false(gl.ok);
	assert_int_equal(gl.errors, 3);
	guest_process_parse("MVPROC first_error=page 4 differs", &gl);
	assert_int_equal(gl.kind, GP_FIRST_ERROR);
	assert_string_equal(gl.text, "page 4 differs");
	guest_process_parse("MVPROC error=cannot create the VM", &gl);
	assert_int_equal(gl.kind, GP_ERROR);
	guest_process_parse("memvisor guest-process a: ops=1 errors=0", &gl);
	assert_int_equal(gl.kind, GP_NONE);
}

/* Run by hand with bad arguments it says so on stdout and exits 2. */
static void test_bad_arguments_exit_2_with_an_error_line(void **state)
{
	struct th_cmd *f = *state;
	char *text;

	th_cmd_start(f, GUEST_PROCESS_CMD, "--name", "x", NULL);
	assert_int_equal(th_wait_exit(&f->pid, f->out, STEP_MS), 2);
	text = th_slurp(f->out);
	assert_non_null(strstr(text, "MVPROC error=bad arguments"));
	free(text);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, th_cmd_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_reads_each_kind_of_line),
		T(test_bad_arguments_exit_2_with_an_error_line),
		T(test_two_process_vms_on_an_overcommitted_host_are_verified),
		T(test_killed_process_vm_makes_the_run_exit_1_naming_it),
		T(test_process_vm_that_cannot_start_exits_2_with_why),
		T(test_pinned_process_vm_runs_its_vcpus_on_its_cpu),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
