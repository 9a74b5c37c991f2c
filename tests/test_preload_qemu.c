// SPDX-License-Identifier: MIT
/*
 * test_preload_qemu.c - libmemvisor-preload.so under a real QEMU: the
 * project's test guest (build/guest, `make guest`) boots under TCG with its
 * guest RAM attached to memvisor on a local budget below the RAM size,
 * verifies every page it filled while memvisor compresses and swaps, and
 * its balloon inflation and free page reporting (QEMU's madvise discards)
 * come back to the host as discarded pages.  The agent's log is the
 * witness: its last line has the VM's figures.  Heavy (boots): run it
 * under the bench lock.  Skipped only where QEMU or the preload library
 * do not exist (sanitizer builds make no preload library).
 */
#include "../tools/qemu.c"
#include "../tools/qmp.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helper.h"

#define MiB (1ull << 20)
#define BOOT_MS 150000u /* a boot takes ~10 s idle; a loaded machine more */

struct pboot {
	char dir[TH_DIR_LEN];
	char console[TH_PATH_LEN], qmp[TH_SOCK_LEN], log[TH_PATH_LEN];
	char qemu_log[TH_PATH_LEN]; /* QEMU's own output, beside the console */
	char so[PATH_MAX];
	struct qemu_config cfg;
	struct qemu_vm *vm;
};

static void pboot_destroy(void *arg)
{
	struct pboot *b = arg;

	qemu_destroy(b->vm);
	b->vm = NULL;
}

/* A 256 MiB test guest on a budget of budget_mib, the agent logging. */
static struct pboot *pboot_start(const char *append, uint64_t budget_mib)
{
	static struct pboot b;
	char k[PATH_MAX], i[PATH_MAX], self[PATH_MAX], err[512];
	ssize_t n;

	memset(&b, 0, sizeof(b));
	if (resolve_binary(QEMU_DEFAULT_BINARY, k, sizeof(k))) {
		printf("skipped: no %s here\n", QEMU_DEFAULT_BINARY);
		skip();
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	assert_true((size_t)snprintf(b.so, sizeof(b.so),
				     "%s/../libmemvisor-preload.so",
				     self) < sizeof(b.so));
	if (access(b.so, R_OK)) {
		/* a sanitized library cannot be preloaded into QEMU */
		printf("skipped: no %s (sanitizer builds make no preload library)\n",
		       b.so);
		skip();
	}
	assert_int_equal(qemu_guest_paths(k, sizeof(k), i, sizeof(i)), 0);
	if (access(k, R_OK) || access(i, R_OK))
		fail_msg("the test guest is not built (%s, %s): run make guest",
			 k, i);
	th_scratch(b.dir, sizeof(b.dir), "pq");
	th_remove_at_teardown(b.dir);
	snprintf(b.console, sizeof(b.console), "%s/console.txt", b.dir);
	th_socket_path(b.qmp, sizeof(b.qmp), b.dir, "qmp.sock");
	th_remove_at_teardown(b.qmp);
	snprintf(b.log, sizeof(b.log), "%s/agent.log", b.dir);
	snprintf(b.qemu_log, sizeof(b.qemu_log), "%s/console.txt.qemu.log",
		 b.dir);
	th_remove_at_teardown(b.console);
	th_remove_at_teardown(b.qemu_log);
	th_remove_at_teardown(b.log);
	b.cfg = (struct qemu_config){ .name = "pq1",
				      .memsize = 256 * MiB,
				      .accel = "tcg",
				      .append = append,
				      .console_path = b.console,
				      .qmp_path = b.qmp,
				      .preload = b.so,
				      .swapdir = b.dir,
				      .agent_log = b.log,
				      .agent_memsize = budget_mib * MiB };
	if (qemu_start(&b.cfg, 60000, &b.vm, err, sizeof(err)))
		fail_msg("qemu_start: %s", err);
	th_at_teardown(pboot_destroy, &b);
	return &b;
}

/* The number after key in the agent's last figures line, or -1. */
static long long figure(const char *log, const char *key)
{
	const char *line = strstr(log, " ends ("), *p;

	if (!line)
		return -1;
	p = strstr(line, key);
	return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static void
test_the_test_guest_verifies_its_memory_on_a_budget_below_its_ram(void **state)
{
	struct qemu_verdict v;
	struct pboot *b;
	char *con, *log;
	int status = -1;

	(void)state;
	/* 60% of 256 MiB in patterns, kernel and page cache besides, on
	 * 128 MiB of machine memory */
	b = pboot_start("console=ttyS0 quiet panic=-1 mvguest.fill_pct=60 "
			"mvguest.rounds=2",
			128);
	if (qemu_wait(b->vm, BOOT_MS, &status))
		fail_msg(
			"the guest did not power off within %u s; console:\n%s",
			BOOT_MS / 1000, th_slurp(b->console));
	assert_int_equal(qemu_read_verdict(b->console, &v), 0);
	con = th_slurp(b->console);
	log = th_slurp(b->log);
	printf("%s", log);
	if (!v.found || !v.ok)
		fail_msg("no good verdict; console:\n%s\nagent:\n%s", con, log);
	assert_int_equal(v.errors, 0);
	assert_true(v.pages * 4096 > 100 * MiB);
	assert_non_null(strstr(log, "attached guest RAM"));
	assert_null(strstr(log, "error:"));
	/* memvisor really took memory back: the guest's pages went out and
	 * were faulted back */
	assert_true(figure(log, "swapped out ") + figure(log, "compressed ") >
		    0);
	assert_true(figure(log, "swapped in ") + figure(log, "decompressed ") >
		    0);
	/* what the guest freed came back through free page reporting */
	assert_true(figure(log, "discarded ") > 0);
	free(con);
	free(log);
	pboot_destroy(b);
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
	uint64_t actual;
	int err;
};

static bool balloon_at_192(void *arg)
{
	struct inflated *in = arg;

	in->err = qmp_query_balloon(in->q, &in->actual, 5000);
	return in->err || in->actual <= 192 * MiB;
}

static void
test_balloon_inflation_under_the_preload_discards_the_pages(void **state)
{
	struct console_wait w = { NULL, "MVGUEST hold pass=2 " };
	struct inflated in = { 0 };
	struct pboot *b;
	char *con, *log;

	(void)state;
	b = pboot_start("console=ttyS0 quiet panic=-1 mvguest.fill_pct=40 "
			"mvguest.rounds=0 mvguest.hold_s=600",
			192);
	w.path = b->console;
	{
		struct console_wait f = { b->console, "MVGUEST hold pass=1 " };

		if (!th_wait_until(console_has, &f, BOOT_MS))
			fail_msg(
				"the guest did not fill its memory; console:\n%s",
				th_slurp(b->console));
	}
	in.q = qemu_qmp(b->vm);
	assert_int_equal(qmp_balloon(in.q, 192 * MiB, 5000), 0);
	if (!th_wait_until(balloon_at_192, &in, BOOT_MS) || in.err)
		fail_msg(
			"the balloon stayed at %llu bytes (err %d); console:\n%s",
			(unsigned long long)in.actual, in.err,
			th_slurp(b->console));
	/* the guest goes on verifying what it holds */
	assert_true(th_wait_until(console_has, &w, BOOT_MS));
	assert_int_equal(qemu_stop(b->vm, 30000), QEMU_QUIT);
	con = th_slurp(b->console);
	log = th_slurp(b->log);
	printf("%s", log);
	if (strstr(con, "MVGUEST error"))
		fail_msg("console:\n%s", con);
	/* 64 MiB of balloon: QEMU's discards of them reached memvisor */
	assert_true(figure(log, "discarded ") >= (long long)(64 * MiB / 4096));
	assert_true(figure(log, "pages (") > 0); /* frames freed */
	assert_null(strstr(log, "error:"));
	free(con);
	free(log);
	pboot_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_the_test_guest_verifies_its_memory_on_a_budget_below_its_ram),
		cmocka_unit_test(
			test_balloon_inflation_under_the_preload_discards_the_pages),
	};

	return th_run_tests(tests);
}
