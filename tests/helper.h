/* SPDX-License-Identifier: MIT */
/*
 * helper.h - what the engine's tests share: scratch directories in the
 * build tree, throwaway hosts with their swap files in one, quiet settings, waits for a condition with a deadline,
 * a per-test teardown that cleans up after a failed assert, and page
 * patterns that tell whose page, which page and which version a page holds.
 */
#ifndef MV_TEST_HELPER_H
#define MV_TEST_HELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memvisor.h"

/*
 * Scratch directories: every file a test writes (swap files, images, fake
 * sysfs trees, the memvisor command's files) goes into a fresh directory
 * inside the build tree, BUILD/tests/tmp/PREFIX.XXXXXX, beside the test
 * binary (BUILD: build/, build-asan/, ...), never under /var/tmp: a test
 * depends on nothing outside the repository.  TH_DIR_LEN holds one;
 * TH_PATH_LEN a file in one; TH_SOCK_LEN a unix socket's name (sun_path).
 */
#define TH_DIR_LEN 256
#define TH_PATH_LEN (TH_DIR_LEN + 64)
#define TH_SOCK_LEN 108
/* Makes a fresh directory (mode 0700) and puts its path into buf; 0, or
 * -errno (-ENAMETOOLONG if len cannot hold it).  The test removes it. */
int th_scratch_dir(char *buf, size_t len, const char *prefix);
/* The same, failing the test if it cannot. */
void th_scratch(char *buf, size_t len, const char *prefix);
/* A name for a unix socket called name, into buf (TH_SOCK_LEN bytes or
 * more): dir/name when it fits in sun_path (108 bytes with its NUL), else
 * name in a fresh directory of its own under /tmp, the one place outside
 * the repository a test writes to, and only when the build tree's path is
 * too deep to leave a socket room; th_teardown removes that directory
 * after the paths given to th_remove_at_teardown after this call (the
 * socket's, by the caller). */
void th_socket_path(char *buf, size_t len, const char *dir, const char *name);

struct th_host {
	mv_host *host;
	char swapdir[TH_DIR_LEN];
};

/*
 * ESX's defaults with every background mechanism that takes pages on its
 * own clock turned off: no active-memory sampling (Mem.SamplePeriod = 0,
 * whose first period would otherwise start a second in and take 100 pages
 * of each VM out as SAMPLED) and no background share scanner
 * (Mem.ShareScanGHz = 0; mv_vm_share_scan still scans when a test asks),
 * and no large pages (Mem.AllocGuestLargePage = 0: the scheduler would
 * collapse regions found resident on two passes in a row), and no open
 * zero pages (Mem.ZeroOpen = 0: reads map the zero page protected, and
 * the scheduler finds no written ones in the background).
 * Every test that is not about sampling or scanning starts from these, so
 * that what it counts does not depend on how long it took to get there.
 */
void th_settings_quiet(struct mv_settings *s);

/* A host with a budget of memsize bytes, swap files in a fresh directory,
 * and the settings given (NULL: th_settings_quiet()).  Fails the test on
 * error.  Until th_host_destroy the host is known to th_teardown. */
void th_host_create(struct th_host *t, uint64_t memsize,
		    const struct mv_settings *s);
void th_host_destroy(struct th_host *t);
mv_vm *th_vm_create(struct th_host *t, const char *name, uint64_t memsize);

/*
 * Per-test teardown (cmocka_unit_test_teardown(test, th_teardown), or
 * TH_TEST(test)): a test that failed an assert jumped out past its own
 * clean-up, so this destroys the VMs and hosts th_host_create made that are
 * still alive, and removes the swap directories and every path given to
 * th_remove_at_teardown, so that nothing leaks into the next test.  After a
 * test that cleaned up after itself it has nothing to do.  Guest threads a
 * failed test left running are not stopped: its later tests may then fail
 * too, but the first failure is the one reported.
 */
int th_teardown(void **state);
/* Runs a test file's tests (main's `return th_run_tests(tests);`), each
 * with th_teardown after it unless it has a teardown of its own. */
struct CMUnitTest;
int th_run_group(const char *name, const struct CMUnitTest *tests, size_t n);
#define th_run_tests(tests) \
	th_run_group(#tests, tests, sizeof(tests) / sizeof((tests)[0]))
/* fn(arg), run by th_teardown before it destroys hosts, the last given
 * first: a fixture's own clean-up (guest threads, drivers).  arg must
 * outlive the test's frame (static or heap), and fn must do nothing for
 * what the test already cleaned up. */
void th_at_teardown(void (*fn)(void *arg), void *arg);
/* A file or empty directory th_teardown removes if it still exists (files
 * before directories, the last given first). */
void th_remove_at_teardown(const char *path);

/*
 * Polls cond(arg) about every millisecond until it holds or timeout_ms
 * have passed; returns its last answer.  Tests synchronise with this,
 * never by sleeping: a slow machine only makes it wait longer.
 */
bool th_wait_until(bool (*cond)(void *arg), void *arg, unsigned timeout_ms);
/* The limit tests give th_wait_until for things that take well under a
 * second on an idle machine: generous, for a loaded one. */
#define TH_WAIT_MS 20000u
uint64_t th_now_ms(void);
/* Touches addr (a read) from a thread of its own: 1 when it read the page,
 * 2 when it took SIGBUS at addr; a touch still waiting after 20 s ends the
 * binary (its thread cannot be joined), so a hang is a failure. */
int th_touch(void *addr, mv_host *h);
/* The thread (a gettid() of this process) is asleep in the kernel, as a
 * guest thread whose fault waits in userfaultfd's queue is. */
bool th_thread_sleeps(int tid);
/* The thread waits in userfaultfd's queue itself (its wchan is
 * handle_userfault), not merely asleep on the way there, on the mmap lock
 * say; where the kernel does not say, as th_thread_sleeps. */
bool th_thread_in_userfault(int tid);
/* Every thread of this process but the caller sleeps (and there is one):
 * for tests that run guest threads and no host, their threads are idle. */
bool th_other_threads_sleep(void *unused);
/* The thread ids of this process (up to max of them into tids); how
 * many there are. */
unsigned th_task_ids(int *tids, unsigned max);
/* The threads of this process named comm (their /proc comm); *last, if
 * not NULL, the id of the last one found (0 if none). */
unsigned th_threads_named(const char *comm, int *last);
/* The threads of this process that are not in before[0..nbefore), all
 * pinned to exactly the CPU cpu, and their number is want; for each that
 * has run, the CPU it last ran on was cpu.  Fails the test otherwise. */
void th_assert_new_threads_pinned(const int *before, unsigned nbefore,
				  unsigned want, int cpu);

/* Fills a page with bytes determined by (tag, ppn, version). */
void th_fill(void *page, uint64_t tag, uint64_t ppn, uint64_t version);
/* Fails the test unless got is within slack of want. */
void th_assert_near(uint64_t got, uint64_t want, uint64_t slack);
/* True if the page holds exactly th_fill(tag, ppn, version)'s bytes. */
bool th_check(const void *page, uint64_t tag, uint64_t ppn, uint64_t version);
/* The same, but compressible: 512 bytes of such data, repeated. */
void th_fill_z(void *page, uint64_t tag, uint64_t ppn, uint64_t version);
bool th_check_z(const void *page, uint64_t tag, uint64_t ppn, uint64_t version);
bool th_is_zero(const void *page);
/* Every page of the VM filled with th_fill (or th_fill_z if z), version 0,
 * and th_quiesce()d, so that stats read next count every page; and how many
 * pages no longer hold exactly that. */
void th_fill_vm(mv_vm *vm, uint64_t tag, bool z);
uint64_t th_bad_pages(mv_vm *vm, uint64_t tag, bool z);
/* Waits until no fault of this VM is still being served, so that stats
 * read next count every touch made so far (the guest is woken before the
 * fault thread updates its counters). */
void th_quiesce(mv_vm *vm);
/* The VM's statistics once every fault served so far has counted itself
 * (th_quiesce, then mv_vm_stats). */
struct mv_vm_stats th_stats(mv_vm *vm);
/* Guest page ppn of vm. */
uint8_t *th_page(mv_vm *vm, uint64_t ppn);
/* Pages whose pmap state and presence in the mapping disagree (PRIVATE:
 * an own page present; SHARED: the shared frame or nothing; others:
 * nothing), each checked under its entry lock: must be 0 always. */
/* Counters that differ from a walk of the VM's pmap, and keep differing for
 * 5 s (changes in flight settle): the pages per state and the touched
 * pages mv_vm_stats reports (printed). */
uint64_t th_census_mismatches(mv_vm *vm);
uint64_t th_presence_mismatches(mv_vm *vm);
/* xorshift64: the tortures' random choices. */
uint64_t th_xs(uint64_t *state);
/* A thread swapping out 16 random pages of a random VM of vms[0..nvms)
 * every pause_ns until *stop, counting pages swapped. */
struct th_swapper {
	mv_vm **vms;
	unsigned nvms;
	long pause_ns;
	_Atomic bool *stop;
	_Atomic uint64_t swapped; /* pages swapped out so far */
};
void *th_swapper_main(void *arg);
/* Length of each torture run: MV_TORTURE_SECONDS, default 6. */
unsigned th_torture_seconds(void);
/* Empties the kernel's per-CPU LRU batches (move_pages(2) does that on
 * its way): UFFDIO_MOVE refuses a page still in one (EBUSY), so a test
 * that needs every page movable calls this after filling them. */
void th_drain_lru(void);
/* Waits until the host's scheduler has brought it out of the hard and low
 * states (free memory at least 64% of minFree), where it stops swapping;
 * gives up after TH_WAIT_MS (the caller checks the state). */
void th_settle(mv_host *h);

/* Files and processes for the tests of the memvisor command. */
/* A pause inside a poll with a deadline (never instead of one). */
void th_nap_ms(unsigned ms);
/* The whole file, NUL-terminated, malloc'd ("" if it cannot be read). */
char *th_slurp(const char *path);
/* Writes text to path (fails the test if it cannot). */
void th_put(const char *path, const char *text);
/* An unnamed read-write file in memory (a memfd, opened "w+"): what
 * tmpfile() gives, without a file under /tmp.  Fails the test if it
 * cannot; fclose frees it. */
#include <stdio.h>
FILE *th_tmpfile(void);
/* The memvisor command beside this test binary's directory. */
void th_memvisor_bin(char *buf, size_t len);

/* helper_proc.c: bin with argv, stdout and stderr to the file out. */
#include <limits.h>
#include <stdarg.h>
#include <sys/types.h>
pid_t th_spawnv(const char *bin, const char *out, char *const argv[]);
/* The same with the arguments after bin from ap, up to a NULL. */
pid_t th_spawn_va(const char *bin, const char *out, va_list ap);
/* Waits for *pid to exit within ms (fails the test, showing out, if it
 * does not, or if it died of a signal); its exit status; *pid becomes 0. */
int th_wait_exit(pid_t *pid, const char *out, unsigned ms);

/*
 * The fixture of the tests that run the memvisor command: a fresh
 * directory for its files (scenarios, swap files, its output and its
 * report), the command, and the process while it runs.
 */
struct th_cmd {
	char dir[TH_DIR_LEN]; /* a fresh scratch directory (th_scratch_dir) */
	char bin[PATH_MAX + 16]; /* the memvisor command */
	char out[TH_PATH_LEN]; /* its stdout and stderr */
	char json[TH_PATH_LEN]; /* its --json report */
	pid_t pid; /* running, or 0 */
	bool in_dir; /* th_cmd_start runs it with dir as its working directory */
};
/* For cmocka's setup: *state becomes a th_cmd whose directory is a
 * scratch directory named after prefix; -1 if it cannot be made. */
int th_cmd_setup(void **state, const char *prefix);
/* For cmocka's teardown: kills the command if it still runs, removes the
 * directory and frees the fixture. */
int th_cmd_teardown(void **state);
/* A scenario file name in the fixture's directory, its path into path:
 * a [host] section with the swap directory there, then body. */
void th_cmd_scenario(struct th_cmd *f, const char *name, const char *body,
		     char *path, size_t len);
/* Starts the command with the arguments after f, up to a NULL, its
 * output to f->out. */
void th_cmd_start(struct th_cmd *f, ...);
/* Waits up to ms until the output holds what, and returns the output from
 * there (malloc'd); fails the test if the command ends first. */
char *th_cmd_wait_output(struct th_cmd *f, const char *what, unsigned ms);
/* One of `memvisor run`'s live lines (tools/run.c's LIVE_FMT): the second,
 * the state, then MB (and MB/s, ops/s) as its header names them. */
struct th_live {
	double t;
	char state[8];
	double free_mb, minfree_mb, consumed_mb, shared_mb, balloon_mb,
		swapped_mb, cache_mb, swin_mb_s, swout_mb_s, zip_mb_s,
		unzip_mb_s, ops_s;
	unsigned long long errors;
};
/* Waits up to ms for a live line that satisfies pred (with arg) and
 * returns its second; fails the test if the command ends first. */
/* For th_cmd_wait_live: a line of a later second than *(double *)t. */
bool th_live_after(const struct th_live *l, void *t);
double th_cmd_wait_live(struct th_cmd *f,
			bool (*pred)(const struct th_live *, void *), void *arg,
			unsigned ms);
/* The command's --json report, parsed (fails the test if it is not). */
struct cJSON;
struct cJSON *th_cmd_report(struct th_cmd *f);
/* Its output (stdout, a --json benchmark's), parsed likewise. */
struct cJSON *th_cmd_stdout_report(struct th_cmd *f);
/* A member of a report's object: a string or a number, or the test fails. */
const char *th_jstr(const struct cJSON *o, const char *key);
double th_jnum(const struct cJSON *o, const char *key);
/* Some string of a benchmark report's "notes" holds what. */
bool th_jnote(const struct cJSON *report, const char *what);

#endif /* MV_TEST_HELPER_H */
