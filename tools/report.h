/* SPDX-License-Identifier: MIT */
/*
 * report.h - the results of `memvisor run`: the final table for people and
 * the JSON file for machines, both with esxtop's column names, in MiB
 * (shown as MB, as esxtop does) and MiB per second.
 */
#ifndef MV_TOOL_REPORT_H
#define MV_TOOL_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "guest.h"
#include "memvisor.h"
#include "scenario.h"

struct vm_result {
	const struct sc_vm *vm; /* as configured */
	struct mv_vm_stats st; /* at the end of the timed run */
	uint64_t ops; /* guest ops completed in the timed run */
	struct mvg_stats guest; /* after the final verification */
	int verify_err; /* mvg_stop_and_verify()'s result */
	double swr_mb_s; /* SWR/s: swap-in rate averaged over the run */
	double sww_mb_s; /* SWW/s: swap-out rate averaged over the run */
	double zip_mb_s; /* ZIP/s: compression rate averaged over the run */
	double cow_s; /* copy-on-write breaks per second */
	double scan_s; /* pages the share scanner visited per second */
	double unzip_mb_s; /* UNZIP/s: decompression rate, likewise */
	double ops_s; /* guest ops per second over the run */
};

struct run_result {
	const struct scenario *sc;
	const char *swapdir; /* where the swap files went */
	double duration_s; /* how long the workloads actually ran */
	bool interrupted; /* stopped early by a signal */
	struct mv_host_stats host; /* at the end of the timed run */
	struct vm_result *vms; /* one per sc->vms, same order */
	uint64_t integrity_errors; /* all VMs */
	unsigned verify_failures; /* VMs whose final check could not run */
};

static inline double pages_mb(uint64_t pages)
{
	return (double)pages * MV_PAGE_SIZE / (1 << 20);
}

/* The final per-VM table, the host line, and every integrity error. */
void report_print(FILE *out, const struct run_result *r);

/* Writes the JSON report to f, opened by the caller on path before the run
 * so that a bad path fails at once, not after it.  0 or -errno, with a
 * sentence in err. */
int report_write_json(FILE *f, const char *path, const struct run_result *r,
		      char *err, size_t errlen);

#endif /* MV_TOOL_REPORT_H */
