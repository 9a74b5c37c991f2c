// SPDX-License-Identifier: MIT
/*
 * test_qemu.c - QEMU guests (tools/qemu.c): the command line and
 * environment built for a guest, the test guest's verdict line, and real
 * boots of the project's test guest (build/guest, `make guest`) under TCG:
 * it fills and verifies its memory and says so on the console file, its
 * balloon driver answers a QMP inflation, a QEMU that dies is an error at
 * once, and every stop is clean and bounded.
 *
 * The boots are skipped, saying why, only when no QEMU can run at all here
 * (no qemu-system-x86_64).  A missing test guest is a failure: the Makefile
 * builds it.
 */
#include "../tools/qemu.c"
#include "../tools/qmp.c"

#include <dirent.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helper.h"

#define MiB (1ull << 20)
/* A boot of the test guest takes about 10 s on an idle machine; with both
 * cores busy, a few times that. */
#define BOOT_MS 150000u

static char *argv_join(char **v)
{
	static char buf[8192];
	size_t off = 0;

	buf[0] = 0;
	for (; *v; v++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s",
					off ? " " : "", *v);
	return buf;
}

static struct qemu_config base_config(void)
{
	struct qemu_config c = {
		.name = "g1",
		.memsize = 256 * MiB,
		.binary = "/usr/bin/qemu-system-x86_64",
		.accel = "tcg",
		.kernel = "/k/vmlinuz",
		.initrd = "/k/initrd.img",
		.console_path = "/tmp/c.txt",
		.qmp_path = "/tmp/q.sock",
	};
	return c;
}

static void test_argv_has_ram_console_qmp_and_the_balloon(void **state)
{
	struct qemu_config c = base_config();
	char err[256], **v;

	(void)state;
	assert_int_equal(qemu_build_argv(&c, &v, err, sizeof(err)), 0);
	assert_string_equal(
		argv_join(v),
		"/usr/bin/qemu-system-x86_64 -name g1 -accel tcg -m 256M -smp 1 "
		"-nodefaults -display none -no-reboot -serial file:/tmp/c.txt "
		"-qmp unix:/tmp/q.sock,server=on,wait=off -kernel /k/vmlinuz "
		"-initrd /k/initrd.img -append " QEMU_DEFAULT_APPEND
		" -device virtio-balloon-pci,id=balloon0,free-page-reporting=on");
	qemu_strv_free(v);
}

static void test_accel_list_tries_each_in_order(void **state)
{
	struct qemu_config c = base_config();
	char err[256], **v;

	(void)state;
	c.accel = "kvm:tcg";
	assert_int_equal(qemu_build_argv(&c, &v, err, sizeof(err)), 0);
	assert_non_null(strstr(argv_join(v), " -accel kvm -accel tcg -m "));
	qemu_strv_free(v);
	c.accel = "hvf";
	assert_int_equal(qemu_build_argv(&c, &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bad accelerator list 'hvf'"));
	assert_null(v);
}

static void test_extra_args_are_split_keeping_quoted_blanks(void **state)
{
	struct qemu_config c = base_config();
	char err[256], **v;
	size_t n = 0;

	(void)state;
	c.qemu_args = "  -S -object 'memory-backend-ram,id=m, x'\t\"-a b\"c ";
	c.append = "console=ttyS0 mvguest.rounds=1";
	assert_int_equal(qemu_build_argv(&c, &v, err, sizeof(err)), 0);
	while (v[n])
		n++;
	assert_true(n > 4);
	assert_string_equal(v[n - 4], "-S");
	assert_string_equal(v[n - 3], "-object");
	assert_string_equal(v[n - 2], "memory-backend-ram,id=m, x");
	assert_string_equal(v[n - 1], "-a bc");
	assert_non_null(strstr(argv_join(v),
			       " -append console=ttyS0 mvguest.rounds=1 "));
	qemu_strv_free(v);
}

static void test_bad_settings_are_refused_with_the_reason(void **state)
{
	struct qemu_config c = base_config();
	char err[256], **v;

	(void)state;
	c.memsize = 256 * MiB + 4096;
	assert_int_equal(qemu_build_argv(&c, &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "multiple of 1 MiB"));
	c = base_config();
	c.qemu_args = "-S 'open";
	assert_int_equal(qemu_build_argv(&c, &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unterminated ' quote"));
	c = base_config();
	c.console_path = "/tmp/a,b";
	assert_int_equal(qemu_build_argv(&c, &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "comma"));
	c = base_config();
	c.qmp_path = NULL;
	assert_int_equal(qemu_build_argv(&c, &v, err, sizeof(err)), -EINVAL);
}

static const char *env_get(char **env, const char *name)
{
	size_t l = strlen(name);

	for (; *env; env++)
		if (!strncmp(*env, name, l) && (*env)[l] == '=')
			return *env + l + 1;
	return NULL;
}

static void test_env_loads_the_agent_only_with_a_preload(void **state)
{
	struct qemu_config c = base_config();
	char **env;

	(void)state;
	setenv("MEMVISOR_SOCKET", "/stale", 1);
	assert_int_equal(qemu_build_env(&c, &env), 0);
	assert_null(env_get(env, "LD_PRELOAD"));
	assert_null(env_get(env, "MEMVISOR_RAM_BYTES"));
	qemu_strv_free(env);

	c.preload = "/b/libmemvisor-preload.so";
	c.agent_socket = "/run/mv.sock";
	c.swapdir = "/swap";
	c.agent_settings = "Mem.SamplePeriod=10,Mem.IdleTax=75";
	assert_int_equal(qemu_build_env(&c, &env), 0);
	assert_string_equal(env_get(env, "MEMVISOR_SETTINGS"),
			    "Mem.SamplePeriod=10,Mem.IdleTax=75");
	assert_string_equal(env_get(env, "LD_PRELOAD"),
			    "/b/libmemvisor-preload.so");
	assert_string_equal(env_get(env, "MEMVISOR_RAM_BYTES"), "268435456");
	assert_string_equal(env_get(env, "MEMVISOR_SOCKET"), "/run/mv.sock");
	assert_string_equal(env_get(env, "MEMVISOR_VM_NAME"), "g1");
	assert_string_equal(env_get(env, "MEMVISOR_QMP"), "/tmp/q.sock");
	assert_string_equal(env_get(env, "MEMVISOR_SWAP_DIR"), "/swap");
	assert_null(env_get(env, "MEMVISOR_MEMSIZE"));
	/* the launcher's value replaced the inherited one, once */
	{
		int n = 0;

		for (char **e = env; *e; e++)
			n += !strncmp(*e, "MEMVISOR_SOCKET=", 16);
		assert_int_equal(n, 1);
	}
	qemu_strv_free(env);
	unsetenv("MEMVISOR_SOCKET");
}

static void test_verdict_lines_parse_and_others_do_not(void **state)
{
	struct qemu_verdict v = { 0 };

	(void)state;
	assert_true(qemu_parse_verdict_line(
		"\x1b[2JMVGUEST verdict=ok pages=33280 errors=0 checks=133120 secs=6.2\r\n",
		&v));
	assert_true(v.found && v.ok);
	assert_int_equal(v.pages, 33280);
	assert_int_equal(v.checks, 133120);
	memset(&v, 0, sizeof(v));
	assert_true(qemu_parse_verdict_line(
		"MVGUEST verdict=fail pages=10 errors=3 checks=40 secs=1.0",
		&v));
	assert_true(v.found && !v.ok);
	assert_int_equal(v.errors, 3);
	memset(&v, 0, sizeof(v));
	assert_false(qemu_parse_verdict_line(
		"MVGUEST round=1 pages=1 freed=0 errors=0", &v));
	assert_false(qemu_parse_verdict_line(
		"MVGUEST verdict=maybe pages=1 errors=0 checks=1 secs=1", &v));
	assert_false(qemu_parse_verdict_line("MVGUEST verdict=ok pages=1", &v));
	assert_false(v.found);
}

/* ---- real boots ---- */

struct boot {
	char dir[TH_DIR_LEN];
	char console[TH_PATH_LEN], qmp[TH_SOCK_LEN], log[TH_PATH_LEN];
	struct qemu_config cfg;
	struct qemu_vm *vm;
};

static bool qemu_missing(void)
{
	char path[PATH_MAX];

	return resolve_binary(QEMU_DEFAULT_BINARY, path, sizeof(path)) != 0;
}

static struct boot *boot_prepare(const char *append, const char *qemu_args)
{
	static struct boot b;
	char k[PATH_MAX], i[PATH_MAX];

	memset(&b, 0, sizeof(b));
	assert_int_equal(qemu_guest_paths(k, sizeof(k), i, sizeof(i)), 0);
	if (access(k, R_OK) || access(i, R_OK))
		fail_msg("the test guest is not built (%s, %s): run make guest",
			 k, i);
	th_scratch(b.dir, sizeof(b.dir), "qemu");
	th_remove_at_teardown(b.dir);
	snprintf(b.console, sizeof(b.console), "%s/console.txt", b.dir);
	th_socket_path(b.qmp, sizeof(b.qmp), b.dir, "qmp.sock");
	th_remove_at_teardown(b.qmp);
	snprintf(b.log, sizeof(b.log), "%s/console.txt.qemu.log", b.dir);
	th_remove_at_teardown(b.console);
	th_remove_at_teardown(b.log);
	b.cfg = (struct qemu_config){ .name = "t1",
				      .memsize = 256 * MiB,
				      .accel = "tcg",
				      .append = append,
				      .qemu_args = qemu_args,
				      .console_path = b.console,
				      .qmp_path = b.qmp };
	return &b;
}

static void boot_destroy(void *arg)
{
	struct boot *b = arg;

	qemu_destroy(b->vm);
	b->vm = NULL;
}

static void boot_start(struct boot *b)
{
	char err[512];
	int ret;

	ret = qemu_start(&b->cfg, 60000, &b->vm, err, sizeof(err));
	if (ret)
		fail_msg("qemu_start: %s", err);
	th_at_teardown(boot_destroy, b);
}

static void test_test_guest_verifies_its_memory_and_powers_off(void **state)
{
	struct qemu_verdict v;
	struct boot *b;
	char *con;
	int status = -1;

	(void)state;
	if (qemu_missing())
		skip();
	b = boot_prepare("console=ttyS0 quiet panic=-1 mvguest.fill_pct=60 "
			 "mvguest.rounds=2 mvguest.pause_ms=500 "
			 "mvguest.zero_pct=20 mvguest.text_pct=30",
			 NULL);
	boot_start(b);
	if (qemu_wait(b->vm, BOOT_MS, &status))
		fail_msg(
			"the guest did not power off within %u s; console:\n%s",
			BOOT_MS / 1000, th_slurp(b->console));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(qemu_read_verdict(b->console, &v), 0);
	con = th_slurp(b->console);
	if (!v.found || !v.ok)
		fail_msg("no good verdict; console:\n%s", con);
	assert_int_equal(v.errors, 0);
	assert_int_equal(v.rounds, 2);
	/* 60% of the guest's memory, in 2 MiB chunks */
	assert_true(v.pages * 4096 > 100 * MiB);
	/* the program checked every page at least once per round */
	assert_true(v.checks >= 3 * v.pages);
	assert_non_null(strstr(con, "MVGUEST module 05-virtio_balloon.ko ok"));
	free(con);
	assert_int_equal(qemu_stop(b->vm, 10000), QEMU_EXITED);
	boot_destroy(b);
}

struct console_wait {
	const char *path;
	const char *text;
};

static bool console_has(void *arg)
{
	struct console_wait *w = arg;
	char *con = th_slurp(w->path);
	bool has = strstr(con, w->text) != NULL;

	free(con);
	return has;
}

struct inflated {
	struct qmp *q;
	uint64_t below;
	uint64_t actual;
	int err;
};

static bool balloon_below(void *arg)
{
	struct inflated *in = arg;

	in->err = qmp_query_balloon(in->q, &in->actual, 5000);
	return in->err || in->actual <= in->below;
}

struct stats_wait {
	struct qmp *q;
	struct qmp_guest_stats st;
};

static bool stats_reported(void *arg)
{
	struct stats_wait *w = arg;

	return qmp_guest_stats(w->q, &w->st, 5000) || w->st.last_update > 0;
}

static void test_balloon_inflation_is_acknowledged_by_the_guest(void **state)
{
	struct stats_wait stats = { 0 };
	struct inflated in = { 0 };
	struct boot *b;
	uint64_t actual = 0;
	char *con;
	int how;

	(void)state;
	if (qemu_missing())
		skip();
	/* the guest holds 40% of its memory and verifies it until stopped */
	b = boot_prepare("console=ttyS0 quiet panic=-1 mvguest.fill_pct=40 "
			 "mvguest.rounds=0 mvguest.hold_s=600",
			 NULL);
	boot_start(b);
	{
		struct console_wait w = { b->console, "MVGUEST hold pass=1 " };

		if (!th_wait_until(console_has, &w, BOOT_MS))
			fail_msg(
				"the guest did not fill its memory; console:\n%s",
				th_slurp(b->console));
	}
	in.q = qemu_qmp(b->vm);
	assert_int_equal(qmp_query_balloon(in.q, &actual, 5000), 0);
	assert_int_equal(actual, 256 * MiB);

	/* the driver is loaded by the guest program; QEMU keeps the request
	 * and the driver acts on it once it is there */
	assert_int_equal(qmp_balloon(in.q, 192 * MiB, 5000), 0);
	in.below = 192 * MiB;
	if (!th_wait_until(balloon_below, &in, BOOT_MS) || in.err)
		fail_msg(
			"the balloon stayed at %llu bytes (err %d); console:\n%s",
			(unsigned long long)in.actual, in.err,
			th_slurp(b->console));
	assert_int_equal(in.actual, 192 * MiB);

	/* the driver's statistics arrive once polling is on */
	stats.q = in.q;
	assert_int_equal(qmp_guest_stats_enable(in.q, 1, 5000), 0);
	assert_true(th_wait_until(stats_reported, &stats, 60000));
	assert_true(stats.st.total_memory > 0 &&
		    stats.st.total_memory <= (int64_t)(256 * MiB));
	assert_true(stats.st.free_memory >= 0);

	/* deflating gives the memory back; the guest verifies all it holds
	 * once more after that */
	assert_int_equal(qmp_balloon(in.q, 256 * MiB, 5000), 0);
	in.below = 256 * MiB;
	assert_true(th_wait_until(balloon_below, &in, 60000));
	{
		char *text = th_slurp(b->console), *last = text, *p;
		unsigned pass = 0;
		char next[64];
		struct console_wait w = { b->console, next };

		while ((p = strstr(last, "MVGUEST hold pass=")))
			last = p + 1;
		if (last != text)
			pass = (unsigned)strtoul(last - 1 + 18, NULL, 10);
		free(text);
		snprintf(next, sizeof(next), "MVGUEST hold pass=%u ", pass + 2);
		assert_true(th_wait_until(console_has, &w, BOOT_MS));
	}

	how = qemu_stop(b->vm, 30000);
	assert_int_equal(how, QEMU_QUIT);
	con = th_slurp(b->console);
	/* the guest kept verifying while the balloon came and went */
	if (!strstr(con, "MVGUEST hold pass=") || strstr(con, "MVGUEST error"))
		fail_msg("console:\n%s", con);
	free(con);
	boot_destroy(b);
}

/* libmemvisor-preload.so of this build (beside tests/). */
static bool preload_of_this_build(char *buf, size_t len)
{
	char self[PATH_MAX - 64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return false;
	self[n] = 0;
	slash = strrchr(self, '/');
	if (!slash)
		return false;
	*slash = 0;
	snprintf(buf, len, "%s/../libmemvisor-preload.so", self);
	return access(buf, R_OK) == 0;
}

static void test_guest_under_the_agent_on_half_its_memory_verifies(void **state)
{
	unsigned long long faults = 0, out = 0, in = 0, zip = 0, unzip = 0,
			   zero = 0, shared = 0, discarded = 0;
	char preload[PATH_MAX], agent_log[TH_PATH_LEN], swapdir[TH_PATH_LEN];
	struct qemu_verdict v;
	struct boot *b;
	char *log, *ends;
	int status = -1;

	(void)state;
	if (qemu_missing())
		skip();
	if (!preload_of_this_build(preload, sizeof(preload))) {
		/* sanitizer builds make none: it could not be preloaded into
		 * an unsanitized QEMU */
		fprintf(stderr,
			"test_qemu: no libmemvisor-preload.so in this build: the agent test is skipped\n");
		skip();
	}
	b = boot_prepare("console=ttyS0 quiet panic=-1 mvguest.fill_pct=60 "
			 "mvguest.rounds=2 mvguest.pause_ms=3000",
			 NULL);
	snprintf(agent_log, sizeof(agent_log), "%s/agent.log", b->dir);
	snprintf(swapdir, sizeof(swapdir), "%s/swap", b->dir);
	assert_int_equal(mkdir(swapdir, 0700), 0);
	th_remove_at_teardown(swapdir);
	th_remove_at_teardown(agent_log);
	b->cfg.preload = preload;
	b->cfg.swapdir = swapdir;
	b->cfg.agent_log = agent_log;
	/* the guest fills 60% of 256 MiB beside its kernel: more than 96 MiB
	 * of machine memory, so pages swap or compress and come back */
	b->cfg.agent_memsize = 96 * MiB;
	boot_start(b);
	if (qemu_wait(b->vm, BOOT_MS * 2, &status))
		fail_msg(
			"the guest did not power off; console:\n%s\nagent:\n%s",
			th_slurp(b->console), th_slurp(agent_log));
	assert_int_equal(qemu_read_verdict(b->console, &v), 0);
	log = th_slurp(agent_log);
	if (!v.found || !v.ok)
		fail_msg("no good verdict; console:\n%s\nagent:\n%s",
			 th_slurp(b->console), log);
	assert_non_null(strstr(log, "attached guest RAM"));
	ends = strstr(log, " ends (");
	if (!ends || !(ends = strstr(ends, "faults ")) ||
	    sscanf(ends,
		   "faults %llu, swapped out %llu, swapped in %llu, compressed %llu decompressed %llu, zero pages %llu, shared %llu, discarded %llu",
		   &faults, &out, &in, &zip, &unzip, &zero, &shared,
		   &discarded) != 8)
		fail_msg("no figures from the agent:\n%s", log);
	/* pages left machine memory and came back, and the guest found every
	 * one of them as it wrote it */
	if (!(out + zip) || !(in + unzip))
		fail_msg("nothing was reclaimed and brought back:\n%s", log);
	/* the pages the guest freed came back through free page reporting */
	if (!discarded)
		fail_msg("no page was discarded:\n%s", log);
	free(log);
	boot_destroy(b);
}

static void test_a_qemu_that_dies_is_an_error_not_a_hang(void **state)
{
	struct boot *b;
	uint64_t actual, t0;

	(void)state;
	if (qemu_missing())
		skip();
	/* -S: the guest never runs, so this costs no CPU */
	b = boot_prepare(NULL, "-S");
	boot_start(b);
	assert_int_equal(qmp_query_balloon(qemu_qmp(b->vm), &actual, 5000), 0);
	kill(qemu_pid(b->vm), SIGKILL);
	t0 = th_now_ms();
	assert_int_equal(qmp_query_balloon(qemu_qmp(b->vm), &actual, 60000),
			 -EPIPE);
	assert_true(th_now_ms() - t0 < 10000);
	assert_int_equal(qemu_wait(b->vm, 10000, NULL), 0);
	assert_false(qemu_running(b->vm));
	assert_int_equal(qemu_stop(b->vm, 10000), QEMU_EXITED);
	boot_destroy(b);
}

static void test_a_paused_qemu_stops_on_quit(void **state)
{
	struct boot *b;
	int status = 0;

	(void)state;
	if (qemu_missing())
		skip();
	b = boot_prepare(NULL, "-S");
	boot_start(b);
	assert_true(qemu_running(b->vm));
	assert_int_equal(qemu_stop(b->vm, 20000), QEMU_QUIT);
	assert_false(qemu_running(b->vm));
	assert_int_equal(qemu_wait(b->vm, 0, &status), 0);
	assert_true(WIFEXITED(status));
	boot_destroy(b);
}

static void test_a_qemu_that_refuses_its_arguments_is_reported(void **state)
{
	struct boot *b;
	char err[512];

	(void)state;
	if (qemu_missing())
		skip();
	b = boot_prepare(NULL, "-no-such-option");
	assert_int_equal(qemu_start(&b->cfg, 60000, &b->vm, err, sizeof(err)),
			 -ECHILD);
	assert_null(b->vm);
	assert_non_null(strstr(err, "QEMU exited (status 1)"));
	assert_non_null(strstr(err, "no-such-option"));
}

/* Every thread of process pid may run on cpu alone. */
static void assert_process_pinned(pid_t pid, int cpu)
{
	char path[64];
	struct dirent *d;
	unsigned n = 0;
	DIR *dp;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dp = opendir(path);
	assert_non_null(dp);
	while ((d = readdir(dp))) {
		int tid = atoi(d->d_name);
		cpu_set_t set;

		if (tid <= 0)
			continue;
		n++;
		/* a thread may end between readdir and the question */
		if (sched_getaffinity(tid, sizeof(set), &set))
			continue;
		if (CPU_COUNT(&set) != 1 || !CPU_ISSET(cpu, &set))
			fail_msg(
				"QEMU thread %d may run on %d CPUs, not only on %d",
				tid, CPU_COUNT(&set), cpu);
	}
	closedir(dp);
	assert_true(n > 0);
}

static void test_a_pinned_qemu_runs_on_its_cpus_only(void **state)
{
	struct boot *b;
	cpu_set_t set, mine, after;
	int cpu = -1;

	(void)state;
	if (qemu_missing())
		skip();
	assert_int_equal(sched_getaffinity(0, sizeof(mine), &mine), 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &mine))
			cpu = c; /* the last: not always CPU 0 */
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* -S: the guest never runs, so this costs no CPU */
	b = boot_prepare(NULL, "-S");
	b->cfg.affinity = &set;
	boot_start(b);
	assert_process_pinned(qemu_pid(b->vm), cpu);
	/* and memvisor itself is not: the child set its own affinity */
	assert_int_equal(sched_getaffinity(0, sizeof(after), &after), 0);
	assert_true(CPU_EQUAL(&after, &mine));
	assert_int_equal(qemu_stop(b->vm, 20000), QEMU_QUIT);
	boot_destroy(b);
}

static void test_a_qemu_that_cannot_be_pinned_is_reported(void **state)
{
	struct boot *b;
	cpu_set_t usable, set;
	char err[512];
	int missing = -1;

	(void)state;
	if (qemu_missing())
		skip();
	assert_int_equal(sched_getaffinity(0, sizeof(usable), &usable), 0);
	for (int c = 0; c < CPU_SETSIZE && missing < 0; c++)
		if (!CPU_ISSET(c, &usable))
			missing = c;
	CPU_ZERO(&set);
	CPU_SET(missing, &set);
	b = boot_prepare(NULL, "-S");
	b->cfg.affinity = &set;
	assert_int_equal(qemu_start(&b->cfg, 60000, &b->vm, err, sizeof(err)),
			 -EINVAL);
	assert_null(b->vm);
	assert_non_null(strstr(err, "cannot pin QEMU to its CPUs"));
}

static void test_a_missing_qemu_binary_is_reported(void **state)
{
	struct boot *b;
	char err[512];

	(void)state;
	b = boot_prepare(NULL, NULL);
	b->cfg.binary = "/nonexistent/qemu";
	assert_int_equal(qemu_start(&b->cfg, 1000, &b->vm, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "cannot run QEMU '/nonexistent/qemu'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_argv_has_ram_console_qmp_and_the_balloon),
		cmocka_unit_test(test_accel_list_tries_each_in_order),
		cmocka_unit_test(
			test_extra_args_are_split_keeping_quoted_blanks),
		cmocka_unit_test(test_bad_settings_are_refused_with_the_reason),
		cmocka_unit_test(test_env_loads_the_agent_only_with_a_preload),
		cmocka_unit_test(test_verdict_lines_parse_and_others_do_not),
		cmocka_unit_test(test_a_missing_qemu_binary_is_reported),
		cmocka_unit_test(
			test_a_qemu_that_refuses_its_arguments_is_reported),
		cmocka_unit_test(test_a_paused_qemu_stops_on_quit),
		cmocka_unit_test(test_a_pinned_qemu_runs_on_its_cpus_only),
		cmocka_unit_test(test_a_qemu_that_cannot_be_pinned_is_reported),
		cmocka_unit_test(test_a_qemu_that_dies_is_an_error_not_a_hang),
		cmocka_unit_test(
			test_test_guest_verifies_its_memory_and_powers_off),
		cmocka_unit_test(
			test_balloon_inflation_is_acknowledged_by_the_guest),
		cmocka_unit_test(
			test_guest_under_the_agent_on_half_its_memory_verifies),
	};

	if (qemu_missing())
		fprintf(stderr,
			"test_qemu: no %s in PATH: the boot tests are skipped (install qemu-system-x86)\n",
			QEMU_DEFAULT_BINARY);
	return th_run_tests(tests);
}
