/* SPDX-License-Identifier: MIT */
/*
 * series.h - the per-second time series of `memvisor run`: the host's and
 * each VM's memory levels and the work done in each second, kept in a
 * bounded number of samples and written into the run JSON ("series"),
 * which `memvisor report` turns into plots.
 */
#ifndef MV_TOOL_SERIES_H
#define MV_TOOL_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "memvisor.h"

/* Samples kept at most; beyond it adjacent samples are merged in pairs. */
#define SERIES_MAX_SAMPLES 2048

/* The host's series.  A level is the value at the sample's time; a count
 * is what happened since the sample before. */
enum series_host_key {
	SH_FREE, /* level, pages */
	SH_MINFREE, /* level, pages */
	SH_STATE, /* level, enum mv_mem_state */
	SH_CONSUMED, /* level, pages */
	SH_SHRDSVD, /* level, pages */
	SH_RECLAIM, /* count, pages compressed or swapped */
	SH_ALLOC_WAITS, /* count, faults that waited for a frame */
	SH_BLOCKED_WAITS, /* count, faults held in the low state */
	SH_NKEYS
};

/* Each VM's series; the MV_PAGE_NSTATES page states come first, in the
 * order of enum mv_page_state, so that SV_STATE + state is a key. */
enum series_vm_key {
	SV_STATE = 0, /* levels, pages in each state (they sum to memsize) */
	SV_CONSUMED = MV_PAGE_NSTATES, /* level, pages */
	SV_TCHD, /* level, pages: active memory by sampling */
	SV_SZTGT, /* level, pages */
	SV_MCTLSZ, /* level, pages in the balloon */
	SV_MCTLTGT, /* level, pages: the balloon's target */
	SV_SWCUR, /* level, pages in the swap file */
	SV_SWTGT, /* level, pages */
	SV_CACHEUSD, /* level, bytes the compression cache holds */
	SV_OPS, /* count, guest ops */
	SV_SWAPIN, /* count, pages */
	SV_SWAPOUT, /* count, pages */
	SV_ZIP, /* count, pages compressed */
	SV_UNZIP, /* count, pages decompressed */
	SV_COW, /* count, copy-on-write breaks */
	SV_NKEYS
};

struct series_key {
	const char *name; /* the JSON key */
	bool count; /* a count (summed when merged), else a level */
};

extern const struct series_key series_host_keys[SH_NKEYS];
extern const struct series_key series_vm_keys[SV_NKEYS];

struct series {
	size_t nvms;
	size_t cap; /* samples kept at most, even */
	size_t n; /* samples kept */
	unsigned stride; /* seconds (ticks) per kept sample: 1, 2, 4, ... */
	unsigned merges; /* times the samples were merged in pairs */
	double *t; /* [cap]: seconds since the run began, at each sample */
	uint64_t *host; /* [cap][SH_NKEYS] */
	uint64_t *vm; /* [nvms][cap][SV_NKEYS] */
	char (*names)[MV_NAME_MAX]; /* [nvms] */
	uint64_t *memsz; /* [nvms], pages */
	/* the sample being made of the ticks since the last kept one */
	unsigned pend_ticks;
	double pend_t;
	uint64_t *pend_host; /* [SH_NKEYS] */
	uint64_t *pend_vm; /* [nvms][SV_NKEYS] */
	/* this tick, and the cumulative counters at the tick before */
	uint64_t *cur_host, *cur_vm;
	uint64_t *prev_host, *prev_vm;
	uint64_t *tick_vm; /* [nvms][SV_NKEYS]: this tick's values */
	bool have_prev;
};

/* 0 or -ENOMEM.  cap: samples kept at most (0: SERIES_MAX_SAMPLES; made
 * even, at least 2). */
int series_init(struct series *s, size_t nvms, size_t cap);
void series_free(struct series *s);

/* One tick: series_begin(), series_vm() for each VM, series_end().  The
 * first tick is the base of the counts (they are 0 in it); later ticks
 * count from the tick before.  ops is the VM's cumulative guest ops. */
void series_begin(struct series *s, double t, const struct mv_host_stats *h);
void series_vm(struct series *s, size_t i, const struct mv_vm_stats *st,
	       uint64_t ops);
void series_end(struct series *s);

/* Samples that series_to_json() writes: those kept, and the one being
 * made if it has a tick. */
size_t series_samples(const struct series *s);

/* Adds "series" to obj.  0 or -ENOMEM. */
int series_to_json(const struct series *s, cJSON *obj);

#endif /* MV_TOOL_SERIES_H */
