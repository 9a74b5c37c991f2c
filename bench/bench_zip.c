// SPDX-License-Identifier: MIT
/*
 * bench_zip.c - `memvisor bench zip`: the compression cache, figure by
 * figure, beside raw LZ4 (and zstd) on the same pages in the same run.
 *
 * Purpose: the three goals of the compression cache in one run.  The
 * engine's compression path keeps at least 0.8 of raw LZ4's throughput; the
 * packed store's memory stays within about 10% of the sum of the compressed
 * sizes (density 0.9); and a fault on a compressed page costs about what a
 * userfaultfd round trip plus one decompression cost, not a disk read.
 *
 * Design: a mix of real-looking pages is built once: text (files under
 * /usr/share/doc and other text directories, what a guest's page cache
 * holds), code (the .text of this program, then of the system's programs
 * and libraries), zero-heavy pages (a few counters and pointers in a page of
 * zeros: sparse tables, fresh heap) and random pages (a PRNG: encrypted or
 * already compressed data).  Pages come in runs of one class with the runs
 * in random order, because a guest's memory has locality.
 *
 * Compression: each trial times, class by class over the same pages, the
 * engine's path (mv__zip_compress, then mv__zpool_alloc and _write into a
 * fresh pool: what the cache does per page, less its lock and FIFO) beside
 * raw LZ4_compress_default, and the same for zstd; and the engine's path
 * with LZ4's fast search (Mem.ZipFastAccel, which a VM's cache uses while
 * its probes find it costs no space) beside the full one, with the bytes
 * each gives per class.  The paths take turns
 * every CHUNK_PAGES pages, so that the noise of a shared virtual machine
 * falls on all of them alike.  Raw LZ4 is timed twice: with the full output
 * bound, as a plain caller would call it (the figure the goal is set
 * against), and capped at 2 KiB as the engine asks, which gives up early on
 * a page that will not fit; the second shows the engine's own overhead.
 *
 * Fault-in: a VM is filled with the mix and swapped out whole; the
 * compressible pages must land in the cache and the rest in the swap file,
 * page by page.  A guest thread then reads the cached pages in address
 * order, and after a second swap-out in random order, then the swapped
 * pages in random order; a second host repeats the random order with
 * Mem.SwapInClusterPages=1, one page per fault.  The floors are the raw
 * userfaultfd round trip of bench_fault.c on as many pages plus raw
 * LZ4_decompress_safe of the same pages.  Mem.MemZipMaxPct is raised to
 * 100 so that the whole mix stays cached (at the default 10% most of it
 * would be evicted to swap).  Density comes from the VM's own stats, and
 * from a bare pool by cache size (small caches are less dense: each size
 * class keeps a partly filled span) and after freeing a random half, before
 * and after compaction.
 *
 * A wrong engine must not look like a fast one: every page the guest reads
 * back is compared with the mix, and every compressed page is decompressed
 * and compared once before timing; a mismatch fails the run naming the page.
 *
 * Invariants: the mix never changes after mix_build(); lz4_len[p] is
 * nonzero iff mv__zip_compress(LZ4) fits page p in MV_ZIP_MAX_BYTES, which
 * is exactly when the engine must keep it COMPRESSED; cached[] and
 * swapped[] list those pages and the others, ascending.
 *
 * Lock ordering: none; one thread here, plus the engine's and the floor's
 * fault threads, which share nothing with this file but guest memory.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lz4.h>
#include <zstd.h>

#include "bench.h"
#include "memvisor.h"
#include "zip.h"
#include "zpool.h"

#define GOAL_LZ4_RATIO 0.8
#define GOAL_DENSITY 0.9
#define SEED 0x7a69702d62656e63ull
#define ZSTD_LEVEL 1 /* as the engine's zip.c */
#define RUN_PAGES 64 /* pages of one class in a row: 256 KiB */
#define TEXT_FILE_BYTES (64u << 10) /* most taken from one text file */
#define CODE_FILE_PAGES 64 /* most .text pages taken from one binary */
/* Offset step for pages cut again from a source that ran short */
#define WRAP_SHIFT 1000u
#define ZERO_WORDS_MAX 24 /* values in a zero-heavy page, at most */
#define WORDS (MV_PAGE_SIZE / sizeof(uint64_t))
/* Pages each compression path takes in turn: noise lands on all alike */
#define CHUNK_PAGES 32
/*
 * Below this a cache of 100% of the VM may still not hold every page that
 * compresses (each size class keeps a partly filled span of up to 4
 * frames), and density figures say more about the classes than the pool.
 */
#define MIN_PAGES 1024
/* The same slack for the bare pools: a partly filled span per class */
#define POOL_SLACK_BYTES (64u * 4 * MV_ZPOOL_FRAME_SIZE)
#define LZ4_BOUND LZ4_COMPRESSBOUND(MV_PAGE_SIZE)
#define ZSTD_BOUND ZSTD_COMPRESSBOUND(MV_PAGE_SIZE)
#define RAW_BOUND (ZSTD_BOUND > LZ4_BOUND ? ZSTD_BOUND : LZ4_BOUND)

enum cls { TEXT, CODE, ZEROISH, RANDOM, NCLS };
enum {
	ENG_LZ4_C,
	RAW_LZ4_C,
	RAW_LZ4_2K_C,
	ENG_ZSTD_C,
	RAW_ZSTD_C,
	ENG_LZ4_FAST_C,
	NCODERS
};

static const char *const cls_name[NCLS] = { "text", "code", "zero-heavy",
					    "random" };

/*
 * Samples of one trial, us per page.  A compression pass fills NCLS + 1
 * figures: one per class, then the whole mix.
 */
enum figure {
	ENG_LZ4 = 0,
	RAW_LZ4 = ENG_LZ4 + NCLS + 1,
	/* raw, its output capped at 2 KiB as the engine's is */
	RAW_LZ4_2K = RAW_LZ4 + NCLS + 1,
	ENG_ZSTD = RAW_LZ4_2K + NCLS + 1,
	RAW_ZSTD = ENG_ZSTD + NCLS + 1,
	/* the engine's path with LZ4's fast search (Mem.ZipFastAccel) */
	ENG_LZ4_FAST = RAW_ZSTD + NCLS + 1,
	UNLZ4 = ENG_LZ4_FAST + NCLS + 1, /* raw decompress, LZ4-cached pages */
	UNZSTD, /* raw decompress, zstd-cached pages */
	UFFD_SEQ, /* raw uffd round trip, as many pages as are cached */
	UFFD_RAND,
	FLOOR_SEQ, /* UFFD_SEQ + UNLZ4 */
	FLOOR_RAND, /* UFFD_RAND + UNLZ4 */
	FAULT_SEQ, /* guest reads of cached pages, address order */
	FAULT_RAND, /* the same, random order */
	FAULT1_RAND, /* random order, Mem.SwapInClusterPages=1 */
	SWAPIN_RAND, /* guest reads of the swapped pages, random order */
	NFIGURES
};
#define ALL NCLS

/*
 * Headline values, each the median of one value per trial: a ratio taken
 * within a trial is steadier on a noisy machine than a ratio of medians.
 */
enum head { H_DENSITY, H_LZ4_RATIO, H_LZ4_RATIO_2K, NHEADS };

struct mix {
	uint64_t npages;
	uint8_t *pages; /* page p of the mix is guest page p */
	uint8_t *cls; /* class of each page */
	uint64_t *by_cls[NCLS]; /* pages of each class, ascending */
	uint64_t n[NCLS];
	unsigned files[NCLS]; /* files the text and code pages came from */
	/* each page's compressed form if it fits, one slot of 2 KiB per page */
	uint8_t *lz4, *zstd;
	uint32_t *lz4_len, *zstd_len; /* 0: does not fit */
	/* full-bound sizes: LZ4, zstd, LZ4 with the fast search */
	uint64_t raw_bytes[3][NCLS];
	unsigned fast_accel; /* Mem.ZipFastAccel's default */
	uint64_t *cached, ncached; /* lz4_len != 0: the cache keeps these */
	uint64_t *swapped, nswapped; /* the others */
	uint64_t zstd_cached; /* pages zstd fits */
};

/* Bytes gathered for the text or code pages. */
struct source {
	uint8_t *buf;
	size_t len, cap;
	unsigned files; /* files that gave some */
};

/* A compression path timed by zip_trial(), one page at a time. */
struct coder {
	const char *name;
	int (*page)(struct coder *c, const uint8_t *src);
	enum figure fig; /* the first of its NCLS + 1 figures */
	enum mv__zip_algo algo; /* engine paths */
	unsigned accel; /* engine paths: LZ4's acceleration */
	struct mv__zpool *pool; /* engine paths: where pages go, per trial */
	ZSTD_CCtx *cctx; /* raw zstd */
	uint8_t dst[RAW_BOUND]; /* raw paths' output */
};

/* What a run counts besides times. */
struct counts {
	double fpp[NFIGURES]; /* uffd events per page read, last trial */
	uint64_t stragglers; /* pages swapped out by number, all trials */
};

static uint64_t splitmix(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ull);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint8_t *page_of(const struct mix *m, uint64_t p)
{
	return m->pages + p * MV_PAGE_SIZE;
}

/* Text as a page cache holds it: no NULs nor control bytes. */
static bool looks_text(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((b[i] < 0x20 && b[i] != '\t' && b[i] != '\n' &&
		     b[i] != '\r' && b[i] != '\f') ||
		    b[i] == 0x7f)
			return false;
	return true;
}

/* Appends up to max bytes of fd from off; text that is not is dropped. */
static void source_add(struct source *s, int fd, uint64_t off, size_t max,
		       bool text)
{
	size_t want = s->cap - s->len < max ? s->cap - s->len : max;
	ssize_t n = pread(fd, s->buf + s->len, want, (off_t)off);

	if (n <= 0 || (text && !looks_text(s->buf + s->len, (size_t)n)))
		return;
	s->len += (size_t)n;
	s->files++;
}

/* Offset and size of the .text of an ELF64 file; -ENOEXEC if it has none. */
static int elf_text(int fd, uint64_t *off, uint64_t *len)
{
	char name[sizeof(".text")];
	Elf64_Shdr sh, names;
	Elf64_Ehdr eh;

	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_shentsize != sizeof(sh) || eh.e_shstrndx >= eh.e_shnum)
		return -ENOEXEC;
	if (pread(fd, &names, sizeof(names),
		  (off_t)(eh.e_shoff + eh.e_shstrndx * sizeof(sh))) !=
	    (ssize_t)sizeof(names))
		return -ENOEXEC;
	for (unsigned i = 0; i < eh.e_shnum; i++) {
		if (pread(fd, &sh, sizeof(sh),
			  (off_t)(eh.e_shoff + i * sizeof(sh))) !=
		    (ssize_t)sizeof(sh))
			return -ENOEXEC;
		if (sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_EXECINSTR))
			continue;
		if (pread(fd, name, sizeof(name),
			  (off_t)(names.sh_offset + sh.sh_name)) !=
			    (ssize_t)sizeof(name) ||
		    memcmp(name, ".text", sizeof(name)))
			continue;
		*off = sh.sh_offset;
		*len = sh.sh_size;
		return 0;
	}
	return -ENOEXEC;
}

static void add_file(struct source *s, const char *path, bool text)
{
	uint64_t off, len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (text)
		source_add(s, fd, 0, TEXT_FILE_BYTES, true);
	else if (!elf_text(fd, &off, &len))
		source_add(s, fd, off,
			   len < CODE_FILE_PAGES * MV_PAGE_SIZE ?
				   len :
				   CODE_FILE_PAGES * MV_PAGE_SIZE,
			   false);
	close(fd);
}

static int by_name(const FTSENT **a, const FTSENT **b)
{
	return strcmp((*a)->fts_name, (*b)->fts_name);
}

/* Walks dirs in name order (the same pages every run) until s is full. */
static void gather(struct source *s, const char *const *dirs, bool text)
{
	FTSENT *e;
	FTS *f;

	f = fts_open((char *const *)dirs, FTS_PHYSICAL | FTS_NOCHDIR, by_name);
	if (!f)
		return;
	while (s->len < s->cap && (e = fts_read(f)))
		if (e->fts_info == FTS_F)
			add_file(s, e->fts_accpath, text);
	fts_close(f);
}

/*
 * Page i of a source: consecutive pages while it lasts, then cut again at
 * shifted offsets, so that a repeat is not the same page twice.
 */
static void source_page(const struct source *s, uint64_t i, uint8_t *dst)
{
	uint64_t full = s->len / MV_PAGE_SIZE;
	uint64_t off = (i * MV_PAGE_SIZE + i / full * WRAP_SHIFT) %
		       (s->len - MV_PAGE_SIZE + 1);

	memcpy(dst, s->buf + off, MV_PAGE_SIZE);
}

/* Small counters and heap pointers in zeros: sparse tables, fresh heap. */
static void zeroish_page(uint64_t *seed, uint8_t *dst)
{
	uint64_t *w = (uint64_t *)dst, x;
	unsigned k = 1 + splitmix(seed) % ZERO_WORDS_MAX;

	memset(dst, 0, MV_PAGE_SIZE);
	for (unsigned j = 0; j < k; j++) {
		x = splitmix(seed);
		w[x % WORDS] = x & 1 ? (x >> 40) & 0xffff :
				       0x00007f0000000000ull |
					       ((x >> 8) & 0xfffffff8ull);
	}
}

static void random_page(uint64_t *seed, uint8_t *dst)
{
	uint64_t *w = (uint64_t *)dst;

	for (unsigned j = 0; j < WORDS; j++)
		w[j] = splitmix(seed);
}

static int gather_sources(struct mix *m, struct source *src)
{
	static const char *const text_dirs[] = { "/usr/share/doc",
						 "/usr/share/common-licenses",
						 "/usr/include", NULL };
	static const char *const code_dirs[] = { "/usr/bin", "/usr/lib", NULL };

	for (unsigned k = TEXT; k <= CODE; k++) {
		src[k].cap = m->n[k] * MV_PAGE_SIZE;
		src[k].buf = malloc(src[k].cap);
		if (!src[k].buf)
			return -ENOMEM;
	}
	gather(&src[TEXT], text_dirs, true);
	add_file(&src[CODE], "/proc/self/exe", false);
	gather(&src[CODE], code_dirs, false);
	for (unsigned k = TEXT; k <= CODE; k++) {
		m->files[k] = src[k].files;
		if (src[k].len >= MV_PAGE_SIZE)
			continue;
		fprintf(stderr,
			"memvisor bench zip: found no %s to make %s pages from\n",
			k == TEXT ?
				"text files under /usr/share/doc, /usr/share/common-licenses or /usr/include" :
				"ELF .text in this program, /usr/bin or /usr/lib",
			cls_name[k]);
		return -ENOENT;
	}
	return 0;
}

/* The pages, their classes in runs, and the lists by class. */
static int mix_build(struct mix *m, uint64_t npages)
{
	uint64_t run = npages / NCLS < RUN_PAGES ? npages / NCLS : RUN_PAGES;
	uint64_t nruns = (npages + run - 1) / run, seed = SEED, *perm, *list;
	uint64_t made[NCLS] = { 0 };
	struct source src[NCLS] = { 0 };
	unsigned k;
	int err;

	m->npages = npages;
	m->pages = aligned_alloc(MV_PAGE_SIZE, npages * MV_PAGE_SIZE);
	m->cls = malloc(npages);
	list = malloc(npages * sizeof(*list));
	perm = malloc(nruns * sizeof(*perm));
	if (!m->pages || !m->cls || !list || !perm) {
		free(list);
		err = -ENOMEM;
		goto out;
	}
	/* a permutation of the runs, mod NCLS: every class, shuffled */
	bench_shuffle(perm, nruns, SEED);
	for (uint64_t p = 0; p < npages; p++) {
		m->cls[p] = (uint8_t)(perm[p / run] % NCLS);
		m->n[m->cls[p]]++;
	}
	m->by_cls[0] = list;
	for (k = 1; k < NCLS; k++)
		m->by_cls[k] = m->by_cls[k - 1] + m->n[k - 1];
	err = gather_sources(m, src);
	if (err)
		goto out;
	for (uint64_t p = 0; p < npages; p++) {
		k = m->cls[p];
		m->by_cls[k][made[k]] = p;
		if (k == TEXT || k == CODE)
			source_page(&src[k], made[k], page_of(m, p));
		else if (k == ZEROISH)
			zeroish_page(&seed, page_of(m, p));
		else
			random_page(&seed, page_of(m, p));
		made[k]++;
	}
out:
	free(src[CODE].buf);
	free(src[TEXT].buf);
	free(perm);
	return err;
}

/*
 * Compresses every page once, untimed: the engine's decision and output
 * (checked to decompress to the page), the full-bound sizes of raw LZ4 and
 * zstd, and the lists of cached and swapped pages.
 */
static int mix_prepare(struct mix *m)
{
	uint8_t out[MV_PAGE_SIZE], tmp[RAW_BOUND];
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	uint64_t n = m->npages;
	struct mv_settings s;
	size_t zs;
	int len, err = -ENOMEM;

	mv_settings_init(&s);
	m->fast_accel = s.zip_fast_accel;

	m->lz4 = malloc(n * MV_ZIP_MAX_BYTES);
	m->zstd = malloc(n * MV_ZIP_MAX_BYTES);
	m->lz4_len = calloc(n, sizeof(*m->lz4_len));
	m->zstd_len = calloc(n, sizeof(*m->zstd_len));
	m->cached = malloc(n * sizeof(*m->cached));
	m->swapped = malloc(n * sizeof(*m->swapped));
	if (!cctx || !m->lz4 || !m->zstd || !m->lz4_len || !m->zstd_len ||
	    !m->cached || !m->swapped)
		goto out;
	for (uint64_t p = 0; p < n; p++) {
		const uint8_t *page = page_of(m, p);

		for (int a = MV_ZIP_LZ4; a <= MV_ZIP_ZSTD; a++) {
			uint8_t *slot = (a == MV_ZIP_LZ4 ? m->lz4 : m->zstd) +
					p * MV_ZIP_MAX_BYTES;

			len = mv__zip_compress(a, 1, page, slot,
					       MV_ZIP_MAX_BYTES);
			if (len == -E2BIG)
				continue;
			err = len < 0 ? len :
					mv__zip_decompress(a, slot, (size_t)len,
							   out);
			if (!err && memcmp(out, page, MV_PAGE_SIZE))
				err = -EIO;
			if (err) {
				fprintf(stderr,
					"memvisor bench zip: %s page %" PRIu64
					" (%s) does not come back through mv__zip_compress/decompress: %s\n",
					a == MV_ZIP_LZ4 ? "LZ4" : "zstd", p,
					cls_name[m->cls[p]], strerror(-err));
				goto out;
			}
			*(a == MV_ZIP_LZ4 ? &m->lz4_len[p] : &m->zstd_len[p]) =
				(uint32_t)len;
		}
		m->raw_bytes[0][m->cls[p]] += (uint64_t)LZ4_compress_default(
			(const char *)page, (char *)tmp, MV_PAGE_SIZE,
			LZ4_BOUND);
		zs = ZSTD_compressCCtx(cctx, tmp, sizeof(tmp), page,
				       MV_PAGE_SIZE, ZSTD_LEVEL);
		m->raw_bytes[1][m->cls[p]] += ZSTD_isError(zs) ? MV_PAGE_SIZE :
								 zs;
		m->raw_bytes[2][m->cls[p]] += (uint64_t)LZ4_compress_fast(
			(const char *)page, (char *)tmp, MV_PAGE_SIZE,
			LZ4_BOUND, (int)m->fast_accel);
		if (m->lz4_len[p])
			m->cached[m->ncached++] = p;
		else
			m->swapped[m->nswapped++] = p;
		m->zstd_cached += m->zstd_len[p] != 0;
	}
	err = 0;
out:
	ZSTD_freeCCtx(cctx);
	return err;
}

static void mix_free(struct mix *m)
{
	free(m->swapped);
	free(m->cached);
	free(m->zstd_len);
	free(m->lz4_len);
	free(m->zstd);
	free(m->lz4);
	free(m->by_cls[0]);
	free(m->cls);
	free(m->pages);
}

/* The engine's path: an incompressible page is left to the swap file. */
static int engine_page(struct coder *c, const uint8_t *src)
{
	uint8_t z[MV_ZIP_MAX_BYTES];
	uint64_t handle;
	int len, err;

	len = mv__zip_compress(c->algo, c->accel, src, z, sizeof(z));
	if (len == -E2BIG)
		return 0;
	if (len < 0)
		return len;
	err = mv__zpool_alloc(c->pool, (size_t)len, &handle);
	if (!err)
		err = mv__zpool_write(c->pool, handle, z, (size_t)len);
	return err;
}

static int raw_lz4_page(struct coder *c, const uint8_t *src)
{
	return LZ4_compress_default((const char *)src, (char *)c->dst,
				    MV_PAGE_SIZE, LZ4_BOUND) > 0 ?
		       0 :
		       -EIO;
}

/* A page that does not fit is no error: LZ4 just says 0. */
static int raw_lz4_2k_page(struct coder *c, const uint8_t *src)
{
	LZ4_compress_default((const char *)src, (char *)c->dst, MV_PAGE_SIZE,
			     MV_ZIP_MAX_BYTES);
	return 0;
}

static int raw_zstd_page(struct coder *c, const uint8_t *src)
{
	return ZSTD_isError(ZSTD_compressCCtx(c->cctx, c->dst, ZSTD_BOUND, src,
					      MV_PAGE_SIZE, ZSTD_LEVEL)) ?
		       -EIO :
		       0;
}

/* Raw decompression of every page the algorithm fits; us per page. */
static int unzip_pass(const struct mix *m, bool zstd, ZSTD_DCtx *dctx,
		      double *us)
{
	const uint8_t *z = zstd ? m->zstd : m->lz4;
	const uint32_t *len = zstd ? m->zstd_len : m->lz4_len;
	uint8_t out[MV_PAGE_SIZE];
	uint64_t t0 = bench_now_ns(), n = 0;
	size_t got;

	for (uint64_t p = 0; p < m->npages; p++) {
		if (!len[p])
			continue;
		if (zstd)
			got = ZSTD_decompressDCtx(dctx, out, sizeof(out),
						  z + p * MV_ZIP_MAX_BYTES,
						  len[p]);
		else
			got = (size_t)LZ4_decompress_safe(
				(const char *)z + p * MV_ZIP_MAX_BYTES,
				(char *)out, (int)len[p], MV_PAGE_SIZE);
		if (got != MV_PAGE_SIZE)
			return -EIO;
		n++;
	}
	*us = n ? (double)(bench_now_ns() - t0) / 1e3 / (double)n : 0;
	return 0;
}

static int coders_init(struct coder *c)
{
	static const struct {
		const char *name;
		int (*page)(struct coder *c, const uint8_t *src);
		enum figure fig;
		enum mv__zip_algo algo;
	} init[NCODERS] = {
		[ENG_LZ4_C] = { "engine LZ4 path", engine_page, ENG_LZ4,
				MV_ZIP_LZ4 },
		[RAW_LZ4_C] = { "raw LZ4", raw_lz4_page, RAW_LZ4, MV_ZIP_LZ4 },
		[RAW_LZ4_2K_C] = { "raw LZ4 at 2 KiB", raw_lz4_2k_page,
				   RAW_LZ4_2K, MV_ZIP_LZ4 },
		[ENG_ZSTD_C] = { "engine zstd path", engine_page, ENG_ZSTD,
				 MV_ZIP_ZSTD },
		[RAW_ZSTD_C] = { "raw zstd", raw_zstd_page, RAW_ZSTD,
				 MV_ZIP_ZSTD },
		[ENG_LZ4_FAST_C] = { "engine LZ4 fast path", engine_page,
				     ENG_LZ4_FAST, MV_ZIP_LZ4 },
	};
	struct mv_settings s;

	mv_settings_init(&s);

	for (unsigned j = 0; j < NCODERS; j++) {
		c[j].name = init[j].name;
		c[j].page = init[j].page;
		c[j].fig = init[j].fig;
		c[j].algo = init[j].algo;
		c[j].accel = j == ENG_LZ4_FAST_C ? s.zip_fast_accel : 1;
	}
	c[RAW_ZSTD_C].cctx = ZSTD_createCCtx();
	return c[RAW_ZSTD_C].cctx ? 0 : -ENOMEM;
}

/*
 * Every page through every coder, class by class: each coder takes
 * CHUNK_PAGES pages in turn, the first turn rotating, so that noise and
 * the cost of bringing a chunk into the cache fall on all of them alike.
 * Engine coders store into a fresh pool big enough for the whole mix.
 */
static int compress_passes(const struct mix *m, struct coder *c, double *us)
{
	uint64_t ns[NCODERS][NCLS] = { { 0 } }, t0, end, all;
	unsigned turn = 0, j;
	struct coder *x = c; /* named if making a pool fails */
	int err = 0;

	for (j = 0; j < NCODERS && !err; j++)
		if (c[j].page == engine_page)
			err = mv__zpool_create(m->npages * MV_PAGE_SIZE +
						       POOL_SLACK_BYTES,
					       &c[j].pool);
	for (unsigned k = 0; k < NCLS && !err; k++) {
		for (uint64_t i = 0; i < m->n[k] && !err; i = end, turn++) {
			end = i + CHUNK_PAGES < m->n[k] ? i + CHUNK_PAGES :
							  m->n[k];
			for (j = 0; j < NCODERS && !err; j++) {
				x = &c[(turn + j) % NCODERS];
				t0 = bench_now_ns();
				for (uint64_t q = i; q < end && !err; q++)
					err = x->page(
						x, page_of(m, m->by_cls[k][q]));
				ns[x - c][k] += bench_now_ns() - t0;
			}
		}
	}
	if (err)
		fprintf(stderr, "memvisor bench zip: %s failed: %s\n", x->name,
			strerror(-err));
	for (j = 0; j < NCODERS; j++) {
		all = 0;
		for (unsigned k = 0; k < NCLS; k++) {
			us[c[j].fig + k] =
				(double)ns[j][k] / 1e3 / (double)m->n[k];
			all += ns[j][k];
		}
		us[c[j].fig + ALL] = (double)all / 1e3 / (double)m->npages;
		if (c[j].pool)
			mv__zpool_destroy(c[j].pool);
		c[j].pool = NULL;
	}
	return err;
}

/* One trial of the compression figures. */
static int zip_trial(const struct mix *m, struct coder *c, ZSTD_DCtx *dctx,
		     double *us)
{
	int err;

	err = compress_passes(m, c, us);
	if (!err)
		err = unzip_pass(m, false, dctx, &us[UNLZ4]);
	if (!err)
		err = unzip_pass(m, true, dctx, &us[UNZSTD]);
	return err;
}

static double density_of(const struct mv__zpool_stats *st)
{
	return st->used_bytes ?
		       (double)st->stored_bytes / (double)st->used_bytes :
		       0;
}

/* The objects of the first n pages of order[] in a fresh pool. */
static int pool_fill(const struct mix *m, const uint64_t *order, uint64_t n,
		     struct mv__zpool **zp, uint64_t *handles)
{
	uint64_t p;
	int err;

	err = mv__zpool_create(m->npages * MV_PAGE_SIZE + POOL_SLACK_BYTES, zp);
	if (err)
		return err;
	for (uint64_t i = 0; i < n && !err; i++) {
		p = order[i];
		err = mv__zpool_alloc(*zp, m->lz4_len[p], &handles[i]);
		if (!err)
			err = mv__zpool_write(*zp, handles[i],
					      m->lz4 + p * MV_ZIP_MAX_BYTES,
					      m->lz4_len[p]);
	}
	if (err)
		mv__zpool_destroy(*zp);
	return err;
}

/* Density of bare pools: by cache size, then after frees and compaction. */
static int pool_density(struct bench_report *r, const struct mix *m,
			const uint64_t *order, double *pool_all)
{
	static const uint64_t sizes[] = { 64, 256, 1024, 4096 };
	static const char *const keys[] = { "density_64", "density_256",
					    "density_1024", "density_4096" };
	struct mv__zpool_stats st;
	double half, compacted, d;
	struct mv__zpool *zp;
	uint64_t *handles;
	char by_size[96];
	size_t len = 0;
	int err;

	handles = malloc(m->ncached * sizeof(*handles));
	if (!handles)
		return -ENOMEM;
	for (unsigned i = 0; i < 4 && sizes[i] < m->ncached; i++) {
		err = pool_fill(m, order, sizes[i], &zp, handles);
		if (err)
			goto out;
		mv__zpool_stats(zp, &st);
		mv__zpool_destroy(zp);
		d = density_of(&st);
		bench_value(r, keys[i], d);
		len += (size_t)snprintf(by_size + len, sizeof(by_size) - len,
					"%" PRIu64 " %.2f, ", sizes[i], d);
	}
	err = pool_fill(m, order, m->ncached, &zp, handles);
	if (err)
		goto out;
	mv__zpool_stats(zp, &st);
	*pool_all = density_of(&st);
	/* order[] is random: every other one is a random half */
	for (uint64_t j = 0; j < m->ncached && !err; j += 2)
		err = mv__zpool_free(zp, handles[j]);
	mv__zpool_stats(zp, &st);
	half = density_of(&st);
	mv__zpool_compact(zp);
	mv__zpool_stats(zp, &st);
	compacted = density_of(&st);
	mv__zpool_destroy(zp);
	if (err)
		goto out;
	bench_value(r, "density_half_freed", half);
	bench_value(r, "density_compacted", compacted);
	bench_note(
		r,
		"bare pool density by pages held: %sall %" PRIu64
		" %.2f (small is less dense: part-filled spans); half freed %.2f, compacted %.2f (%" PRIu64
		" frames freed)",
		by_size, m->ncached, *pool_all, half, compacted,
		st.compact_freed);
out:
	if (err)
		fprintf(stderr, "memvisor bench zip: bare pool: %s\n",
			strerror(-err));
	free(handles);
	return err;
}

static int vm_up(const struct mix *m, unsigned cluster, const char *swapdir,
		 mv_host **host, mv_vm **vm)
{
	struct mv_host_config hc;
	struct mv_vm_config vc;
	int err;

	bench_host_config(&hc);
	/* twice the VM: free memory stays far above minFree, no reclaim */
	hc.memsize_bytes = 2 * m->npages * MV_PAGE_SIZE + (64u << 20);
	hc.swapdir = swapdir;
	hc.settings.mem_zip_max_pct = 100;
	hc.settings.swapin_cluster_pages = cluster;
	/* the fault-in figures measure decompression, and their check holds
	 * the cache to exactly the pages LZ4's full search fits in 2 KiB: the
	 * fast search (Mem.ZipFastAccel) has its own row above */
	hc.settings.zip_fast_accel = 1;
	err = mv_host_create(&hc, host);
	if (err) {
		fprintf(stderr, "memvisor bench zip: cannot create host: %s\n",
			mv_strerror(err));
		return err;
	}
	mv_vm_config_init(&vc);
	snprintf(vc.name, sizeof(vc.name), "bench-zip");
	vc.memsize_bytes = m->npages * MV_PAGE_SIZE;
	err = mv_vm_create(*host, &vc, vm);
	if (err) {
		fprintf(stderr, "memvisor bench zip: cannot create VM: %s\n",
			mv_host_errmsg(*host));
		mv_host_destroy(*host);
		return err;
	}
	bench_watch("fill the VM with the mix", m->npages);
	memcpy(mv_vm_mem(*vm), m->pages, m->npages * MV_PAGE_SIZE);
	return 0;
}

/*
 * Swaps out every PRIVATE page (at random, then the few the random probes
 * missed by number) and checks each page went where it must: the cache if
 * it compresses, else the swap file.  *density from the VM's stats.
 */
static int swap_out_all(mv_vm *vm, const struct mix *m, uint64_t *stragglers,
			double *density)
{
	uint64_t done, total = 0;
	struct mv_vm_stats st;
	int err, s, want;

	bench_watch("swap-out", m->npages);
	do {
		err = mv_vm_swap_out(vm, m->npages, &done);
		total += done;
	} while (!err && done);
	for (uint64_t p = 0; p < m->npages && !err; p++) {
		if (mv_vm_page_state(vm, p) != MV_PAGE_PRIVATE)
			continue;
		err = mv_vm_swap_out_page(vm, p);
		++*stragglers;
	}
	if (err) {
		fprintf(stderr, "memvisor bench zip: swap-out: %s\n",
			mv_strerror(err));
		return err;
	}
	for (uint64_t p = 0; p < m->npages; p++) {
		s = mv_vm_page_state(vm, p);
		want = m->lz4_len[p] ? MV_PAGE_COMPRESSED : MV_PAGE_SWAPPED;
		if (s == want)
			continue;
		fprintf(stderr,
			"memvisor bench zip: page %" PRIu64
			" (%s, %u bytes in LZ4) is %s after swap-out, expected %s\n",
			p, cls_name[m->cls[p]], m->lz4_len[p],
			s < 0 ? mv_strerror(s) :
				mv_page_state_name((enum mv_page_state)s),
			mv_page_state_name((enum mv_page_state)want));
		return -EIO;
	}
	err = mv_vm_stats(vm, &st);
	if (err)
		return err;
	if (st.zip_cached_pages != m->ncached || st.zip_evict_pages ||
	    st.zip_stored_bytes > st.zip_used_bytes) {
		fprintf(stderr,
			"memvisor bench zip: after swap-out the cache counts %" PRIu64
			" pages (expected %" PRIu64 "), %" PRIu64
			" evicted, %" PRIu64 " bytes stored in %" PRIu64
			" used\n",
			st.zip_cached_pages, m->ncached, st.zip_evict_pages,
			st.zip_stored_bytes, st.zip_used_bytes);
		return -EIO;
	}
	*density = (double)st.zip_stored_bytes / (double)st.zip_used_bytes;
	return 0;
}

/*
 * The guest reads one word of each page of ppns[] in that order, which
 * faults it in; us per page, uffd events per page.  Then each page must be
 * the mix's.
 */
static int touch(mv_vm *vm, const struct mix *m, const uint64_t *ppns,
		 uint64_t n, const char *what, double *us, double *fpp)
{
	const volatile uint64_t *mem = mv_vm_mem(vm);
	const uint8_t *got, *want;
	struct mv_vm_stats st;
	uint64_t t0, faults0, p;
	size_t i;
	int err;

	err = mv_vm_stats(vm, &st);
	if (err)
		return err;
	faults0 = st.faults;
	bench_watch(what, n);
	t0 = bench_now_ns();
	for (uint64_t j = 0; j < n; j++)
		(void)mem[ppns[j] * WORDS];
	*us = (double)(bench_now_ns() - t0) / 1e3 / (double)n;
	bench_watch(NULL, 0);
	err = mv_vm_stats(vm, &st);
	if (err)
		return err;
	*fpp = (double)(st.faults - faults0) / (double)n;
	for (uint64_t j = 0; j < n; j++) {
		p = ppns[j];
		got = (const uint8_t *)mv_vm_mem(vm) + p * MV_PAGE_SIZE;
		want = page_of(m, p);
		if (!memcmp(got, want, MV_PAGE_SIZE))
			continue;
		for (i = 0; got[i] == want[i]; i++)
			;
		fprintf(stderr,
			"memvisor bench zip: %s: page %" PRIu64
			" (%s) byte %zu is %#x, expected %#x\n",
			what, p, cls_name[m->cls[p]], i, got[i], want[i]);
		return -EIO;
	}
	return 0;
}

/*
 * One trial of the fault-in figures: the floors, then a VM at the default
 * cluster (cached pages in address order, again in random order, then the
 * swapped pages), then one at cluster 1.
 */
static int fault_trial(const struct mix *m, const uint64_t *perm,
		       const uint64_t *rand_cached,
		       const uint64_t *rand_swapped, const uint8_t *zero,
		       const char *swapdir, double *us, double *density,
		       struct counts *c)
{
	struct mv_settings defaults;
	double d;
	mv_host *host;
	mv_vm *vm;
	int err;

	mv_settings_init(&defaults);
	err = bench_uffd_floor(m->ncached, NULL, false, zero, &us[UFFD_SEQ]);
	if (!err)
		err = bench_uffd_floor(m->ncached, perm, false, zero,
				       &us[UFFD_RAND]);
	if (!err)
		err = vm_up(m, defaults.swapin_cluster_pages, swapdir, &host,
			    &vm);
	if (err)
		return err;
	err = swap_out_all(vm, m, &c->stragglers, density);
	if (!err)
		err = touch(vm, m, m->cached, m->ncached,
			    "fault-in compressed, address order",
			    &us[FAULT_SEQ], &c->fpp[FAULT_SEQ]);
	if (!err)
		err = swap_out_all(vm, m, &c->stragglers, &d);
	if (!err)
		err = touch(vm, m, rand_cached, m->ncached,
			    "fault-in compressed, random order",
			    &us[FAULT_RAND], &c->fpp[FAULT_RAND]);
	if (!err && m->nswapped)
		err = touch(vm, m, rand_swapped, m->nswapped,
			    "swap-in incompressible, random order",
			    &us[SWAPIN_RAND], &c->fpp[SWAPIN_RAND]);
	mv_vm_destroy(vm);
	mv_host_destroy(host);
	if (err)
		return err;
	err = vm_up(m, 1, swapdir, &host, &vm);
	if (err)
		return err;
	err = swap_out_all(vm, m, &c->stragglers, &d);
	if (!err)
		err = touch(vm, m, rand_cached, m->ncached,
			    "fault-in compressed, random order, cluster 1",
			    &us[FAULT1_RAND], &c->fpp[FAULT1_RAND]);
	mv_vm_destroy(vm);
	mv_host_destroy(host);
	return err;
}

static double mean_bytes(const struct mix *m, unsigned algo, unsigned k)
{
	return m->n[k] ? (double)m->raw_bytes[algo][k] / (double)m->n[k] : 0;
}

/* Figures and notes of the run, from the medians. */
static void report(struct bench_report *r, const struct mix *m,
		   double *const *fig, const double *med, const double *head,
		   const struct counts *c)
{
	static const char *const keys[NCLS] = { "zip_text", "zip_code",
						"zip_zero", "zip_random" };
	static const char *const labels[NCLS] = {
		"engine LZ4 compress+store, text",
		"engine LZ4 compress+store, code",
		"engine LZ4 compress+store, zero-heavy",
		"engine LZ4 compress+store, random",
	};
	double lz4_ratio = head[H_LZ4_RATIO], density = head[H_DENSITY];
	uint64_t lz4_all = 0, zstd_all = 0;

	for (unsigned k = 0; k < NCLS; k++) {
		lz4_all += m->raw_bytes[0][k];
		zstd_all += m->raw_bytes[1][k];
	}
	bench_value(r, "lz4_ratio", lz4_ratio);
	bench_value(r, "goal_lz4_ratio", GOAL_LZ4_RATIO);
	bench_value(r, "lz4_ratio_2k", head[H_LZ4_RATIO_2K]);
	bench_value(r, "density", density);
	bench_value(r, "goal_density", GOAL_DENSITY);
	bench_value(r, "cached_pages", (double)m->ncached);
	bench_value(r, "swapped_pages", (double)m->nswapped);
	bench_value(r, "lz4_bytes_per_page",
		    (double)lz4_all / (double)m->npages);
	bench_value(r, "zstd_bytes_per_page",
		    (double)zstd_all / (double)m->npages);
	bench_value(r, "zstd_cached_pages", (double)m->zstd_cached);
	bench_value(r, "fault_seq_faults_per_page", c->fpp[FAULT_SEQ]);
	bench_value(r, "fault_rand_faults_per_page", c->fpp[FAULT_RAND]);
	bench_value(r, "fault1_rand_faults_per_page", c->fpp[FAULT1_RAND]);

	for (unsigned k = 0; k < NCLS; k++)
		bench_row(r, keys[k], labels[k], fig[ENG_LZ4 + k], "raw LZ4",
			  fig[RAW_LZ4 + k]);
	bench_row(r, "zip_all", "engine LZ4 compress+store, whole mix",
		  fig[ENG_LZ4 + ALL], "raw LZ4", fig[RAW_LZ4 + ALL]);
	bench_row(r, "zip_all_2k", "  the same, beside raw LZ4 capped at 2 KiB",
		  fig[ENG_LZ4 + ALL], "raw LZ4 2K cap", fig[RAW_LZ4_2K + ALL]);
	bench_row(r, "zip_fast_all",
		  "engine LZ4 fast compress+store, whole mix",
		  fig[ENG_LZ4_FAST + ALL], "engine LZ4", fig[ENG_LZ4 + ALL]);
	bench_row(r, "zstd_all", "engine zstd-1 compress+store, whole mix",
		  fig[ENG_ZSTD + ALL], "raw zstd-1", fig[RAW_ZSTD + ALL]);
	bench_row(r, "raw_zstd", "raw zstd-1 compress, whole mix",
		  fig[RAW_ZSTD + ALL], "raw LZ4", fig[RAW_LZ4 + ALL]);
	bench_row(r, "unlz4", "raw LZ4_decompress_safe, cached pages",
		  fig[UNLZ4], NULL, NULL);
	bench_row(r, "unzstd", "raw zstd-1 decompress, its cached pages",
		  fig[UNZSTD], "raw unLZ4", fig[UNLZ4]);
	bench_row(r, "uffd_seq", "uffd floor: read+COPY 1 page, address order",
		  fig[UFFD_SEQ], NULL, NULL);
	bench_row(r, "uffd_rand", "uffd floor: read+COPY 1 page, random order",
		  fig[UFFD_RAND], NULL, NULL);
	bench_row(r, "fault_seq", "fault-in compressed, address order",
		  fig[FAULT_SEQ], "uffd+unLZ4 seq", fig[FLOOR_SEQ]);
	bench_row(r, "fault_rand", "fault-in compressed, random order",
		  fig[FAULT_RAND], "uffd+unLZ4 rnd", fig[FLOOR_RAND]);
	bench_row(r, "fault1_rand", "fault-in compressed, random, cluster 1",
		  fig[FAULT1_RAND], "uffd+unLZ4 rnd", fig[FLOOR_RAND]);
	if (m->nswapped)
		bench_row(r, "swapin_rand",
			  "swap-in incompressible, random order",
			  fig[SWAPIN_RAND], "zip fault rnd", fig[FAULT_RAND]);

	bench_note(
		r,
		"goal: engine LZ4 path >= %.1f of raw LZ4's throughput on the whole mix: %.2f, %s; %.2f of raw LZ4 capped at 2 KiB as the engine is (it gives up early)",
		GOAL_LZ4_RATIO, lz4_ratio,
		lz4_ratio >= GOAL_LZ4_RATIO ? "met" : "NOT met",
		head[H_LZ4_RATIO_2K]);
	bench_note(
		r,
		"engine time / raw LZ4 capped at 2 KiB, by class: text %.2f, code %.2f, zero-heavy %.2f, random %.2f",
		med[ENG_LZ4 + TEXT] / med[RAW_LZ4_2K + TEXT],
		med[ENG_LZ4 + CODE] / med[RAW_LZ4_2K + CODE],
		med[ENG_LZ4 + ZEROISH] / med[RAW_LZ4_2K + ZEROISH],
		med[ENG_LZ4 + RANDOM] / med[RAW_LZ4_2K + RANDOM]);
	bench_note(
		r,
		"goal: density (compressed bytes / cache memory) >= %.1f with %" PRIu64
		" pages cached in the VM: %.3f, %s",
		GOAL_DENSITY, m->ncached, density,
		density >= GOAL_DENSITY ? "met" : "NOT met");
	bench_note(
		r,
		"mean bytes per page, LZ4 / zstd-1: text %.0f / %.0f, code %.0f / %.0f, zero-heavy %.0f / %.0f, random %.0f / %.0f",
		mean_bytes(m, 0, TEXT), mean_bytes(m, 1, TEXT),
		mean_bytes(m, 0, CODE), mean_bytes(m, 1, CODE),
		mean_bytes(m, 0, ZEROISH), mean_bytes(m, 1, ZEROISH),
		mean_bytes(m, 0, RANDOM), mean_bytes(m, 1, RANDOM));
	bench_note(
		r,
		"LZ4's fast search (acceleration %u, Mem.ZipFastAccel; a VM uses it while it costs at most 3%% more bytes) against the full one, time / bytes by class: text %.2fx / %.2fx, code %.2fx / %.2fx, zero-heavy %.2fx / %.2fx, random %.2fx / %.2fx",
		m->fast_accel, med[ENG_LZ4_FAST + TEXT] / med[ENG_LZ4 + TEXT],
		mean_bytes(m, 2, TEXT) / mean_bytes(m, 0, TEXT),
		med[ENG_LZ4_FAST + CODE] / med[ENG_LZ4 + CODE],
		mean_bytes(m, 2, CODE) / mean_bytes(m, 0, CODE),
		med[ENG_LZ4_FAST + ZEROISH] / med[ENG_LZ4 + ZEROISH],
		mean_bytes(m, 2, ZEROISH) / mean_bytes(m, 0, ZEROISH),
		med[ENG_LZ4_FAST + RANDOM] / med[ENG_LZ4 + RANDOM],
		mean_bytes(m, 2, RANDOM) / mean_bytes(m, 0, RANDOM));
	bench_note(
		r,
		"zstd-1 vs LZ4: %.0f%% fewer bytes, %" PRIu64 " vs %" PRIu64
		" pages fit in 2 KiB; compress %.1fx and decompress %.1fx slower",
		100.0 * (1 - (double)zstd_all / (double)lz4_all),
		m->zstd_cached, m->ncached,
		med[RAW_ZSTD + ALL] / med[RAW_LZ4 + ALL],
		med[UNZSTD] / med[UNLZ4]);
	bench_note(
		r,
		"VM: %" PRIu64
		" pages, Mem.MemZipMaxPct=100; uffd events per page read (last trial): seq %.3f, random %.3f, cluster 1 %.3f, swap-in %.3f; %" PRIu64
		" swapped out by number",
		m->npages, c->fpp[FAULT_SEQ], c->fpp[FAULT_RAND],
		c->fpp[FAULT1_RAND], c->fpp[SWAPIN_RAND], c->stragglers);
	bench_note(r,
		   "mix: %" PRIu64 " text pages from %u files, %" PRIu64
		   " code pages from the .text of %u ELF files, %" PRIu64
		   " zero-heavy, %" PRIu64 " random; runs of up to %u pages",
		   m->n[TEXT], m->files[TEXT], m->n[CODE], m->files[CODE],
		   m->n[ZEROISH], m->n[RANDOM], RUN_PAGES);
}

int bench_zip(struct bench_report *r, uint64_t pages, unsigned trials,
	      const char *swapdir)
{
	double *samples = NULL, *fig[NFIGURES], med[NFIGURES], us[NFIGURES];
	double *heads = NULL, head[NHEADS], pool_all = 0;
	uint64_t *perm = NULL, *rand_cached = NULL, *rand_swapped = NULL;
	struct counts c = { 0 };
	struct mix m = { 0 };
	struct coder *coders = NULL;
	ZSTD_DCtx *dctx = NULL;
	uint8_t *zero = NULL;
	int err;

	if (pages < MIN_PAGES) {
		fprintf(stderr,
			"memvisor bench zip: --pages %" PRIu64
			" is too few: at least %u, so that the cache holds enough pages to be dense\n",
			pages, MIN_PAGES);
		return -EINVAL;
	}
	bench_watch("build the page mix", pages);
	err = mix_build(&m, pages);
	if (!err)
		err = mix_prepare(&m);
	bench_watch(NULL, 0);
	if (err)
		goto out;
	if (!m.ncached) {
		fprintf(stderr,
			"memvisor bench zip: no page of the mix fits in 2 KiB\n");
		err = -EINVAL;
		goto out;
	}
	samples = calloc((size_t)trials * NFIGURES, sizeof(*samples));
	heads = calloc((size_t)trials * NHEADS, sizeof(*heads));
	perm = malloc(m.ncached * sizeof(*perm));
	rand_cached = malloc(m.ncached * sizeof(*rand_cached));
	rand_swapped = malloc((m.nswapped + 1) * sizeof(*rand_swapped));
	coders = calloc(NCODERS, sizeof(*coders));
	dctx = ZSTD_createDCtx();
	zero = aligned_alloc(MV_PAGE_SIZE, MV_PAGE_SIZE);
	if (!samples || !heads || !perm || !rand_cached || !rand_swapped ||
	    !coders || !dctx || !zero) {
		err = -ENOMEM;
		goto out;
	}
	err = coders_init(coders);
	if (err)
		goto out;
	memset(zero, 0, MV_PAGE_SIZE);
	bench_shuffle(perm, m.ncached, SEED);
	for (uint64_t i = 0; i < m.ncached; i++)
		rand_cached[i] = m.cached[perm[i]];
	bench_shuffle(rand_swapped, m.nswapped, SEED + 1);
	for (uint64_t i = 0; i < m.nswapped; i++)
		rand_swapped[i] = m.swapped[rand_swapped[i]];

	err = pool_density(r, &m, rand_cached, &pool_all);
	if (err)
		goto out;
	for (unsigned t = 0; t < trials; t++) {
		bench_watch("compression passes", 8 * pages);
		err = zip_trial(&m, coders, dctx, us);
		bench_watch(NULL, 0);
		if (!err)
			err = fault_trial(&m, perm, rand_cached, rand_swapped,
					  zero, swapdir, us,
					  &heads[H_DENSITY * trials + t], &c);
		if (err)
			goto out;
		us[FLOOR_SEQ] = us[UFFD_SEQ] + us[UNLZ4];
		us[FLOOR_RAND] = us[UFFD_RAND] + us[UNLZ4];
		heads[H_LZ4_RATIO * trials + t] =
			us[RAW_LZ4 + ALL] / us[ENG_LZ4 + ALL];
		heads[H_LZ4_RATIO_2K * trials + t] =
			us[RAW_LZ4_2K + ALL] / us[ENG_LZ4 + ALL];
		for (unsigned f = 0; f < NFIGURES; f++)
			samples[(size_t)f * trials + t] = us[f];
	}
	for (unsigned f = 0; f < NFIGURES; f++) {
		fig[f] = samples + (size_t)f * trials;
		med[f] = bench_median(fig[f], trials);
	}
	for (unsigned h = 0; h < NHEADS; h++)
		head[h] = bench_median(heads + (size_t)h * trials, trials);
	bench_value(r, "pool_density", pool_all);
	report(r, &m, fig, med, head, &c);
	err = 0;
out:
	if (coders)
		ZSTD_freeCCtx(coders[RAW_ZSTD_C].cctx);
	free(coders);
	ZSTD_freeDCtx(dctx);
	free(zero);
	free(rand_swapped);
	free(rand_cached);
	free(perm);
	free(heads);
	free(samples);
	mix_free(&m);
	return err;
}
