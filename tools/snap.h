/* SPDX-License-Identifier: MIT */
/*
 * snap.h - a snapshot of a running host for the live screen (live.c) and
 * the metrics endpoint (metrics.c): the library's host and VM stats as they
 * were at one instant, the guests' op counts, and per-second rates computed
 * from the differences of the cumulative counters since the snapshot
 * before.  Plain data: copying one (snap_copy) is all a reader needs, so
 * that nobody outside the run loop ever calls into the engine.
 */
#ifndef MV_TOOL_SNAP_H
#define MV_TOOL_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memvisor.h"

struct snap_vm {
	char name[MV_NAME_MAX];
	bool have; /* st was filled at least once */
	struct mv_vm_stats st; /* as of the snapshot's t_s */
	uint64_t ops; /* guest ops completed, total */
	uint64_t integrity_errors; /* the guest's, total */
	double t_s; /* when st was taken, seconds into the run */
	/* over the interval before t_s; 0 for the first snapshot */
	double swr_mb_s; /* SWR/s: swapped in */
	double sww_mb_s; /* SWW/s: swapped out */
	double zip_mb_s; /* ZIP/s: compressed into the cache */
	double unzip_mb_s; /* UNZIP/s: decompressed on faults */
	double ops_s; /* OPS/s: guest ops */
};

struct snap {
	/* its name (the scenario file's path), for titles: room for the
	 * widest line the live screen draws, which shows it whole when the
	 * screen is wide enough (live_view.c) */
	char scenario[400];
	char origin[80]; /* whose view: "" the run's own, "top ADDR:PORT" */
	double t_s; /* seconds into the timed run */
	unsigned duration_s; /* how long the timed run is planned to be */
	uint64_t seq; /* snapshots published so far; 0: none yet */
	bool have_host; /* host was filled */
	struct mv_host_stats host;
	size_t nvms;
	struct snap_vm *vms; /* nvms of them */
};

/* Host-wide sums of the VMs' levels and rates, as the live screen's host
 * lines and the metrics show them. */
struct snap_totals {
	uint64_t memsz_pages, grant_pages, swcur_pages, swtgt_pages;
	uint64_t mctlsz_pages, mctltgt_pages, mctlmax_pages;
	uint64_t zip_cached_pages, zip_saved_bytes, zip_used_bytes;
	uint64_t zero_pages;
	double swr_mb_s, sww_mb_s, zip_mb_s, unzip_mb_s, ops_s;
};

/* Allocates nvms VMs, zeroed.  0 or -ENOMEM. */
int snap_init(struct snap *s, size_t nvms);
void snap_free(struct snap *s);
/* Makes dst a copy of src, its vms array resized to src's if they differ
 * (dst must have been snap_init()ed).  0, or -ENOMEM with dst unchanged. */
int snap_copy(struct snap *dst, const struct snap *src);

/* Records a VM's stats taken at t_s: the rates are the differences from
 * what it recorded before, over the time between (0 the first time, and
 * when no time passed). */
void snap_vm_update(struct snap_vm *v, const struct mv_vm_stats *st,
		    uint64_t ops, uint64_t integrity_errors, double t_s);

/* GRANT: guest pages backed by machine memory (a shared frame counted once
 * per guest page that maps it), as esxtop counts it. */
uint64_t snap_grant_pages(const struct mv_vm_stats *st);

void snap_totals(const struct snap *s, struct snap_totals *t);

static inline double snap_mb(uint64_t pages)
{
	return (double)pages * MV_PAGE_SIZE / (1 << 20);
}

#endif /* MV_TOOL_SNAP_H */
