// SPDX-License-Identifier: MIT
/*
 * test_preload.c - libmemvisor-preload.so (tools/preload.c) under a
 * program that maps guest RAM the way QEMU does: a PROT_NONE reservation,
 * then a MAP_FIXED private anonymous read/write mapping of exactly the RAM
 * size (mmap64), QEMU's madvise calls on it, patterns written and verified
 * on a budget below the RAM size (so pages are compressed and swapped),
 * madvise(MADV_DONTNEED) of ranges (the discard path), and munmap.  This
 * binary is that program too: run with the argument "vmm".
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"

#define MiB (1ull << 20)
#define TAG 0x9e10adull
#define RAM (32 * MiB)

/* ---- the VMM side: what QEMU does with guest RAM ---- */

static int bad(const char *what, uint64_t p)
{
	printf("vmm: %s (page %llu)\n", what, (unsigned long long)p);
	return 1;
}

static int vmm_main(void)
{
	const char *env = getenv("MEMVISOR_RAM_BYTES"),
		   *hold = getenv("MEMVISOR_TEST_HOLD");
	uint64_t ram = env ? strtoull(env, NULL, 10) : RAM, n, dlo, dn;
	uint8_t *res, *m;

	if (!ram || ram % (2 * MiB))
		ram = RAM;
	n = ram / MV_PAGE_SIZE;
	res = mmap(NULL, ram + 2 * MiB, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return bad("reservation failed", 0);
	m = (uint8_t *)(((uintptr_t)res + 2 * MiB - 1) & ~(2 * MiB - 1));
	m = mmap64(m, ram, PROT_READ | PROT_WRITE,
		   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
		   0);
	if (m == MAP_FAILED)
		return bad("guest RAM mapping failed", 0);
	/* what QEMU's ram_block_add asks of it */
	if (madvise(m, ram, MADV_HUGEPAGE) || madvise(m, ram, MADV_MERGEABLE) ||
	    madvise(m, ram, MADV_DONTDUMP) || madvise(m, ram, MADV_DONTFORK))
		return bad("madvise on guest RAM failed", 0);
	for (uint64_t p = 0; p < n; p++)
		th_fill(m + p * MV_PAGE_SIZE, TAG, p, 0);
	for (uint64_t p = 0; p < n; p++)
		if (!th_check(m + p * MV_PAGE_SIZE, TAG, p, 0))
			return bad("pattern lost", p);
	/* a balloon inflation: QEMU's ram_block_discard_range */
	dlo = n / 4;
	dn = n / 8;
	if (madvise(m + dlo * MV_PAGE_SIZE, dn * MV_PAGE_SIZE, MADV_DONTNEED))
		return bad("madvise(MADV_DONTNEED) failed", dlo);
	/* one straddling the end of guest RAM into the reservation */
	if (madvise(m + ram - MV_PAGE_SIZE, 2 * MV_PAGE_SIZE, MADV_DONTNEED))
		return bad("madvise(MADV_DONTNEED) across the end failed",
			   n - 1);
	for (uint64_t p = 0; p < n; p++) {
		uint8_t *g = m + p * MV_PAGE_SIZE;
		bool gone = (p >= dlo && p < dlo + dn) || p == n - 1;

		if (gone ? !th_is_zero(g) : !th_check(g, TAG, p, 0))
			return bad(gone ? "discarded page not zero" :
					  "pattern lost after discard",
				   p);
	}
	for (uint64_t p = 0; p < n; p++)
		th_fill(m + p * MV_PAGE_SIZE, TAG, p, 1);
	for (uint64_t p = 0; p < n; p++)
		if (!th_check(m + p * MV_PAGE_SIZE, TAG, p, 1))
			return bad("second pattern lost", p);
	/* held (a daemon test): rounds of writing and verifying every page,
	 * until the test says it has seen enough, 60 s at most */
	for (uint64_t v = 2, end = th_now_ms() + 60000;
	     hold && access(hold, F_OK) && th_now_ms() < end; v++) {
		for (uint64_t p = 0; p < n; p++)
			th_fill(m + p * MV_PAGE_SIZE, TAG, p, v);
		for (uint64_t p = 0; p < n; p++)
			if (!th_check(m + p * MV_PAGE_SIZE, TAG, p, v))
				return bad("pattern lost while held", p);
	}
	if (munmap(m, ram))
		return bad("munmap failed", 0);
	munmap(res, ram + 2 * MiB);
	printf("vmm: ok\n");
	return 0;
}

/* ---- the tests ---- */

struct run {
	char dir[TH_DIR_LEN], log[TH_PATH_LEN], out[TH_PATH_LEN];
	char so[PATH_MAX], self[PATH_MAX];
};

static void setup_run(struct run *r)
{
	ssize_t n = readlink("/proc/self/exe", r->self, sizeof(r->self) - 1);
	struct stat st;

	assert_true(n > 0);
	r->self[n] = '\0';
	snprintf(r->so, sizeof(r->so), "%s", r->self);
	*strrchr(r->so, '/') = '\0';
	strncat(r->so, "/../libmemvisor-preload.so",
		sizeof(r->so) - strlen(r->so) - 1);
	if (stat(r->so, &st)) {
		/* sanitizer builds make none: a sanitized library cannot be
		 * preloaded into an unsanitized program */
		printf("skipped: no %s (sanitizer builds make no preload library)\n",
		       r->so);
		skip();
	}
	th_scratch(r->dir, sizeof(r->dir), "preload");
	th_remove_at_teardown(r->dir);
	snprintf(r->log, sizeof(r->log), "%s/agent.log", r->dir);
	snprintf(r->out, sizeof(r->out), "%s/vmm.out", r->dir);
	th_remove_at_teardown(r->log);
	th_remove_at_teardown(r->out);
}

/* Runs this binary as the VMM under the preload with env "K=V" pairs
 * (NULL-terminated; "K=" unsets); its exit status. */
static pid_t start_vmm(struct run *r, const char *const *env)
{
	char *argv[] = { r->self, (char *)"vmm", NULL };
	pid_t pid;

	setenv("LD_PRELOAD", r->so, 1);
	setenv("MEMVISOR_LOG", r->log, 1);
	for (; *env; env++) {
		char k[64];
		const char *eq = strchr(*env, '=');

		snprintf(k, sizeof(k), "%.*s", (int)(eq - *env), *env);
		if (eq[1])
			setenv(k, eq + 1, 1);
		else
			unsetenv(k);
	}
	pid = th_spawnv(r->self, r->out, argv);
	unsetenv("LD_PRELOAD");
	unsetenv("MEMVISOR_LOG");
	unsetenv("MEMVISOR_RAM_BYTES");
	unsetenv("MEMVISOR_MEMSIZE");
	unsetenv("MEMVISOR_SWAP_DIR");
	unsetenv("MEMVISOR_SOCKET");
	unsetenv("MEMVISOR_VM_NAME");
	unsetenv("MEMVISOR_TEST_HOLD");
	unsetenv("MEMVISOR_SETTINGS");
	return pid;
}

static int run_vmm(struct run *r, const char *const *env)
{
	pid_t pid = start_vmm(r, env);

	return th_wait_exit(&pid, r->out, 300000);
}

/* The number after `key` in text, or -1. */
static long long number_after(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static void
test_qemu_like_ram_is_attached_overcommitted_and_discarded(void **state)
{
	char ram[32], swapdir[TH_PATH_LEN];
	const char *env[] = { ram, "MEMVISOR_MEMSIZE=12M", swapdir, NULL };
	char *log, *out;
	struct run r;

	(void)state;
	setup_run(&r);
	snprintf(ram, sizeof(ram), "MEMVISOR_RAM_BYTES=%llu", RAM);
	snprintf(swapdir, sizeof(swapdir), "MEMVISOR_SWAP_DIR=%s", r.dir);
	assert_int_equal(run_vmm(&r, env), 0);
	out = th_slurp(r.out);
	log = th_slurp(r.log);
	printf("%s%s", out, log);
	assert_non_null(strstr(out, "vmm: ok"));
	assert_non_null(strstr(log, "attached guest RAM"));
	assert_non_null(strstr(log, "ends (guest RAM unmapped)"));
	/* the budget is below the RAM: pages really went out and came back */
	assert_true(number_after(log, "swapped out ") +
			    number_after(log, "compressed ") >
		    0);
	assert_true(number_after(log, "swapped in ") +
			    number_after(log, "decompressed ") >
		    0);
	/* the discards reached the engine: an eighth of the RAM, and the
	 * last page */
	assert_int_equal(number_after(log, "discarded "),
			 RAM / MV_PAGE_SIZE / 8 + 1);
	/* QEMU's MADV_HUGEPAGE and MADV_MERGEABLE were kept away from it */
	assert_non_null(strstr(log, "madvise advice 14 on guest RAM ignored"));
	assert_null(strstr(log, "error:"));
	free(out);
	free(log);
}

static void test_a_failed_attach_leaves_guest_ram_plain_memory(void **state)
{
	char ram[32];
	const char *env[] = { ram, "MEMVISOR_SWAP_DIR=/nonexistent/memvisor",
			      NULL };
	char *log, *out;
	struct run r;

	(void)state;
	setup_run(&r);
	snprintf(ram, sizeof(ram), "MEMVISOR_RAM_BYTES=%llu", RAM);
	assert_int_equal(run_vmm(&r, env), 0);
	out = th_slurp(r.out);
	log = th_slurp(r.log);
	assert_non_null(strstr(out, "vmm: ok"));
	assert_non_null(strstr(log, "guest RAM stays unmanaged"));
	assert_null(strstr(log, "attached guest RAM"));
	free(out);
	free(log);
}

static void test_without_a_ram_size_the_preload_does_nothing(void **state)
{
	const char *env[] = { "MEMVISOR_RAM_BYTES=", NULL };
	char *log, *out;
	struct run r;

	(void)state;
	setup_run(&r);
	assert_int_equal(run_vmm(&r, env), 0);
	out = th_slurp(r.out);
	log = th_slurp(r.log);
	assert_non_null(strstr(out, "vmm: ok"));
	assert_string_equal(log, "");
	free(out);
	free(log);
}

/*
 * With MEMVISOR_SOCKET the VM joins a daemon (here in this process, on a
 * host of 16 MiB): its budget becomes the daemon's grant, below its 32 MiB
 * of RAM, so it swaps and compresses to stay inside it, every page
 * verified; when the VMM ends, the daemon takes the grant back.
 */
struct managed {
	mv_daemon *d;
	uint64_t grant;
};

static bool vm_overcommitted_by_daemon(void *arg)
{
	struct managed *g = arg;
	struct mv_daemon_vm v;
	unsigned n = 0;

	if (mv_daemon_vms(g->d, &v, 1, &n) || n != 1)
		return false;
	g->grant = v.grant_pages;
	return v.grant_pages > 0 && v.grant_pages < RAM / MV_PAGE_SIZE &&
	       v.stats.swapout_pages + v.stats.zip_pages > 0 &&
	       !strcmp(v.stats.name, "vmq");
}

static bool daemon_took_grant_back(void *arg)
{
	struct mv_daemon_stats st;

	return !mv_daemon_stats(((struct managed *)arg)->d, &st) &&
	       st.agents == 0 && st.grant_pages == 0;
}

static void test_a_daemon_manages_the_vm_through_its_agent(void **state)
{
	char ram[32], swapdir[TH_PATH_LEN], path[TH_SOCK_LEN],
		sock[TH_SOCK_LEN + 32], hold[TH_PATH_LEN],
		holdv[TH_PATH_LEN + 32];
	const char *env[] = { ram,   swapdir, sock, "MEMVISOR_VM_NAME=vmq",
			      holdv, NULL };
	struct managed g = { 0 };
	struct th_host t;
	char *log, *out;
	struct run r;
	pid_t pid;
	int fd;

	(void)state;
	setup_run(&r);
	snprintf(ram, sizeof(ram), "MEMVISOR_RAM_BYTES=%llu", RAM);
	snprintf(swapdir, sizeof(swapdir), "MEMVISOR_SWAP_DIR=%s", r.dir);
	th_socket_path(path, sizeof(path), r.dir, "d.sock");
	snprintf(sock, sizeof(sock), "MEMVISOR_SOCKET=%s", path);
	snprintf(hold, sizeof(hold), "%s/go", r.dir);
	snprintf(holdv, sizeof(holdv), "MEMVISOR_TEST_HOLD=%s", hold);
	th_remove_at_teardown(path);
	th_remove_at_teardown(hold);
	th_host_create(&t, 16 * MiB, NULL);
	assert_int_equal(mv_daemon_create(t.host, path, &g.d), 0);
	pid = start_vmm(&r, env);
	assert_true(th_wait_until(vm_overcommitted_by_daemon, &g, 60000));
	fd = open(hold, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(th_wait_exit(&pid, r.out, 120000), 0);
	assert_true(th_wait_until(daemon_took_grant_back, &g, TH_WAIT_MS));
	out = th_slurp(r.out);
	log = th_slurp(r.log);
	printf("grant %llu pages\n%s%s", (unsigned long long)g.grant, out, log);
	assert_non_null(strstr(out, "vmm: ok"));
	assert_non_null(strstr(log, "managed by the daemon"));
	assert_null(strstr(log, "error:"));
	mv_daemon_destroy(g.d);
	th_host_destroy(&t);
	free(out);
	free(log);
}

/* MEMVISOR_SETTINGS: good pairs apply, a bad one is said and ignored,
 * and the VM is attached all the same. */
static void test_settings_apply_and_a_bad_pair_is_ignored(void **state)
{
	char ram[32], swapdir[TH_PATH_LEN];
	const char *env[] = {
		ram, swapdir,
		"MEMVISOR_SETTINGS=Mem.SamplePeriod=10;Mem.Bogus=1,"
		"Mem.ShareScanTime=999999; Mem.ShareScanTime=1",
		NULL
	};
	char *log, *out;
	struct run r;

	(void)state;
	setup_run(&r);
	snprintf(ram, sizeof(ram), "MEMVISOR_RAM_BYTES=%llu", RAM);
	snprintf(swapdir, sizeof(swapdir), "MEMVISOR_SWAP_DIR=%s", r.dir);
	assert_int_equal(run_vmm(&r, env), 0);
	out = th_slurp(r.out);
	log = th_slurp(r.log);
	printf("%s", log);
	assert_non_null(strstr(out, "vmm: ok"));
	assert_non_null(strstr(log, "set Mem.SamplePeriod=10\n"));
	assert_non_null(strstr(log, "set Mem.ShareScanTime=1\n"));
	assert_non_null(strstr(log, "cannot set Mem.Bogus=1"));
	assert_non_null(strstr(log, "cannot set Mem.ShareScanTime=999999"));
	assert_non_null(strstr(log, "attached guest RAM"));
	free(out);
	free(log);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_qemu_like_ram_is_attached_overcommitted_and_discarded),
		cmocka_unit_test(
			test_a_failed_attach_leaves_guest_ram_plain_memory),
		cmocka_unit_test(
			test_without_a_ram_size_the_preload_does_nothing),
		cmocka_unit_test(
			test_a_daemon_manages_the_vm_through_its_agent),
		cmocka_unit_test(test_settings_apply_and_a_bad_pair_is_ignored),
	};

	if (argc > 1 && !strcmp(argv[1], "vmm"))
		return vmm_main();
	return th_run_tests(tests);
}
