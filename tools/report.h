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
#include <sys/types.h>

#include "guest.h"
#include "memvisor.h"
#include "scenario.h"
#include "series.h"

struct vm_result {
	const struct sc_vm *vm; /* as configured */
	struct mv_vm_stats st; /* at the end of the timed run */
	uint64_t ops; /* guest ops completed in the timed run */
	struct mvg_stats guest; /* after the final verification */
	int verify_err; /* mvg_verify()'s result, but for -ECANCELED */
	bool verified; /* the final verification ran to its end */
	double swr_mb_s; /* SWR/s: swap-in rate averaged over the run */
	double sww_mb_s; /* SWW/s: swap-out rate averaged over the run */
	double zip_mb_s; /* ZIP/s: compression rate averaged over the run */
	double cow_s; /* copy-on-write breaks per second */
	double scan_s; /* pages the share scanner visited per second */
	double unzip_mb_s; /* UNZIP/s: decompression rate, likewise */
	double ops_s; /* guest ops per second over the run */
	/* a QEMU guest's serial console file; NULL for guest threads */
	const char *console_path;
};

struct run_result {
	const struct scenario *sc; /* NULL if it could not be read */
	const char *scenario_name; /* as given, for when sc is NULL */
	const char *swapdir; /* where the swap files went */
	bool have_stats; /* the guests ran: the fields below are filled */
	double duration_s; /* how long the workloads actually ran */
	bool interrupted; /* stopped early by a signal */
	/* "run" or "verification": what the signal interrupted; NULL */
	const char *interrupted_during;
	int signal; /* the signal that interrupted the run, 0 if none */
	struct mv_host_stats host; /* at the end of the timed run */
	struct vm_result *vms; /* one per sc->vms, same order */
	const struct series *series; /* per second, for plots; NULL: none */
	uint64_t integrity_errors; /* all VMs */
	unsigned verify_failures; /* VMs whose final check could not run */
	unsigned unverified; /* VMs whose final check a signal cut short */
	int exit_status; /* of the run, as the process will exit */
	const char *error; /* why exit_status is not 0; "" when it is */
};

/*
 * Where the JSON report goes, settled before the run: stdout, a file that
 * is replaced whole (written to a temporary file in its directory, then
 * renamed over it, so that a reader never sees half a report and an
 * earlier report stays until a complete new one replaces it), or something
 * that is not a regular file (a pipe, /dev/stdout), written in place.
 */
struct report_target {
	char *path; /* resolved (symbolic links followed); NULL: stdout */
	char *dir; /* its directory, for the temporary file */
	bool in_place; /* not a regular file: opened and written */
	mode_t mode; /* of the new file: the old one's, or 0666 & ~umask */
};

static inline double pages_mb(uint64_t pages)
{
	return (double)pages * MV_PAGE_SIZE / (1 << 20);
}

/* The final per-VM table, the host line, and every integrity error. */
void report_print(FILE *out, const struct run_result *r);

/*
 * Counts a remote VM (vmm = process, or a QEMU guest whose agent joined
 * the run's daemon) into the host's figures h, as the host counts its own
 * VMs: its engine runs in another process, so what it reclaimed, shared,
 * failed to swap or backed by large pages is in its stats st (what its
 * agent reported) and in no counter of this process's host.  The waits
 * for a free frame and in the low state are its own host's and are not
 * reported: they stay the run's host's.
 */
void report_host_add_remote(struct mv_host_stats *h,
			    const struct mv_vm_stats *st);

/* Checks before the run that a report can be written at arg ("-":
 * stdout), so that a typo does not cost a whole run: the directory must
 * exist and take a new file.  Nothing existing is changed.  0 or -errno,
 * with a sentence in err.  Call before any thread exists (it reads the
 * umask). */
int report_json_prepare(const char *arg, struct report_target *t, char *err,
			size_t errlen);
void report_json_target_free(struct report_target *t);

/* Writes the JSON report to t; on failure the file there is as it was.
 * 0 or -errno, with a sentence in err. */
int report_write_json(const struct report_target *t, const struct run_result *r,
		      char *err, size_t errlen);

#endif /* MV_TOOL_REPORT_H */
