// SPDX-License-Identifier: MIT
/*
 * burst.c - the burst workload: a guest whose applications take most of
 * its memory for a while, give most of it back to the guest OS, idle, and
 * do it again; the case ballooning exists for.
 *
 * Design: the workload runs on its own guest OS (os.c) over the VM's guest
 * physical memory, and optionally loads the balloon driver on it.  Each
 * guest thread owns a share of burst_pct% of memory, divided evenly.  One
 * round of a thread: verify the pages it kept from the last round (they
 * sat idle while the host may have swapped or compressed them), allocate
 * from the guest OS up to its share (the balloon deflates on the guest's
 * OOM if it must), write every page, verify every page, free all but
 * burst_keep_pct% back to the guest OS (not to the host: only the balloon
 * can tell the host), and idle for burst_idle_ms.  The first idle of each
 * VM is a random part of burst_idle_ms, so VMs with different seeds do not
 * burst in step.
 *
 * A page written by the workload is self-describing: word 0 is its PFN,
 * word 1 its version, words 2..510 a stream keyed by XXH3(seed, pfn,
 * version), word 511 an XXH3 checksum of the rest.  A read is compared in
 * full with the expected bytes; the checksum lets a mismatch say whose
 * content it found (another page's, an older version, zeros, garbage).
 * Pages are read and written through guarded.c: a page the host could not
 * read back (SIGBUS) is counted as a memory error, described, and never
 * touched again by any thread, so the run and its verification go on.
 *
 * Invariants: a page is in a thread's held[] iff the guest OS handed it to
 * that thread and it was not freed since; only that thread touches it, and
 * ver[] records the version last written (0: allocated, not yet written),
 * so plain accesses are race-free and every held page can be verified at
 * any time.  The final verification checks its caller's cancel flag
 * between pages.  Counters are written by their thread only (release stores)
 * and read with acquire loads, as in workload.c.
 *
 * Lock ordering: err_lock is a leaf; guest OS and driver locks are taken
 * inside their calls, never with err_lock held.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "guarded.h"
#include "os.h"

#define GPAGE_SIZE 4096u
#define GPAGE_WORDS (GPAGE_SIZE / 8)
#define ALLOC_BATCH 64u
#define NAP_NS (20 * 1000 * 1000L)

#define DEFAULT_BURST_PCT 85
#define DEFAULT_KEEP_PCT 10
#define DEFAULT_IDLE_MS 2000

struct bthread {
	_Atomic uint64_t reads; /* pages verified while running */
	_Atomic uint64_t writes; /* pages written */
	_Atomic uint64_t errors; /* pages that did not match */
	_Atomic uint64_t memory_errors; /* of those, touches that took SIGBUS */
	_Atomic uint64_t short_allocs; /* rounds the guest OS fell short */
	struct mvg_burst *b;
	pthread_t tid;
	bool running;
	unsigned idx;
	uint64_t share; /* pages this thread allocates per round */
	uint64_t keep; /* pages it keeps between rounds */
	uint32_t *held; /* share of them */
	uint32_t *ver; /* version last written to held[i]; 0: none */
	uint64_t n; /* pages held */
	uint64_t *buf; /* one page: the expected content */
} __attribute__((aligned(64)));

struct mvg_burst {
	struct mvg_config cfg; /* copy, defaults filled in */
	struct mvg_os *os; /* the guest OS; owned */
	struct mvg_balloon *drv; /* its balloon driver, NULL if none */
	atomic_bool stop;
	pthread_mutex_t err_lock; /* serialises the first write of first_error */
	char first_error[160]; /* the first mismatch, "" if none */
	/* per pfn, 1 once a touch took SIGBUS (guarded.c): never touched
	 * again, whichever thread holds it later */
	_Atomic unsigned char *bad;
	struct bthread *threads; /* cfg.threads of them */
	const atomic_bool *cancel; /* ends a verification early; NULL: never */
	cpu_set_t cpus; /* *cfg.cpus, which then points here */
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool stopping(struct mvg_burst *b)
{
	return atomic_load_explicit(&b->stop, memory_order_relaxed);
}

static void bump(_Atomic uint64_t *c, uint64_t n)
{
	/* only the owner writes c, so no read-modify-write is needed */
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_release);
}

static uint64_t peek(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_acquire);
}

static uint64_t checksum(const uint64_t *w, uint64_t seed)
{
	return XXH3_64bits_withSeed(w, (GPAGE_WORDS - 1) * 8, seed);
}

/* The content of page pfn at version v. */
static void make_page(uint64_t *w, uint64_t seed, uint32_t pfn, uint32_t v)
{
	const uint64_t in[2] = { pfn, v };
	uint64_t key = XXH3_64bits_withSeed(in, sizeof(in), seed);

	w[0] = pfn;
	w[1] = v;
	for (unsigned i = 2; i < GPAGE_WORDS - 1; i++)
		w[i] = splitmix(&key);
	w[GPAGE_WORDS - 1] = checksum(w, seed);
}

static void report(struct bthread *t, uint32_t pfn, uint32_t v,
		   const uint64_t *got)
{
	struct mvg_burst *b = t->b;
	uint64_t seed = b->cfg.seed;
	char what[96];
	unsigned i;

	for (i = 0; i < GPAGE_WORDS && !got[i]; i++)
		;
	if (i == GPAGE_WORDS)
		snprintf(what, sizeof(what), "reads all zero");
	else if (checksum(got, seed) == got[GPAGE_WORDS - 1])
		snprintf(what, sizeof(what),
			 "holds pfn %llu version %llu, intact",
			 (unsigned long long)got[0],
			 (unsigned long long)got[1]);
	else
		snprintf(what, sizeof(what), "damaged (checksum fails)");
	pthread_mutex_lock(&b->err_lock);
	if (!b->first_error[0])
		snprintf(b->first_error, sizeof(b->first_error),
			 "burst: pfn %u version %u %s", pfn, v, what);
	pthread_mutex_unlock(&b->err_lock);
	/* after the text, so whoever sees the count can read the text */
	bump(&t->errors, 1);
}

static bool is_bad(struct mvg_burst *b, uint32_t pfn)
{
	return atomic_load_explicit(&b->bad[pfn], memory_order_relaxed);
}

/* A touch of pfn took SIGBUS: the host could not read it back. */
static void memory_error(struct bthread *t, uint32_t pfn)
{
	struct mvg_burst *b = t->b;

	atomic_store_explicit(&b->bad[pfn], 1, memory_order_relaxed);
	pthread_mutex_lock(&b->err_lock);
	if (!b->first_error[0])
		snprintf(
			b->first_error, sizeof(b->first_error),
			"burst: pfn %u: memory error (SIGBUS): the host could not read the page back",
			pfn);
	pthread_mutex_unlock(&b->err_lock);
	bump(&t->memory_errors, 1);
	bump(&t->errors, 1);
}

static void check(struct bthread *t, uint64_t i)
{
	const uint64_t *got = mvg_os_page(t->b->os, t->held[i]);
	int r;

	if (!t->ver[i] || is_bad(t->b, t->held[i]))
		return;
	make_page(t->buf, t->b->cfg.seed, t->held[i], t->ver[i]);
	r = mvg_guarded_cmp(got, t->buf, GPAGE_SIZE);
	if (r < 0) {
		memory_error(t, t->held[i]);
		return;
	}
	if (r)
		report(t, t->held[i], t->ver[i], got);
	bump(&t->reads, 1);
}

/* Writes version v of held[i]; a bad page is left alone, unversioned. */
static void write_held(struct bthread *t, uint64_t i, uint32_t v)
{
	struct mvg_burst *b = t->b;
	uint32_t pfn = t->held[i];

	t->ver[i] = 0;
	if (is_bad(b, pfn))
		return;
	make_page(t->buf, b->cfg.seed, pfn, v);
	if (mvg_guarded_copy(mvg_os_page(b->os, pfn), t->buf, GPAGE_SIZE)) {
		memory_error(t, pfn);
		return;
	}
	t->ver[i] = v;
}

/* Sleeps ns, looking at the stop flag at least every NAP_NS. */
static void nap(struct mvg_burst *b, uint64_t ns)
{
	struct timespec ts;

	while (ns && !stopping(b)) {
		ts.tv_sec = 0;
		ts.tv_nsec = ns < NAP_NS ? (long)ns : NAP_NS;
		clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
		ns -= (uint64_t)ts.tv_nsec;
	}
}

/* Allocates up to the thread's share; a short guest OS is counted. */
static void grow(struct bthread *t)
{
	uint64_t want;
	int got;

	while (t->n < t->share && !stopping(t->b)) {
		want = t->share - t->n;
		got = mvg_os_alloc(t->b->os,
				   want < ALLOC_BATCH ? (unsigned)want :
							ALLOC_BATCH,
				   t->held + t->n, 0);
		if (got < 0) {
			bump(&t->short_allocs, 1);
			return;
		}
		memset(t->ver + t->n, 0, (size_t)got * sizeof(*t->ver));
		t->n += (uint64_t)got;
	}
}

static void *burst_main(void *arg)
{
	struct bthread *t = arg;
	struct mvg_burst *b = t->b;
	uint64_t x = b->cfg.seed ^ 0x6275727374ull;
	uint32_t round = 0;

	nap(b, splitmix(&x) % (b->cfg.burst_idle_ms + 1) * 1000000);
	while (!stopping(b)) {
		round = round == UINT32_MAX ? 1 : round + 1;
		for (uint64_t i = 0; i < t->n && !stopping(b); i++)
			check(t, i);
		grow(t);
		for (uint64_t i = 0; i < t->n && !stopping(b); i++) {
			write_held(t, i, round);
			bump(&t->writes, 1);
			nap(b, (uint64_t)b->cfg.think_us * 1000);
		}
		for (uint64_t i = 0; i < t->n && !stopping(b); i++)
			check(t, i);
		if (stopping(b))
			break;
		if (t->n > t->keep &&
		    !mvg_os_free(b->os, t->held + t->keep,
				 (unsigned)(t->n - t->keep), 0))
			t->n = t->keep;
		nap(b, (uint64_t)b->cfg.burst_idle_ms * 1000000);
	}
	return NULL;
}

static void *verify_main(void *arg)
{
	struct bthread *t = arg;
	const atomic_bool *cancel = t->b->cancel;

	for (uint64_t i = 0; i < t->n; i++) {
		if (cancel &&
		    atomic_load_explicit(cancel, memory_order_relaxed))
			break;
		check(t, i);
	}
	return NULL;
}

static void defaults(struct mvg_config *c)
{
	if (!c->burst_pct)
		c->burst_pct = DEFAULT_BURST_PCT;
	if (!c->burst_keep_pct)
		c->burst_keep_pct = DEFAULT_KEEP_PCT;
	if (!c->burst_idle_ms)
		c->burst_idle_ms = DEFAULT_IDLE_MS;
}

static void join_all(struct mvg_burst *b)
{
	for (unsigned i = 0; i < b->cfg.threads; i++) {
		if (b->threads[i].running)
			pthread_join(b->threads[i].tid, NULL);
		b->threads[i].running = false;
	}
}

static void destroy(struct mvg_burst *b)
{
	mvg_balloon_stop(b->drv);
	for (unsigned i = 0; i < b->cfg.threads; i++) {
		free(b->threads[i].held);
		free(b->threads[i].ver);
		free(b->threads[i].buf);
	}
	free(b->threads);
	free((void *)b->bad);
	mvg_os_destroy(b->os);
	pthread_mutex_destroy(&b->err_lock);
	free(b);
}

static int thread_init(struct mvg_burst *b, struct bthread *t, unsigned i)
{
	uint64_t npages = b->cfg.memsize / GPAGE_SIZE;

	t->b = b;
	t->idx = i;
	t->share = npages * b->cfg.burst_pct / 100 / b->cfg.threads;
	t->keep = t->share * b->cfg.burst_keep_pct / 100;
	t->held = calloc(t->share ? t->share : 1, sizeof(*t->held));
	t->ver = calloc(t->share ? t->share : 1, sizeof(*t->ver));
	t->buf = aligned_alloc(GPAGE_SIZE, GPAGE_SIZE);
	return t->held && t->ver && t->buf ? 0 : -ENOMEM;
}

int mvg_burst_start(const struct mvg_config *cfg, struct mvg_burst **out)
{
	struct mvg_balloon_config bc;
	struct mvg_burst *b;
	int err;

	if (!cfg || !out || !cfg->threads || cfg->burst_pct > 100 ||
	    cfg->burst_keep_pct > 100)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->cfg = *cfg;
	if (cfg->cpus) {
		b->cpus = *cfg->cpus;
		b->cfg.cpus = &b->cpus;
	}
	defaults(&b->cfg);
	atomic_init(&b->stop, false);
	pthread_mutex_init(&b->err_lock, NULL);
	b->threads = aligned_alloc(_Alignof(struct bthread),
				   sizeof(*b->threads) * cfg->threads);
	if (!b->threads) {
		pthread_mutex_destroy(&b->err_lock);
		free(b);
		return -ENOMEM;
	}
	memset(b->threads, 0, sizeof(*b->threads) * cfg->threads);
	err = mvg_os_create(cfg->mem, cfg->memsize, &b->os);
	if (err)
		goto fail;
	mvg_guarded_init();
	b->bad = calloc(cfg->memsize / GPAGE_SIZE, sizeof(*b->bad));
	if (!b->bad) {
		err = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < cfg->threads; i++) {
		err = thread_init(b, &b->threads[i], i);
		if (err)
			goto fail;
	}
	if (cfg->balloon_vm) {
		mvg_balloon_config_init(&bc);
		if (cfg->balloon_poll_ms)
			bc.poll_ms = cfg->balloon_poll_ms;
		bc.oom_hold_ms = 2 * bc.poll_ms;
		bc.cpus = b->cfg.cpus; /* a guest kernel thread: on its vCPUs */
		err = mvg_balloon_start(cfg->balloon_vm, b->os, &bc, &b->drv);
		if (err)
			goto fail;
	}
	for (unsigned i = 0; i < cfg->threads; i++) {
		err = mvg_thread_create(&b->threads[i].tid, b->cfg.cpus,
					burst_main, &b->threads[i]);
		if (err)
			goto fail;
		b->threads[i].running = true;
	}
	*out = b;
	return 0;

fail:
	atomic_store(&b->stop, true);
	join_all(b);
	destroy(b);
	return err;
}

void mvg_burst_get_stats(struct mvg_burst *b, struct mvg_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < b->cfg.threads; i++) {
		st->reads += peek(&b->threads[i].reads);
		st->writes += peek(&b->threads[i].writes);
		st->integrity_errors += peek(&b->threads[i].errors);
		st->memory_errors += peek(&b->threads[i].memory_errors);
	}
	st->ops = st->reads + st->writes;
	st->pages_verified = st->reads;
	pthread_mutex_lock(&b->err_lock);
	memcpy(st->first_error, b->first_error, sizeof(st->first_error));
	pthread_mutex_unlock(&b->err_lock);
}

void mvg_burst_request_stop(struct mvg_burst *b)
{
	atomic_store(&b->stop, true);
}

void mvg_burst_halt(struct mvg_burst *b)
{
	atomic_store(&b->stop, true);
	join_all(b);
}

void mvg_burst_stop(struct mvg_burst *b)
{
	mvg_burst_halt(b);
	destroy(b);
}

int mvg_burst_verify(struct mvg_burst *b, const atomic_bool *cancel,
		     struct mvg_stats *final)
{
	mvg_burst_halt(b);
	mvg_guarded_init();
	b->cancel = cancel;
	for (unsigned i = 0; i < b->cfg.threads; i++) {
		struct bthread *t = &b->threads[i];

		if (!mvg_thread_create(&t->tid, b->cfg.cpus, verify_main, t))
			t->running = true;
		else
			verify_main(t);
	}
	join_all(b);
	if (final)
		mvg_burst_get_stats(b, final);
	return cancel && atomic_load(cancel) ? -ECANCELED : 0;
}

uint64_t mvg_burst_verify_pages(struct mvg_burst *b)
{
	uint64_t n = 0;

	mvg_burst_halt(b);
	for (unsigned i = 0; i < b->cfg.threads; i++)
		n += b->threads[i].n;
	return n;
}
