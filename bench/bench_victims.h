/* SPDX-License-Identifier: MIT */
/*
 * bench_victims.h - `memvisor bench victims` (bench_victims.c): reclaim's
 * victim choice on a simulated page-access trace, beside the oracle (its
 * floor) and exact LRU (its peer).
 */
#ifndef MV_BENCH_VICTIMS_H
#define MV_BENCH_VICTIMS_H

/* argv[0] is "victims"; returns a process exit status (0, 1 failed, 2 bad
 * usage). */
int bench_victims_main(int argc, char **argv);

#endif /* MV_BENCH_VICTIMS_H */
