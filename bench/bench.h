/* SPDX-License-Identifier: MIT */
/*
 * bench.h - entry point of the benchmarks run by `memvisor bench`.
 *
 * Every figure is printed beside its floor, measured in the same run on the
 * same machine (raw userfaultfd round trip, raw pread, raw LZ4, Linux KSM),
 * and the ratio between them; these machines are noisy, so figures are
 * medians of repeated trials.
 */
#ifndef MV_BENCH_H
#define MV_BENCH_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* argv[0] is "bench"; argv[1] names the benchmark ("fault", "swapin", "zip",
 * "balloon", "cow", "share", "lpage", "all").  Returns a process exit status. */
int mv_bench_main(int argc, char **argv);

/* Between the files of bench/: measuring, and the report (bench.c). */
struct bench_report;
uint64_t bench_now_ns(void);
/*
 * A host config for a benchmark: ESX's defaults with what it does not
 * measure switched off (active-memory sampling, whose periods take 100
 * pages of each VM aside; the background share scanner; large pages, which
 * the scheduler would make of regions resident long enough), so that a
 * loaded machine cannot change what is counted.
 */
struct mv_host_config;
void bench_host_config(struct mv_host_config *hc);
double bench_median(double *v, unsigned n);
void bench_shuffle(uint64_t *v, uint64_t n, uint64_t seed);
void bench_watch(const char *phase, uint64_t pages);
void bench_row(struct bench_report *r, const char *key, const char *label,
	       const double *us, const char *floor_name,
	       const double *floor_us);
void bench_value(struct bench_report *r, const char *key, double v);
/* A decimal number from min to max into *out: 0, or -EINVAL. */
int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* The pages per VM the report's heading names, when the benchmark decides. */
void bench_set_pages(struct bench_report *r, uint64_t pages);
/*
 * fn (NULL: none) runs when the watchdog gives up, before the process
 * exits: to undo what a benchmark changed outside it.  Async-signal-safe.
 */
void bench_on_abort(void (*fn)(void));
void bench_note(struct bench_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * cpu -1: nothing; else the calling thread moves to cpu alone, its mask
 * before in *was, until bench_unpin_self(who, cpu, was).  Errors are
 * printed as benchmark `who`'s.
 */
int bench_pin_self(const char *who, int cpu, cpu_set_t *was);
int bench_unpin_self(const char *who, int cpu, const cpu_set_t *was);
/* The first (last) CPU this process may run on, or -errno. */
int bench_first_cpu(void);
int bench_last_cpu(void);

/* The benchmarks, one file each. */
int bench_fault(struct bench_report *r, uint64_t pages, unsigned trials,
		const char *swapdir);
int bench_swapin(struct bench_report *r, uint64_t pages, unsigned trials,
		 const char *swapdir);
int bench_zip(struct bench_report *r, uint64_t pages, unsigned trials,
	      const char *swapdir);
int bench_balloon(struct bench_report *r, uint64_t pages, unsigned trials,
		  const char *swapdir);
int bench_cow(struct bench_report *r, uint64_t pages, unsigned trials,
	      const char *swapdir);
/* pages 0: the whole of each image (bench_share.c) */
int bench_share(struct bench_report *r, uint64_t pages, unsigned trials,
		const char *swapdir);
/* random access with and without large pages (bench_lpage.c) */
int bench_lpage(struct bench_report *r, uint64_t pages, unsigned trials,
		const char *swapdir);
#define BENCH_SHARE_MAX_IMAGES 8 /* one bit each in the ideal's masks */
/* The guest RAM images, one VM each, in order; the strings must last. */
void bench_share_images(const char *const *paths, unsigned n);
/* 0, or -ENOENT with a sentence in msg on how to make the images. */
int bench_share_missing(char *msg, size_t len);
/* The raw userfaultfd round trip (bench_fault.c), a floor for others too. */
int bench_uffd_floor(uint64_t npages, const uint64_t *order, bool poll_first,
		     const uint8_t *src, double *us);

#endif /* MV_BENCH_H */
