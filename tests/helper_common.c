// SPDX-License-Identifier: MIT
/*
 * helper_common.c - shared test fixtures (see helper.h).
 *
 * Page patterns come from a 64-bit mixer seeded with (tag, ppn, version), so
 * a page that holds another VM's data, another page's data or an older
 * version of itself fails th_check.
 *
 * Hosts made by th_host_create are remembered (host pointer and a copy of
 * the swap directory's name: the test's struct th_host lives in a frame a
 * failed assert jumped out of) until th_host_destroy, so that th_teardown
 * can destroy what a failed test left behind.  Tests run one at a time on
 * the main thread, so the lists need no lock.
 *
 * Scratch directories (th_scratch_dir) are made in BUILD/tests/tmp, beside
 * the test binaries, found through /proc/self/exe: so a binary run by hand
 * writes where one run by `make test` does, inside the repository's build
 * tree (on its disk, not a tmpfs: swap files there are opened O_DIRECT as
 * on a real swap disk), and `make clean` takes them with the build.  Each
 * is mkdtemp's, so binaries that run at once never share one.  Unix
 * socket names are limited to 108 bytes (sun_path): th_socket_path puts a
 * socket into a short directory under /tmp only when the build tree's path
 * leaves no room for it there.
 *
 * Lock ordering: none.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sched.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"
#include "internal.h"

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void th_fill(void *page, uint64_t tag, uint64_t ppn, uint64_t version)
{
	uint64_t *w = page, s = mix(tag * 0x9e3779b97f4a7c15ull ^ mix(ppn) ^
				    version << 48);

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i++)
		w[i] = mix(s + i);
}

bool th_check(const void *page, uint64_t tag, uint64_t ppn, uint64_t version)
{
	const volatile uint64_t *w = page;
	uint64_t s =
		mix(tag * 0x9e3779b97f4a7c15ull ^ mix(ppn) ^ version << 48);

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i++)
		if (w[i] != mix(s + i))
			return false;
	return true;
}

void th_fill_z(void *page, uint64_t tag, uint64_t ppn, uint64_t version)
{
	uint64_t *w = page, s = mix(tag * 0x9e3779b97f4a7c15ull ^ mix(ppn) ^
				    version << 48);

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i++)
		w[i] = mix(s + i % 64);
}

bool th_check_z(const void *page, uint64_t tag, uint64_t ppn, uint64_t version)
{
	const volatile uint64_t *w = page;
	uint64_t s =
		mix(tag * 0x9e3779b97f4a7c15ull ^ mix(ppn) ^ version << 48);

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i++)
		if (w[i] != mix(s + i % 64))
			return false;
	return true;
}

void th_fill_vm(mv_vm *vm, uint64_t tag, bool z)
{
	uint8_t *m = mv_vm_mem(vm);

	for (uint64_t p = 0; p < mv_vm_memsize(vm) / MV_PAGE_SIZE; p++) {
		if (z)
			th_fill_z(m + p * MV_PAGE_SIZE, tag, p, 0);
		else
			th_fill(m + p * MV_PAGE_SIZE, tag, p, 0);
	}
	/* UFFDIO_COPY wakes the guest before its fault thread has counted
	 * the run: without this, stats read next can miss the last run */
	th_quiesce(vm);
}

uint64_t th_bad_pages(mv_vm *vm, uint64_t tag, bool z)
{
	uint8_t *m = mv_vm_mem(vm);
	uint64_t bad = 0;

	for (uint64_t p = 0; p < mv_vm_memsize(vm) / MV_PAGE_SIZE; p++)
		bad += z ? !th_check_z(m + p * MV_PAGE_SIZE, tag, p, 0) :
			   !th_check(m + p * MV_PAGE_SIZE, tag, p, 0);
	return bad;
}

bool th_is_zero(const void *page)
{
	const volatile uint64_t *w = page;

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i++)
		if (w[i])
			return false;
	return true;
}

void th_settings_quiet(struct mv_settings *s)
{
	mv_settings_init(s);
	assert_int_equal(mv_settings_set(s, "Mem.SamplePeriod", "0"), 0);
	assert_int_equal(mv_settings_set(s, "Mem.ShareScanGHz", "0"), 0);
	assert_int_equal(mv_settings_set(s, "Mem.AllocGuestLargePage", "0"), 0);
	/* nor the scheduler opening pages read as zeros and finding which
	 * the guest wrote (test_zero_open.c turns it on) */
	assert_int_equal(mv_settings_set(s, "Mem.ZeroOpen", "0"), 0);
}

#define TH_MAX_HOSTS 16
#define TH_MAX_PATHS 32

static struct {
	mv_host *host;
	char swapdir[TH_DIR_LEN];
} live[TH_MAX_HOSTS];
static char *paths[TH_MAX_PATHS];
static unsigned npaths;
static struct {
	void (*fn)(void *arg);
	void *arg;
} deferred[TH_MAX_PATHS];
static unsigned ndeferred;

void th_at_teardown(void (*fn)(void *arg), void *arg)
{
	assert_true(ndeferred < TH_MAX_PATHS);
	deferred[ndeferred].fn = fn;
	deferred[ndeferred].arg = arg;
	ndeferred++;
}

static void remember_host(const struct th_host *t)
{
	for (unsigned i = 0; i < TH_MAX_HOSTS; i++) {
		if (!live[i].host) {
			live[i].host = t->host;
			memcpy(live[i].swapdir, t->swapdir,
			       sizeof(live[i].swapdir));
			return;
		}
	}
	fail_msg("more than %d hosts alive at once", TH_MAX_HOSTS);
}

static void forget_host(mv_host *h)
{
	for (unsigned i = 0; i < TH_MAX_HOSTS; i++)
		if (live[i].host == h)
			live[i].host = NULL;
}

void th_remove_at_teardown(const char *path)
{
	assert_true(npaths < TH_MAX_PATHS);
	paths[npaths] = strdup(path);
	assert_non_null(paths[npaths]);
	npaths++;
}

/* Removes the files in dir (swap files, images a test put there), then dir. */
static void remove_dir(const char *dir)
{
	char path[512];
	struct dirent *d;
	DIR *dp = opendir(dir);

	if (!dp)
		return;
	while ((d = readdir(dp))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		unlink(path);
	}
	closedir(dp);
	rmdir(dir);
}

int th_teardown(void **state)
{
	struct mv_host *h;

	(void)state;
	while (ndeferred) {
		ndeferred--;
		deferred[ndeferred].fn(deferred[ndeferred].arg);
	}
	for (unsigned i = 0; i < TH_MAX_HOSTS; i++) {
		h = live[i].host;
		if (!h)
			continue;
		/* VMs unlink themselves from h->vms as they go */
		while (h->vms)
			mv_vm_destroy(h->vms);
		mv_host_destroy(h);
		remove_dir(live[i].swapdir);
		live[i].host = NULL;
	}
	while (npaths) {
		char *p = paths[--npaths];

		if (unlink(p) < 0)
			rmdir(p);
		free(p);
	}
	return 0;
}

int th_run_group(const char *name, const struct CMUnitTest *tests, size_t n)
{
	struct CMUnitTest *all = calloc(n, sizeof(*all));
	int failed;

	if (!all)
		return 1;
	memcpy(all, tests, n * sizeof(*all));
	for (size_t i = 0; i < n; i++)
		if (!all[i].teardown_func)
			all[i].teardown_func = th_teardown;
	failed = _cmocka_run_group_tests(name, all, n, NULL, NULL);
	free(all);
	return failed;
}

void th_host_create(struct th_host *t, uint64_t memsize,
		    const struct mv_settings *s)
{
	struct mv_host_config cfg;
	char msg[512];
	int err;

	assert_int_equal(mv_check_system(msg, sizeof(msg)), 0);
	th_scratch(t->swapdir, sizeof(t->swapdir), "host");
	mv_host_config_init(&cfg);
	cfg.memsize_bytes = memsize;
	cfg.swapdir = t->swapdir;
	if (s)
		cfg.settings = *s;
	else
		th_settings_quiet(&cfg.settings);
	err = mv_host_create(&cfg, &t->host);
	if (err) {
		rmdir(t->swapdir);
		fail_msg("mv_host_create: %s", mv_strerror(err));
	}
	remember_host(t);
}

void th_host_destroy(struct th_host *t)
{
	forget_host(t->host);
	mv_host_destroy(t->host);
	rmdir(t->swapdir);
}

uint64_t th_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* /proc/self/task/<tid>/<name> into buf (NUL-terminated); false if it
 * cannot be read (the thread is gone). */
static bool task_file(int tid, const char *name, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/%s", tid, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

bool th_thread_sleeps(int tid)
{
	char buf[256], *paren;

	if (!task_file(tid, "stat", buf, sizeof(buf)))
		return false;
	/* "tid (comm) S ...": the comm may hold spaces and parentheses */
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && (paren[2] == 'S' || paren[2] == 'D');
}

bool th_thread_in_userfault(int tid)
{
	char buf[64];

	if (!task_file(tid, "wchan", buf, sizeof(buf)))
		return false;
	/* "0": a kernel that does not name where threads wait */
	if (!strcmp(buf, "0"))
		return th_thread_sleeps(tid);
	return !strcmp(buf, "handle_userfault");
}

bool th_other_threads_sleep(void *unused)
{
	DIR *dp = opendir("/proc/self/task");
	int self = (int)gettid(), tid, others = 0;
	bool all = true;
	struct dirent *d;

	(void)unused;
	if (!dp)
		return false;
	while (all && (d = readdir(dp))) {
		tid = atoi(d->d_name);
		if (tid <= 0 || tid == self)
			continue;
		others++;
		all = th_thread_sleeps(tid);
	}
	closedir(dp);
	return all && others;
}

unsigned th_task_ids(int *tids, unsigned max)
{
	DIR *dp = opendir("/proc/self/task");
	struct dirent *d;
	unsigned n = 0;
	int tid;

	assert_non_null(dp);
	while ((d = readdir(dp))) {
		tid = atoi(d->d_name);
		if (tid <= 0)
			continue;
		if (n < max)
			tids[n] = tid;
		n++;
	}
	closedir(dp);
	return n;
}

unsigned th_threads_named(const char *comm, int *last)
{
	char path[300], name[32];
	DIR *dp = opendir("/proc/self/task");
	struct dirent *d;
	unsigned n = 0;
	FILE *f;

	assert_non_null(dp);
	if (last)
		*last = 0;
	while ((d = readdir(dp))) {
		if (atoi(d->d_name) <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue; /* gone meanwhile */
		if (fgets(name, sizeof(name), f)) {
			name[strcspn(name, "\n")] = '\0';
			if (!strcmp(name, comm)) {
				n++;
				if (last)
					*last = atoi(d->d_name);
			}
		}
		fclose(f);
	}
	closedir(dp);
	return n;
}

/* Field 39 of /proc/self/task/TID/stat: the CPU the thread last ran on. */
static int task_last_cpu(int tid)
{
	char path[64], buf[1024], *s;
	ssize_t n;
	int fd, field = 2;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "tid (comm) S ...": count fields after the comm's last ')' */
	s = strrchr(buf, ')');
	for (; s && *s && field < 39; s++)
		if (*s == ' ')
			field++;
	return s && *s ? atoi(s) : -1;
}

void th_assert_new_threads_pinned(const int *before, unsigned nbefore,
				  unsigned want, int cpu)
{
	int tids[256];
	unsigned n = th_task_ids(tids, 256), found = 0;

	assert_true(n <= 256);
	for (unsigned i = 0; i < n; i++) {
		cpu_set_t set;
		bool old = false;
		int last;

		for (unsigned k = 0; k < nbefore && !old; k++)
			old = before[k] == tids[i];
		if (old)
			continue;
		found++;
		CPU_ZERO(&set);
		assert_int_equal(sched_getaffinity(tids[i], sizeof(set), &set),
				 0);
		if (CPU_COUNT(&set) != 1 || !CPU_ISSET(cpu, &set))
			fail_msg("thread %d may run on %d CPUs, not only on %d",
				 tids[i], CPU_COUNT(&set), cpu);
		last = task_last_cpu(tids[i]);
		if (last != cpu)
			fail_msg("thread %d last ran on CPU %d, not %d",
				 tids[i], last, cpu);
	}
	assert_int_equal(found, want);
}

/* The pause between two looks of a poll with a deadline. */
static void th_pause_ms(unsigned ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * A touch of a page from a thread of its own, which reports whether it
 * read the page or took SIGBUS there: a touch that waits for ever must
 * be a test failure, not a hung test.
 */
struct toucher {
	volatile uint8_t *addr;
	_Atomic int result; /* 0 still waiting, 1 read, 2 SIGBUS at addr */
	void *bus_addr;
};

static _Thread_local sigjmp_buf touch_jmp;
static _Thread_local struct toucher *touching;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	touching->bus_addr = si->si_addr;
	siglongjmp(touch_jmp, 1);
}

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;

	touching = t;
	if (sigsetjmp(touch_jmp, 1)) {
		atomic_store(&t->result, 2);
		return NULL;
	}
	(void)t->addr[0];
	atomic_store(&t->result, 1);
	return NULL;
}

int th_touch(void *addr, mv_host *h)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus,
				.sa_flags = SA_SIGINFO },
			 old;
	struct toucher t = { .addr = addr };
	uint64_t deadline = th_now_ms() + 20000;
	pthread_t th;

	sigaction(SIGBUS, &sa, &old);
	assert_int_equal(pthread_create(&th, NULL, toucher_main, &t), 0);
	while (!atomic_load(&t.result) && th_now_ms() < deadline)
		th_pause_ms(5);
	if (!atomic_load(&t.result)) {
		fprintf(stderr, "a touch still waits after 20 s: %s\n",
			mv_host_errmsg(h));
		abort(); /* its thread cannot be joined: end the binary */
	}
	pthread_join(th, NULL);
	sigaction(SIGBUS, &old, NULL);
	if (atomic_load(&t.result) == 2)
		assert_ptr_equal(t.bus_addr, addr);
	return atomic_load(&t.result);
}

bool th_wait_until(bool (*cond)(void *arg), void *arg, unsigned timeout_ms)
{
	struct timespec ts = { 0, 1000000L };
	uint64_t until = th_now_ms() + timeout_ms;

	while (!cond(arg)) {
		if (th_now_ms() >= until)
			return cond(arg);
		nanosleep(&ts, NULL); /* the poll's period, not a guess */
	}
	return true;
}

mv_vm *th_vm_create(struct th_host *t, const char *name, uint64_t memsize)
{
	struct mv_vm_config cfg;
	mv_vm *vm = NULL;
	int err;

	mv_vm_config_init(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	cfg.memsize_bytes = memsize;
	err = mv_vm_create(t->host, &cfg, &vm);
	if (err)
		fprintf(stderr, "mv_vm_create: %s: %s\n", mv_strerror(err),
			mv_host_errmsg(t->host));
	assert_int_equal(err, 0);
	return vm;
}

void th_quiesce(mv_vm *vm)
{
	for (uint64_t p = 0; p < mv_vm_memsize(vm) / MV_PAGE_SIZE; p++)
		mv_vm_page_state(vm, p);
}

/*
 * PRIVATE: present, an anonymous page (pagemap bit 61 clear).  SHARED:
 * the pool frame (bit 61 set) or not faulted in yet.  Others: absent.
 */
static bool presence_agrees(uint64_t v, uint64_t pm)
{
	enum mv_page_state s = pmap_state(v);
	bool present = pm >> 63 & 1, file = pm >> 61 & 1;

	/* a read ZERO page maps the kernel's zero page */
	if (s == MV_PAGE_ZERO && pmap_payload(v) == PMAP_ZERO_MAPPED)
		return true;
	/* an open one (zero_open.c): the zero page, or the guest's write */
	if (pmap_zero_open(v))
		return present && !file;
	if (s == MV_PAGE_PRIVATE)
		return present && !file;
	if (s == MV_PAGE_SHARED)
		return !present || file;
	return !present;
}

struct mv_vm_stats th_stats(mv_vm *vm)
{
	struct mv_vm_stats st;

	th_quiesce(vm);
	assert_int_equal(mv_vm_stats(vm, &st), 0);
	return st;
}

uint8_t *th_page(mv_vm *vm, uint64_t ppn)
{
	return (uint8_t *)mv_vm_mem(vm) + (ppn << MV_PAGE_SHIFT);
}

uint64_t th_presence_mismatches(mv_vm *vm)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t bad = 0, v, pm;
	uintptr_t va;

	assert_true(fd >= 0);
	for (uint64_t p = 0; p < vm->npages; p++) {
		va = (uintptr_t)vm->mem + (p << MV_PAGE_SHIFT);
		v = pmap_lock(&vm->pmap[p]);
		assert_int_equal(pread(fd, &pm, sizeof(pm),
				       (off_t)(va / MV_PAGE_SIZE * 8)),
				 sizeof(pm));
		pmap_unlock(vm, p, v);
		if (!presence_agrees(v, pm)) {
			if (!bad)
				fprintf(stderr, "vm %s page %llu: %s but %s\n",
					vm->name, (unsigned long long)p,
					mv_page_state_name(pmap_state(v)),
					pm >> 63 ? "present" : "not present");
			bad++;
		}
	}
	close(fd);
	return bad;
}

static uint64_t census_diff(mv_vm *vm, bool print)
{
	uint64_t walk[MV_PAGE_NSTATES] = { 0 }, touched = 0, bad = 0, v;
	struct mv_vm_stats st;

	for (uint64_t p = 0; p < vm->npages; p++) {
		v = pmap_peek(&vm->pmap[p]);
		walk[pmap_state(v)]++;
		touched += !!(v & PMAP_TOUCHED);
	}
	assert_int_equal(mv_vm_stats(vm, &st), 0);
	for (unsigned s = 0; s < MV_PAGE_NSTATES; s++)
		if (st.state_pages[s] != walk[s]) {
			if (print)
				fprintf(stderr,
					"vm %s: %s pages: counted %llu, walked %llu\n",
					vm->name, mv_page_state_name(s),
					(unsigned long long)st.state_pages[s],
					(unsigned long long)walk[s]);
			bad++;
		}
	if (st.touched_pages != touched) {
		if (print)
			fprintf(stderr,
				"vm %s: touched pages: counted %llu, walked %llu\n",
				vm->name, (unsigned long long)st.touched_pages,
				(unsigned long long)touched);
		bad++;
	}
	return bad;
}

static bool census_agrees(void *vm)
{
	return census_diff(vm, false) == 0;
}

uint64_t th_census_mismatches(mv_vm *vm)
{
	/* the scheduler may still be changing a page or two: a true mismatch
	 * is one that lasts */
	if (th_wait_until(census_agrees, vm, 5000))
		return 0;
	return census_diff(vm, true);
}

uint64_t th_xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

void *th_swapper_main(void *arg)
{
	struct th_swapper *w = arg;
	struct timespec ts = { 0, w->pause_ns };
	uint64_t rng = 99, done;

	while (!atomic_load(w->stop)) {
		mv_vm_swap_out(w->vms[th_xs(&rng) % w->nvms], 16, &done);
		atomic_fetch_add(&w->swapped, done);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

unsigned th_torture_seconds(void)
{
	const char *s = getenv("MV_TORTURE_SECONDS");

	return s && atoi(s) > 0 ? (unsigned)atoi(s) : 6;
}

void th_drain_lru(void)
{
	static uint64_t page[MV_PAGE_SIZE / 8] __attribute__((aligned(4096)));
	void *addr = page;
	int node = 0, status;

	page[0] = 1;
	syscall(SYS_move_pages, 0, 1UL, &addr, &node, &status, 0);
}

/* The state is the scheduler's last verdict; free is now. */
static bool settled(void *arg)
{
	struct mv_host_stats st;

	mv_host_stats(arg, &st);
	return st.state <= MV_STATE_SOFT &&
	       st.free_pages * 100 >= st.minfree_pages * 64;
}

void th_settle(mv_host *h)
{
	th_wait_until(settled, h, TH_WAIT_MS);
}

void th_nap_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000),
			       (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

char *th_slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	size_t n = 0, cap = 1 << 16, got;
	char *buf = malloc(cap);

	assert_non_null(buf);
	while (fp && (got = fread(buf + n, 1, cap - 1 - n, fp)) > 0) {
		n += got;
		if (n == cap - 1) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	if (fp)
		fclose(fp);
	buf[n] = '\0';
	return buf;
}

void th_put(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

FILE *th_tmpfile(void)
{
	int fd = memfd_create("th_tmpfile", MFD_CLOEXEC);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w+");
	if (!f)
		close(fd);
	assert_non_null(f);
	return f;
}

/* This test binary's directory (BUILD/tests) into buf; 0 or -errno. */
static int bin_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len);
	char *slash;

	if (n < 0)
		return -errno;
	if ((size_t)n >= len)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	return 0;
}

int th_scratch_dir(char *buf, size_t len, const char *prefix)
{
	char base[PATH_MAX];
	int err = bin_dir(base, sizeof(base));

	if (err)
		return err;
	/* the tests' common parent: made by whichever binary comes first,
	 * so another one making it at the same moment is no failure */
	if (strlen(base) + sizeof("/tmp") > sizeof(base))
		return -ENAMETOOLONG;
	strcat(base, "/tmp");
	if (mkdir(base, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(buf, len, "%s/%s.XXXXXX", base, prefix) >= len) {
		buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	if (!mkdtemp(buf)) {
		err = -errno;
		buf[0] = '\0';
		return err;
	}
	return 0;
}

void th_scratch(char *buf, size_t len, const char *prefix)
{
	int err = th_scratch_dir(buf, len, prefix);

	if (err)
		fail_msg("no scratch directory %s.XXXXXX in the build tree "
			 "(a buffer of %zu bytes): %s",
			 prefix, len, strerror(-err));
}

void th_socket_path(char *buf, size_t len, const char *dir, const char *name)
{
	struct sockaddr_un sa;
	char path[PATH_MAX], tmp[32];
	size_t n = (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name);

	if (n >= sizeof(sa.sun_path) || n >= len) {
		/* a build tree at a deep path leaves no room for the name:
		 * the socket goes into a short directory of its own */
		snprintf(tmp, sizeof(tmp), "/tmp/mvsock.XXXXXX");
		assert_non_null(mkdtemp(tmp));
		th_remove_at_teardown(tmp);
		n = (size_t)snprintf(path, sizeof(path), "%s/%s", tmp, name);
		assert_true(n < sizeof(sa.sun_path) && n < len);
	}
	memcpy(buf, path, n + 1);
}

void th_memvisor_bin(char *buf, size_t len)
{
	char self[PATH_MAX];

	/* BUILD/tests/test_x -> BUILD/memvisor */
	assert_int_equal(bin_dir(self, sizeof(self)), 0);
	assert_true((size_t)snprintf(buf, len, "%s/../memvisor", self) < len);
}

void th_assert_near(uint64_t got, uint64_t want, uint64_t slack)
{
	if (got + slack < want || got > want + slack)
		fail_msg("%llu is not within %llu of %llu",
			 (unsigned long long)got, (unsigned long long)slack,
			 (unsigned long long)want);
}
