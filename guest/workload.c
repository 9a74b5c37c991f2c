// SPDX-License-Identifier: MIT
/*
 * workload.c - guest threads that run a workload against guest physical
 * memory and prove that every byte they read back is the byte they wrote.
 *
 * Design: a workload is cfg->threads guest threads over one region.  Each
 * thread owns a contiguous, disjoint range of pages and never touches
 * another's, so guest threads need no locks and the memory manager's
 * correctness is the only thing that can make a read differ from the last
 * write.  Everything a thread needs to know what a page must hold lives
 * outside guest memory ("shadow state") and is small:
 *
 *   idle, random, image   one version per page (4 bytes per 4 KiB); the
 *                         content of a page at version v >= 1 is a stream
 *                         of splitmix64 words keyed by XXH3(seed, ppn, v),
 *                         incompressible and different for every page and
 *                         version, so a page that comes back as another
 *                         page, an older version or zero is caught.
 *                         Version 0 means "never written by the workload":
 *                         zero, or the image file's bytes for a VM
 *                         started from an image (idle and random too).
 *   kvstore               per thread an open-addressing hash table (linear
 *                         probing, no deletes) of 256-byte records over 90%
 *                         of its pages, with one version per key and one
 *                         owner per slot (4 + 4 bytes); a record's content
 *                         follows from (seed, key, version) and carries an
 *                         XXH3 checksum as a real store's would.  Keys are
 *                         drawn by Zipf rank with a rejection-inversion
 *                         sampler (Hoermann and Derflinger, 1996), which
 *                         needs no table however many keys there are.
 *
 * Every read is a full comparison with the expected bytes; on a mismatch the
 * first differing byte is described (page, offset, expected, got) and
 * counted, and the workload carries on, because a memory manager that
 * loses one page should be shown losing all the pages it loses.  A page
 * the host could not read back raises SIGBUS when touched (memvisor
 * poisons it rather than guess its content): every access to guest memory
 * is guarded (guarded.c), so the page is counted as a memory error, described,
 * and never touched again, and the thread, or the final verification,
 * carries on over the others.
 *
 * Invariants:
 *  - a page, its shadow version and a table slot's shadow are written only
 *    by the thread that owns the page's range, or after that thread was
 *    joined (final verification), so plain accesses are race-free;
 *  - a counter in struct gthread is written only by its thread, with a
 *    release store after the memory effects it counts, and read with an
 *    acquire load: whoever sees a page counted as written also sees the
 *    page's bytes (tests rely on this to corrupt memory behind an idle
 *    workload's back);
 *  - the stop flag is checked between operations and at least every
 *    NAP_NS while sleeping, so stopping takes at most one operation plus
 *    NAP_NS;
 *  - the final verification runs only after every guest thread was joined,
 *    and checks its caller's cancel flag between pages, so cancelling it
 *    takes at most one page (or, for kvstore, one page of records).
 *
 * A caller ending many workloads tells them all to stop before waiting for
 * any (mvg_request_stop, then mvg_halt), so that no guest still runs while
 * another is verified, and may verify them on threads of its own.
 *
 * A workload given CPUs (cfg->cpus) is pinned as a VM host pins a VM's
 * vCPUs: its guest threads, and its verification threads, are created
 * with that affinity (mvg_thread_create), so none runs elsewhere first,
 * and a set the kernel refuses fails mvg_start instead of being ignored.
 *
 * Lock ordering: err_lock only, a leaf; nothing else is taken under it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "guest.h"
#include "guarded.h"
#include "os.h"

#define GPAGE_SHIFT 12
#define GPAGE_SIZE (1u << GPAGE_SHIFT)
#define GPAGE_WORDS (GPAGE_SIZE / sizeof(uint64_t))

/* More threads than this is a mistake in the caller, not a workload. */
#define MAX_THREADS 1024u
/* Longest sleep between two looks at the stop flag. */
#define NAP_NS (20 * 1000 * 1000L)

#define DEFAULT_ZIPF_S 0.99
/* Beyond this skew rank 1 takes more than 99.99% of accesses anyway. */
#define MAX_ZIPF_S 16.0

#define KV_REC_SIZE 256u
#define KV_RECS_PER_PAGE (GPAGE_SIZE / KV_REC_SIZE)
#define KV_TABLE_PCT 90 /* share of a thread's pages given to its table */
#define KV_LOAD_PCT 75 /* keys per slot, so probe chains stay short */
#define KV_READ_PCT 70
#define KV_MAGIC 0x3153564bu /* "KVS1" */
/* Largest per-thread range whose slot numbers fit the uint32 shadow. */
#define KV_MAX_PAGES ((uint64_t)UINT32_MAX / KV_RECS_PER_PAGE)

#define RANDOM_READ_PCT 50
#define IMAGE_READ_PCT 70
#define IMAGE_WSS_STRIDE 4 /* every 4th page: a 25% working set */

/* Domains keep page streams and record payloads from ever coinciding. */
#define STREAM_PAGE 0x50414745ull
#define STREAM_KV 0x4b565354ull

/* One record of the key-value store, laid out as it sits in guest memory. */
struct kv_record {
	uint64_t key; /* global key, >= 1, so an empty slot is all zero */
	uint32_t version; /* bumped by every update, >= 1 */
	uint32_t magic; /* KV_MAGIC */
	uint64_t payload[29]; /* determined by (seed, key, version) */
	uint64_t checksum; /* XXH3 of everything above, seeded with seed */
};

_Static_assert(sizeof(struct kv_record) == KV_REC_SIZE, "record size");

/* xoshiro256** state: fast, and good enough for choosing pages and keys. */
struct rng {
	uint64_t s[4];
};

/*
 * Zipf sampler over ranks 1..n with P(k) proportional to k^-s.  With
 * h(x) = x^-s and H its antiderivative, ranks are drawn by inverting H on a
 * uniform variate and rejecting the few draws that the continuous envelope
 * over-represents.
 */
struct zipf {
	double n; /* number of ranks */
	double s; /* exponent, > 0 */
	double h_lo; /* H(1.5) - h(1): one end of the sampled interval */
	double h_hi; /* H(n + 0.5): the other end */
	double squeeze; /* draws with k - x <= squeeze are accepted at once */
};

/* One guest thread and everything it owns. */
struct gthread {
	_Atomic uint64_t reads; /* read operations completed */
	_Atomic uint64_t writes; /* write operations completed */
	_Atomic uint64_t verified; /* bytes compared with expected content */
	_Atomic uint64_t errors; /* comparisons that failed */
	_Atomic uint64_t memory_errors; /* of those, touches that took SIGBUS */
	_Atomic uint64_t loaded; /* pages of the first pass over an image */
	struct mvg_workload *w; /* the workload this thread belongs to */
	pthread_t tid; /* valid while running */
	bool running; /* tid is a thread not yet joined */
	unsigned idx; /* 0 .. threads - 1 */
	uint64_t lo, hi; /* pages [lo, hi) belong to this thread alone */
	struct rng rng; /* this thread's own random stream */
	uint8_t *buf; /* one page: the expected content being compared */
	int io_err; /* first -errno reading the image, 0 if none */
	uint64_t kv_slots; /* MVG_KVSTORE: records in this thread's table */
	uint64_t kv_keys; /* MVG_KVSTORE: keys this thread draws from */
	uint32_t *key_version; /* per key: last version written, 0: never */
	uint32_t *slot_key; /* per slot: key index + 1, 0: empty */
	struct zipf zipf; /* MVG_KVSTORE: key popularity */
} __attribute__((aligned(64))); /* counters of two threads never share a line */

/* What distinguishes one kind of workload from another. */
struct kind_ops {
	const char *name; /* as mvg_kind_parse accepts it */
	int (*run)(struct gthread *g); /* guest thread body until stop */
	int (*verify)(struct gthread *g); /* check all g wrote, after join */
};

struct mvg_workload {
	struct mvg_config cfg; /* copy; image_path is not kept (image_fd) */
	uint8_t *mem; /* cfg.mem */
	uint64_t npages; /* cfg.memsize in pages */
	const struct kind_ops *ops; /* this workload's kind */
	atomic_bool stop; /* set once: guest threads return */
	uint32_t *version; /* per page, except MVG_KVSTORE: 0: never written */
	int image_fd; /* MVG_IMAGE: the image file, else -1 */
	uint64_t image_size; /* MVG_IMAGE: bytes; later pages read as zero */
	pthread_mutex_t err_lock; /* serialises the first write of first_error */
	char first_error[160]; /* first mismatch any thread saw, "" if none */
	/* per page, 1 once a touch took SIGBUS (the host could not read it
	 * back): written by the page's thread, read after joins */
	uint8_t *bad;
	struct gthread *threads; /* cfg.threads of them */
	struct mvg_burst *burst; /* MVG_BURST: all of the above is unused */
	cpu_set_t cpus; /* *cfg.cpus, which then points here */
	const atomic_bool *cancel; /* ends a verification early; NULL: never */
};

static const uint8_t zero_page[GPAGE_SIZE];

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in [0, n) without the bias of a modulo. */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* Uniform in [0, 1). */
static double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* log1p(t) / t and expm1(t) / t, continuous through t = 0. */
static double log1p_ratio(double t)
{
	return fabs(t) > 1e-8 ? log1p(t) / t : 1 - t / 2;
}

static double expm1_ratio(double t)
{
	return fabs(t) > 1e-8 ? expm1(t) / t : 1 + t / 2;
}

static double zipf_h(const struct zipf *z, double x)
{
	return exp(-z->s * log(x));
}

/* (x^(1-s) - 1) / (1 - s), written so that s = 1 gives log(x). */
static double zipf_big_h(const struct zipf *z, double x)
{
	double lx = log(x);

	return expm1_ratio((1 - z->s) * lx) * lx;
}

static double zipf_big_h_inv(const struct zipf *z, double y)
{
	double t = (1 - z->s) * y;

	/* rounding at the interval's end must not take log1p below -1 */
	if (t < -1)
		t = -1;
	return exp(log1p_ratio(t) * y);
}

static void zipf_init(struct zipf *z, uint64_t n, double s)
{
	z->n = (double)n;
	z->s = s;
	z->h_lo = zipf_big_h(z, 1.5) - 1;
	z->h_hi = zipf_big_h(z, z->n + 0.5);
	z->squeeze = 2 - zipf_big_h_inv(z, zipf_big_h(z, 2.5) - zipf_h(z, 2));
}

/* A rank in 1..n; rank 1 is the most popular. */
static uint64_t zipf_next(const struct zipf *z, struct rng *r)
{
	for (;;) {
		double u = z->h_hi + rng_unit(r) * (z->h_lo - z->h_hi);
		double x = zipf_big_h_inv(z, u);
		double k = floor(x + 0.5);

		/* written so that a NaN lands on rank 1 too */
		if (!(k >= 1))
			k = 1;
		else if (k > z->n)
			k = z->n;
		if (k - x <= z->squeeze ||
		    u >= zipf_big_h(z, k + 0.5) - zipf_h(z, k))
			return (uint64_t)k;
	}
}

/* Key of the word stream for one page version or one record version. */
static uint64_t stream_key(uint64_t seed, uint64_t domain, uint64_t a,
			   uint64_t b)
{
	const uint64_t in[3] = { domain, a, b };

	return XXH3_64bits_withSeed(in, sizeof(in), seed);
}

static void fill_words(uint64_t *dst, size_t nwords, uint64_t key)
{
	for (size_t i = 0; i < nwords; i++)
		dst[i] = splitmix(&key);
}

/*
 * A value the way applications store them: a unique id, then text whose
 * phrases recur from record to record, so that a full page compresses to a
 * fraction of its size as real heaps and caches do, and every byte is still
 * determined by key.
 */
static void fill_text(void *dst, size_t len, uint64_t key)
{
	static const char *const words[] = {
		"user ",       "session ", "cart ",	 "item ",
		"price ",      "total ",   "status=ok ", "region=eu ",
		"2026-11-23 ", "visits ",  "the ",	 "and ",
		"memory ",     "page ",	   "guest ",	 "host ",
	};
	char *out = dst;
	uint64_t id = splitmix(&key), first = splitmix(&key);
	size_t n = len < sizeof(id) ? len : sizeof(id), w;

	memcpy(out, &id, n);
	/* the vocabulary in order from a random word: records share phrases */
	for (unsigned i = 0; n < len; i++) {
		const char *word = words[(first + i) % 16];

		w = strlen(word);
		if (w > len - n)
			w = len - n;
		memcpy(out + n, word, w);
		n += w;
	}
}

static uint8_t *page_at(const struct mvg_workload *w, uint64_t ppn)
{
	return w->mem + (ppn << GPAGE_SHIFT);
}

static bool stopping(struct mvg_workload *w)
{
	return atomic_load_explicit(&w->stop, memory_order_relaxed);
}

/* The final verification was asked to end early. */
static bool cancelled(const struct mvg_workload *w)
{
	return w->cancel &&
	       atomic_load_explicit(w->cancel, memory_order_relaxed);
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

/* Wraps past UINT32_MAX to 1, never to 0, which means "never written". */
static uint32_t next_version(uint32_t v)
{
	return v == UINT32_MAX ? 1 : v + 1;
}

static void nap(long ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000L,
			       .tv_nsec = ns % 1000000000L };

	clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

/* The optional pause between operations, cut short by a stop request. */
static void think(struct gthread *g)
{
	long left = (long)g->w->cfg.think_us * 1000L;

	while (left > 0 && !stopping(g->w)) {
		long ns = left < NAP_NS ? left : NAP_NS;

		nap(ns);
		left -= ns;
	}
}

static void report(struct gthread *g, uint64_t ppn, size_t off, uint8_t want,
		   uint8_t got, const char *what)
{
	struct mvg_workload *w = g->w;

	pthread_mutex_lock(&w->err_lock);
	if (!w->first_error[0])
		snprintf(
			w->first_error, sizeof(w->first_error),
			"%s: ppn %llu offset %zu: expected 0x%02x got 0x%02x (%s)",
			w->ops->name, (unsigned long long)ppn, off, want, got,
			what);
	pthread_mutex_unlock(&w->err_lock);
	/* after the text, so whoever sees the count can read the text */
	bump(&g->errors, 1);
}

/*
 * Compares len bytes of page ppn at offset off with want.  On a mismatch
 * counts it and, if it is the first anywhere, describes its first byte;
 * fmt says what was expected there and is formatted only then.
 */
/*
 * Memory errors: a page the host could not read back raises SIGBUS when
 * touched (guarded.c).  The page is marked bad, counted as an integrity
 * error and described, and never touched again (writes to it are dropped,
 * reads skipped), so the thread goes on and the final verification names
 * every unreadable page instead of dying or hanging.
 */
static void memory_error(struct gthread *g, uint64_t ppn)
{
	struct mvg_workload *w = g->w;

	w->bad[ppn] = 1;
	pthread_mutex_lock(&w->err_lock);
	if (!w->first_error[0])
		snprintf(
			w->first_error, sizeof(w->first_error),
			"%s: ppn %llu: memory error (SIGBUS): the host could not read the page back",
			w->ops->name, (unsigned long long)ppn);
	pthread_mutex_unlock(&w->err_lock);
	bump(&g->memory_errors, 1);
	bump(&g->errors, 1);
}

/* memcmp of len bytes of page ppn with good: 0 same, 1 different, -1 the
 * page is bad (now or before) */
static int guest_cmp(struct gthread *g, uint64_t ppn, const uint8_t *got,
		     const uint8_t *good, size_t len)
{
	int r;

	if (g->w->bad[ppn])
		return -1;
	r = mvg_guarded_cmp(got, good, len);
	if (r < 0)
		memory_error(g, ppn);
	return r < 0 ? -1 : r;
}

struct fill {
	uint64_t *dst;
	uint64_t key;
};

static void do_fill(void *arg)
{
	struct fill *f = arg;

	fill_words(f->dst, GPAGE_WORDS, f->key);
}

/* Page ppn filled with the word stream of key, unless it is bad. */
static void guest_fill(struct gthread *g, uint64_t ppn, uint64_t key)
{
	struct fill f = { (uint64_t *)page_at(g->w, ppn), key };

	if (!g->w->bad[ppn] && mvg_guarded(do_fill, &f))
		memory_error(g, ppn);
}

/* len bytes of src to page ppn at off, unless it is bad. */
static void guest_copy(struct gthread *g, uint64_t ppn, size_t off,
		       const void *src, size_t len)
{
	if (!g->w->bad[ppn] &&
	    mvg_guarded_copy(page_at(g->w, ppn) + off, src, len))
		memory_error(g, ppn);
}

static void check(struct gthread *g, uint64_t ppn, size_t off, const void *want,
		  size_t len, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static void check(struct gthread *g, uint64_t ppn, size_t off, const void *want,
		  size_t len, const char *fmt, ...)
{
	const uint8_t *got = page_at(g->w, ppn) + off;
	const uint8_t *good = want;
	char what[64];
	va_list ap;
	size_t i;
	int same = guest_cmp(g, ppn, got, good, len);

	if (same < 0)
		return; /* counted once, when it took SIGBUS */
	bump(&g->verified, len);
	if (!same)
		return;
	/* bounded: a page changing under us must not run the scan off */
	for (i = 0; i + 1 < len && got[i] == good[i]; i++)
		;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	report(g, ppn, off + i, good[i], got[i], what);
}

/* Expected bytes of page ppn at its shadow version, into g->buf. */
static int expect_page(struct gthread *g, uint64_t ppn)
{
	struct mvg_workload *w = g->w;
	uint32_t v = w->version[ppn];
	uint64_t pos = ppn << GPAGE_SHIFT;
	size_t done = 0;

	if (v) {
		fill_words((uint64_t *)g->buf, GPAGE_WORDS,
			   stream_key(w->cfg.seed, STREAM_PAGE, ppn, v));
		return 0;
	}
	while (w->image_fd >= 0 && pos + done < w->image_size &&
	       done < GPAGE_SIZE) {
		ssize_t n = pread(w->image_fd, g->buf + done, GPAGE_SIZE - done,
				  (off_t)(pos + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		/* the file shrank since start: the rest is compared to zero */
		if (n == 0)
			break;
		done += (size_t)n;
	}
	memset(g->buf + done, 0, GPAGE_SIZE - done);
	return 0;
}

/* Verifies page ppn against its shadow version (or the image, or zero). */
static int check_page(struct gthread *g, uint64_t ppn)
{
	struct mvg_workload *w = g->w;
	uint32_t v = w->version[ppn];
	int err;

	err = expect_page(g, ppn);
	if (err)
		return err;
	if (v)
		check(g, ppn, 0, g->buf, GPAGE_SIZE, "version %u", v);
	else if (w->image_fd >= 0 && (ppn << GPAGE_SHIFT) < w->image_size)
		check(g, ppn, 0, g->buf, GPAGE_SIZE, "image");
	else
		check(g, ppn, 0, g->buf, GPAGE_SIZE, "zero, never written");
	return 0;
}

static int read_page(struct gthread *g, uint64_t ppn)
{
	int err = check_page(g, ppn);

	if (!err)
		bump(&g->reads, 1);
	return err;
}

static void write_page(struct gthread *g, uint64_t ppn)
{
	struct mvg_workload *w = g->w;
	uint32_t v = next_version(w->version[ppn]);

	guest_fill(g, ppn, stream_key(w->cfg.seed, STREAM_PAGE, ppn, v));
	if (w->bad[ppn])
		return; /* a page the guest cannot use keeps its version */
	w->version[ppn] = v;
	bump(&g->writes, 1);
}

/* On an image, the touch is a read (the VM restored, then left idle), so
 * that the image's pages stay what they are. */
static int idle_run(struct gthread *g)
{
	int err;

	for (uint64_t ppn = g->lo; ppn < g->hi && !stopping(g->w); ppn++) {
		if (g->w->image_fd >= 0) {
			err = read_page(g, ppn);
			if (err)
				return err;
			bump(&g->loaded, 1);
		} else {
			write_page(g, ppn);
		}
		think(g);
	}
	while (!stopping(g->w))
		nap(NAP_NS);
	return 0;
}

static int random_run(struct gthread *g)
{
	int err;

	while (!stopping(g->w)) {
		uint64_t ppn = g->lo + rng_below(&g->rng, g->hi - g->lo);

		if (rng_below(&g->rng, 100) < RANDOM_READ_PCT) {
			err = read_page(g, ppn);
			if (err)
				return err;
		} else {
			write_page(g, ppn);
		}
		think(g);
	}
	return 0;
}

/* Checks the pages whose shadow says they were written (idle, random). */
static int written_verify(struct gthread *g)
{
	int err;

	for (uint64_t ppn = g->lo; ppn < g->hi && !cancelled(g->w); ppn++) {
		if (!g->w->version[ppn])
			continue;
		err = check_page(g, ppn);
		if (err)
			return err;
	}
	return 0;
}

static int image_verify(struct gthread *g);

/* On an image every page is checked, as for the image workload. */
static int idle_verify(struct gthread *g)
{
	return g->w->image_fd >= 0 ? image_verify(g) : written_verify(g);
}

static int image_run(struct gthread *g)
{
	uint64_t wss =
		(g->hi - g->lo + IMAGE_WSS_STRIDE - 1) / IMAGE_WSS_STRIDE;
	uint32_t write_pct = g->w->cfg.image_write_pct1 ?
				     g->w->cfg.image_write_pct1 - 1 :
				     100 - IMAGE_READ_PCT;
	int err;

	for (uint64_t ppn = g->lo; ppn < g->hi && !stopping(g->w); ppn++) {
		err = read_page(g, ppn);
		if (err)
			return err;
		bump(&g->loaded, 1);
		think(g);
	}
	while (!stopping(g->w)) {
		uint64_t ppn =
			g->lo + IMAGE_WSS_STRIDE * rng_below(&g->rng, wss);

		if (rng_below(&g->rng, 100) >= write_pct) {
			err = read_page(g, ppn);
			if (err)
				return err;
		} else {
			write_page(g, ppn);
		}
		think(g);
	}
	return 0;
}

/* Every page of a restored VM was written, by the image if not by us. */
static int image_verify(struct gthread *g)
{
	int err;

	for (uint64_t ppn = g->lo; ppn < g->hi && !cancelled(g->w); ppn++) {
		err = check_page(g, ppn);
		if (err)
			return err;
	}
	return 0;
}

static uint64_t kv_global_key(const struct gthread *g, uint64_t key)
{
	return key * g->w->cfg.threads + g->idx + 1;
}

static void kv_make(const struct gthread *g, uint64_t key, uint32_t version,
		    struct kv_record *r)
{
	uint64_t seed = g->w->cfg.seed;

	r->key = kv_global_key(g, key);
	r->version = version;
	r->magic = KV_MAGIC;
	if (g->w->cfg.kv_text)
		fill_text(r->payload, sizeof(r->payload),
			  stream_key(seed, STREAM_KV, r->key, version));
	else
		fill_words(r->payload,
			   sizeof(r->payload) / sizeof(r->payload[0]),
			   stream_key(seed, STREAM_KV, r->key, version));
	r->checksum = XXH3_64bits_withSeed(
		r, offsetof(struct kv_record, checksum), seed);
}

static uint64_t kv_slot_ppn(const struct gthread *g, uint64_t slot)
{
	return g->lo + slot / KV_RECS_PER_PAGE;
}

static size_t kv_slot_off(uint64_t slot)
{
	return (size_t)(slot % KV_RECS_PER_PAGE) * KV_REC_SIZE;
}

/* Verifies one slot of the table against the shadow: record or zero. */
static void kv_check_slot(struct gthread *g, uint64_t slot)
{
	uint64_t ppn = kv_slot_ppn(g, slot);
	size_t off = kv_slot_off(slot);
	uint32_t owner = g->slot_key[slot];
	struct kv_record want;
	uint32_t v;

	if (!owner) {
		check(g, ppn, off, zero_page, KV_REC_SIZE, "empty slot %llu",
		      (unsigned long long)slot);
		return;
	}
	v = g->key_version[owner - 1];
	kv_make(g, owner - 1, v, &want);
	check(g, ppn, off, &want, KV_REC_SIZE, "key %llu version %u",
	      (unsigned long long)want.key, v);
}

/* One get or put of a Zipf-chosen key; a probe reads every record it passes. */
static void kv_op(struct gthread *g)
{
	uint64_t key = zipf_next(&g->zipf, &g->rng) - 1;
	uint64_t gkey = kv_global_key(g, key);
	bool put = rng_below(&g->rng, 100) >= KV_READ_PCT;
	uint64_t slot =
		XXH3_64bits_withSeed(&gkey, sizeof(gkey), g->w->cfg.seed) %
		g->kv_slots;
	struct kv_record rec;
	uint32_t v;

	/* ends: there are fewer keys than slots, so an empty slot exists */
	for (;;) {
		kv_check_slot(g, slot);
		if (!g->slot_key[slot] || g->slot_key[slot] == key + 1)
			break;
		slot = slot + 1 == g->kv_slots ? 0 : slot + 1;
	}
	if (!put) {
		bump(&g->reads, 1);
		return;
	}
	v = next_version(g->key_version[key]);
	kv_make(g, key, v, &rec);
	guest_copy(g, kv_slot_ppn(g, slot), kv_slot_off(slot), &rec,
		   sizeof(rec));
	if (g->w->bad[kv_slot_ppn(g, slot)])
		return; /* the record stays where it was */
	g->slot_key[slot] = (uint32_t)(key + 1);
	g->key_version[key] = v;
	bump(&g->writes, 1);
}

static int kv_run(struct gthread *g)
{
	while (!stopping(g->w)) {
		kv_op(g);
		think(g);
	}
	return 0;
}

/* Checks every table page holding a record, empty slots included. */
static int kv_verify(struct gthread *g)
{
	for (uint64_t first = 0; first < g->kv_slots && !cancelled(g->w);
	     first += KV_RECS_PER_PAGE) {
		bool used = false;

		for (unsigned i = 0; i < KV_RECS_PER_PAGE; i++)
			used |= g->slot_key[first + i] != 0;
		for (unsigned i = 0; used && i < KV_RECS_PER_PAGE; i++)
			kv_check_slot(g, first + i);
	}
	return 0;
}

static const struct kind_ops kinds[MVG_NKINDS] = {
	[MVG_IDLE] = { "idle", idle_run, idle_verify },
	[MVG_KVSTORE] = { "kvstore", kv_run, kv_verify },
	[MVG_RANDOM] = { "random", random_run, written_verify },
	[MVG_IMAGE] = { "image", image_run, image_verify },
	[MVG_BURST] = { "burst", NULL, NULL }, /* runs in burst.c */
};

int mvg_kind_parse(const char *name, enum mvg_kind *out)
{
	if (!name || !out)
		return -EINVAL;
	for (unsigned k = 0; k < MVG_NKINDS; k++) {
		if (!strcmp(name, kinds[k].name)) {
			*out = (enum mvg_kind)k;
			return 0;
		}
	}
	return -EINVAL;
}

const char *mvg_kind_name(enum mvg_kind kind)
{
	return (unsigned)kind < MVG_NKINDS ? kinds[kind].name : "unknown";
}

static int check_config(const struct mvg_config *cfg)
{
	uint64_t npages, most;

	if (!cfg || (unsigned)cfg->kind >= MVG_NKINDS || !cfg->mem ||
	    (uintptr_t)cfg->mem % GPAGE_SIZE || !cfg->memsize ||
	    cfg->memsize % GPAGE_SIZE)
		return -EINVAL;
	npages = cfg->memsize >> GPAGE_SHIFT;
	if (!cfg->threads || cfg->threads > MAX_THREADS ||
	    cfg->threads > npages)
		return -EINVAL;
	/* also rejects NaN */
	if (!(cfg->zipf_s >= 0 && cfg->zipf_s <= MAX_ZIPF_S))
		return -EINVAL;
	most = (npages + cfg->threads - 1) / cfg->threads;
	if (cfg->kind == MVG_KVSTORE && most > KV_MAX_PAGES)
		return -EINVAL;
	if (cfg->kind == MVG_IMAGE && !cfg->image_path)
		return -EINVAL;
	/* its empty slots must read as zero */
	if (cfg->kind == MVG_KVSTORE && cfg->image_path)
		return -EINVAL;
	if (cfg->cpus && !CPU_COUNT(cfg->cpus))
		return -EINVAL;
	return 0;
}

static int open_image(struct mvg_workload *w, const char *path)
{
	struct stat st;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		goto fail;
	}
	/* a VM cannot have been restored from more RAM than it has */
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > w->cfg.memsize) {
		err = -EINVAL;
		goto fail;
	}
	w->image_fd = fd;
	w->image_size = (uint64_t)st.st_size;
	return 0;
fail:
	close(fd);
	return err;
}

static int kv_init(struct gthread *g)
{
	uint64_t pages = (g->hi - g->lo) * KV_TABLE_PCT / 100;

	g->kv_slots = (pages ? pages : 1) * KV_RECS_PER_PAGE;
	g->kv_keys = g->kv_slots * KV_LOAD_PCT / 100;
	g->key_version = calloc(g->kv_keys, sizeof(*g->key_version));
	g->slot_key = calloc(g->kv_slots, sizeof(*g->slot_key));
	if (!g->key_version || !g->slot_key)
		return -ENOMEM;
	zipf_init(&g->zipf, g->kv_keys, g->w->cfg.zipf_s);
	return 0;
}

static int thread_init(struct mvg_workload *w, struct gthread *g, unsigned i)
{
	uint64_t x = w->cfg.seed ^ (i + 1) * 0xd1342543de82ef95ull;

	atomic_init(&g->reads, 0);
	atomic_init(&g->writes, 0);
	atomic_init(&g->verified, 0);
	atomic_init(&g->errors, 0);
	atomic_init(&g->loaded, 0);
	g->w = w;
	g->idx = i;
	g->lo = w->npages * i / w->cfg.threads;
	g->hi = w->npages * (i + 1) / w->cfg.threads;
	for (unsigned k = 0; k < 4; k++)
		g->rng.s[k] = splitmix(&x);
	g->buf = aligned_alloc(GPAGE_SIZE, GPAGE_SIZE);
	if (!g->buf)
		return -ENOMEM;
	return w->cfg.kind == MVG_KVSTORE ? kv_init(g) : 0;
}

static void free_threads(struct mvg_workload *w)
{
	for (unsigned i = 0; i < w->cfg.threads; i++) {
		free(w->threads[i].buf);
		free(w->threads[i].key_version);
		free(w->threads[i].slot_key);
	}
	free(w->threads);
}

static void *guest_main(void *arg)
{
	struct gthread *g = arg;

	g->io_err = g->w->ops->run(g);
	return NULL;
}

static void *verify_main(void *arg)
{
	struct gthread *g = arg;
	int err = g->w->ops->verify(g);

	if (!g->io_err)
		g->io_err = err;
	return NULL;
}

int mvg_thread_create(pthread_t *tid, const cpu_set_t *cpus,
		      void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	int err;

	if (!cpus)
		return -pthread_create(tid, NULL, fn, arg);
	err = -pthread_attr_init(&attr);
	if (err)
		return err;
	/* glibc sets the affinity before the thread first runs, and fails
	 * the create if the kernel refuses it */
	err = -pthread_attr_setaffinity_np(&attr, sizeof(*cpus), cpus);
	if (!err)
		err = -pthread_create(tid, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return err;
}

static void join_all(struct mvg_workload *w)
{
	for (unsigned i = 0; i < w->cfg.threads; i++) {
		if (w->threads[i].running)
			pthread_join(w->threads[i].tid, NULL);
		w->threads[i].running = false;
	}
}

static void halt(struct mvg_workload *w)
{
	atomic_store_explicit(&w->stop, true, memory_order_relaxed);
	join_all(w);
}

int mvg_start(const struct mvg_config *cfg, struct mvg_workload **out)
{
	struct mvg_workload *w;
	size_t tbytes;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	err = check_config(cfg);
	if (err)
		return err;
	/* only burst allocates through the guest OS a balloon needs */
	if (cfg->balloon_vm && cfg->kind != MVG_BURST)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	if (cfg->kind == MVG_BURST) {
		err = mvg_burst_start(cfg, &w->burst);
		if (err)
			free(w);
		else
			*out = w;
		return err;
	}
	w->cfg = *cfg;
	w->cfg.image_path = NULL;
	if (cfg->cpus) {
		w->cpus = *cfg->cpus;
		w->cfg.cpus = &w->cpus;
	}
	if (w->cfg.zipf_s == 0)
		w->cfg.zipf_s = DEFAULT_ZIPF_S;
	w->mem = cfg->mem;
	w->npages = cfg->memsize >> GPAGE_SHIFT;
	w->ops = &kinds[cfg->kind];
	w->image_fd = -1;
	atomic_init(&w->stop, false);
	err = -pthread_mutex_init(&w->err_lock, NULL);
	if (err)
		goto fail_free;
	if (cfg->image_path) {
		err = open_image(w, cfg->image_path);
		if (err)
			goto fail_lock;
	}
	mvg_guarded_init();
	w->bad = calloc(w->npages, 1);
	if (!w->bad) {
		err = -ENOMEM;
		goto fail_image;
	}
	if (cfg->kind != MVG_KVSTORE) {
		w->version = calloc(w->npages, sizeof(*w->version));
		if (!w->version) {
			err = -ENOMEM;
			goto fail_image;
		}
	}
	tbytes = sizeof(*w->threads) * cfg->threads;
	w->threads = aligned_alloc(_Alignof(struct gthread), tbytes);
	if (!w->threads) {
		err = -ENOMEM;
		goto fail_version;
	}
	memset(w->threads, 0, tbytes);
	for (unsigned i = 0; i < cfg->threads; i++) {
		err = thread_init(w, &w->threads[i], i);
		if (err)
			goto fail_threads;
	}
	for (unsigned i = 0; i < cfg->threads; i++) {
		struct gthread *g = &w->threads[i];

		err = mvg_thread_create(&g->tid, w->cfg.cpus, guest_main, g);
		if (err)
			goto fail_threads;
		g->running = true;
	}
	*out = w;
	return 0;

fail_threads:
	halt(w);
	free_threads(w);
fail_version:
	free(w->version);
fail_image:
	free(w->bad);
	if (w->image_fd >= 0)
		close(w->image_fd);
fail_lock:
	pthread_mutex_destroy(&w->err_lock);
fail_free:
	free(w);
	return err;
}

static void destroy(struct mvg_workload *w)
{
	free_threads(w);
	free(w->version);
	free(w->bad);
	if (w->image_fd >= 0)
		close(w->image_fd);
	pthread_mutex_destroy(&w->err_lock);
	free(w);
}

void mvg_stop(struct mvg_workload *w)
{
	if (!w)
		return;
	if (w->burst) {
		mvg_burst_stop(w->burst);
		free(w);
		return;
	}
	halt(w);
	destroy(w);
}

void mvg_get_stats(struct mvg_workload *w, struct mvg_stats *st)
{
	uint64_t verified = 0;

	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	if (!w)
		return;
	if (w->burst) {
		mvg_burst_get_stats(w->burst, st);
		return;
	}
	for (unsigned i = 0; i < w->cfg.threads; i++) {
		struct gthread *g = &w->threads[i];

		st->reads += peek(&g->reads);
		st->writes += peek(&g->writes);
		verified += peek(&g->verified);
		st->integrity_errors += peek(&g->errors);
		st->memory_errors += peek(&g->memory_errors);
		st->loaded_pages += peek(&g->loaded);
	}
	if (w->image_fd >= 0 &&
	    (w->cfg.kind == MVG_IMAGE || w->cfg.kind == MVG_IDLE))
		st->load_pages = w->npages;
	st->ops = st->reads + st->writes;
	st->pages_verified = verified >> GPAGE_SHIFT;
	pthread_mutex_lock(&w->err_lock);
	memcpy(st->first_error, w->first_error, sizeof(st->first_error));
	pthread_mutex_unlock(&w->err_lock);
}

void mvg_request_stop(struct mvg_workload *w)
{
	if (!w)
		return;
	if (w->burst)
		mvg_burst_request_stop(w->burst);
	else
		atomic_store_explicit(&w->stop, true, memory_order_relaxed);
}

void mvg_halt(struct mvg_workload *w)
{
	if (!w)
		return;
	if (w->burst)
		mvg_burst_halt(w->burst);
	else
		halt(w);
}

int mvg_verify(struct mvg_workload *w, const atomic_bool *cancel,
	       struct mvg_stats *final)
{
	int err = 0;

	if (!w)
		return -EINVAL;
	if (w->burst)
		return mvg_burst_verify(w->burst, cancel, final);
	halt(w);
	mvg_guarded_init();
	w->cancel = cancel;
	/* each partition in parallel, as faults on a big VM are slow */
	for (unsigned i = 0; i < w->cfg.threads; i++) {
		struct gthread *g = &w->threads[i];

		if (!mvg_thread_create(&g->tid, w->cfg.cpus, verify_main, g))
			g->running = true;
		else
			verify_main(g);
	}
	join_all(w);
	for (unsigned i = 0; i < w->cfg.threads && !err; i++)
		err = w->threads[i].io_err;
	if (!err && cancelled(w))
		err = -ECANCELED;
	mvg_get_stats(w, final);
	return err;
}

uint64_t mvg_verify_pages(struct mvg_workload *w)
{
	uint64_t n = 0;

	if (!w)
		return 0;
	if (w->burst)
		return mvg_burst_verify_pages(w->burst);
	halt(w);
	for (unsigned i = 0; i < w->cfg.threads; i++) {
		struct gthread *g = &w->threads[i];

		if (w->cfg.kind == MVG_IMAGE ||
		    (w->cfg.kind == MVG_IDLE && w->image_fd >= 0)) {
			n += g->hi - g->lo;
		} else if (w->cfg.kind == MVG_KVSTORE) {
			for (uint64_t s = 0; s < g->kv_slots; s++)
				if (g->slot_key[s]) {
					n++;
					s |= KV_RECS_PER_PAGE - 1;
				}
		} else {
			for (uint64_t ppn = g->lo; ppn < g->hi; ppn++)
				n += w->version[ppn] != 0;
		}
	}
	return n;
}

int mvg_stop_and_verify(struct mvg_workload *w, struct mvg_stats *final)
{
	int err;

	if (!w)
		return -EINVAL;
	err = mvg_verify(w, NULL, final);
	mvg_stop(w);
	return err;
}
