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

/* argv[0] is "bench"; argv[1] names the benchmark ("fault", "swapin", "all").
 * Returns a process exit status. */
int mv_bench_main(int argc, char **argv);

#endif /* MV_BENCH_H */
